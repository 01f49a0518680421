//! Implementations declared as data (`tests/implementations.toml`).
//!
//! Adding a program to the matrix is one entry: its commands as argument
//! templates and the line that says its server is ready. Everything is
//! checked when the file is loaded, so a typo is one clear error naming the
//! file, the entry and the problem, never a confusing failed run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::suite::declaration;

/// The server column of a scenario where no server runs (refused); no
/// implementation may take this name.
pub use super::pairing::NO_SERVER;

/// Placeholders a command template may use.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("root", "the workspace root"),
    (
        "bin",
        "the directory holding the harness binary (and cargo's server and client)",
    ),
    ("manifest_dir", "the directory of the manifest file"),
    (
        "host",
        "the address to listen on or connect to: 127.0.0.1 or ::1",
    ),
    (
        "host_bracketed",
        "the address as in a URL: 127.0.0.1 or [::1]",
    ),
    ("ip_version", "4 or 6"),
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
    roles: Vec<ManifestRole>,
    server: Option<Vec<String>>,
    client: Option<Vec<String>>,
    ready: Option<String>,
    #[serde(default)]
    ready_stream: Pipe,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    stdout: ServerStdout,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    scenarios: Option<Vec<String>>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    known_differences: BTreeMap<String, String>,
    #[serde(default)]
    command_line: Option<RawCommandLine>,
    #[serde(default = "yes")]
    conditions: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommandLine {
    server: Option<Vec<String>>,
    client: Option<Vec<String>>,
    server_prog: Option<String>,
    client_prog: Option<String>,
}

/// One of a child's two output pipes: where an implementation prints its
/// ready line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pipe {
    #[default]
    Stdout,
    Stderr,
}

/// A part an implementation plays, as the manifest names it: serde
/// refuses any other word, with the line and the words it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum ManifestRole {
    Server,
    Client,
}

/// What a server's stdout holds, and so what the harness can check in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerStdout {
    /// The reference transcript: a FROM/MESSAGE block per recv chunk.
    Transcript,
    /// Exactly the bytes received, as `nc -l` or `socat … STDOUT` print them.
    Received,
    /// Anything; only the wire is checked.
    #[default]
    Unchecked,
}

/// One declared program.
#[derive(Debug, Clone)]
pub struct Implementation {
    pub name: String,
    pub language: String,
    pub server: Option<Vec<String>>,
    pub client: Option<Vec<String>>,
    pub ready: Option<Regex>,
    pub ready_stream: Pipe,
    /// A file template the client reads its message from on stdin, for
    /// programs like `nc` that take no file argument.
    pub stdin: Option<String>,
    /// What the server's stdout holds, so the application-level checks know
    /// how to read what it received.
    pub stdout: ServerStdout,
    /// Optional capabilities a scenario may require, e.g. "ipv6".
    pub features: BTreeSet<String>,
    /// Globs of the scenarios it takes part in; `None` is all of them.
    pub scenarios: Option<Vec<glob::Pattern>>,
    /// Whether it takes part in scenarios with a `[network]` table
    /// (default yes); a third-party peer kept as a reference point for
    /// the perfect loopback says no, and its cells there are UNSUPPORTED.
    pub conditions: bool,
    /// Programs that must be on PATH; if one is missing the cells say
    /// "unavailable" rather than "failed".
    pub requires: Vec<String>,
    /// Differences from the reference that are known and accepted, by
    /// field (`server.setsockopt`, `SYN.window`), each with its reason:
    /// written beside the entry in the baseline and shown in the reports.
    pub known_differences: BTreeMap<String, String>,
    /// The program as run with the reference's command line (the
    /// command-line cases append their own arguments), per role; only
    /// implementations that declare it take part in `harness cli`.
    pub command_line: CommandLine,
}

/// An implementation's programs without arguments, for `harness cli`.
#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    pub server: Option<Vec<String>>,
    pub client: Option<Vec<String>>,
    /// The name each program calls itself in its messages (`server:
    /// error: …`), written `PROG` before the comparison; by default the
    /// last word of its command without directories (`server.py`).
    pub server_prog: Option<String>,
    pub client_prog: Option<String>,
}

/// The whole manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    /// The implementation whose server × client pairing is the reference.
    pub reference: String,
    pub implementations: Vec<Implementation>,
}

