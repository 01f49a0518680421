//! Command-line cases as data: `tests/cli/server.toml` and
//! `tests/cli/client.toml`, one `[[case]]` table each, for the program the
//! file is named after.
//!
//! Each file is checked key by key before anything runs, so a mistake is
//! one line naming the file, the case and the key (exit 2), never a case
//! that silently tests nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::suite::declaration::{self, DeclarationError};

/// Which program a case file is for: its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Server,
    Client,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

/// Where the program's standard output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// A pipe the harness reads.
    Pipe,
    /// Descriptor 1 closed.
    Closed,
    /// `/dev/full`: every write fails with ENOSPC.
    Full,
    /// A pipe whose reader has gone: every write fails with EPIPE (or
    /// SIGPIPE).
    Broken,
}

/// When a case's signal is sent. Each is a state the kernel shows, so the
/// moment is the same every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Server: blocked writing its ready line to a pipe the harness has
    /// filled (it is not ready yet).
    BeforeReady,
    /// Server: its ready line printed, waiting in accept.
    Listening,
    /// Server: a client connected and sent a chunk, which the server
    /// printed; the connection stays open. Client: sending a 64 MiB file
    /// to a server that accepts and never reads, more than 1 MiB of it
    /// already queued.
    MidTransfer,
    /// Client: blocked reading `--message-file -` from a pipe that stays
    /// open.
    ReadingStdin,
}

impl Moment {
    const SERVER: &'static [(&'static str, Moment)] = &[
        ("before-ready", Moment::BeforeReady),
        ("listening", Moment::Listening),
        ("mid-transfer", Moment::MidTransfer),
    ];
    const CLIENT: &'static [(&'static str, Moment)] = &[
        ("reading-stdin", Moment::ReadingStdin),
        ("mid-transfer", Moment::MidTransfer),
    ];

    fn known(role: Role) -> &'static [(&'static str, Moment)] {
        match role {
            Role::Server => Moment::SERVER,
            Role::Client => Moment::CLIENT,
        }
    }
}

/// The signals a case may send, by the names `kill -l` prints.
pub const SIGNALS: &[(&str, i32)] = &[
    ("INT", libc::SIGINT),
    ("TERM", libc::SIGTERM),
    ("HUP", libc::SIGHUP),
];

/// One case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique in its file; with the implementation, the baseline's key.
    pub name: String,
    pub why: String,
    /// Arguments after the program, with `{port}`, `{stalled_port}` and
    /// `{big_file}` to be filled in, and `{byte:XX}` for a raw byte (an
    /// argument that is not UTF-8).
    pub args: Vec<String>,
    /// Bytes on standard input, then its end; `None` is /dev/null (or,
    /// for `reading-stdin`, a pipe that stays open).
    pub stdin: Option<String>,
    /// Added to the inherited environment.
    pub env: BTreeMap<String, String>,
    pub stdout: Stdout,
    /// The signal (its number and name) and when to send it.
    pub signal: Option<(i32, &'static str, Moment)>,
}

/// A case file: its role and cases.
#[derive(Debug, Clone)]
pub struct CaseFile {
    pub path: PathBuf,
    pub role: Role,
    pub cases: Vec<Case>,
}

const KEYS: &[&str] = &[
    "name", "why", "args", "stdin", "env", "stdout", "signal", "moment",
];

impl CaseFile {
    /// `server.toml` or `client.toml` in `dir`, whichever exist; at least
    /// one must.
    pub fn load_dir(dir: &Path) -> Result<Vec<CaseFile>, DeclarationError> {
        let mut files = Vec::new();
        for role in [Role::Server, Role::Client] {
            let path = dir.join(format!("{}.toml", role.name()));
            if path.exists() {
                files.push(CaseFile::load(&path, role)?);
            }
        }
        if files.is_empty() {
            return Err(DeclarationError::new(
                dir,
                "directory",
                "holds neither server.toml nor client.toml; pass --cases DIR",
            ));
        }
        Ok(files)
    }

    pub fn load(path: &Path, role: Role) -> Result<CaseFile, DeclarationError> {
        let text = declaration::read(path, "--cases DIR")?;
        CaseFile::parse(path, role, &text)
    }

