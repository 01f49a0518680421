//! Sequence space at any size: a real transfer of 5 GiB over the loopback,
//! captured headers-only by tcpdump, read by `harness inspect` and judged
//! by tshark. Its sequence numbers wrap past 2³² more than once; a reader
//! that counts in 32 bits reports 1 GiB, or saturates.

use std::process::Command;

use crate::util::{tshark_fields, workspace_root};

/// What the client sends: 5 GiB, so the sequence space wraps once and
/// the stream's length is not representable in 32 bits.
const TOTAL: u64 = 5 << 30;

/// Captures the transfer in a network namespace of its own (nothing else
/// on its loopback), with `nc` on both ends and `tcpdump -s 128`.
fn capture_transfer(file: &std::path::Path) {
    let script = format!(
        r#"set -e
ip link set lo up
tcpdump -i lo -s 128 -U -w '{file}' 'tcp port 40000' 2>'{file}.log' &
dump=$!
for _ in $(seq 200); do grep -q 'listening on' '{file}.log' && break; sleep 0.05; done
nc -l 127.0.0.1 40000 >/dev/null &
server=$!
for _ in $(seq 200); do ss -ltn | grep -q ':40000 ' && break; sleep 0.05; done
head -c {TOTAL} /dev/zero | timeout 120 nc -N 127.0.0.1 40000
timeout 60 tail --pid=$server -f /dev/null
# libpcap hands over a ring block when it fills or its timeout passes:
# let the last one go before tcpdump is stopped.
sleep 1.5
kill -INT $dump
wait $dump
"#,
        file = file.display()
    );
    let out = Command::new("timeout")
        .args(["300", "unshare", "-n", "bash", "-c", &script])
        .output()
        .expect("unshare runs");
    assert!(
        out.status.success(),
        "capture failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[cfg_attr(missing_root, ignore = "needs root to make a network namespace")]
#[cfg_attr(missing_tcpdump, ignore = "needs tcpdump: make deps installs it")]
#[cfg_attr(missing_tshark, ignore = "needs tshark: make deps installs it")]
#[cfg_attr(
    missing_nc,
    ignore = "needs nc (netcat-openbsd): make deps installs it"
)]
fn a_real_transfer_past_four_gigabytes_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("five-gib.pcap");
    capture_transfer(&file);

    // tshark's judgement of the capture: the client's SYN and FIN, and how
    // many frames. The FIN ends the stream at ISN + 1 + length + 1.
    let syn = tshark_fields(
        &file,
        "tcp.flags.syn == 1 && tcp.flags.ack == 0",
        &["tcp.seq_raw"],
    );
    let fin = tshark_fields(
        &file,
        "tcp.flags.fin == 1 && tcp.dstport == 40000",
        &["tcp.seq_raw", "tcp.len"],
    );
    assert_eq!(
        (syn.len(), fin.len()),
        (1, 1),
        "one SYN and one FIN: {syn:?} {fin:?}"
    );
    let isn: u32 = syn[0][0].parse().unwrap();
    let fin_end = fin[0][0].parse::<u32>().unwrap() + fin[0][1].parse::<u32>().unwrap();
    // What tshark sees is a stream of TOTAL bytes, modulo 2³².
    assert_eq!(fin_end.wrapping_sub(isn).wrapping_sub(1), TOTAL as u32);
    let frames = tshark_fields(&file, "frame", &["frame.number"]).len();

    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(workspace_root())
        .args(["inspect", "--color", "never"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains(&format!("{frames} frames")),
        "tshark counts {frames} frames: {text}"
    );
    assert!(
        text.contains(&format!("established, {TOTAL} bytes client→server")),
        "{TOTAL} bytes expected: {}",
        text.lines().take(4).collect::<Vec<_>>().join("\n")
    );
    assert!(text.contains("closed, client first"), "{text}");
}
