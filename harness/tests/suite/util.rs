//! What every integration test needs: built programs, commands for the four
//! implementations, and a way to run one pairing at the application level.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use harness::exec::process::{Child, Output, Pipe};
use tutorial::transcript::parse_ready_line;

/// Generous: a debug build under a loaded 2-core CI machine is slow, and a
/// deadline here only turns a hang into a failure.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness lives one level below the workspace root")
        .to_path_buf()
}

/// The directory holding `server`, `client` and `harness`, built once.
///
/// Cargo builds only this package's binaries for `cargo test -p harness`;
/// the server and client are other packages, so build them here, into the
/// same target directory and profile as the harness binary.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let harness = PathBuf::from(env!("CARGO_BIN_EXE_harness"));
        let dir = harness
            .parent()
            .expect("binary has a directory")
            .to_path_buf();
        let profile_is_release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace_root())
            .args(["build", "--quiet", "-p", "server", "-p", "client", "--bins"]);
        if profile_is_release {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building server and client failed");
        dir
    })
}

/// One of the four programs under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    Rust,
}

pub const LANGS: [Lang; 2] = [Lang::Python, Lang::Rust];

impl Lang {
    fn program(self, role: &str) -> Vec<String> {
        match self {
            Lang::Python => vec![
                "python3".into(),
                workspace_root()
                    .join("python")
                    .join(format!("{role}.py"))
                    .display()
                    .to_string(),
            ],
            Lang::Rust => vec![bin_dir().join(role).display().to_string()],
        }
    }

    pub fn server_argv(self, args: &[&str]) -> Vec<String> {
        let mut argv = self.program("server");
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }

    pub fn client_argv(self, args: &[&str]) -> Vec<String> {
        let mut argv = self.program("client");
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }
}

fn never() -> bool {
    false
}

/// A server started on an ephemeral port and known to be listening.
pub fn start_server(lang: Lang) -> (Child, u16) {
    let mut server = Child::spawn(
        &format!("{lang:?} server"),
        &lang.server_argv(&["--host", "127.0.0.1", "--port", "0"]),
        None,
        None,
    )
    .expect("server starts");
    let port = server
        .wait_for_line(WAIT, &never, Pipe::Stdout, parse_ready_line)
        .unwrap_or_else(|e| panic!("{e}; stderr: {}", stderr_of(&mut server)));
    (server, port)
}

fn stderr_of(child: &mut Child) -> String {
    String::from_utf8_lossy(&child.kill().stderr).into_owned()
}

/// Runs `argv` to completion within [`WAIT`].
pub fn run_to_end(name: &str, argv: &[String]) -> Output {
    let mut child = Child::spawn(name, argv, None, None).expect("program starts");
    child
        .wait(WAIT, &never)
        .unwrap_or_else(|e| panic!("{e}; stderr: {}", stderr_of(&mut child)))
}

/// Both sides' output after one pairing exchanged `payload`.
pub struct Exchange {
    pub server: Output,
    pub client: Output,
}

/// Runs one server × client pairing with `payload` sent from a file.
pub fn exchange(server_lang: Lang, client_lang: Lang, payload: &[u8]) -> Exchange {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), payload).expect("write payload");
    let (mut server, port) = start_server(server_lang);
    let port = port.to_string();
    let path = file.path().display().to_string();
    let client = run_to_end(
        &format!("{client_lang:?} client"),
        &client_lang.client_argv(&[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--message-file",
            &path,
        ]),
    );
    let server = server
        .wait(WAIT, &never)
        .unwrap_or_else(|e| panic!("{e}; client: {client:?}"));
    Exchange { server, client }
}

