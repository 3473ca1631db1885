use relyt_sdk::RelytRecord;

struct Point {
    x: f64,
    y: f64,
}

#[derive(RelytRecord)]
struct Event {
    id: i64,
    #[relyt(json)]
    location: Point,
}

fn main() {}
