use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
#[relyt(crate = "relyt sdk")]
struct Event {
    id: i64,
}

fn main() {}
