use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
#[relyt(rename_all = "Title Case")]
struct Event {
    event_id: i64,
}

fn main() {}