/// Replaces the port numbers that differ from run to run, so two servers'
/// transcripts can be compared byte for byte.
pub fn normalize_ports(transcript: &[u8]) -> String {
    let text = String::from_utf8_lossy(transcript);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("FROM: ('") {
            let host_end = rest.find("', ").map(|i| i + 3).unwrap_or(0);
            let digits = rest[host_end..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .count();
            out.push_str("FROM: ('");
            out.push_str(&rest[..host_end]);
            out.push_str("PORT");
            out.push_str(&rest[host_end + digits..]);
        } else if parse_ready_line(line).is_some() {
            out.push_str("I am listening on port PORT\n");
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Asserts equality and, on failure, shows both sides in full.
#[macro_export]
macro_rules! assert_same {
    ($left_name:expr, $left:expr, $right_name:expr, $right:expr) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            panic!(
                "\n{} and {} differ\n--- {}\n{}\n--- {}\n{}\n",
                $left_name, $right_name, $left_name, left, $right_name, right
            );
        }
    }};
}

/// Whether this is a CI run (`CI=true`, or `HARNESS_REQUIRE_CAPTURE=1` as
/// `.ci/run` sets): nothing may be skipped or rewritten there.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("HARNESS_REQUIRE_CAPTURE").is_ok_and(|v| v == "1")
}

/// Checks that the harness can capture here, as it would: a live capture
/// on the host, or else a user namespace of its own (where the harness
/// binary captures without CAP_NET_RAW). Fails the test with the reason
/// otherwise. Tests that call it carry
/// `#[cfg_attr(missing_capture, ignore = ...)]`, so on a machine that can
/// do neither they are reported ignored (build.rs probes the same two
/// ways), and this runs only where capture should work: there a failure is
/// a real one, never a silent pass.
pub fn require_capture() {
    let config = harness::capture::CaptureConfig::default();
    let Err(e) = harness::capture::LiveCapture::start(&config, "tcp port 9") else {
        return;
    };
    let userns = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "true"])
        .output();
    match userns {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "this test needs a live capture: {e}; and no user namespace either: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(u) => panic!("this test needs a live capture: {e}; and unshare failed: {u}"),
    }
}

/// A program on PATH, or the test fails naming it. For tests ignored by
/// build.rs where the program is missing (`cfg(missing_NAME)`).
pub fn require_program(program: &str) {
    assert!(
        harness::suite::manifest::on_path(program),
        "this test needs {program} on PATH; make deps installs it"
    );
}

/// Runs the harness binary with `--json --artifacts DIR`; returns its exit
/// code and parsed summary.
pub fn harness_json(args: &[&str], artifacts: &Path) -> (i32, serde_json::Value) {
    harness_json_with_env(args, artifacts, &[])
}

/// [`harness_json`] with variables added to the harness's environment.
pub fn harness_json_with_env(
    args: &[&str],
    artifacts: &Path,
    env: &[(&str, &str)],
) -> (i32, serde_json::Value) {
    let _ = bin_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(workspace_root())
        .envs(env.iter().copied())
        .args(args)
        .arg("--json")
        .arg("--artifacts")
        .arg(artifacts)
        .output()
        .expect("harness runs");
    let code = out.status.code().unwrap_or(-1);
    let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "harness exited {code} without a JSON summary ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_matches_summary_schema(&summary);
    (code, summary)
}

/// Every summary a test reads is held to the committed JSON Schema
/// (`docs/summary.schema.json`), checked by a validator nobody here wrote.
pub fn assert_matches_summary_schema(summary: &serde_json::Value) {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let text = std::fs::read_to_string(workspace_root().join("docs/summary.schema.json"))
            .expect("docs/summary.schema.json");
        let schema = serde_json::from_str(&text).expect("the schema is JSON");
        jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
    });
    let errors: Vec<String> = validator
        .iter_errors(summary)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "summary.json does not match docs/summary.schema.json:\n{}",
        errors.join("\n")
    );
}

/// A manifest entry for the deliberately deviant client of
/// `fixtures/deviant_client.py` in `mode`, named `name`: a negative control
/// added as data.
pub fn deviant_client(name: &str, mode: &str) -> String {
    format!(
        r#"
[[implementation]]
name = "{name}"
language = "Python"
roles = ["client"]
client = ["python3", "{{root}}/harness/tests/fixtures/deviant_client.py", "--mode", "{mode}", "--host", "{{host}}", "--port", "{{port}}", "--message-file", "{{message_file}}"]
"#
    )
}

