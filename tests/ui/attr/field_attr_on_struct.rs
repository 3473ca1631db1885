use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
#[relyt(rename = "events")]
struct Event {
    id: i64,
}

fn main() {}
