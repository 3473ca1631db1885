use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    #[relyt(primary_key)]
    id: i64,
}

fn main() {}
