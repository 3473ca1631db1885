use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    #[relyt(key, key)]
    id: i64,
}

fn main() {}
