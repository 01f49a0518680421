//! JSON Schema pieces for the types `summary.json` writes by hand-written
//! `Serialize` impls (check ids, field names, verdicts, pairing ids): what
//! `schemars` cannot derive, described once here. The whole schema is
//! `report::summary_schema()`, committed as `docs/summary.schema.json`.

use schemars::{json_schema, Schema};

/// A string that is one of `values`.
pub fn one_of_strings<'a>(description: &str, values: impl IntoIterator<Item = &'a str>) -> Schema {
    let values: Vec<&str> = values.into_iter().collect();
    json_schema!({
        "type": "string",
        "description": description,
        "enum": values,
    })
}

/// Implements `JsonSchema` for a type serialized as one of a fixed list of
/// strings.
macro_rules! string_enum_schema {
    ($type:ty, $description:expr, $values:expr) => {
        impl schemars::JsonSchema for $type {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($type).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                $crate::schema::one_of_strings($description, $values)
            }
        }
    };
}

pub(crate) use string_enum_schema;
