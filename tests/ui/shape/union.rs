use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
