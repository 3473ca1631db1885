use relyt_sdk::RelytRecord;

// Every problem is reported in one build, each at its own token.
#[derive(RelytRecord)]
#[relyt(table = "", rename_all = "Title Case", frobnicate)]
struct Event {
    #[relyt(rename = 5, skip = "x", key = true)]
    id: i64,
    #[relyt(rename = "a")]
    #[relyt(rename = "b")]
    name: String,
    #[relyt(skip, key)]
    cached: u8,
    #[relyt(json, with = "codecs::encode")]
    meta: String,
    #[relyt(rename = "id")]
    other_id: i64,
}

fn main() {}
