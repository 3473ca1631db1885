use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    id: i64,
    #[relyt(skip, key)]
    cached: u8,
}

fn main() {}
