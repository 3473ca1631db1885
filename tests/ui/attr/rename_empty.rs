use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    #[relyt(rename = "")]
    id: i64,
}

fn main() {}
