use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    #[relyt(table = "events")]
    id: i64,
}

fn main() {}
