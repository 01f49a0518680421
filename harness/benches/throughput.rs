//! Dissection and comparison throughput on one core, for `make bench`:
//! reads the capture named by `BENCH_CAPTURE`, then repeats dissection,
//! conversation building, signature and comparison until at least
//! `BENCH_SECONDS` (default 3) have passed, and prints packets per second.
//! Reading the file is not timed: tshark's time, which it is compared
//! with, includes reading, so the comparison favours tshark.

use std::time::{Duration, Instant};

fn main() {
    let Some(path) = std::env::var_os("BENCH_CAPTURE") else {
        eprintln!("throughput: set BENCH_CAPTURE=FILE (a pcap or pcapng); `make bench` does");
        std::process::exit(2);
    };
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let (link, frames) = match harness::capture::read_file(std::path::Path::new(&path)) {
        Ok(read) => read,
        Err(e) => {
            eprintln!("throughput: {e}");
            std::process::exit(2);
        }
    };
    let budget = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut passes = 0u64;
    let mut segments_seen = 0usize;
    while passes == 0 || started.elapsed() < budget {
        let (segments, malformed) = wire::dissect::dissect_all(link, &frames);
        assert!(
            malformed.is_empty(),
            "malformed frames: {:?}",
            &malformed[..1]
        );
        segments_seen = segments.len();
        let connections = wire::conversation::build_owned(segments);
        let main = connections
            .iter()
            .find(|c| c.established())
            .expect("an established connection");
        let signature = harness::verdict::signature::signature(main);
        let differences = harness::verdict::signature::compare(&signature, &signature, &[]);
        assert!(differences.is_empty());
        passes += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let packets = frames.len() as f64 * passes as f64;
    println!(
        "{} packets ({} TCP segments) x {passes} passes in {elapsed:.3}s: {:.0} packets/s, {:.6}s per pass",
        frames.len(),
        segments_seen,
        packets / elapsed,
        elapsed / passes as f64
    );
}
