use relyt_sdk::RelytRecord;

// Aggregate markers are planned (see ROADMAP) but not implemented: today they are unknown.
#[derive(RelytRecord)]
struct Metric {
    #[relyt(key)]
    name: String,
    #[relyt(sum)]
    value: f64,
}

fn main() {}
