use relyt_sdk::RelytRecord;

// Attributes may be split over several `#[relyt]`; a key given twice is still an error.
#[derive(RelytRecord)]
struct Event {
    #[relyt(rename = "event_id")]
    #[relyt(key, rename = "id")]
    id: i64,
}

fn main() {}
