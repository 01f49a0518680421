//! Network conditions (a scenario's `[network]` table): a port that differs
//! only under loss is caught, a rule that never acted fails its cell, and
//! no condition outlives its cell. Each with its negative control.

use std::path::Path;

use serde_json::Value;

use crate::util::{
    cell, cells, deviant_client, deviant_server, harness_json, harness_json_with_env,
    manifest_with, workspace_root,
};

fn check<'a>(cell: &'a Value, name: &str) -> Option<&'a Value> {
    cell["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
}

fn scenarios_dir(dir: &Path, files: &[(&str, &str)]) -> std::path::PathBuf {
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    for (name, text) in files {
        std::fs::write(scenarios.join(name), text).unwrap();
    }
    scenarios
}

/// A client with a connect timeout of its own behaves like the reference
/// on a perfect loopback, and is caught under a lost SYN (it gives up
/// before the retransmission: FAIL) and a black hole (it sends one SYN
/// where the reference's kernel sends three: DIFFERS on `SYNs sent`).
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(missing_root, ignore = "needs root to make a network namespace")]
#[cfg_attr(missing_nft, ignore = "needs nft (nftables): run make deps")]
fn a_client_that_gives_up_early_is_caught_only_under_loss() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_with(dir.path(), &deviant_client("impatient", "impatient"));
    let (_, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--scenario",
            "syn-lost",
            "--scenario",
            "blackhole",
            "--server",
            "python",
            "--client",
            "impatient",
            "--no-baseline",
        ],
        &dir.path().join("artifacts"),
    );
    let show = |c: &Value| serde_json::to_string_pretty(c).unwrap();

    // The reference pairings ran too, and passed, their rules applied.
    for scenario in ["syn-lost", "blackhole"] {
        let reference = cell(&summary, scenario, "python");
        assert_eq!(reference["verdict"], "PASS", "{}", show(reference));
        let applied = check(reference, "conditions applied").expect("the check is there");
        assert_eq!(applied["passed"], true, "{}", show(reference));
    }
    let lost = cell(&summary, "syn-lost", "impatient");
    assert_eq!(lost["verdict"], "FAIL", "{}", show(lost));
    let exits = check(lost, "exits").unwrap();
    assert_eq!(exits["passed"], false, "{}", show(lost));

    let hole = cell(&summary, "blackhole", "impatient");
    assert_eq!(hole["verdict"], "DIFFERS", "{}", show(hole));
    let syns = hole["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["field"] == "SYNs sent")
        .unwrap_or_else(|| panic!("SYNs sent not named: {}", show(hole)));
    assert_eq!(syns["actual"], "1", "{}", show(hole));
    assert_eq!(
        syns["reference"],
        cell(&summary, "blackhole", "python")["signature"]["meaning"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m[0] == "SYNs sent")
            .unwrap()[1]
    );
}

/// Three clients against a server held still: the reference's listen(1)
/// queues two and drops the third's SYN, the same clients on every run.
/// A server with a larger backlog (listen(128)) is identical on a
/// perfect loopback and in the one-client scenarios' wire; under the
/// backlog it queues all three: the `backlog overflowed` check fails, and
/// the other clients' fates differ from the reference's.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(missing_root, ignore = "needs root to make a network namespace")]
#[cfg_attr(missing_nft, ignore = "needs nft (nftables): run make deps")]
fn a_server_with_a_larger_backlog_is_caught_by_the_backlog_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_with(dir.path(), &deviant_server("deep", "backlog128"));
    let (_, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--scenario",
            "backlog",
            "--server",
            "deep",
            "--client",
            "python",
            "--no-baseline",
        ],
        &dir.path().join("artifacts"),
    );
    let show = |c: &Value| serde_json::to_string_pretty(c).unwrap();
    let by_server = |server: &str| {
        cells(&summary, "backlog")
            .into_iter()
            .find(|c| c["server"] == server)
            .unwrap_or_else(|| panic!("no backlog cell for {server}"))
    };

    let reference = by_server("python");
    assert_eq!(reference["verdict"], "PASS", "{}", show(reference));
    let overflowed = check(reference, "backlog overflowed").expect("the check is there");
    assert!(
        overflowed["detail"]
            .as_str()
            .unwrap()
            .contains("client 3: refused after its SYN was sent 2 times"),
        "{}",
        show(reference)
    );
    let others = |c: &Value| {
        c["signature"]["meaning"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m[0] == "other clients")
            .map(|m| m[1].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no other clients: {}", show(c)))
    };
    assert_eq!(
        others(reference),
        "client 2: established, then reset by the server, exit 0, printed \"Sending data...\"; \
         client 3: refused after its SYN was sent 2 times, exit 1, printed nothing"
    );
    for artifact in ["client-2.stdout", "client-3.exit", "client-3.stderr"] {
        let path = dir
            .path()
            .join("artifacts")
            .join(reference["dir"].as_str().unwrap())
            .join(artifact);
        assert!(path.is_file(), "{} missing", path.display());
    }

    let deep = by_server("deep");
    assert_eq!(deep["verdict"], "FAIL", "{}", show(deep));
    let overflowed = check(deep, "backlog overflowed").unwrap();
    assert_eq!(overflowed["passed"], false, "{}", show(deep));
    assert!(
        overflowed["detail"]
            .as_str()
            .unwrap()
            .contains("the server queued all 3"),
        "{}",
        show(deep)
    );
    assert_ne!(others(deep), others(reference));
}

