//! The harness end to end, with a real libpcap capture of real loopback
//! traffic: the default matrix passes, tshark agrees with the dissection,
//! and every deliberately deviant client is caught with the field named.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::browser::{assert_report_layout, chromium, chromium_run, measure, Frame};
use crate::util::{
    cross_check_with_tshark, deviant_client, deviant_server, harness_json, manifest_with,
    require_capture, require_program, small_run,
};

/// `cargo test -p harness` runs the whole suite: every scenario against
/// every available implementation, compared with the checked-in baseline.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
#[cfg_attr(missing_tshark, ignore = "needs tshark: make deps installs it")]
#[cfg_attr(
    missing_nc,
    ignore = "needs nc (netcat-openbsd): make deps installs it"
)]
#[cfg_attr(missing_socat, ignore = "needs socat: make deps installs it")]
fn whole_suite_matches_the_baseline_and_tshark_agrees() {
    require_capture();
    for program in ["tshark", "nc", "socat"] {
        require_program(program);
    }
    let artifacts = tempfile::tempdir().expect("temp dir");
    let (code, summary) = harness_json(&["run"], artifacts.path());
    let cells = summary["cells"].as_array().expect("cells");
    let changes = &summary["baseline"]["changes"];
    assert_eq!(
        changes.as_array().map(Vec::len),
        Some(0),
        "the suite no longer matches tests/baseline.toml: {changes:#}"
    );
    assert_eq!(code, 0, "counts: {}", summary["counts"]);
    let scenarios: std::collections::BTreeSet<&str> = cells
        .iter()
        .map(|c| c["scenario"].as_str().unwrap())
        .collect();
    for expected in [
        "hello", "hola", "empty", "utf8", "binary", "large", "refused", "ipv6",
    ] {
        assert!(
            scenarios.contains(expected),
            "scenario {expected} did not run"
        );
    }
    for cell in cells.iter().filter(|c| c["verdict"] == "PASS") {
        for check in cell["checks"].as_array().unwrap() {
            assert_eq!(check["passed"], true, "{check}");
        }
        assert!(
            cell["stats"]["received"].as_u64() > Some(0),
            "{}",
            show(cell)
        );
        assert_eq!(cell["stats"]["dropped"], 0, "{}", show(cell));
    }
    assert!(artifacts.path().join("summary.json").is_file());

    // Every implementation of the manifest took part: a peer that is not
    // installed would make its cells UNAVAILABLE and this test hollow.
    assert_eq!(summary["counts"]["unavailable"], 0, "{}", summary["counts"]);
    // Every capture of the scenarios that cover IPv4, IPv6, RST/ACK and
    // hundreds of segments, every pairing; the others are the same shapes
    // again.
    let interesting: Vec<&serde_json::Value> = cells
        .iter()
        .filter(|c| {
            matches!(
                c["scenario"].as_str(),
                Some("hello" | "refused" | "ipv6" | "large")
            ) && c["verdict"] != "UNSUPPORTED"
        })
        .collect();
    for cell in &interesting {
        let file = cell["capture_file"]
            .as_str()
            .unwrap_or_else(|| panic!("no capture: {}", show(cell)));
        cross_check_with_tshark(&artifacts.path().join(file));
    }
    // 4 servers × 4 clients in hello and large, 4 clients in refused, and
    // socat and nc (IPv6-capable) in ipv6: nothing may go missing silently.
    assert_eq!(interesting.len(), 16 + 16 + 4 + 4, "cells cross-checked");
}

/// A manifest with the default implementations plus the deviant clients,
/// each added as data only.
fn deviant_manifest(dir: &Path) -> std::path::PathBuf {
    let mut extra = String::new();
    for mode in [
        "rcvbuf",
        "rst",
        "two-writes",
        "wrong-bytes",
        "twice",
        "exit3",
        "retry",
        "ignore-refusal",
    ] {
        extra.push_str(&deviant_client(&format!("deviant-{mode}"), mode));
    }
    manifest_with(dir, &extra)
}

fn cell<'a>(summary: &'a Value, client: &str) -> &'a Value {
    summary["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == client)
        .unwrap_or_else(|| panic!("no cell for {client}"))
}

fn show(c: &Value) -> String {
    serde_json::to_string_pretty(c).unwrap()
}

fn differs_in(cell: &Value, segment: &str, field: &str) -> bool {
    cell["differences"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["segment"] == segment && d["field"] == field)
}

