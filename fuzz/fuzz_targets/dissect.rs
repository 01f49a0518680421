//! One frame of any link type, through every tag, label and tunnel the
//! dissector decapsulates: a segment, "not TCP", or an error with the
//! frame number; never a panic. The first byte picks the link type, the
//! second whether the frame was cut by a snaplen (wire length larger).
#![no_main]

use std::time::Duration;

use wire::dissect::{dissect, Frame, LinkType};
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 10] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Fddi,
    LinkType::Nflog,
];

fuzz_target!(|data: &[u8]| {
    let [link, cut, rest @ ..] = data else {
        return;
    };
    let frame = Frame {
        timestamp: Duration::ZERO,
        wire_len: rest.len() as u32 + u32::from(*cut & 1) * 1000,
        data: rest.to_vec(),
    };
    match dissect(LINKS[usize::from(*link) % LINKS.len()], 7, &frame) {
        Ok(Some(segment)) => {
            let _ = wire::tcp_options::emit(&segment.options.to_vec());
        }
        Ok(None) => {}
        Err(e) => assert_eq!(e.frame, 7),
    }
});
