use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    id: i64,
    #[relyt(rename = "id")]
    legacy_id: i64,
}

fn main() {}
