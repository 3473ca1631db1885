use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    id: i64,
    #[relyt(json(pretty))]
    meta: serde_json::Value,
}

fn main() {}
