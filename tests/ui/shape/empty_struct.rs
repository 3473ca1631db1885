use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Nothing {}

fn main() {}
