use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    id: i64,
    #[relyt(rename = "cache", skip)]
    cached: u8,
}

fn main() {}