    pub fn parse(path: &Path, role: Role, text: &str) -> Result<CaseFile, DeclarationError> {
        let value: toml::Table = declaration::parse_toml(path, text)?;
        for key in value.keys() {
            if key != "case" {
                return Err(DeclarationError::new(
                    path,
                    key,
                    "unknown table; a case file holds [[case]] tables only",
                ));
            }
        }
        let Some(raw_cases) = value.get("case") else {
            return Err(DeclarationError::new(
                path,
                "case",
                "no [[case]] in the file",
            ));
        };
        let Some(raw_cases) = raw_cases.as_array() else {
            return Err(DeclarationError::new(
                path,
                "case",
                "write each case as [[case]]",
            ));
        };
        let mut cases: Vec<Case> = Vec::new();
        for (index, raw) in raw_cases.iter().enumerate() {
            let case = parse_case(path, role, index, raw)?;
            if cases.iter().any(|c| c.name == case.name) {
                return Err(DeclarationError::new(
                    path,
                    format!("case '{}'", case.name),
                    "the name is used twice; each case needs its own",
                ));
            }
            cases.push(case);
        }
        Ok(CaseFile {
            path: path.to_path_buf(),
            role,
            cases,
        })
    }
}

fn parse_case(
    path: &Path,
    role: Role,
    index: usize,
    raw: &toml::Value,
) -> Result<Case, DeclarationError> {
    let Some(table) = raw.as_table() else {
        return Err(DeclarationError::new(
            path,
            format!("case {}", index + 1),
            "write each case as a [[case]] table",
        ));
    };
    // Named by its name once it has one, else by its place.
    let label = match table.get("name").and_then(|n| n.as_str()) {
        Some(name) => format!("case '{name}'"),
        None => format!("case {}", index + 1),
    };
    let fail = |key: &str, problem: String| {
        DeclarationError::new(path, format!("{label}: {key}"), problem)
    };
    for key in table.keys() {
        if key == "known_difference" {
            // A case is the suite's; a difference is one implementation's.
            return Err(fail(
                key,
                format!(
                    "a known difference belongs to the implementation that has it: move it to its known_differences in the manifest, as \"cli.{}.{}\" = \"why\"",
                    role.name(),
                    table.get("name").and_then(|n| n.as_str()).unwrap_or("CASE")
                ),
            ));
        }
        if !KEYS.contains(&key.as_str()) {
            return Err(fail(
                key,
                format!("unknown key; a case has {}", KEYS.join(", ")),
            ));
        }
    }
    let string = |key: &str| -> Result<Option<String>, DeclarationError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(fail(
                key,
                format!("must be a string, not {}", other.type_str()),
            )),
        }
    };
    let name = string("name")?.ok_or_else(|| {
        fail(
            "name",
            "missing: every case needs a name (letters, digits, '-'), its key in the baseline"
                .into(),
        )
    })?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(fail(
            "name",
            format!("'{name}' must be letters, digits, '-' or '_'"),
        ));
    }
    let why =
        string("why")?.ok_or_else(|| fail("why", "missing: say what the case shows".into()))?;
    let args = match table.get("args") {
        None => {
            return Err(fail(
                "args",
                "missing: the argument vector, a list of strings".into(),
            ))
        }
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|a| a.as_str().map(String::from))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| fail("args", "must be a list of strings".into()))?,
        Some(other) => {
            return Err(fail(
                "args",
                format!("must be a list of strings, not {}", other.type_str()),
            ))
        }
    };
    let env = match table.get("env") {
        None => BTreeMap::new(),
        Some(toml::Value::Table(vars)) => vars
            .iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect::<Option<BTreeMap<String, String>>>()
            .ok_or_else(|| fail("env", "each variable's value must be a string".into()))?,
        Some(other) => {
            return Err(fail(
                "env",
                format!("must be a table of strings, not {}", other.type_str()),
            ))
        }
    };
    let stdout = match string("stdout")?.as_deref() {
        None | Some("pipe") => Stdout::Pipe,
        Some("closed") => Stdout::Closed,
        Some("full") => Stdout::Full,
        Some("broken") => Stdout::Broken,
        Some(other) => {
            return Err(fail(
                "stdout",
                format!("'{other}' must be \"pipe\", \"closed\", \"full\" or \"broken\""),
            ))
        }
    };
    let moments = Moment::known(role);
    let signal = match (string("signal")?, string("moment")?) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(fail(
                "moment",
                format!(
                    "missing: a signal needs its moment, one of {}",
                    names(moments)
                ),
            ))
        }
        (None, Some(_)) => return Err(fail("signal", "missing: a moment needs a signal".into())),
        (Some(signal), Some(moment)) => {
            let Some(&(signal_name, number)) = SIGNALS.iter().find(|(n, _)| *n == signal) else {
                return Err(fail(
                    "signal",
                    format!(
                        "unknown signal '{signal}'; known: {}",
                        SIGNALS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            let Some(&(_, moment)) = moments.iter().find(|(n, _)| *n == moment) else {
                return Err(fail(
                    "moment",
                    format!(
                        "unknown moment '{moment}' for the {}; known: {}",
                        role.name(),
                        names(moments)
                    ),
                ));
            };
            Some((number, signal_name, moment))
        }
    };
    let stdin = string("stdin")?;
    if stdin.is_some() && signal.is_some_and(|(_, _, m)| m == Moment::ReadingStdin) {
        return Err(fail(
            "stdin",
            "reading-stdin keeps standard input open and empty; leave stdin out".into(),
        ));
    }
    if stdout != Stdout::Pipe && signal.is_some() {
        return Err(fail(
            "stdout",
            "a signal's moment is read from the program's stdout; leave stdout out".into(),
        ));
    }
    Ok(Case {
        name,
        why,
        args,
        stdin,
        env,
        stdout,
        signal,
    })
}

fn names(moments: &[(&str, Moment)]) -> String {
    moments
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(role: Role, text: &str) -> Result<CaseFile, String> {
        CaseFile::parse(Path::new("tests/cli/x.toml"), role, text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_case_with_every_key() {
        let file = parse(
            Role::Server,
            "[[case]]\nname = \"a\"\nwhy = \"w\"\nargs = [\"--port\", \"{port}\"]\nenv = { LANG = \"C\" }\nsignal = \"INT\"\nmoment = \"listening\"\n",
        )
        .unwrap();
        let case = &file.cases[0];
        assert_eq!(case.signal, Some((libc::SIGINT, "INT", Moment::Listening)));
        assert_eq!(case.env["LANG"], "C");
    }

    #[test]
    fn mistakes_are_one_line_naming_the_file_the_case_and_the_key() {
        let bad = [
            (
                Role::Client,
                "[[case]]\nname = \"a\"\nwhy = \"w\"\nargs = [\"x\"]\ncolour = \"red\"\n",
                "tests/cli/x.toml: case 'a': colour: unknown key",
            ),
            (
                Role::Client,
                "[[case]]\nname = \"help\"\nwhy = \"w\"\nargs = []\nknown_difference = \"x\"\n",
                "tests/cli/x.toml: case 'help': known_difference: a known difference belongs to the implementation that has it: move it to its known_differences in the manifest, as \"cli.client.help\" = \"why\"",
            ),
            (
                Role::Client,
                "[[case]]\nname = \"a\"\nwhy = \"w\"\nargs = \"--port 1\"\n",
                "tests/cli/x.toml: case 'a': args: must be a list of strings, not string",
            ),
            (
                Role::Server,
                "[[case]]\nname = \"a\"\nwhy = \"w\"\nargs = []\nsignal = \"INT\"\nmoment = \"reading-stdin\"\n",
                "tests/cli/x.toml: case 'a': moment: unknown moment 'reading-stdin' for the server; known: before-ready, listening, mid-transfer",
            ),
            (
                Role::Client,
                "[[case]]\nname = \"a\"\nwhy = \"w\"\nargs = []\nsignal = \"KILL\"\nmoment = \"mid-transfer\"\n",
                "tests/cli/x.toml: case 'a': signal: unknown signal 'KILL'",
            ),
            (
                Role::Client,
                "[[case]]\nwhy = \"w\"\nargs = []\n",
                "tests/cli/x.toml: case 1: name: missing",
            ),
            (
                Role::Client,
                "[[case]]\nname = \"a\"\nwhy = \"w\"\nargs = []\n[[case]]\nname = \"a\"\nwhy = \"v\"\nargs = []\n",
                "case 'a': the name is used twice",
            ),
        ];
        for (role, text, expected) in bad {
            let e = parse(role, text).unwrap_err();
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
