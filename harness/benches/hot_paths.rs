//! Criterion micro-benchmarks of the per-packet hot paths, on the committed
//! fixture captures: one frame dissected, one options area parsed, a whole
//! conversation built, and two signatures compared.

use std::path::Path;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use harness::capture;
use harness::verdict::signature;
use wire::{conversation, dissect, tcp_options};

fn fixture(name: &str) -> (dissect::LinkType, Vec<dissect::Frame>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/captures")
        .join(name);
    capture::read_file(&path).expect("fixture capture")
}

fn hot_paths(c: &mut Criterion) {
    let (link, frames) = fixture("harness-hello-python-rust.pcapng");
    let syn = frames[0].clone();
    c.bench_function("dissect SYN frame", |b| {
        b.iter(|| dissect::dissect(link, 1, black_box(&syn)))
    });

    let options = [
        2u8, 4, 0xff, 0xd7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 10,
    ];
    c.bench_function("parse SYN options", |b| {
        b.iter(|| tcp_options::parse(black_box(&options)))
    });

    c.bench_function("build conversation", |b| {
        b.iter(|| {
            let (segments, _) = dissect::dissect_all(link, black_box(&frames));
            conversation::build_owned(segments)
        })
    });

    let (segments, _) = dissect::dissect_all(link, &frames);
    let connections = conversation::build_owned(segments);
    let a = signature::signature(&connections[0]);
    let (other_link, other_frames) = fixture("tutorial-ethernet-ws256.pcap");
    let (other, _) = dissect::dissect_all(other_link, &other_frames);
    let b_sig = signature::signature(&conversation::build_owned(other)[0]);
    c.bench_function("signature + compare", |b| {
        b.iter(|| {
            let s = signature::signature(black_box(&connections[0]));
            signature::compare(&a, &s, &[]).len() + signature::compare(&a, &b_sig, &[]).len()
        })
    });
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