fn failed_check<'a>(cell: &'a Value, name: &str) -> Option<&'a str> {
    cell["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name && c["passed"] == false)
        .and_then(|c| c["detail"].as_str())
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn negative_controls_are_caught_and_named() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = deviant_manifest(dir.path());
    let artifacts = dir.path().join("artifacts");
    let (code, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--server",
            "python",
            "--client",
            "deviant-*",
            "--scenario",
            "hello",
            "--no-baseline",
        ],
        &artifacts,
    );
    assert_eq!(code, 1, "deviations must make the run fail");

    let c = cell(&summary, "deviant-rcvbuf");
    assert_eq!(c["verdict"], "DIFFERS", "{}", show(c));
    assert!(
        differs_in(c, "SYN", "window") && differs_in(c, "SYN", "wscale"),
        "{}",
        show(c)
    );

    let c = cell(&summary, "deviant-rst");
    assert_eq!(c["verdict"], "FAIL", "{}", show(c));
    assert!(
        failed_check(c, "orderly close").is_some_and(|d| d.contains("RST client→server")),
        "{}",
        show(c)
    );
    assert!(differs_in(c, "conversation", "reset"), "{}", show(c));

    let c = cell(&summary, "deviant-two-writes");
    assert_eq!(c["verdict"], "DIFFERS", "{}", show(c));
    assert!(
        differs_in(c, "conversation", "client→server writes"),
        "{}",
        show(c)
    );

    let c = cell(&summary, "deviant-wrong-bytes");
    assert_eq!(c["verdict"], "FAIL", "{}", show(c));
    assert!(
        failed_check(c, "delivered").is_some_and(|d| d.contains("first difference at byte 12")),
        "{}",
        show(c)
    );

    let c = cell(&summary, "deviant-twice");
    assert_eq!(c["verdict"], "FAIL", "{}", show(c));
    assert!(
        failed_check(c, "single attempt").is_some_and(|d| d.contains("connection attempts")),
        "{}",
        show(c)
    );

    let c = cell(&summary, "deviant-exit3");
    assert_eq!(c["verdict"], "FAIL", "{}", show(c));
    assert!(
        failed_check(c, "exits").is_some_and(|d| d.contains("exit 3")),
        "{}",
        show(c)
    );

    // The reference pairing ran too, and passed: it is what they differ from.
    let reference = summary["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == "python")
        .expect("reference cell");
    assert_eq!(reference["verdict"], "PASS");
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn refused_scenario_catches_a_retry_and_a_false_success() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = deviant_manifest(dir.path());
    let (code, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--client",
            "deviant-retry",
            "--client",
            "deviant-ignore-refusal",
            "--scenario",
            "refused",
            "--no-baseline",
        ],
        &dir.path().join("artifacts"),
    );
    assert_eq!(code, 1);
    let c = cell(&summary, "deviant-retry");
    assert_eq!(c["verdict"], "FAIL", "{}", show(c));
    assert!(
        failed_check(c, "single attempt").is_some_and(|d| d.contains("2 connection attempts")),
        "{}",
        show(c)
    );
    let c = cell(&summary, "deviant-ignore-refusal");
    assert_eq!(c["verdict"], "FAIL", "{}", show(c));
    assert!(
        failed_check(c, "exits").is_some_and(|d| d.contains("exited 0 although")),
        "{}",
        show(c)
    );
    let reference = cell(&summary, "python");
    assert_eq!(reference["verdict"], "PASS", "{}", show(reference));
    assert_eq!(reference["server"], "none");
}

/// A baseline that expects something else: the run fails and names the cell,
/// whichever way the verdict moved.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn a_change_from_the_baseline_fails_the_run_and_names_the_cell() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let baseline = dir.path().join("baseline.toml");
    std::fs::write(
        &baseline,
        "[hello]\n\"python × python\" = \"PASS\"\n\"python × rust\" = \"DIFFERS: SYN.window\"\n",
    )
    .unwrap();
    let args = |b: &str| {
        vec![
            "run".to_string(),
            "--scenario".into(),
            "hello".into(),
            "--server".into(),
            "python".into(),
            "--client".into(),
            "python".into(),
            "--client".into(),
            "rust".into(),
            "--baseline".into(),
            b.to_string(),
        ]
    };
    let argv = args(baseline.to_str().unwrap());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (code, summary) = harness_json(&argv, &dir.path().join("a1"));
    assert_eq!(code, 1, "{:#}", summary["baseline"]);
    let changes = summary["baseline"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["client"], "rust");
    assert_eq!(changes[0]["expected"], "DIFFERS: SYN.window");
    assert_eq!(changes[0]["actual"], "PASS");
    // CI sees the same in JUnit XML: exactly that testcase fails.
    let junit = std::fs::read_to_string(dir.path().join("a1/junit.xml")).unwrap();
    assert_eq!(junit.matches("<failure ").count(), 1, "{junit}");
    assert!(
        junit.contains(r#"name="python server × rust client" "#)
            && junit.contains(
                r#"<failure type="baseline" message="expected DIFFERS: SYN.window, got PASS"/>"#
            ),
        "{junit}"
    );

    // Regenerating the baseline makes the same run conform.
    let mut update = argv.clone();
    update.push("--update-baseline");
    let (code, _) = harness_json(&update, &dir.path().join("a2"));
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&baseline).unwrap();
    assert!(text.contains("\"python × rust\" = \"PASS\""), "{text}");
    let (code, summary) = harness_json(&argv, &dir.path().join("a3"));
    assert_eq!(code, 0, "{:#}", summary["baseline"]);
}

