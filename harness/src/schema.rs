//! Enums that are written as one fixed name per variant (check names,
//! compared fields, verdicts), declared once with [`named_enum!`]: the
//! enum, its list, its names, parsing, `Display`, serde and the JSON
//! Schema all come from the one table, so a new variant is one line.
//! The whole schema is `report::summary_schema()`, committed as
//! `docs/summary.schema.json`.

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

/// Declares a fieldless enum whose variants each have one name, written
/// `Variant => "name"`, and `("what", "description")` after the enum's
/// name: `what` names the kind in a parse error ("unknown check …"), the
/// description goes into the JSON Schema. It gives `ALL` (in declaration
/// order), `name()`, `names()`, `parse()`, `Display`, `Serialize`, `Deserialize` and
/// `JsonSchema`, all by the name.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $type:ident ($what:literal, $description:literal) {
            $( $(#[$variant_meta:meta])* $variant:ident => $name:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $type {
            $( $(#[$variant_meta])* $variant, )*
        }

        impl $type {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$type] = &[$($type::$variant,)*];

            /// The name reports, files and summary.json use.
            pub fn name(self) -> &'static str {
                match self {
                    $($type::$variant => $name,)*
                }
            }

            /// Every name, comma-separated, for a message that lists them.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
            }

            /// The variant named `text`, if any.
            pub fn parse(text: &str) -> Option<$type> {
                Self::ALL.iter().copied().find(|v| v.name() == text)
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$type, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                $type::parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "unknown {} {text:?}; expected one of {}",
                        $what,
                        $type::names()
                    ))
                })
            }
        }

        impl schemars::JsonSchema for $type {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($type).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                $crate::schema::one_of_strings(
                    $description,
                    $type::ALL.iter().map(|v| v.name()),
                )
            }
        }
    };
}

pub(crate) use named_enum;
