//! Compile tests of `#[derive(RelytRecord)]`, run with trybuild.
//!
//! Every directory under `tests/ui/` is one kind of test: `pass/` must compile (and its `main`
//! must run), every other directory (`attr/`, `shape/`, `check/`, `type/`) holds one failure per
//! file, with the expected compiler output beside it in a `.stderr` file.
//!
//! To regenerate the `.stderr` files after an intended change of a message, run
//! `TRYBUILD=overwrite cargo test -p relyt-sdk --test derive_ui`, then read every changed file.
//!
//! trybuild resolves the paths relative to the package that runs this test (`relyt-sdk/`).

use std::path::Path;

#[test]
fn ui() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui");
    let mut kinds: Vec<String> = std::fs::read_dir(&root)
        .expect("tests/ui exists")
        .filter_map(|entry| {
            let entry = entry.expect("tests/ui is readable");
            entry
                .file_type()
                .expect("file type of an entry of tests/ui")
                .is_dir()
                .then(|| entry.file_name().to_string_lossy().into_owned())
        })
        .collect();
    kinds.sort();
    assert!(
        kinds.iter().any(|kind| kind == "pass"),
        "tests/ui/pass is missing"
    );

    let t = trybuild::TestCases::new();
    for kind in &kinds {
        let pattern = format!("../tests/ui/{kind}/*.rs");
        if kind == "pass" {
            t.pass(pattern);
        } else {
            t.compile_fail(pattern);
        }
    }
}
