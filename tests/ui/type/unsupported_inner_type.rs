use relyt_sdk::RelytRecord;

struct Point {
    x: f64,
    y: f64,
}

#[derive(RelytRecord)]
struct Event {
    id: i64,
    location: Option<Point>,
}

fn main() {}
