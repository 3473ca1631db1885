use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
enum Event {
    Click { x: i32, y: i32 },
    Scroll { delta: i32 },
}

fn main() {}
