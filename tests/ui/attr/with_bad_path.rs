use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    #[relyt(with = "encode point")]
    location: (f64, f64),
}

fn main() {}