pub use crate::suite::declaration::DeclarationError as ManifestError;

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = declaration::read(path, "--manifest PATH")?;
        Manifest::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let fail = |entry: &str, problem: String| ManifestError::new(path, entry, problem);
        let raw: RawManifest = declaration::parse_toml(path, text)?;
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
            if raw_impl.name == NO_SERVER {
                return Err(fail(
                    &entry,
                    format!("the name '{NO_SERVER}' is reserved for scenarios without a server; rename it"),
                ));
            }
            if !seen.insert(raw_impl.name.clone()) {
                return Err(fail(
                    &entry,
                    "duplicate name; each implementation needs its own".into(),
                ));
            }
            let has_role = |r: &str| {
                raw_impl.roles.iter().any(|x| match x {
                    ManifestRole::Server => r == "server",
                    ManifestRole::Client => r == "client",
                })
            };
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
                            check_placeholders(arg)
                                .map_err(|p| fail(&entry, format!("the {role} command: {p}")))?;
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
            let ready_stream = raw_impl.ready_stream;
            if let Some(stdin) = &raw_impl.stdin {
                if !has_role("client") {
                    return Err(fail(
                        &entry,
                        "`stdin` feeds the client, but 'client' is not in roles".into(),
                    ));
                }
                check_placeholders(stdin).map_err(|p| fail(&entry, format!("`stdin`: {p}")))?;
            }
            let stdout = raw_impl.stdout;
            let scenarios = match raw_impl.scenarios {
                None => None,
                Some(globs) => Some(
                    globs
                        .iter()
                        .map(|g| {
                            glob::Pattern::new(g).map_err(|e| {
                                fail(&entry, format!("scenario glob '{g}' is invalid: {e}"))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            if let Some(command_line) = &raw_impl.command_line {
                for (role, argv) in [
                    ("server", &command_line.server),
                    ("client", &command_line.client),
                ] {
                    let Some(argv) = argv else { continue };
                    let at = format!("{entry}.command_line.{role}");
                    if argv.is_empty() {
                        return Err(fail(
                            &at,
                            "an empty command; give the program, e.g. [\"{bin}/client\"]"
                                .to_string(),
                        ));
                    }
                    for arg in argv {
                        check_placeholders(arg).map_err(|p| fail(&at, p))?;
                    }
                }
            }
            for (key, reason) in &raw_impl.known_differences {
                let entry = format!("{entry}.known_differences.\"{key}\"");
                let checked = match (key.strip_prefix("cli."), parse_call_pattern(key)) {
                    (Some(case), _) => parse_cli_key(case).map(|_| ()),
                    (None, Some(parsed)) => parsed.map(|_| ()),
                    (None, None) => crate::policy::parse_field_key(key).map(|_| ()),
                };
                if let Err(problem) = checked {
                    return Err(fail(&entry, problem));
                }
                if reason.trim().is_empty() {
                    return Err(fail(
                        &entry,
                        "give the reason the difference is accepted".to_string(),
                    ));
                }
            }
            implementations.push(Implementation {
                name: raw_impl.name,
                language: raw_impl.language,
                server: raw_impl.server,
                client: raw_impl.client,
                ready,
                ready_stream,
                stdin: raw_impl.stdin,
                stdout,
                features: raw_impl.features.into_iter().collect(),
                scenarios,
                conditions: raw_impl.conditions,
                requires: raw_impl.requires,
                known_differences: raw_impl.known_differences,
                command_line: raw_impl
                    .command_line
                    .map(|c| CommandLine {
                        server: c.server,
                        client: c.client,
                        server_prog: c.server_prog,
                        client_prog: c.client_prog,
                    })
                    .unwrap_or_default(),
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

    /// Why `field` (`server.setsockopt`, `SYN.window`) differs in a cell of
    /// `server` × `client`, when one of them declares it: a call field is
    /// the program's own, a wire field either's. With the declaring name.
    pub fn known_reason(
        &self,
        server: Option<&str>,
        client: &str,
        field: &str,
    ) -> Option<(&str, &str)> {
        let declared = |name: Option<&str>| {
            let implementation = self.get(name?)?;
            let reason = implementation.known_differences.get(field)?;
            Some((implementation.name.as_str(), reason.as_str()))
        };
        if field.starts_with("server.") {
            declared(server)
        } else if field.starts_with("client.") {
            declared(Some(client))
        } else {
            declared(server).or_else(|| declared(Some(client)))
        }
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

/// A command-line declaration's key after `cli.`: the role and a glob of
/// the cases it covers (`client.help`, `server.ready-line-*`).
fn parse_cli_key(key: &str) -> Result<(&str, glob::Pattern), String> {
    let bad = || {
        format!(
            "'cli.{key}' names no command-line case: write cli.client.CASE or cli.server.CASE (CASE may be a glob, e.g. cli.client.help*)"
        )
    };
    let (role, case) = key.split_once('.').ok_or_else(bad)?;
    if !matches!(role, "client" | "server") || case.is_empty() {
        return Err(bad());
    }
    let pattern = glob::Pattern::new(case).map_err(|e| format!("'cli.{key}': {e}"))?;
    Ok((role, pattern))
}

/// A declaration that covers single socket calls: `FIELD[PATTERN]`, a
/// call field of one side (`client.calls`, `server.setsockopt`) and a glob
/// of the calls it covers, as the reports write them
/// (`socket(AF_INET6*`). `None` when `key` has no pattern.
#[allow(clippy::type_complexity)]
fn parse_call_pattern(
    key: &str,
) -> Option<Result<(String, crate::policy::Field, glob::Pattern), String>> {
    let (field_key, pattern) = key.strip_suffix(']')?.split_once('[')?;
    Some((|| {
        let (segment, field) = crate::policy::parse_field_key(field_key)?;
        let side = segment
            .filter(|_| field.is_call())
            .ok_or_else(|| {
                format!("'{key}': a pattern covers socket calls: write server.FIELD[PATTERN] or client.FIELD[PATTERN], e.g. client.calls[socket(AF_INET6*]")
            })?;
        if pattern.contains(',') {
            return Err(format!(
                "'{key}': the pattern may not hold a comma (the baseline separates fields with them); use * for it"
            ));
        }
        let glob = glob::Pattern::new(pattern).map_err(|e| format!("'{key}': {e}"))?;
        Ok((side, field, glob))
    })())
}

impl Implementation {
    /// The pattern of a declaration of this implementation that covers a
    /// call of `side`'s `field`: the call as the reports write it
    /// (`socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP)`), or with its socket
    /// (`socket 1: close(connection)`, so `socket 1: *` covers every call
    /// on a probe socket and none on the connection).
    pub fn call_pattern(
        &self,
        side: &str,
        field: crate::policy::Field,
        (socket, call): (Option<&str>, &str),
    ) -> Option<String> {
        self.known_differences.keys().find_map(|key| {
            let (s, f, glob) = parse_call_pattern(key)?.ok()?;
            let matches = glob.matches(call)
                || socket.is_some_and(|socket| glob.matches(&format!("{socket}: {call}")));
            let pattern = &key[key.find('[')? + 1..key.len() - 1];
            (s == side && f == field && matches).then(|| pattern.to_string())
        })
    }

    /// Why this implementation answers the command-line case `case` of
    /// `role` ("client", "server") otherwise than the reference, when its
    /// manifest entry declares it (`"cli.client.help" = "…"`).
    pub fn known_cli(&self, role: &str, case: &str) -> Option<&str> {
        self.known_differences.iter().find_map(|(key, reason)| {
            let (r, pattern) = parse_cli_key(key.strip_prefix("cli.")?).ok()?;
            (r == role && pattern.matches(case)).then_some(reason.as_str())
        })
    }

    /// The programs it needs that are not installed; the cells it is in are
    /// then "unavailable", not failed.
    pub fn missing_programs(&self) -> Vec<&str> {
        self.requires
            .iter()
            .filter(|p| !on_path(p))
            .map(String::as_str)
            .collect()
    }

    /// The program its server (`server` true) or client command runs, when
    /// that program is missing: a path that is no executable file, or a
    /// name not on PATH. With the remedy, for the message of an
    /// "unavailable" cell.
    pub fn missing_command(&self, server: bool, at: &Locations<'_>) -> Option<String> {
        let template = if server { &self.server } else { &self.client };
        let program = template.as_ref()?.first()?;
        let subs = Substitutions {
            root: at.root,
            bin: at.bin,
            manifest_dir: at.manifest_dir,
            host: "127.0.0.1",
            port: 0,
            message_file: Path::new(""),
        };
        let path = expand_one(program, &subs);
        let found = if path.contains('/') {
            crate::program::is_executable(Path::new(&path))
        } else {
            on_path(&path)
        };
        if found {
            return None;
        }
        let remedy = if program.starts_with("{bin}") {
            format!(
                "build it with `cargo build --release` in the workspace, install it beside the harness with `cargo install --path crates/{}`, or pass --bin-dir DIR",
                Path::new(&path)
                    .file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned())
            )
        } else {
            "install it, or fix the command in the manifest".to_string()
        };
        Some(format!(
            "{} needs {path}, which is not there; {remedy}",
            self.name
        ))
    }

    /// Why it cannot take part in a scenario needing `features`, if it cannot.
    pub fn unsupported_reason(
        &self,
        scenario: &str,
        features: &[String],
        conditioned: bool,
    ) -> Option<String> {
        if conditioned && !self.conditions {
            return Some(format!(
                "{} takes no part in scenarios with network conditions (conditions = false)",
                self.name
            ));
        }
        if let Some(globs) = &self.scenarios {
            if !globs.iter().any(|g| g.matches(scenario)) {
                return Some(format!("{} does not take part in '{scenario}'", self.name));
            }
        }
        let lacking: Vec<&str> = features
            .iter()
            .filter(|f| !self.features.contains(*f))
            .map(String::as_str)
            .collect();
        (!lacking.is_empty())
            .then(|| format!("{} does not declare {}", self.name, lacking.join(", ")))
    }
}

fn known_placeholders() -> String {
    PLACEHOLDERS
        .iter()
        .map(|(p, _)| format!("{{{p}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One piece of a command template: text as written, or a placeholder.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(std::borrow::Cow<'a, str>),
    Placeholder(&'static str),
}

/// Reads a template: `{name}` is a placeholder, `{{` and `}}` are a
/// literal brace (`awk 'BEGIN{{print 1}}'`). The one reading both the
/// check and the expansion use, so they never disagree.
fn pieces(arg: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = arg.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                chars.next();
                text.push('}');
            }
            '}' => {
                return Err(format!(
                    "a '}}' at character {} closes no placeholder; write }}}} for a literal brace",
                    at + 1
                ))
            }
            '{' => {
                let rest = &arg[at + 1..];
                let Some(end) = rest
                    .find(['}', '{'])
                    .filter(|e| rest[*e..].starts_with('}'))
                else {
                    return Err(format!(
                        "the '{{' at character {} is never closed; write {{{{ for a literal brace",
                        at + 1
                    ));
                };
                let name = &rest[..end];
                let Some((known, _)) = PLACEHOLDERS.iter().find(|(p, _)| *p == name) else {
                    return Err(format!(
                        "unknown placeholder {{{name}}}; known: {} (write {{{{ for a literal brace)",
                        known_placeholders()
                    ));
                };
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text).into()));
                }
                out.push(Piece::Placeholder(known));
                for _ in 0..name.chars().count() + 1 {
                    chars.next();
                }
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text.into()));
    }
    Ok(out)
}

/// Whether `arg` is a template that reads: its problem otherwise.
fn check_placeholders(arg: &str) -> Result<(), String> {
    pieces(arg).map(|_| ())
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

/// Where command templates point, to check before a run that the
/// programs they name exist.
#[derive(Debug, Clone, Copy)]
pub struct Locations<'a> {
    pub root: &'a Path,
    pub bin: &'a Path,
    pub manifest_dir: &'a Path,
}

/// Fills in a command template.
pub fn expand(template: &[String], subs: &Substitutions<'_>) -> Vec<String> {
    template.iter().map(|arg| expand_one(arg, subs)).collect()
}

/// Fills in one template string, such as a `stdin` path. Templates are
/// checked when the manifest is read; one that does not read is left as
/// written.
pub fn expand_one(arg: &str, subs: &Substitutions<'_>) -> String {
    let Ok(pieces) = pieces(arg) else {
        return arg.to_string();
    };
    let v6 = subs.host.contains(':');
    pieces
        .into_iter()
        .map(|piece| match piece {
            Piece::Text(text) => text.into_owned(),
            Piece::Placeholder(name) => match name {
                "root" => subs.root.display().to_string(),
                "bin" => subs.bin.display().to_string(),
                "manifest_dir" => subs.manifest_dir.display().to_string(),
                "host_bracketed" if v6 => format!("[{}]", subs.host),
                "host_bracketed" | "host" => subs.host.to_string(),
                "ip_version" => (if v6 { "6" } else { "4" }).to_string(),
                "port" => subs.port.to_string(),
                "message_file" => subs.message_file.display().to_string(),
                other => format!("{{{other}}}"),
            },
        })
        .collect()
}

/// Whether `program` can be run: the lookup the spawner makes.
pub fn on_path(program: &str) -> bool {
    crate::program::find(std::ffi::OsStr::new(program), None).is_some()
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
stdout = "transcript"
"#;

    #[test]
    fn good_manifest_loads() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.implementations.len(), 1);
        assert_eq!(m.get("py").unwrap().stdout, ServerStdout::Transcript);
    }

    /// Command-line declarations name a role and a glob of cases; a wrong
    /// role is refused with the form to write, a right one is found by
    /// case.
    #[test]
    fn command_line_declarations_name_a_role_and_cases() {
        let with =
            |key: &str| format!("{GOOD}[implementation.known_differences]\n\"{key}\" = \"why\"\n");
        let e = parse(&with("cli.cleint.help")).unwrap_err();
        assert!(
            e.problem
                .contains("write cli.client.CASE or cli.server.CASE"),
            "{e}"
        );
        let m = parse(&with("cli.server.ready-line-*")).unwrap();
        let py = &m.implementations[0];
        assert_eq!(
            py.known_cli("server", "ready-line-stdout-full"),
            Some("why")
        );
        assert_eq!(py.known_cli("client", "ready-line-stdout-full"), None);
        assert_eq!(py.known_cli("server", "help"), None);
    }

    /// A declaration may cover single calls by a pattern; a pattern on a
    /// wire field, or one with a comma, is refused with the form to write.
    #[test]
    fn call_declarations_may_name_the_calls_they_cover() {
        let with =
            |key: &str| format!("{GOOD}[implementation.known_differences]\n\"{key}\" = \"why\"\n");
        let m = parse(&with("client.calls[socket(AF_INET6*]")).unwrap();
        let py = &m.implementations[0];
        let calls = crate::policy::Field::Calls;
        let socket6 = "socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP)";
        assert_eq!(
            py.call_pattern("client", calls, (Some("socket 1"), socket6)),
            Some("socket(AF_INET6*".to_string())
        );
        assert_eq!(
            py.call_pattern("client", calls, (Some("socket 2"), "close(connection)")),
            None
        );
        assert_eq!(py.call_pattern("server", calls, (None, socket6)), None);
        let m = parse(&with("client.calls[socket 1: *]")).unwrap();
        let probe = &m.implementations[0];
        assert!(probe
            .call_pattern("client", calls, (Some("socket 1"), "close(connection)"))
            .is_some());
        assert!(probe
            .call_pattern("client", calls, (Some("socket 2"), "close(connection)"))
            .is_none());
        let e = parse(&with("SYN.window[6*]")).unwrap_err();
        assert!(e.problem.contains("a pattern covers socket calls"), "{e}");
        let e = parse(&with("client.calls[socket(AF_INET6, *]")).unwrap_err();
        assert!(e.problem.contains("may not hold a comma"), "{e}");
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
    fn the_reserved_name_is_refused() {
        let e = parse(
            &GOOD
                .replace("reference = \"py\"", "reference = \"none\"")
                .replace("name = \"py\"", "name = \"none\""),
        )
        .unwrap_err();
        assert!(e.problem.contains("reserved"), "{e}");
    }

    #[test]
    fn unknown_role_is_named() {
        let e = parse(&GOOD.replace(
            "roles = [\"server\", \"client\"]",
            "roles = [\"server\", \"clinet\"]",
        ))
        .unwrap_err();
        // Typed: serde names the word, the words it takes, and the line.
        assert!(e.entry.starts_with("line "), "{e}");
        assert!(
            e.problem
                .contains("unknown variant `clinet`, expected `server` or `client`"),
            "{e}"
        );
    }

    #[test]
    fn command_without_its_role_is_named() {
        let e = parse(&GOOD.replace("roles = [\"server\", \"client\"]", "roles = [\"server\"]"))
            .unwrap_err();
        assert!(
            e.problem
                .contains("has a `client` command but 'client' is not in roles"),
            "{e}"
        );
    }

    #[test]
    fn bad_ready_regex_is_named() {
        let e = parse(&GOOD.replace("'^I am listening on port \\d+'", "'(unclosed'")).unwrap_err();
        assert!(e.problem.contains("`ready` is not a valid regex"), "{e}");
    }

    #[test]
    fn unknown_stdout_kind_is_named() {
        let e = parse(&GOOD.replace("stdout = \"transcript\"", "stdout = \"raw\"")).unwrap_err();
        assert!(e.entry.starts_with("line "), "{e}");
        assert!(
            e.problem.contains("unknown variant `raw`")
                && e.problem.contains("`transcript`, `received`, `unchecked`"),
            "{e}"
        );
        let e = parse(&GOOD.replace(
            "stdout = \"transcript\"",
            "stdout = \"transcript\"\nready_stream = \"stdrr\"",
        ))
        .unwrap_err();
        assert!(
            e.problem
                .contains("unknown variant `stdrr`, expected `stdout` or `stderr`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_placeholder_in_stdin_is_named() {
        let e = parse(&GOOD.replace(
            "stdout = \"transcript\"",
            "stdout = \"transcript\"\nstdin = \"{mesage_file}\"",
        ))
        .unwrap_err();
        assert!(
            e.problem
                .contains("`stdin`: unknown placeholder {mesage_file}"),
            "{e}"
        );
    }

    /// An unclosed brace is named as such (not as an unknown placeholder
    /// that then appears among the known ones), and `{{ }}` write a brace.
    #[test]
    fn braces_unclosed_stray_and_literal() {
        let e = check_placeholders("--port={port").unwrap_err();
        assert!(
            e.contains("the '{' at character 8 is never closed; write {{ for a literal brace"),
            "{e}"
        );
        assert!(!e.contains("unknown placeholder"), "{e}");
        let e = check_placeholders("{port {host}").unwrap_err();
        assert!(e.contains("character 1 is never closed"), "{e}");
        let e = check_placeholders("a}b").unwrap_err();
        assert!(
            e.contains("a '}' at character 2 closes no placeholder"),
            "{e}"
        );
        let awk = "BEGIN{{print {port}}}";
        assert!(check_placeholders(awk).is_ok());
        let subs = Substitutions {
            root: Path::new("/r"),
            bin: Path::new("/b"),
            manifest_dir: Path::new("/m"),
            host: "::1",
            port: 1712,
            message_file: Path::new("/msg"),
        };
        assert_eq!(expand_one(awk, &subs), "BEGIN{print 1712}");
        assert_eq!(
            expand_one("{host_bracketed}:{port} {ip_version} {{host}}", &subs),
            "[::1]:1712 6 {host}"
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = parse(&GOOD.replace("transcript", "transcript\"\ntranscrpt = \"x")).unwrap_err();
        assert!(
            e.entry.starts_with("line ") && e.problem.contains("transcrpt"),
            "{e}"
        );
    }

    #[test]
    fn support_follows_features_and_scenario_globs() {
        let m = parse(&GOOD.replace(
            "stdout = \"transcript\"",
            "stdout = \"transcript\"\nfeatures = [\"ipv6\"]\nscenarios = [\"h*\"]",
        ))
        .unwrap();
        let py = m.get("py").unwrap();
        assert!(py
            .unsupported_reason("hello", &["ipv6".into()], false)
            .is_none());
        assert!(py
            .unsupported_reason("large", &[], false)
            .unwrap()
            .contains("does not take part"));
        let plain = parse(GOOD).unwrap();
        assert!(plain
            .get("py")
            .unwrap()
            .unsupported_reason("ipv6", &["ipv6".into()], false)
            .unwrap()
            .contains("does not declare ipv6"));
    }

    #[test]
    fn host_placeholders_follow_the_address_family() {
        let subs = |host| Substitutions {
            root: Path::new("/r"),
            bin: Path::new("/b"),
            manifest_dir: Path::new("/m"),
            host,
            port: 7,
            message_file: Path::new("/msg"),
        };
        let t = "TCP{ip_version}:{host_bracketed}:{port}";
        assert_eq!(expand_one(t, &subs("127.0.0.1")), "TCP4:127.0.0.1:7");
        assert_eq!(expand_one(t, &subs("::1")), "TCP6:[::1]:7");
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