/// A rule that never acts (here: data to the client, which the tutorial's
/// server never sends) fails the cell: the scenario did not test what it
/// says, whatever else passed.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(missing_root, ignore = "needs root to make a network namespace")]
#[cfg_attr(missing_nft, ignore = "needs nft (nftables): run make deps")]
fn a_rule_that_never_acted_fails_the_cell() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = scenarios_dir(
        dir.path(),
        &[(
            "never.toml",
            "description = \"a rule nothing matches\"\n[[network.rule]]\naction = \"drop\"\ndirection = \"to-client\"\nsegment = \"data\"\n",
        )],
    );
    let (code, summary) = harness_json(
        &[
            "run",
            "--scenarios",
            scenarios.to_str().unwrap(),
            "--server",
            "python",
            "--client",
            "python",
            "--no-baseline",
        ],
        &dir.path().join("artifacts"),
    );
    assert_eq!(code, 1);
    let c = cell(&summary, "never", "python");
    assert_eq!(c["verdict"], "FAIL");
    let applied = check(c, "conditions applied").unwrap();
    assert_eq!(applied["passed"], false);
    assert!(
        applied["detail"]
            .as_str()
            .unwrap()
            .contains("\"drop the first data segment to client\" matched nothing"),
        "{}",
        applied["detail"]
    );
    // Everything else about the cell passed: only the rule failed it.
    let others_passed = c["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] != "conditions applied")
        .all(|k| k["passed"] == true);
    assert!(others_passed, "{c}");
}

/// Cells with conditions run in namespaces of their own, so nothing of
/// them reaches the next cell. The negative control leaves them in the
/// worker's reused namespace (a test-only switch), and the guard must
/// name each leaked condition in the next cell.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(missing_root, ignore = "needs root to make a network namespace")]
#[cfg_attr(missing_nft, ignore = "needs nft (nftables): run make deps")]
fn no_condition_outlives_its_cell_and_the_guard_catches_one_that_does() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = scenarios_dir(
        dir.path(),
        &[(
            "leaky.toml",
            "description = \"three kinds of condition\"\n[network]\nsysctl = { \"net.ipv4.tcp_timestamps\" = 0 }\nmtu = 1280\n[[network.rule]]\naction = \"drop\"\ndirection = \"to-server\"\nsegment = \"syn\"\n",
        )],
    );
    let run = |env: &[(&str, &str)], artifacts: &str| {
        harness_json_with_env(
            &[
                "run",
                "--scenarios",
                scenarios.to_str().unwrap(),
                "--server",
                "python",
                "--server",
                "rust",
                "--client",
                "python",
                "--client",
                "rust",
                "--jobs",
                "1",
                "--no-baseline",
            ],
            &dir.path().join(artifacts),
            env,
        )
    };
    let (code, summary) = run(&[], "kept-apart");
    assert_eq!(code, 0, "{summary}");
    for c in cells(&summary, "leaky") {
        assert_eq!(c["verdict"], "PASS", "{c}");
    }

    let (code, summary) = run(&[("HARNESS_TEST_LEAK_CONDITIONS", "1")], "leaking");
    assert_eq!(code, 1);
    let errors: Vec<&str> = cells(&summary, "leaky")
        .iter()
        .filter_map(|c| c["error"].as_str())
        .collect();
    // Every cell after the first found the one before it in the namespace.
    assert_eq!(errors.len(), 3, "{summary}");
    for error in errors {
        for leaked in [
            "net.ipv4.tcp_timestamps = 0 (was 1)",
            "lo mtu 1280 (was 65536)",
            "the nftables table inet harness_conditions",
        ] {
            assert!(error.contains(leaked), "{leaked} not named in: {error}");
        }
    }
}

