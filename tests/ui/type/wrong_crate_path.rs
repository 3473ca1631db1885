use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
#[relyt(crate = "relyt")]
struct Event {
    id: i64,
}

fn main() {}
