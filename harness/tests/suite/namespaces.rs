//! A worker's network namespace is used again from cell to cell only when
//! the cell before left nothing in it: these tests show the harm a
//! leftover would do (the negative controls) and that the harness never
//! lets one through.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use harness::exec::sockets::{self, Leftover};

use crate::util::{deviant_server, harness_json, manifest_with, require_capture};

const TIME_WAIT: u8 = 6;
const LISTEN: u8 = 10;

/// The tutorial's exchange on 127.0.0.1:1712, the client closing first as
/// in the tutorial (so its socket is the one left in TIME_WAIT); the
/// client's port.
fn exchange() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:1712")?;
    let client = TcpStream::connect("127.0.0.1:1712")?;
    let port = client.local_addr()?.port();
    let (mut server, _) = listener.accept()?;
    drop(client);
    let mut rest = Vec::new();
    server.read_to_end(&mut rest)?;
    drop(server);
    Ok(port)
}

/// The namespace's TCP sockets once they have settled into `states`
/// (bounded: the last FIN is handled by the kernel at once on loopback).
fn settled(states: &[u8]) -> Vec<Leftover> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = sockets::list().expect("sock_diag dump");
        let mut seen: Vec<u8> = now.iter().map(|s| s.state).collect();
        seen.sort_unstable();
        if seen == states || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// In a namespace of its own (this test's thread), with one ephemeral
/// port so a second connection must take the first one's 4-tuple: a
/// TIME_WAIT left behind makes the next connect fail (the negative
/// control), and once `clear_time_wait` has destroyed it the same
/// exchange runs again on the same port. A listener left open is not
/// cleared but reported, which is what makes a worker move to a fresh
/// namespace.
#[test]
#[cfg_attr(missing_root, ignore = "needs root to make a network namespace")]
fn a_time_wait_left_behind_breaks_the_next_connect_and_is_cleared() {
    std::thread::spawn(|| {
        harness::exec::network::enter_namespace_with_own_tcp_tables().expect("a network namespace");
        // The namespace's own table, as a worker's has (where the kernel
        // has the setting: Linux 6.1 and later).
        let read = |name: &str| std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"));
        if let Ok(entries) = read("tcp_ehash_entries") {
            assert_eq!(entries.trim(), "1024");
            // Its TIME_WAIT limit is still the host's, not half of 1024.
            let limit: u32 = read("tcp_max_tw_buckets").unwrap().trim().parse().unwrap();
            assert!(limit > 512, "{limit}");
        }
        // Per namespace, and this thread's: one port, and no reuse of a
        // TIME_WAIT 4-tuple (which loopback allows by default after 1 s,
        // with the old connection's sequence space), so the harm is a
        // failure, the same on every machine.
        std::fs::write("/proc/sys/net/ipv4/ip_local_port_range", "40000 40000")
            .expect("set the port range");
        std::fs::write("/proc/sys/net/ipv4/tcp_tw_reuse", "0").expect("set tcp_tw_reuse");

        assert_eq!(exchange().expect("first exchange"), 40000);
        let left = settled(&[TIME_WAIT]);
        assert_eq!(
            left.iter()
                .map(|s| (s.state, s.local_port))
                .collect::<Vec<_>>(),
            vec![(TIME_WAIT, 40000)],
            "the client's socket waits in TIME_WAIT"
        );

        // Negative control: left in place, it takes the only 4-tuple.
        let err = exchange().expect_err("a second connect while TIME_WAIT holds the 4-tuple");
        assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{err}");

        // What a worker does between cells.
        assert_eq!(sockets::clear_time_wait().expect("clear"), vec![]);
        assert_eq!(sockets::list().expect("dump"), vec![]);
        assert_eq!(exchange().expect("exchange after clearing"), 40000);

        // A socket in any other state stays and is named.
        let _listener = TcpListener::bind("127.0.0.1:1713").expect("bind");
        settled(&[TIME_WAIT, LISTEN]);
        let left = sockets::clear_time_wait().expect("clear");
        assert_eq!(
            left.iter()
                .map(|s| (s.state, s.local_port))
                .collect::<Vec<_>>(),
            vec![(LISTEN, 1713)]
        );
        assert_eq!(left[0].to_string(), "LISTEN 1713:*");
        drop(_listener);
        assert_eq!(sockets::clear_time_wait().expect("clear"), vec![]);

        // A UDP socket is counted, if not named: a process of the cell
        // still holds it.
        let _udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let left = sockets::clear_time_wait().expect("clear");
        assert_eq!(left, vec![Leftover::OTHER]);
        assert_eq!(left[0].to_string(), "a UDP or raw socket");
    })
    .join()
    .expect("the namespace test thread");
}

/// The stages a cell's summary records for its network, in run order.
fn network_stages(summary: &serde_json::Value) -> Vec<(String, String)> {
    summary["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .filter_map(|c| {
            let stage = c["timings"]
                .as_array()?
                .iter()
                .map(|t| t["stage"].as_str().unwrap_or_default())
                .find(|s| s.starts_with("namespace"))?;
            Some((
                format!("{} × {}", c["server"].as_str()?, c["client"].as_str()?),
                stage.to_string(),
            ))
        })
        .collect()
}

/// One worker runs every cell in one namespace while each leaves nothing
/// behind, and every verdict is the one a fresh namespace per cell gives
/// (the baseline's). A server that leaves a listener running in the
/// namespace (a detached process the kill of its group misses) makes the
/// next cell start in a fresh namespace, and that cell still passes.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn a_worker_reuses_its_namespace_only_when_the_cell_before_left_nothing() {
    require_capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = manifest_with(dir.path(), &deviant_server("leaky", "leave-listener"));
    let (code, summary) = harness_json(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--jobs",
            "1",
            "--server",
            "python",
            "--server",
            "rust",
            "--server",
            "leaky",
            "--client",
            "python",
            "--client",
            "rust",
            "--scenario",
            "utf8",
            "--scenario",
            "binary",
            "--no-baseline",
        ],
        &dir.path().join("artifacts"),
    );
    let verdicts: Vec<&str> = summary["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["verdict"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(code, 0, "every cell passes: {verdicts:?}");
    assert!(verdicts.iter().all(|v| *v == "PASS"), "{verdicts:?}");

    let stages = network_stages(&summary);
    assert_eq!(stages.len(), 12, "{stages:?}");
    assert_eq!(stages[0].1, "namespace made", "{stages:?}");
    for (i, (cell, stage)) in stages.iter().enumerate().skip(1) {
        let before = &stages[i - 1].0;
        let expected = if before.starts_with("leaky") {
            "namespace made (the cell before left sockets)"
        } else {
            "namespace reused"
        };
        assert_eq!(
            stage, expected,
            "cell {i} ({cell}) after {before}: {stages:?}"
        );
    }
    // The detached listeners end on their own within seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::process::Command::new("pgrep")
        .args(["-f", "deviant_server.py --mode leave-listener"])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            Instant::now() < deadline,
            "the leaky server's listener outlived its 3 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