/// Each bad `[network]` entry is one line naming the file and the key,
/// and exit 2, before anything runs.
#[test]
fn bad_network_conditions_are_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "sysctl = { \"vm.swappiness\" = 1 }",
            "network.sysctl.\"vm.swappiness\"",
        ),
        (
            "sysctl = { \"net.ipv4.tcp_nonsense\" = 1 }",
            "this kernel has no such setting",
        ),
        ("mtu = 40", "network.mtu: 40 is out of range"),
        (
            "clients = 0",
            "network.clients: 0 is out of range; give 1 to 8",
        ),
        (
            "clients = 9",
            "network.clients: 9 is out of range; give 1 to 8",
        ),
        (
            "[[network.rule]]\naction = \"drop\"\ndirection = \"to-server\"\nsegment = \"syn-ak\"",
            "unknown variant `syn-ak`",
        ),
    ];
    for (i, (body, expected)) in cases.iter().enumerate() {
        let body = if body.starts_with("[[") {
            body.to_string()
        } else {
            format!("[network]\n{body}")
        };
        let scenarios = scenarios_dir(
            &dir.path().join(i.to_string()),
            &[("bad.toml", &format!("description = \"d\"\n{body}\n"))],
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
            .current_dir(workspace_root())
            .args(["run", "--list", "--scenarios", scenarios.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("bad.toml: "), "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}

/// On a veth pair each rule acts where a network would: a SYN/ACK lost
/// toward the client is dropped in the client's namespace (a rule left in
/// the server's would match nothing, and `conditions applied` would fail
/// the cell), and shows twice in the capture on the server's end; the MTU
/// is set on both ends (each side's MSS says so); a swap of two data
/// segments swaps what the capture shows as two frames (GSO packets
/// whole); a copy and a RST are made where the client sends, so both
/// cross the link and are in the capture on the server's end (made in the
/// server's namespace they would miss it); and a client that gives up
/// early is still caught.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(missing_root, ignore = "needs root to make a network namespace")]
#[cfg_attr(missing_nft, ignore = "needs nft (nftables): run make deps")]
#[cfg_attr(missing_tshark, ignore = "needs tshark: run make deps")]
fn conditions_act_where_segments_arrive_on_a_veth_pair() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_with(dir.path(), &deviant_client("impatient", "impatient"));
    let artifacts = dir.path().join("artifacts");
    let mut args = vec![
        "run",
        "--manifest",
        manifest.to_str().unwrap(),
        "--topology",
        "veth",
        "--server",
        "python",
        "--client",
        "python",
        "--client",
        "impatient",
        "--no-baseline",
    ];
    let scenarios = [
        "syn-lost",
        "synack-lost",
        "small-mtu",
        "reorder",
        "duplicate",
        "reset",
    ];
    for s in scenarios {
        args.extend(["--scenario", s]);
    }
    let (_, summary) = harness_json(&args, &artifacts);
    let show = |c: &Value| serde_json::to_string_pretty(c).unwrap();
    for scenario in scenarios {
        let reference = cell(&summary, scenario, "python");
        assert_eq!(reference["verdict"], "PASS", "{}", show(reference));
        if scenario != "small-mtu" {
            let applied = check(reference, "conditions applied").expect("the check is there");
            assert_eq!(applied["passed"], true, "{}", show(reference));
        }
    }
    let lost = cell(&summary, "syn-lost", "impatient");
    assert_eq!(lost["verdict"], "FAIL", "{}", show(lost));

    let folder = |scenario: &str| {
        artifacts.join(cell(&summary, scenario, "python")["dir"].as_str().unwrap())
    };
    let synacks = crate::util::tshark_fields(
        &folder("synack-lost").join("capture.pcap"),
        "tcp.flags.syn == 1 && tcp.flags.ack == 1",
        &["frame.number"],
    );
    // Two, or three when the client's SYN timer fires with the server's
    // (the race synack-lost leaves out of its comparison).
    assert!(
        (2..=3).contains(&synacks.len()),
        "the lost SYN/ACK and its retransmission: {synacks:?}"
    );
    assert!(folder("synack-lost")
        .join("conditions-client.nft")
        .is_file());

    let mss = crate::util::tshark_fields(
        &folder("small-mtu").join("capture.pcap"),
        "tcp.flags.syn == 1",
        &["tcp.options.mss_val"],
    );
    let mtu = 1280;
    assert_eq!(
        mss,
        vec![vec![(mtu - 40).to_string()]; 2],
        "SYN and SYN/ACK"
    );

    // The first data segment twice on the captured link, the same bytes.
    let data = crate::util::tshark_fields(
        &folder("duplicate").join("capture.pcap"),
        "tcp.dstport == 1712 && tcp.len > 0",
        &["tcp.seq", "tcp.len"],
    );
    assert!(
        data.len() >= 2 && data[0] == data[1],
        "the copy crossed the link: {data:?}"
    );
    assert!(folder("duplicate").join("conditions-client.nft").is_file());
    // The client's RST on the captured link, and the server's own RST to
    // what the client sent after it: the server's connection was reset.
    let resets = crate::util::tshark_fields(
        &folder("reset").join("capture.pcap"),
        "tcp.flags.reset == 1",
        &["tcp.dstport"],
    );
    assert_eq!(
        resets.first(),
        Some(&vec!["1712".to_string()]),
        "the client's RST first: {resets:?}"
    );
}
