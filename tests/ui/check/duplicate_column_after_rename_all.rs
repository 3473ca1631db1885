use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
#[relyt(rename_all = "UPPERCASE")]
struct Event {
    #[relyt(rename = "USER_ID")]
    id: i64,
    user_id: i64,
}

fn main() {}
