//! Implementations declared as data (`tests/implementations.toml`).
//!
//! Adding a program to the matrix is one entry: its commands as argument
//! templates and the line that says its server is ready. Everything is
//! checked when the file is loaded, so a typo is one clear error naming the
//! file, the entry and the problem, never a confusing failed run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::Regex;

/// Placeholders a command template may use.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("root", "the workspace root"),
    (
        "bin",
        "the directory holding the harness binary (and cargo's server and client)",
    ),
    ("manifest_dir", "the directory of the manifest file"),
    ("host", "the address to listen on or connect to"),
    ("port", "the TCP port"),
    (
        "message_file",
        "a file holding the exact bytes the client must send",
    ),
];

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    reference: String,
    #[serde(rename = "implementation", default)]
    implementations: Vec<RawImplementation>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImplementation {
    name: String,
    language: String,
    roles: Vec<String>,
    server: Option<Vec<String>>,
    client: Option<Vec<String>>,
    ready: Option<String>,
    #[serde(default)]
    ready_stream: Option<String>,
    #[serde(default)]
    transcript: bool,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    requires: Vec<String>,
}

pub use crate::process::Pipe;

/// One declared program.
#[derive(Debug, Clone)]
pub struct Implementation {
    pub name: String,
    pub language: String,
    pub server: Option<Vec<String>>,
    pub client: Option<Vec<String>>,
    pub ready: Option<Regex>,
    pub ready_stream: Pipe,
    /// Whether its server prints the reference transcript format, so the
    /// application-level checks can read what it received.
    pub transcript: bool,
    pub features: BTreeSet<String>,
    /// Programs that must be on PATH; if one is missing the cells say
    /// "unavailable" rather than "failed".
    pub requires: Vec<String>,
}

/// The whole manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    /// The implementation whose server × client pairing is the reference.
    pub reference: String,
    pub implementations: Vec<Implementation>,
}

