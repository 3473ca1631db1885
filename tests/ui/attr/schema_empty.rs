use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
#[relyt(schema = "", table = "events")]
struct Event {
    id: i64,
}

fn main() {}
