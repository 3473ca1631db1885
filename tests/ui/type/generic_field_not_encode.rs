use relyt_sdk::RelytRecord;

struct Point {
    x: f64,
    y: f64,
}

#[derive(RelytRecord)]
struct Wrapper<T> {
    value: T,
}

fn columns<R: RelytRecord>() -> usize {
    R::COLUMNS.len()
}

fn main() {
    columns::<Wrapper<i64>>();
    columns::<Wrapper<Point>>();
}