/// A deviant server of `harness/tests/fixtures/deviant_server.py` as a
/// manifest entry: python/server.py with one socket call changed.
pub fn deviant_server(name: &str, mode: &str) -> String {
    format!(
        r#"
[[implementation]]
name = "{name}"
language = "Python"
roles = ["server"]
server = ["python3", "{{root}}/harness/tests/fixtures/deviant_server.py", "--mode", "{mode}", "--host", "{{host}}", "--port", "{{port}}"]
ready = '^I am listening on port \d+$'
stdout = "transcript"
"#
    )
}

/// The default manifest with `extra` entries appended, written to
/// `dir/implementations.toml`: how tests add implementations as data.
pub fn manifest_with(dir: &Path, extra: &str) -> std::path::PathBuf {
    let mut text = std::fs::read_to_string(workspace_root().join("tests/implementations.toml"))
        .expect("default manifest");
    text.push_str(extra);
    let path = dir.join("implementations.toml");
    std::fs::write(&path, text).expect("write manifest");
    path
}

/// `harness run` of the scenarios `hello` and `refused` for the Python
/// server and the Rust client (plus the references): a small real run.
pub fn small_run(artifacts: &Path) -> (i32, serde_json::Value) {
    harness_json(
        &[
            "run",
            "--scenario",
            "hello",
            "--scenario",
            "refused",
            "--server",
            "python",
            "--client",
            "rust",
        ],
        artifacts,
    )
}

