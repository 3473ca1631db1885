use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    id: i64,
    #[relyt(json, with = "codecs::encode")]
    meta: String,
}

fn main() {}
