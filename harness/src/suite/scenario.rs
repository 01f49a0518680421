//! Scenarios declared as data: one TOML file each in `tests/scenarios/`.
//!
//! A scenario says what the client sends, where the server listens, what
//! outcome to expect, and which fields to stop comparing for it. Adding one
//! is adding a file; nothing here knows the scenarios by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::policy::{
    parse_field_key, IgnoredField, CONVERSATION, HANDSHAKE_LABELS, REFUSED_LABELS,
    UNANSWERED_LABELS,
};
use crate::suite::conditions::{self, Conditions, RawNetwork};
use crate::suite::declaration::{self, DeclarationError};
use crate::suite::message::Message;

/// What a pairing in this scenario should end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Connected, every byte delivered, closed in order, both exit 0.
    Delivered,
    /// Nobody listens: the client's one SYN is answered by RST/ACK and it
    /// exits non-zero. No server runs.
    Refused,
    /// Nothing answers: every SYN is lost (a black hole, made by a
    /// `[network]` rule), the client retries as its kernel says, gives up
    /// and exits non-zero. No server runs.
    Unanswered,
    /// Connected, then reset in the middle (a `[network]` rule replaces a
    /// segment with a RST): both programs must end on their own, and how
    /// they end is compared with the reference, not required to be 0.
    Reset,
}

/// One scenario.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scenario {
    /// The file name without `.toml`.
    pub name: String,
    pub description: String,
    #[serde(skip)]
    pub message: Message,
    /// Where the server listens: 127.0.0.1 or ::1.
    pub host: String,
    /// A fixed port; `None` picks a free one per pairing.
    pub port: Option<u16>,
    pub outcome: Outcome,
    /// Features every implementation in a pairing must declare.
    pub requires: Vec<String>,
    /// The reference implementation for this scenario when the manifest's
    /// cannot take part in it.
    pub reference: Option<String>,
    pub ignored: Vec<IgnoredField>,
    /// Whether each program's socket calls are recorded (with strace) and
    /// compared with the reference's.
    pub record_calls: bool,
    /// The network the cells run on, when not the kernel's defaults.
    pub conditions: Conditions,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    description: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<i64>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    record_calls: bool,
    #[serde(default)]
    message: RawMessage,
    #[serde(default)]
    expect: RawExpect,
    #[serde(default)]
    policy: BTreeMap<String, String>,
    #[serde(default)]
    network: RawNetwork,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    text: Option<String>,
    hex: Option<String>,
    generate: Option<String>,
    size: Option<i64>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    outcome: Option<String>,
}

/// The generators a scenario may name instead of spelling its bytes out.
pub const GENERATORS: &[(&str, &str)] = &[
    ("all-byte-values", "the 256 byte values 0x00..0xff, once each"),
    (
        "pattern",
        "`size` bytes of i mod 251: a prime period, so a lost, doubled or reordered chunk changes the bytes",
    ),
];

/// The tutorial's defaults, for the `hello` scenario and for tests.
pub const DEFAULT_MESSAGE: &[u8] = b"Hello server!";

impl Scenario {
    /// Whether a server runs at all.
    pub fn has_server(&self) -> bool {
        matches!(self.outcome, Outcome::Delivered | Outcome::Reset)
    }

    pub fn load(path: &Path) -> Result<Scenario, DeclarationError> {
        let text = declaration::read(path, "--scenarios DIR")?;
        Scenario::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Scenario, DeclarationError> {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let fail = |entry: &str, problem: String| DeclarationError::new(path, entry, problem);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(fail(
                "file name",
                "a scenario's name is its file name: letters, digits, '-' or '_', then .toml"
                    .into(),
            ));
        }
        let raw: RawScenario = declaration::parse_toml(path, text)?;
        let host = raw.host.unwrap_or_else(|| "127.0.0.1".into());
        let is_loopback = host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
        if !is_loopback {
            return Err(fail(
                "host",
                format!(
                    "'{host}' is not a loopback address; the suite runs on 127.0.0.0/8 or ::1 only"
                ),
            ));
        }
        let port = match raw.port {
            None => None,
            Some(p) if (1..=65535).contains(&p) => Some(p as u16),
            Some(p) => {
                return Err(fail(
                    "port",
                    format!("{p} is out of range; use 1 to 65535, or leave it out for a free port"),
                ))
            }
        };
        let message = message(&raw.message).map_err(|p| fail("message", p))?;
        let outcome = match raw.expect.outcome.as_deref() {
            None | Some("delivered") => Outcome::Delivered,
            Some("refused") => Outcome::Refused,
            Some("unanswered") => Outcome::Unanswered,
            Some("reset") => Outcome::Reset,
            Some(other) => {
                return Err(fail(
                    "expect.outcome",
                    format!(
                        "'{other}' must be \"delivered\", \"refused\", \"unanswered\" or \"reset\""
                    ),
                ))
            }
        };
        let conditions = conditions::validate(raw.network, Path::new("/proc/sys"))
            .map_err(|(entry, problem)| fail(&entry, problem))?;
        let mut ignored = Vec::new();
        for (key, policy) in &raw.policy {
            if policy != "ignored" {
                return Err(fail(
                    &format!("policy.\"{key}\""),
                    format!("'{policy}' is not an override; a scenario can only set a field to \"ignored\""),
                ));
            }
            ignored.push(
                ignored_field(key, outcome).map_err(|p| fail(&format!("policy.\"{key}\""), p))?,
            );
        }
        Ok(Scenario {
            name,
            description: raw.description,
            message,
            host,
            port,
            outcome,
            requires: raw.requires,
            reference: raw.reference,
            ignored,
            record_calls: raw.record_calls,
            conditions,
        })
    }
}

