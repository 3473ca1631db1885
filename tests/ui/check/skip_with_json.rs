use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    id: i64,
    #[relyt(skip)]
    #[relyt(json)]
    cached: u8,
}

fn main() {}
