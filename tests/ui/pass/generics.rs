//! Lifetimes, type parameters, const generics, a renamed crate and types from a `macro_rules!`.

use std::borrow::Cow;
use std::marker::PhantomData;

use relyt_sdk::RelytRecord;

#[derive(RelytRecord)]
struct Borrowed<'a> {
    name: &'a str,
    label: Cow<'a, str>,
    tags: &'a [&'a str],
}

#[derive(RelytRecord)]
struct Generic<'a, T, U: ?Sized, const N: usize>
where
    T: Copy,
    // `json` fields get no automatic bound: the runtime's serde is not named by the derive.
    U: serde::Serialize,
{
    value: T,
    values: Vec<T>,
    #[relyt(json)]
    extra: &'a U,
    bytes: [u8; N],
    #[relyt(skip)]
    _marker: PhantomData<fn() -> U>,
}

mod renamed {
    pub use relyt_sdk as sdk;
}

#[derive(relyt_sdk::RelytRecord)]
#[relyt(crate = "crate::renamed::sdk")]
struct ThroughRenamedCrate {
    #[relyt(key)]
    id: u64,
}

// The derive is written inside a `macro_rules!` but the field types come from its caller (as
// plain tokens, not `$ty:ty` fragments, which would carry the macro's own context). The generated
// code borrows only the location of the field types, so its own locals still resolve.
macro_rules! record {
    ($name:ident { $($field:ident : $ty:tt),* $(,)? }) => {
        #[derive(RelytRecord)]
        struct $name {
            $($field: $ty,)*
        }
    };
}

record!(FromMacro {
    id: i64,
    name: String
});

fn main() {
    let tags = ["a", "b"];
    let row = Borrowed {
        name: "x",
        label: Cow::Borrowed("y"),
        tags: &tags,
    };
    assert_eq!(
        relyt_sdk::encode_to_string(&row).expect("encodes"),
        "x,y,\"{\"\"a\"\",\"\"b\"\"}\"\n"
    );

    let extra = String::from("e");
    let row: Generic<'_, i32, String, 2> = Generic {
        value: 7,
        values: vec![1, 2],
        extra: &extra,
        bytes: [0xde, 0xad],
        _marker: PhantomData,
    };
    let names: Vec<&str> = <Generic<'_, i32, String, 2>>::COLUMNS
        .iter()
        .map(|column| column.name())
        .collect();
    assert_eq!(names, ["value", "values", "extra", "bytes"]);
    assert!(relyt_sdk::encode_to_string(&row).is_ok());

    assert!(ThroughRenamedCrate::COLUMNS[0].is_key());
    let _ = ThroughRenamedCrate { id: 1 }.id;

    let row = FromMacro {
        id: 1,
        name: "n".to_owned(),
    };
    assert_eq!(relyt_sdk::encode_to_string(&row).expect("encodes"), "1,n\n");
}
