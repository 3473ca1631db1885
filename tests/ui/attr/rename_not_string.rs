use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    #[relyt(rename = 5)]
    id: i64,
}

fn main() {}
