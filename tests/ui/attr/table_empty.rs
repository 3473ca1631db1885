use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
#[relyt(table = "")]
struct Event {
    id: i64,
}

fn main() {}