/// Not installed and not declared are not failures: the cells say so, and
/// the run still conforms.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn unavailable_and_unsupported_cells_are_graded_not_failed() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = manifest_with(
        dir.path(),
        r#"
[[implementation]]
name = "absent"
language = "C"
roles = ["client"]
client = ["no-such-program-here", "{host}", "{port}"]
requires = ["no-such-program-here"]
"#,
    );
    let (code, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--server",
            "python",
            "--client",
            "absent",
            "--scenario",
            "hello",
            "--scenario",
            "ipv6",
            "--no-baseline",
        ],
        &dir.path().join("artifacts"),
    );
    let find = |scenario: &str, server: &str, client: &str| {
        summary["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["scenario"] == scenario && c["server"] == server && c["client"] == client)
            .unwrap_or_else(|| panic!("no {scenario} {server}×{client}"))
            .clone()
    };
    let c = find("hello", "python", "absent");
    assert_eq!(c["verdict"], "UNAVAILABLE", "{}", show(&c));
    let junit = std::fs::read_to_string(dir.path().join("artifacts/junit.xml")).unwrap();
    assert!(
        junit.contains("<skipped message=\"UNAVAILABLE: absent needs no-such-program-here"),
        "{junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");
    assert!(c["reason"]
        .as_str()
        .unwrap()
        .contains("no-such-program-here"));
    let c = find("ipv6", "python", "absent");
    assert!(
        c["verdict"] == "UNAVAILABLE" || c["verdict"] == "UNSUPPORTED",
        "{}",
        show(&c)
    );
    // The ipv6 reference (socat) runs even though --server python was asked.
    let c = find("ipv6", "socat", "socat");
    assert_eq!(c["verdict"], "PASS", "{}", show(&c));
    assert_eq!(code, 0, "counts: {}", summary["counts"]);
}

/// A scenario's policy override takes a field out of the comparison, and
/// only that field.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn a_scenario_policy_override_ignores_exactly_its_fields() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = deviant_manifest(dir.path());
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    std::fs::write(
        scenarios.join("lenient.toml"),
        "description = \"the SYN's window is not compared\"\n[policy]\n\"SYN.window\" = \"ignored\"\n",
    )
    .unwrap();
    let (_, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--scenarios",
            scenarios.to_str().unwrap(),
            "--server",
            "python",
            "--client",
            "deviant-rcvbuf",
            "--no-baseline",
        ],
        &dir.path().join("artifacts"),
    );
    let c = cell(&summary, "deviant-rcvbuf");
    assert_eq!(c["verdict"], "DIFFERS", "{}", show(c));
    assert!(!differs_in(c, "SYN", "window"), "{}", show(c));
    assert!(differs_in(c, "SYN", "wscale"), "{}", show(c));
}

