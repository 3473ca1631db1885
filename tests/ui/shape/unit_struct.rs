use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Marker;

fn main() {}