fn message(raw: &RawMessage) -> Result<Message, String> {
    let given = [
        raw.text.is_some(),
        raw.hex.is_some(),
        raw.generate.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given > 1 {
        return Err("give one of `text`, `hex` or `generate`, not several".into());
    }
    if raw.size.is_some() && raw.generate.as_deref() != Some("pattern") {
        return Err("`size` goes with generate = \"pattern\" only".into());
    }
    if let Some(text) = &raw.text {
        return Ok(Message::from(text.as_bytes()));
    }
    if let Some(hex) = &raw.hex {
        let digits: Vec<char> = hex.chars().filter(|c| !c.is_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return Err("`hex` has an odd number of digits".into());
        }
        return digits
            .chunks(2)
            .map(|pair| {
                let s: String = pair.iter().collect();
                u8::from_str_radix(&s, 16)
                    .map_err(|_| format!("`hex` has '{s}', which is not a hex byte"))
            })
            .collect::<Result<Vec<u8>, String>>()
            .map(Message::from);
    }
    match raw.generate.as_deref() {
        None => Ok(Message::from(DEFAULT_MESSAGE)),
        Some("all-byte-values") => Ok(Message::from((0..=255u8).collect::<Vec<u8>>())),
        Some("pattern") => {
            let size = raw
                .size
                .ok_or("generate = \"pattern\" needs `size`, in bytes")?;
            if !(0..=1 << 30).contains(&size) {
                return Err(format!("`size` {size} must be from 0 to 1073741824 bytes"));
            }
            // Described, not built: a gigabyte costs nothing to load.
            Ok(Message::pattern(size as usize))
        }
        Some(other) => Err(format!(
            "unknown generator '{other}'; known: {}",
            GENERATORS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Parses `SEGMENT.field` or `field` and checks both exist, so a typo is an
/// error rather than an override that silently does nothing; a segment
/// must be one this scenario's outcome has.
fn ignored_field(key: &str, outcome: Outcome) -> Result<IgnoredField, String> {
    let labels: &[&str] = match outcome {
        Outcome::Delivered | Outcome::Reset => &HANDSHAKE_LABELS,
        Outcome::Refused => &REFUSED_LABELS,
        Outcome::Unanswered => &UNANSWERED_LABELS,
    };
    let (segment, field) = parse_field_key(key)?;
    if let Some(s) = segment.as_deref() {
        let known = labels.contains(&s) || [CONVERSATION, "server", "client"].contains(&s);
        if !known {
            return Err(format!(
                "a {} scenario has no segment {s}; its segments: {}",
                match outcome {
                    Outcome::Delivered => "delivered",
                    Outcome::Refused => "refused",
                    Outcome::Unanswered => "unanswered",
                    Outcome::Reset => "reset",
                },
                labels.join(", ")
            ));
        }
    }
    Ok(IgnoredField { segment, field })
}

/// The tutorial's own scenario, which the reports show first: the one a
/// learner compares with the tutorials' screenshots.
pub const TUTORIAL_SCENARIO: &str = "hello";

/// Every `*.toml` in `dir`: the tutorial's own ([`TUTORIAL_SCENARIO`])
/// first, the rest by name.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, DeclarationError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        DeclarationError::new(
            dir,
            "directory",
            format!("cannot read it: {e}; pass --scenarios DIR"),
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort_by_key(|p| {
        let tutorial = p.file_stem().is_some_and(|s| s == TUTORIAL_SCENARIO);
        (!tutorial, p.clone())
    });
    if paths.is_empty() {
        return Err(DeclarationError::new(
            dir,
            "directory",
            "holds no scenario (*.toml); pass --scenarios DIR",
        ));
    }
    paths.iter().map(|p| Scenario::load(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Field;

    fn parse(text: &str) -> Result<Scenario, DeclarationError> {
        Scenario::parse(Path::new("tests/scenarios/s.toml"), text)
    }

    #[test]
    fn defaults_are_the_tutorials() {
        let s = parse("description = \"d\"").unwrap();
        assert_eq!(s.name, "s");
        assert!(s.message == *DEFAULT_MESSAGE);
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(s.outcome, Outcome::Delivered);
        assert!(s.port.is_none() && s.ignored.is_empty());
    }

    #[test]
    fn messages() {
        let m = |body: &str| {
            parse(&format!("description = \"d\"\n[message]\n{body}")).map(|s| s.message)
        };
        assert!(m("text = \"¡hola!\"").unwrap() == *"¡hola!".as_bytes());
        assert!(m("hex = \"00 ff 41\"").unwrap() == [0, 255, 0x41][..]);
        assert_eq!(m("generate = \"all-byte-values\"").unwrap().len(), 256);
        let pattern = m("generate = \"pattern\"\nsize = 1000").unwrap();
        let spelled: Vec<u8> = (0..1000).map(|i| (i % 251) as u8).collect();
        assert!(pattern == spelled[..]);
        assert!(m("text = \"\"").unwrap() == *b"".as_slice());
    }

    #[test]
    fn each_mistake_is_named() {
        let cases = [
            (
                "description = \"d\"\nhost = \"10.0.0.1\"",
                "host",
                "not a loopback",
            ),
            ("description = \"d\"\nport = 70000", "port", "out of range"),
            (
                "description = \"d\"\n[message]\ntext = \"a\"\nhex = \"00\"",
                "message",
                "one of",
            ),
            (
                "description = \"d\"\n[message]\nhex = \"0g\"",
                "message",
                "'0g'",
            ),
            (
                "description = \"d\"\n[message]\ngenerate = \"noise\"",
                "message",
                "unknown generator",
            ),
            (
                "description = \"d\"\n[message]\ngenerate = \"pattern\"",
                "message",
                "needs `size`",
            ),
            (
                "description = \"d\"\n[expect]\noutcome = \"lost\"",
                "expect.outcome",
                "\"refused\"",
            ),
            (
                "description = \"d\"\n[policy]\n\"SYN.windwo\" = \"ignored\"",
                "policy.\"SYN.windwo\"",
                "unknown field 'windwo'",
            ),
            (
                "description = \"d\"\n[policy]\nwindow = \"exact\"",
                "policy.\"window\"",
                "only set a field to \"ignored\"",
            ),
            ("descripton = \"d\"", "line 1", "unknown field"),
        ];
        for (text, entry, problem) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.entry, entry, "{e}");
            assert!(e.problem.contains(problem), "{e}");
            assert!(e.to_string().starts_with("tests/scenarios/s.toml: "), "{e}");
        }
    }

    #[test]
    fn overrides_name_a_segment_or_every_segment() {
        let s = parse(
            "description = \"d\"\n[policy]\n\"SYN/ACK.window\" = \"ignored\"\nmss = \"ignored\"",
        )
        .unwrap();
        assert!(s.ignored.iter().any(|i| i.covers("SYN/ACK", Field::Window)));
        assert!(!s.ignored.iter().any(|i| i.covers("SYN", Field::Window)));
        assert!(s.ignored.iter().any(|i| i.covers("ACK", Field::Mss)));
    }

    #[test]
    fn refused_scenarios_have_no_server() {
        let s = parse("description = \"d\"\n[expect]\noutcome = \"refused\"").unwrap();
        assert!(!s.has_server());
    }

    #[test]
    fn call_fields_go_with_a_program_and_wire_fields_with_a_segment() {
        let ok = parse("description = \"d\"\n[policy]\n\"server.listen.backlog\" = \"ignored\"")
            .unwrap();
        assert!(ok.ignored[0].covers("server", Field::ListenBacklog));
        for bad in ["SYN.listen.backlog", "server.window", "client.nosuch"] {
            let text = format!("description = \"d\"\n[policy]\n\"{bad}\" = \"ignored\"");
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(&format!("policy.\"{bad}\"")), "{e}");
        }
        // A segment the outcome does not have.
        let e = parse("description = \"d\"\n[expect]\noutcome = \"refused\"\n[policy]\n\"SYN/ACK.window\" = \"ignored\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no segment SYN/ACK"), "{e}");
    }
}