/// tshark's reading of every frame must agree with the harness's.
pub fn cross_check_with_tshark(file: &Path) {
    let fields = [
        "frame.number",
        "tcp.flags",
        "tcp.seq",
        "tcp.ack",
        "tcp.window_size_value",
        "tcp.len",
        "tcp.options",
        "_ws.malformed",
        "tcp.stream",
        "ip.src",
        "ipv6.src",
        "tcp.srcport",
        "tcp.completeness",
        "frame.time_epoch",
    ];
    let mut cmd = Command::new("tshark");
    // Two passes, so tcp.completeness is the whole connection's on every
    // frame.
    // Payloads decoded as plain data: a random port can be one a
    // dissector claims (TC-NV once), whose "malformed" would be its own.
    // Only frames with a TCP segment: a fragment's segment is shown (by
    // both readers) in the frame that completed its packet.
    cmd.args(["-2", "-Y", "tcp", "-d", "tcp.port==1-65535,data", "-r"])
        .arg(file)
        .args([
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-o",
            "tcp.relative_sequence_numbers:TRUE",
        ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");

    // Read frame by frame, each with its own interface's link type (a
    // mergecap of several link types has several).
    let mut reader = wire::capfile::CaptureFile::open(file).expect("the harness reads it");
    let mut segments = Vec::new();
    let mut timestamps = Vec::new();
    let mut dissector = wire::dissect::Dissector::default();
    loop {
        let mut frame = wire::dissect::Frame {
            timestamp: std::time::Duration::ZERO,
            wire_len: 0,
            data: Vec::new(),
        };
        match reader.next_frame(&mut frame).expect("readable to its end") {
            wire::capfile::Next::End => break,
            wire::capfile::Next::Frame(link) => {
                let segment = dissector
                    .dissect(link, reader.frames(), &frame)
                    .expect("dissected");
                if let Some(segment) = segment {
                    timestamps.push(frame.timestamp);
                    segments.push(segment);
                }
            }
            wire::capfile::Next::Unreadable(why) => panic!("frame {}: {why}", reader.frames()),
        }
    }
    let connections = wire::conversation::build(&segments);
    let mut placed: Vec<_> = connections
        .iter()
        .enumerate()
        .flat_map(|(n, c)| c.segments.iter().map(move |p| (n, p)))
        .collect();
    placed.sort_by_key(|(_, p)| p.segment.frame);
    // Our connection of each tshark stream, and the other way round: the
    // two readers must split the frames into the same connections.
    let mut streams: std::collections::BTreeMap<String, usize> = Default::default();
    let mut ours: std::collections::BTreeMap<usize, String> = Default::default();

    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        placed.len(),
        "{}: tshark saw {} frames, the harness {}",
        file.display(),
        lines.len(),
        placed.len()
    );
    for (line, (n, p)) in lines.iter().zip(placed) {
        let cols: Vec<&str> = line.split('|').collect();
        let s = &p.segment;
        let stream = cols[8].to_string();
        assert_eq!(
            *streams.entry(stream.clone()).or_insert(n),
            n,
            "{}: tshark's stream {stream} spans two of our connections",
            file.display()
        );
        assert_eq!(
            *ours.entry(n).or_insert(stream.clone()),
            stream,
            "{}: our connection {n} spans two tshark streams",
            file.display()
        );
        // Through a tunnel, tshark lists every IP header's source,
        // outermost first: the segment's is the last.
        let source = if s.src.is_ipv6() { cols[10] } else { cols[9] };
        let source = source.rsplit(',').next().unwrap_or_default();
        assert_eq!(
            (source, cols[11]),
            (
                s.src.ip().to_string().as_str(),
                s.src.port().to_string().as_str()
            ),
            "{} frame {}: source",
            file.display(),
            s.frame
        );
        let flags = u16::from_str_radix(cols[1].trim_start_matches("0x"), 16).expect("flags hex");
        let ours = u16::from(s.flags.fin)
            | u16::from(s.flags.syn) << 1
            | u16::from(s.flags.rst) << 2
            | u16::from(s.flags.psh) << 3
            | u16::from(s.flags.ack) << 4
            | u16::from(s.flags.urg) << 5
            | u16::from(s.flags.ece) << 6
            | u16::from(s.flags.cwr) << 7;
        let options_hex: String = wire::tcp_options::emit(&s.options.to_vec())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let theirs_options = cols[6].replace(':', "");
        let what = format!("{} frame {}", file.display(), s.frame);
        assert_eq!(cols[0], s.frame.to_string(), "{what}");
        assert_eq!(flags & 0xff, ours, "{what}: flags");
        assert_eq!(cols[2], p.rel_seq.to_string(), "{what}: seq");
        assert_eq!(
            cols[3],
            if s.flags.ack {
                p.rel_ack.to_string()
            } else {
                "0".into()
            },
            "{what}: ack"
        );
        assert_eq!(cols[4], s.window.to_string(), "{what}: window");
        assert_eq!(cols[5], s.payload_len.to_string(), "{what}: len");
        assert_eq!(theirs_options, options_hex, "{what}: options");
        assert_eq!(cols[7], "", "{what}: tshark reports a malformed packet");
    }
}

/// The cells of `scenario` in a run's summary.
pub fn cells<'a>(summary: &'a serde_json::Value, scenario: &str) -> Vec<&'a serde_json::Value> {
    summary["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["scenario"] == scenario)
        .collect()
}

/// The cell of `scenario` whose client is `client` (the first, when
/// several servers ran).
pub fn cell<'a>(
    summary: &'a serde_json::Value,
    scenario: &str,
    client: &str,
) -> &'a serde_json::Value {
    cells(summary, scenario)
        .into_iter()
        .find(|c| c["client"] == client)
        .unwrap_or_else(|| panic!("no {scenario} cell for {client}"))
}

/// tshark's `fields` of the frames `filter` selects in `file`, one line
/// per frame, one string per field (tab-separated, as tshark writes them).
pub fn tshark_fields(file: &std::path::Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["-r".to_string(), file.display().to_string()];
    args.extend([
        "-Y".to_string(),
        filter.to_string(),
        "-T".into(),
        "fields".into(),
    ]);
    for f in fields {
        args.extend(["-e".to_string(), f.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tshark(&args)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// tshark's output with `args`; the test fails with tshark's words if it
/// fails.
pub fn tshark(args: &[&str]) -> String {
    let out = std::process::Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
