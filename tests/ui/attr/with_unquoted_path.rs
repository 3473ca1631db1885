use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Event {
    #[relyt(with = codecs::encode_point)]
    location: (f64, f64),
}

fn main() {}