/// Each isolation mode runs the same cells to the same verdicts, says which
/// mode it used, and (with namespaces) gives every cell the tutorial's port.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
#[cfg_attr(missing_root, ignore = "needs root for --isolation netns")]
fn every_isolation_mode_gives_the_same_verdicts() {
    require_capture();
    for mode in ["netns", "userns", "ports"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (code, summary) = harness_json(
            &[
                "run",
                "--isolation",
                mode,
                "--scenario",
                "hello",
                "--scenario",
                "refused",
            ],
            dir.path(),
        );
        assert_eq!(summary["isolation"], mode);
        assert_eq!(code, 0, "{mode}: {:#}", summary["baseline"]);
        let ports: Vec<u64> = summary["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["port"].as_u64())
            .collect();
        assert_eq!(ports.len(), 20, "{mode}");
        if mode == "ports" {
            // Free ports from the kernel, not the tutorial's fixed one.
            assert!(ports.iter().any(|p| *p != 1712), "{mode}: {ports:?}");
        } else {
            assert!(ports.iter().all(|p| *p == 1712), "{mode}: {ports:?}");
        }
    }
}

/// The annotated pcapng of a cell and the merged one of a scenario carry
/// their comments and interface names, as tshark reads them.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
#[cfg_attr(missing_tshark, ignore = "needs tshark: make deps installs it")]
fn annotated_captures_read_back_in_tshark() {
    require_capture();
    require_program("tshark");
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, summary) = small_run(dir.path());
    assert_eq!(code, 0, "{}", summary["counts"]);
    let tshark = |file: &Path| -> Vec<(String, String)> {
        crate::util::tshark_fields(file, "frame", &["frame.interface_name", "frame.comment"])
            .into_iter()
            .map(|f| {
                let mut f = f.into_iter();
                (f.next().unwrap_or_default(), f.next().unwrap_or_default())
            })
            .collect()
    };
    let cell = dir.path().join("hello/python__rust/capture.pcapng");
    let rows = tshark(&cell);
    let comments: Vec<&str> = rows.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(
        &comments[..3],
        [
            "handshake 1/3: SYN",
            "handshake 2/3: SYN/ACK",
            "handshake 3/3: ACK"
        ]
    );
    assert!(
        comments.contains(&"data: 13 bytes client→server"),
        "{comments:?}"
    );
    assert!(
        comments.contains(&"teardown: FIN from client"),
        "{comments:?}"
    );
    assert!(rows.iter().all(|(i, _)| i == "lo"), "{rows:?}");

    let merged = dir
        .path()
        .join(summary["merged"]["hello"].as_str().expect("merged file"));
    let interfaces: std::collections::BTreeSet<String> =
        tshark(&merged).into_iter().map(|(i, _)| i).collect();
    let expected: std::collections::BTreeSet<String> =
        ["python__python", "python__rust"].map(String::from).into();
    assert_eq!(interfaces, expected);

    let refused = tshark(&dir.path().join("refused/none__rust/capture.pcapng"));
    assert_eq!(
        refused.last().map(|(_, c)| c.as_str()),
        Some("refused: RST/ACK (nobody listens on this port)")
    );
}

