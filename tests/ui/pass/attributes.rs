//! Every attribute at once, checked through `COLUMNS`, `TABLE`, `SCHEMA` and an encoded row.

use relyt_sdk::{EncodeError, FieldEncoder, RelytRecord};

mod codecs {
    use relyt_sdk::{EncodeError, FieldEncoder};

    pub fn point(point: &(f64, f64), out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
        out.write_text(&format!("({},{})", point.0, point.1))
    }
}

fn upper(value: &String, out: &mut FieldEncoder<'_>) -> Result<(), EncodeError> {
    out.write_text(&value.to_uppercase())
}

#[derive(serde::Serialize)]
struct Meta {
    source: &'static str,
}

#[derive(RelytRecord)]
#[relyt(table = "events", schema = "analytics")]
#[relyt(rename_all = "camelCase")]
struct Event {
    #[relyt(key)]
    event_id: i64,
    #[relyt(key, rename = "tenant")]
    tenant_id: u32,
    r#type: String,
    #[relyt(json)]
    meta: Meta,
    #[relyt(with = "codecs::point")]
    location: (f64, f64),
    #[relyt(with = "upper")]
    shout: String,
    #[relyt(skip)]
    _cached: Option<Vec<u8>>,
}

fn main() {
    let columns: Vec<(&str, bool)> = Event::COLUMNS
        .iter()
        .map(|column| (column.name(), column.is_key()))
        .collect();
    assert_eq!(
        columns,
        [
            ("eventId", true),
            ("tenant", true),
            ("type", false),
            ("meta", false),
            ("location", false),
            ("shout", false),
        ]
    );
    assert_eq!(Event::TABLE, Some("events"));
    assert_eq!(Event::SCHEMA, Some("analytics"));
    assert_eq!(Event::COLUMNS[3].sql_type(), relyt_sdk::SqlType::JSON);
    assert_eq!(Event::COLUMNS[4].sql_type(), relyt_sdk::SqlType::ANY);

    let event = Event {
        event_id: 1,
        tenant_id: 2,
        r#type: "click".to_owned(),
        meta: Meta { source: "web" },
        location: (1.5, -2.0),
        shout: "hi".to_owned(),
        _cached: None,
    };
    let line = relyt_sdk::encode_to_string(&event).expect("the row encodes");
    assert_eq!(
        line,
        "1,2,click,\"{\"\"source\"\":\"\"web\"\"}\",\"(1.5,-2)\",HI\n"
    );
}
