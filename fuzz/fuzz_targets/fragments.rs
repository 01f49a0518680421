//! A flood of IPv4 packets and fragments (each prefixed by its length,
//! two bytes big-endian, as raw IPv4 frames) through one dissector: the
//! reassembly never holds more than its bound, whatever completes or not.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wire::dissect::{Dissector, Frame, LinkType};

fuzz_target!(|data: &[u8]| {
    let mut dissector = Dissector::default();
    let mut rest = data;
    let mut number = 0;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        number += 1;
        let frame = Frame {
            // A second of capture time every 100 frames: some packets time
            // out, most do not.
            timestamp: Duration::from_millis(number as u64 * 10),
            wire_len: len as u32,
            data: tail[..len].to_vec(),
        };
        if let Err(e) = dissector.dissect(LinkType::Ipv4, number, &frame) {
            assert_eq!(e.frame, number);
        }
        assert!(dissector.held_fragment_bytes() <= wire::defrag::PENDING_BYTES);
        rest = &tail[len..];
    }
    let _ = dissector.abandoned_fragments();
});
