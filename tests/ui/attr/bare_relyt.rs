use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    #[relyt]
    id: i64,
}

fn main() {}
