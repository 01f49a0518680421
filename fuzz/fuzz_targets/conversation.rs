//! A sequence of Ethernet frames (each prefixed by its length, two bytes
//! big-endian) through dissection, conversations, checks' inputs,
//! signatures, comparison, annotations and ladders: never a panic.
#![no_main]

use std::time::Duration;

use wire::dissect::{dissect_all, Frame, LinkType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut frames = Vec::new();
    let mut rest = data;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        frames.push(Frame {
            timestamp: Duration::from_micros(frames.len() as u64),
            wire_len: len as u32,
            data: tail[..len].to_vec(),
        });
        rest = &tail[len..];
    }
    let (segments, _) = dissect_all(LinkType::Ethernet, &frames);
    let connections = wire::conversation::build(&segments);
    let _ = harness::capture::annotate::comments(&connections);
    let signatures: Vec<_> = connections.iter().map(harness::verdict::signature::signature).collect();
    for (a, conn) in signatures.iter().zip(&connections) {
        let _ = harness::report::ladder::render(conn);
        for b in &signatures {
            let _ = harness::verdict::signature::compare(a, b, &[]);
        }
    }
});
