use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
#[relyt(rename_all = "PascalCase")]
struct Event {
    id: i64,
    __: i64,
}

fn main() {}
