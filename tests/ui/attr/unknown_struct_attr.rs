use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
#[relyt(tabel = "events")]
struct Event {
    id: i64,
}

fn main() {}
