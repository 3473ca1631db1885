use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Point(f64, f64);

fn main() {}