/// A manifest mistake: file, entry and problem in one line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {entry}: {problem}")]
pub struct ManifestError {
    pub file: String,
    pub entry: String,
    pub problem: String,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            file: path.display().to_string(),
            entry: "file".into(),
            problem: format!("cannot read it: {e}; pass --manifest PATH"),
        })?;
        Manifest::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let file = path.display().to_string();
        let fail = |entry: &str, problem: String| ManifestError {
            file: file.clone(),
            entry: entry.to_string(),
            problem,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            fail(
                "syntax",
                format!(
                    "{message} (byte {:?})",
                    e.span().map(|s| s.start).unwrap_or(0)
                ),
            )
        })?;
        let mut seen = BTreeSet::new();
        let mut implementations = Vec::new();
        for raw_impl in raw.implementations {
            let entry = format!("implementation '{}'", raw_impl.name);
            if raw_impl.name.is_empty()
                || !raw_impl
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(fail(&entry, "name must be non-empty letters, digits, '-' or '_' (it names artifact folders)".into()));
            }
            if !seen.insert(raw_impl.name.clone()) {
                return Err(fail(
                    &entry,
                    "duplicate name; each implementation needs its own".into(),
                ));
            }
            for role in &raw_impl.roles {
                if role != "server" && role != "client" {
                    return Err(fail(
                        &entry,
                        format!("unknown role '{role}'; roles are \"server\" and \"client\""),
                    ));
                }
            }
            let has_role = |r: &str| raw_impl.roles.iter().any(|x| x == r);
            for (role, command) in [("server", &raw_impl.server), ("client", &raw_impl.client)] {
                match (has_role(role), command) {
                    (true, None) => {
                        return Err(fail(
                            &entry,
                            format!("role '{role}' is declared but there is no `{role}` command"),
                        ))
                    }
                    (false, Some(_)) => {
                        return Err(fail(
                            &entry,
                            format!("has a `{role}` command but '{role}' is not in roles"),
                        ))
                    }
                    (true, Some(argv)) if argv.is_empty() => {
                        return Err(fail(&entry, format!("the `{role}` command is empty")))
                    }
                    (true, Some(argv)) => {
                        for arg in argv {
                            check_placeholders(arg).map_err(|p| fail(&entry, format!("unknown placeholder {{{p}}} in the {role} command; known: {}", known_placeholders())))?;
                        }
                    }
                    (false, None) => {}
                }
            }
            let ready = match (has_role("server"), &raw_impl.ready) {
                (true, None) => return Err(fail(&entry, "a server needs a `ready` pattern: a regex matching the line it prints once it listens".into())),
                (_, Some(pattern)) => Some(Regex::new(pattern).map_err(|e| fail(&entry, format!("`ready` is not a valid regex: {e}")))?),
                (false, None) => None,
            };
            let ready_stream = match raw_impl.ready_stream.as_deref() {
                None | Some("stdout") => Pipe::Stdout,
                Some("stderr") => Pipe::Stderr,
                Some(other) => {
                    return Err(fail(
                        &entry,
                        format!("ready_stream '{other}' must be \"stdout\" or \"stderr\""),
                    ))
                }
            };
            implementations.push(Implementation {
                name: raw_impl.name,
                language: raw_impl.language,
                server: raw_impl.server,
                client: raw_impl.client,
                ready,
                ready_stream,
                transcript: raw_impl.transcript,
                features: raw_impl.features.into_iter().collect(),
                requires: raw_impl.requires,
            });
        }
        let reference = implementations
            .iter()
            .find(|i| i.name == raw.reference)
            .ok_or_else(|| {
                fail(
                    "reference",
                    format!("'{}' is not an implementation in this file", raw.reference),
                )
            })?;
        if reference.server.is_none() || reference.client.is_none() {
            return Err(fail(
                "reference",
                format!("'{}' must have both a server and a client", raw.reference),
            ));
        }
        Ok(Manifest {
            path: path.to_path_buf(),
            reference: raw.reference,
            implementations,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Implementation> {
        self.implementations.iter().find(|i| i.name == name)
    }

    pub fn servers(&self) -> impl Iterator<Item = &Implementation> {
        self.implementations.iter().filter(|i| i.server.is_some())
    }

    pub fn clients(&self) -> impl Iterator<Item = &Implementation> {
        self.implementations.iter().filter(|i| i.client.is_some())
    }
}

fn known_placeholders() -> String {
    PLACEHOLDERS
        .iter()
        .map(|(p, _)| format!("{{{p}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Returns the first unknown placeholder name in `arg`.
fn check_placeholders(arg: &str) -> Result<(), String> {
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            return Err(after.to_string());
        };
        let name = &after[..end];
        if !PLACEHOLDERS.iter().any(|(p, _)| *p == name) {
            return Err(name.to_string());
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// Values for the placeholders of one command.
#[derive(Debug, Clone)]
pub struct Substitutions<'a> {
    pub root: &'a Path,
    pub bin: &'a Path,
    pub manifest_dir: &'a Path,
    pub host: &'a str,
    pub port: u16,
    pub message_file: &'a Path,
}

/// Fills in a command template.
pub fn expand(template: &[String], subs: &Substitutions<'_>) -> Vec<String> {
    let port = subs.port.to_string();
    template
        .iter()
        .map(|arg| {
            arg.replace("{root}", &subs.root.display().to_string())
                .replace("{bin}", &subs.bin.display().to_string())
                .replace("{manifest_dir}", &subs.manifest_dir.display().to_string())
                .replace("{host}", subs.host)
                .replace("{port}", &port)
                .replace("{message_file}", &subs.message_file.display().to_string())
        })
        .collect()
}

/// Whether `program` can be run: a path that exists, or a name on PATH.
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("m.toml"), text)
    }

    const GOOD: &str = r#"
reference = "py"
[[implementation]]
name = "py"
language = "Python"
roles = ["server", "client"]
server = ["python3", "{root}/python/server.py", "--port", "{port}"]
client = ["python3", "{root}/python/client.py", "--port", "{port}", "--message-file", "{message_file}"]
ready = '^I am listening on port \d+'
transcript = true
"#;

    #[test]
    fn good_manifest_loads() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.implementations.len(), 1);
        assert!(m.get("py").unwrap().transcript);
    }

    #[test]
    fn unknown_placeholder_is_named() {
        let e = parse(&GOOD.replace("{port}\", \"--message", "{prot}\", \"--message")).unwrap_err();
        assert_eq!(e.entry, "implementation 'py'");
        assert!(e.problem.contains("{prot}"), "{e}");
    }

    #[test]
    fn missing_ready_is_named() {
        let e = parse(&GOOD.replace("ready = '^I am listening on port \\d+'", "")).unwrap_err();
        assert!(e.problem.contains("ready"), "{e}");
    }

    #[test]
    fn duplicate_name_is_named() {
        let twice = format!(
            "{GOOD}{}",
            &GOOD[GOOD.find("[[implementation]]").unwrap()..]
        );
        let e = parse(&twice).unwrap_err();
        assert!(e.problem.contains("duplicate"), "{e}");
    }

    #[test]
    fn unknown_reference_is_named() {
        let e = parse(&GOOD.replace("reference = \"py\"", "reference = \"pyy\"")).unwrap_err();
        assert_eq!(e.entry, "reference");
    }

    #[test]
    fn expand_fills_every_placeholder() {
        let subs = Substitutions {
            root: Path::new("/r"),
            bin: Path::new("/b"),
            manifest_dir: Path::new("/m"),
            host: "127.0.0.1",
            port: 1712,
            message_file: Path::new("/msg"),
        };
        let argv = expand(
            &[
                "{bin}/server".into(),
                "--port={port}".into(),
                "{message_file}".into(),
            ],
            &subs,
        );
        assert_eq!(argv, ["/b/server", "--port=1712", "/msg"]);
    }
}
