use relyt_sdk::RelytRecord;

struct Point {
    x: f64,
    y: f64,
}

fn encode_point(point: Point) -> String {
    format!("({},{})", point.x, point.y)
}

#[derive(RelytRecord)]
struct Event {
    id: i64,
    #[relyt(with = "encode_point")]
    location: Point,
}

fn main() {}
