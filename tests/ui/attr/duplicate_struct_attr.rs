use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
#[relyt(table = "events", table = "events_v2")]
struct Event {
    id: i64,
}

fn main() {}
