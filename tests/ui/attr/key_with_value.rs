use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    #[relyt(key = true)]
    id: i64,
}

fn main() {}
