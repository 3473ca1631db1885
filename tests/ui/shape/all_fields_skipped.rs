use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Cache {
    #[relyt(skip)]
    hits: u64,
    #[relyt(skip)]
    misses: u64,
}

fn main() {}