/// The HTML report in a real browser: Debian's chromium, headless, on a
/// run with a PASS, a DIFFERS and a FAIL. It loads the file (no network:
/// everything is inline); the first cell that needs a look is open on the
/// first screen; the side-by-side view of the DIFFERS cell marks exactly
/// the fields summary.json lists; no SVG text leaves its viewBox; a deep
/// link opens its cell; and a screenshot is taken.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
#[cfg_attr(missing_chromium, ignore = "needs chromium: make deps installs it")]
fn html_report_renders_in_headless_chromium() {
    require_capture();
    let chromium = chromium();
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = manifest_with(
        dir.path(),
        &(deviant_client("rcvbuf", "rcvbuf") + &deviant_client("wrongbytes", "wrong-bytes")),
    );
    let artifacts = dir.path().join("artifacts");
    let (_, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--scenario",
            "hello",
            "--server",
            "python",
            "--client",
            "rust",
            "--client",
            "rcvbuf",
            "--client",
            "wrongbytes",
            "--no-baseline",
        ],
        &artifacts,
    );
    let verdict = |client: &str| crate::util::cell(&summary, "hello", client).clone();
    assert_eq!(verdict("rust")["verdict"], "PASS");
    assert_eq!(verdict("rcvbuf")["verdict"], "DIFFERS");
    assert_eq!(verdict("wrongbytes")["verdict"], "FAIL");
    let report = artifacts.join("report.html");
    let html = std::fs::read_to_string(&report).expect("report.html written");
    for external in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(
            !html.contains(external),
            "the report must not fetch anything: {external}"
        );
    }
    let browser = |fragment: &str, extra: &[&str]| {
        chromium_run(chromium, &report, fragment, extra, dir.path())
    };
    let dom = String::from_utf8_lossy(&browser("", &["--dump-dom"]).stdout).into_owned();
    assert_report_layout(chromium, &report, dir.path());
    layout_checks_catch_a_broken_report(chromium, &html, dir.path());

    // The DIFFERS cell's side-by-side view: its own ladder's marks are the
    // differences summary.json lists, field for field.
    let start = dom
        .find("id=\"hello/python__rcvbuf\"")
        .expect("the DIFFERS cell");
    let cell = &dom[start..];
    let cell = &cell[..cell.find("</details>").unwrap()];
    let this = &cell[cell.find("class=\"this\"").expect("a side-by-side view")..];
    let mut marked: Vec<String> = this
        .match_indices("data-field=\"")
        .map(|(i, m)| {
            let rest = &this[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect();
    // (The ladder draws the wire; the socket calls' differences, here the
    // client's setsockopt(SO_RCVBUF), are in the timeline beside it.)
    let mut listed: Vec<String> = verdict("rcvbuf")["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["segment"] != "server" && d["segment"] != "client")
        .map(|d| d["field"].as_str().unwrap().to_string())
        .collect();
    marked.sort();
    listed.sort();
    assert!(!listed.is_empty());
    assert_eq!(marked, listed, "the marks in the side-by-side view");

    // A deep link opens a collapsed PASS cell.
    let linked = measure(
        chromium,
        &[Frame {
            report: &report,
            fragment: "#hello/python__rust",
            width: 1280,
            height: 900,
        }],
        dir.path(),
    );
    assert!(
        linked[0]
            .open_cells
            .iter()
            .any(|c| c == "hello/python__rust"),
        "{:?}",
        linked[0].open_cells
    );

    let shot = dir.path().join("report.png");
    browser("", &[&format!("--screenshot={}", shot.display())]);
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "screenshot of {size} bytes: blank?");
    if let Ok(keep) = std::env::var("HARNESS_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

/// Each layout check fails on a report broken the way it guards against:
/// wide content with no scrolling box, the first look closed, a label
/// moved out of its ladder.
fn layout_checks_catch_a_broken_report(chromium: &str, html: &str, scratch: &Path) {
    // The first open cell's tag, to close it.
    let (first, tag_len) = html
        .match_indices("<details class=\"cell\"")
        .map(|(at, _)| (at, html[at..].find('>').unwrap()))
        .find(|&(at, len)| html[at..at + len].ends_with(" open"))
        .expect("the first cell that needs a look is open");
    let broken = [
        (
            "wide",
            html.replacen(
                "</head>",
                "<style>table, pre, svg { min-width: 2000px; } * { overflow: visible !important; }</style></head>",
                1,
            ),
        ),
        (
            "closed",
            format!(
                "{}{}",
                &html[..first + tag_len - " open".len()],
                &html[first + tag_len..]
            ),
        ),
        (
            "clipped",
            html.replacen("<text ", "<text x=\"-400\" ", 1),
        ),
    ];
    let paths: Vec<_> = broken
        .iter()
        .map(|(name, text)| {
            let path = scratch.join(format!("broken-{name}.html"));
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    let frames: Vec<Frame> = paths
        .iter()
        .map(|report| Frame {
            report,
            fragment: "",
            width: 400,
            height: 900,
        })
        .collect();
    let measured = measure(chromium, &frames, scratch);
    assert!(
        measured[0].page_overflow_x > 0.0 && !measured[0].outside.is_empty(),
        "wide content not caught: {:?}",
        measured[0]
    );
    let first_look = measured[1].first_look.as_ref().expect("a first look");
    assert!(!first_look.on_first_screen(), "{first_look:?}");
    assert!(
        measured[2].svg_overflow > 0.0,
        "a clipped label not caught: {:?}",
        measured[2]
    );
}

/// `--repeat` catches a client whose behaviour changes from run to run, and
/// names the runs that disagree.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn repeat_reports_a_flaky_cell_with_its_runs() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("flip.state");
    let manifest = manifest_with(
        dir.path(),
        &format!(
            r#"
[[implementation]]
name = "flaky"
language = "Python"
roles = ["client"]
client = ["python3", "{{root}}/harness/tests/fixtures/deviant_client.py", "--mode", "flip", "--state", "{}", "--host", "{{host}}", "--port", "{{port}}", "--message-file", "{{message_file}}"]
"#,
            state.display()
        ),
    );
    let (code, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--scenario",
            "hello",
            "--server",
            "python",
            "--client",
            "flaky",
            "--no-baseline",
            "--repeat",
            "3",
        ],
        &dir.path().join("artifacts"),
    );
    assert_eq!(code, 1);
    let flaky = summary["repeats"]["flaky"]
        .as_array()
        .expect("repeats.flaky");
    assert_eq!(flaky.len(), 1, "{flaky:?}");
    assert_eq!(flaky[0]["client"], "flaky");
    let verdicts = &flaky[0]["verdicts"];
    assert_eq!(verdicts["PASS"], serde_json::json!([1, 3]), "{verdicts}");
    assert!(
        verdicts
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("DIFFERS: SYN.window")),
        "{verdicts}"
    );
    // The disagreeing repeat's artifacts are kept, the agreeing one's not.
    assert!(dir.path().join("artifacts/repeats/002").is_dir());
    assert!(!dir.path().join("artifacts/repeats/003").exists());
}

/// Headers-only captures: the wire gives the lengths, the server's output
/// the bytes, and a wrong byte is still caught.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn headers_only_snaplen_still_checks_delivery() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = deviant_manifest(dir.path());
    let (code, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--snaplen",
            "96",
            "--scenario",
            "large",
            "--server",
            "python",
            "--client",
            "rust",
            "--client",
            "deviant-wrong-bytes",
            "--no-baseline",
        ],
        &dir.path().join("artifacts"),
    );
    assert_eq!(code, 1);
    let c = cell(&summary, "rust");
    assert_eq!(c["verdict"], "PASS", "{}", show(c));
    let delivered = c["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "delivered")
        .unwrap();
    assert!(
        delivered["detail"].as_str().unwrap().contains("by length"),
        "{delivered}"
    );
    let c = cell(&summary, "deviant-wrong-bytes");
    assert_eq!(c["verdict"], "FAIL", "{}", show(c));
    assert!(
        failed_check(c, "delivered").is_some_and(|d| d.contains("the server printed")),
        "{}",
        show(c)
    );
}

/// Two hosts joined by a veth pair with MTU 1500: the same checks and
/// verdicts as on loopback, with an Ethernet MSS on the wire.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn veth_topology_holds_the_same_checks() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, summary) = harness_json(
        &[
            "run",
            "--topology",
            "veth",
            "--scenario",
            "hello",
            "--scenario",
            "refused",
            "--scenario",
            "ipv6",
            "--client",
            "python",
            "--client",
            "rust",
        ],
        dir.path(),
    );
    assert_eq!(summary["topology"], "veth");
    assert_eq!(code, 0, "{:#}", summary["baseline"]);
    let mss = |scenario: &str, server: &str, client: &str| {
        let c = summary["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["scenario"] == scenario && c["server"] == server && c["client"] == client)
            .unwrap_or_else(|| panic!("no {scenario} {server}×{client}"));
        let fields = c["signature"]["handshake"][0]["fields"]
            .as_array()
            .unwrap()
            .clone();
        fields
            .iter()
            .find(|f| f[0] == "mss")
            .map(|f| f[1].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(mss("hello", "python", "rust"), "1460");
    assert_eq!(mss("ipv6", "socat", "socat"), "1440");
    assert_eq!(mss("refused", "none", "python"), "1460");
}

/// Three shards run as separate processes and merged give the verdicts,
/// checks and differences of one unsharded run, the same exit code, one
/// merged pcapng per scenario, and a report that passes the browser's
/// layout checks.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
#[cfg_attr(missing_chromium, ignore = "needs chromium: make deps installs it")]
fn three_shards_merged_are_one_run() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = manifest_with(dir.path(), &deviant_client("rcvbuf", "rcvbuf"));
    let manifest = manifest.to_str().unwrap().to_string();
    let args = |shard: Option<&str>| {
        let mut a = vec![
            "run",
            "--manifest",
            &manifest,
            "--scenario",
            "hello",
            "--scenario",
            "refused",
            "--server",
            "python",
            "--server",
            "rust",
            "--client",
            "python",
            "--client",
            "rust",
            "--client",
            "rcvbuf",
            "--no-baseline",
        ];
        if let Some(s) = shard {
            a.extend(["--shard", s]);
        }
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    fn as_strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let (full_code, full) = harness_json(&as_strs(&args(None)), &dir.path().join("full"));
    let mut shard_dirs = Vec::new();
    for k in 1..=3 {
        let out = dir.path().join(format!("shard{k}"));
        let (_, summary) = harness_json(&as_strs(&args(Some(&format!("{k}/3")))), &out);
        assert_eq!(summary["shard"]["index"], k);
        shard_dirs.push(out.to_str().unwrap().to_string());
    }
    let merged_dir = dir.path().join("merged");
    let mut merge_args = vec!["merge", "--no-baseline", "--manifest", &manifest];
    merge_args.extend(shard_dirs.iter().map(String::as_str));
    let (merged_code, merged) = harness_json(&merge_args, &merged_dir);
    let cells = |summary: &Value| {
        let mut out: Vec<(String, Value, Value, Value)> = summary["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let checks: Vec<(Value, Value)> = c["checks"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|k| (k["name"].clone(), k["passed"].clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    format!("{}/{}__{}", c["scenario"], c["server"], c["client"]),
                    c["verdict"].clone(),
                    serde_json::json!(checks),
                    c["differences"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| {
                            serde_json::json!([
                                d["segment"],
                                d["field"],
                                d["reference"],
                                d["actual"]
                            ])
                        })
                        .collect(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    assert_eq!(cells(&merged), cells(&full));
    assert!(
        cells(&full).iter().any(|c| c.1 == "DIFFERS"),
        "a DIFFERS cell to compare"
    );
    assert_eq!(merged_code, full_code);
    assert_eq!(merged["counts"], full["counts"]);
    for scenario in ["hello", "refused"] {
        let file = merged["merged"][scenario]
            .as_str()
            .expect("a merged pcapng");
        assert!(merged_dir.join(file).is_file(), "{file}");
    }
    let report = merged_dir.join("report.html");
    assert_report_layout(chromium(), &report, dir.path());

    // The same shard twice, a missing shard, and no shard at all are
    // refused in one line.
    for bad in [
        vec![
            shard_dirs[0].as_str(),
            shard_dirs[0].as_str(),
            shard_dirs[2].as_str(),
        ],
        vec![shard_dirs[0].as_str(), shard_dirs[1].as_str()],
        vec![],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .current_dir(crate::util::workspace_root())
            .arg("merge")
            .args(&bad)
            .arg("--artifacts")
            .arg(dir.path().join("bad"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{bad:?}: {stderr}");
    }
}

/// The differences of `cell` in one program's socket calls (`side` is
/// "server" or "client"), as `field: actual`.
fn call_differences(cell: &Value, side: &str) -> Vec<String> {
    cell["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["segment"] == side)
        .map(|d| {
            format!(
                "{}: {}",
                d["field"].as_str().unwrap(),
                d["actual"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
#[cfg_attr(missing_strace, ignore = "needs strace: make deps installs it")]
fn socket_call_deviations_are_caught_with_the_call_and_field_named() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut extra = String::new();
    for mode in ["reuseaddr", "backlog128", "recv4096"] {
        extra.push_str(&deviant_server(&format!("deviant-{mode}"), mode));
    }
    extra.push_str(&deviant_client("deviant-nodelay", "nodelay"));
    let manifest = manifest_with(dir.path(), &extra);
    let artifacts = dir.path().join("artifacts");
    let (code, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--server",
            "python",
            "--server",
            "deviant-*",
            "--client",
            "python",
            "--client",
            "deviant-nodelay",
            "--scenario",
            "hello",
            "--no-baseline",
        ],
        &artifacts,
    );
    assert_eq!(code, 1, "deviations must make the run fail");
    let cells = summary["cells"].as_array().unwrap();
    let find = |server: &str, client: &str| {
        cells
            .iter()
            .find(|c| c["server"] == server && c["client"] == client)
            .unwrap_or_else(|| panic!("no cell {server} × {client}"))
    };
    // The reference pairing ran, recorded its calls, and passed.
    let reference = find("python", "python");
    assert_eq!(reference["verdict"], "PASS", "{}", show(reference));
    let lesson: Vec<&str> = reference["calls"]["server"]["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call"].as_str().unwrap())
        .collect();
    assert_eq!(
        lesson,
        ["socket", "bind", "listen", "accept", "recv", "close", "close"]
    );

    for (server, expected) in [
        (
            "deviant-reuseaddr",
            "setsockopt: call 2 (socket 1): setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)",
        ),
        (
            "deviant-backlog128",
            "listen.backlog: call 3 (socket 1): listen(128)",
        ),
        (
            "deviant-recv4096",
            "recv.size: call 5 (socket 2): recv(4096) ×2",
        ),
    ] {
        let c = find(server, "python");
        assert_eq!(c["verdict"], "DIFFERS", "{}", show(c));
        assert_eq!(call_differences(c, "server"), [expected], "{}", show(c));
        // Nothing else differs: the wire cannot tell these apart.
        assert_eq!(c["differences"].as_array().unwrap().len(), 1, "{}", show(c));
    }
    let c = find("python", "deviant-nodelay");
    assert_eq!(c["verdict"], "DIFFERS", "{}", show(c));
    assert_eq!(
        call_differences(c, "client"),
        ["setsockopt: call 2 (socket 1): setsockopt(SOL_TCP, TCP_NODELAY, 1)"],
        "{}",
        show(c)
    );
    assert_eq!(c["differences"].as_array().unwrap().len(), 1, "{}", show(c));
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn without_strace_a_scenario_that_records_calls_is_unavailable_never_passed() {
    // A PATH with nothing on it: the Rust programs are found by path, but
    // strace is not, so hello's cells cannot be judged at the call level.
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let _ = crate::util::bin_dir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(crate::util::workspace_root())
        .env("PATH", &empty)
        .args([
            "run",
            "--scenario",
            "hello",
            "--server",
            "rust",
            "--client",
            "rust",
        ])
        .args(["--no-baseline", "--json", "--artifacts"])
        .arg(dir.path().join("artifacts"))
        .output()
        .expect("harness runs");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let cell = summary["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["server"] == "rust" && c["client"] == "rust")
        .expect("rust × rust");
    assert_eq!(cell["verdict"], "UNAVAILABLE", "{}", show(cell));
    assert!(
        cell["reason"]
            .as_str()
            .unwrap()
            .contains("records socket calls with strace, but strace and setpriv are not installed (run make deps)"),
        "{}",
        show(cell)
    );
    assert_eq!(summary["counts"]["pass"], 0, "{}", show(&summary));
}

/// On a real trace and a real capture (hello, the reference pairing, with
/// strace): accept and connect are drawn after the handshake's ACK, the
/// recv of the data after the data, and the empty recv after the FIN that
/// caused it, whatever the two clocks said.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
#[cfg_attr(missing_strace, ignore = "needs strace: make deps installs it")]
fn socket_calls_are_drawn_after_the_segments_that_let_them_return() {
    require_capture();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(crate::util::workspace_root())
        .args([
            "run",
            "--scenario",
            "hello",
            "--server",
            "python",
            "--client",
            "python",
            "--no-baseline",
            "--wide",
            "--artifacts",
        ])
        .arg(dir.path().join("artifacts"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find("server calls").expect("the timeline is shown");
    let lines: Vec<&str> = text[start..]
        .lines()
        .take_while(|l| !l.is_empty())
        .collect();
    let at = |want: &str| {
        lines
            .iter()
            .position(|l| l.contains(want))
            .unwrap_or_else(|| panic!("{want:?} not in:\n{}", lines.join("\n")))
    };
    let handshake_ack = at("ACK →");
    let fin = at("FIN, ACK →");
    assert!(
        at("accept(): after the handshake") > handshake_ack,
        "{}",
        lines.join("\n")
    );
    assert!(at("connect(") > handshake_ack, "{}", lines.join("\n"));
    assert!(at("recv(1024) = 0: the FIN") > fin, "{}", lines.join("\n"));
    assert!(at("recv(1024)") > at("Len=13 →"), "{}", lines.join("\n"));
}

/// A declaration may cover single socket calls by a pattern on the call
/// and its socket, not the whole field: a client that probes IPv6 first,
/// as a JVM does, declares `client.calls[socket 1: *]`, and its two extra
/// calls are known, named by the pattern in the baseline. The same client
/// with a real missing close() still differs in `client.calls` itself, so
/// its baseline entry is not the probing one's: the missing close is
/// caught, not hidden by the declaration.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
#[cfg_attr(missing_strace, ignore = "needs strace: make deps installs it")]
fn a_call_declaration_covers_its_calls_and_not_a_missing_close() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let declared = "\n[implementation.known_differences]\n\"client.calls[socket 1: *]\" = \"the JVM opens an AF_INET6 socket at start-up to probe for IPv6, and closes it\"\n";
    let extra = deviant_client("probing", "probe-v6")
        + declared
        + &deviant_client("probing-no-close", "probe-v6-no-close")
        + declared;
    let manifest = manifest_with(dir.path(), &extra);
    let (_, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--server",
            "python",
            "--client",
            "probing*",
            "--scenario",
            "hello",
            "--no-baseline",
        ],
        &dir.path().join("artifacts"),
    );
    let cell = |client: &str| crate::util::cell(&summary, "hello", client).clone();
    let keys = |c: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = c["differences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| match d["declared"].as_str() {
                Some(p) => format!(
                    "{}.{}[{p}]",
                    d["segment"].as_str().unwrap(),
                    d["field"].as_str().unwrap()
                ),
                None => format!(
                    "{}.{}",
                    d["segment"].as_str().unwrap(),
                    d["field"].as_str().unwrap()
                ),
            })
            .collect();
        keys.dedup();
        keys
    };
    let probing = cell("probing");
    assert_eq!(probing["verdict"], "DIFFERS", "{}", show(&probing));
    assert_eq!(
        keys(&probing),
        ["client.calls[socket 1: *]"],
        "{}",
        show(&probing)
    );
    assert_eq!(probing["known"][0]["field"], "client.calls[socket 1: *]");

    let missing = cell("probing-no-close");
    assert_eq!(missing["verdict"], "DIFFERS", "{}", show(&missing));
    let missing_keys = keys(&missing);
    assert!(
        missing_keys.contains(&"client.calls".to_string()),
        "the missing close is named apart: {missing_keys:?}"
    );
    assert_ne!(missing_keys, keys(&probing));
}
