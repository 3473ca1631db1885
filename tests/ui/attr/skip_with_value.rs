use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    id: i64,
    #[relyt(skip = "x")]
    cached: i64,
}

fn main() {}
