//! Packets built with etherparse's PacketBuilder, for unit tests: every
//! supported link type, and a whole tutorial conversation.

use std::time::Duration;

use etherparse::{LinuxSllPacketType, PacketBuilder};

use crate::dissect::{Frame, LinkType};

pub const CLIENT: ([u8; 4], u16) = ([127, 0, 0, 1], 50514);
pub const SERVER: ([u8; 4], u16) = ([127, 0, 0, 1], 1712);
pub const CLIENT_ISN: u32 = 0xfff0_0000; // wraps during the conversation
pub const SERVER_ISN: u32 = 1_000_000;
/// A Linux loopback SYN's options: MSS 65495, SACK_PERM, TS (echo 0), NOP, WS 7.
pub const SYN_OPTIONS: [u8; 20] = [
    2, 4, 0xff, 0xd7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
];

/// What one segment of a fixture conversation carries.
#[derive(Clone, Copy)]
pub struct Spec<'a> {
    pub from_client: bool,
    pub seq: u32,
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub window: u16,
    pub options: &'a [u8],
    pub payload: &'a [u8],
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            from_client: true,
            seq: 0,
            ack: None,
            syn: false,
            fin: false,
            rst: false,
            window: 512,
            options: &[],
            payload: &[],
        }
    }
}

/// One IPv4 TCP segment framed for `link`.
pub fn frame(link: LinkType, spec: &Spec<'_>) -> Frame {
    let ((src, sport), (dst, dport)) = if spec.from_client {
        (CLIENT, SERVER)
    } else {
        (SERVER, CLIENT)
    };
    let mut data = Vec::new();
    macro_rules! finish {
        ($builder:expr) => {{
            let mut b = $builder.tcp(sport, dport, spec.seq, spec.window);
            if spec.syn {
                b = b.syn();
            }
            if spec.fin {
                b = b.fin();
            }
            if spec.rst {
                b = b.rst();
            }
            if let Some(ack) = spec.ack {
                b = b.ack(ack);
            }
            b = b.options_raw(spec.options).expect("options fit");
            b.write(&mut data, spec.payload).expect("write packet");
        }};
    }
    match link {
        LinkType::Ethernet => finish!(PacketBuilder::ethernet2([0; 6], [0; 6]).ipv4(src, dst, 64)),
        LinkType::LinuxSll => {
            finish!(
                PacketBuilder::linux_sll(LinuxSllPacketType::HOST, 6, [0; 8]).ipv4(src, dst, 64)
            )
        }
        LinkType::LinuxSll2 => {
            // EtherType, reserved, interface 1, ARPHRD_LOOPBACK, to us,
            // a 6-byte address padded to 8: as `tcpdump -i any` writes it.
            data.extend_from_slice(&[0x08, 0x00, 0, 0, 0, 0, 0, 1, 0x03, 0x04, 0, 6]);
            data.extend_from_slice(&[0; 8]);
            finish!(PacketBuilder::ipv4(src, dst, 64))
        }
        LinkType::Raw | LinkType::Ipv4 => finish!(PacketBuilder::ipv4(src, dst, 64)),
        LinkType::Ipv6 => unreachable!("the tutorial's conversation is IPv4"),
        LinkType::Null => {
            data.extend_from_slice(&2u32.to_le_bytes());
            finish!(PacketBuilder::ipv4(src, dst, 64))
        }
        LinkType::Loop => {
            data.extend_from_slice(&2u32.to_be_bytes());
            finish!(PacketBuilder::ipv4(src, dst, 64))
        }
        LinkType::Fddi => {
            // Frame control, two addresses, then LLC/SNAP with EtherType IPv4.
            data.extend_from_slice(&[0x50; 13]);
            data.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
            finish!(PacketBuilder::ipv4(src, dst, 64))
        }
        LinkType::Nflog => {
            // AF_INET, version 0, group 5; then the payload TLV (type 9),
            // its length in the host's (little-endian) order, set below.
            data.extend_from_slice(&[2, 0, 0, 5, 0, 0, 9, 0]);
            finish!(PacketBuilder::ipv4(src, dst, 64));
            let tlv = (data.len() - 4) as u16;
            data[4..6].copy_from_slice(&tlv.to_le_bytes());
        }
    }
    Frame {
        timestamp: Duration::from_secs(1),
        wire_len: data.len() as u32,
        data,
    }
}

/// A refused attempt: the client's SYN and the kernel's RST/ACK.
pub fn refused_attempt(link: LinkType) -> Vec<Frame> {
    [
        Spec {
            syn: true,
            seq: 5,
            ..Spec::default()
        },
        Spec {
            from_client: false,
            rst: true,
            seq: 0,
            ack: Some(6),
            ..Spec::default()
        },
    ]
    .iter()
    .map(|s| frame(link, s))
    .collect()
}

/// The tutorial's conversation: handshake, `Hello server!`, client closes first.
pub fn tutorial(link: LinkType) -> Vec<Frame> {
    tutorial_with_syn_options(link, &SYN_OPTIONS)
}

/// The tutorial's conversation with other options on the client's SYN.
pub fn tutorial_with_syn_options(link: LinkType, syn_options: &[u8]) -> Vec<Frame> {
    let c = CLIENT_ISN;
    let s = SERVER_ISN;
    let msg: &[u8] = b"Hello server!";
    let n = msg.len() as u32;
    let specs = [
        Spec {
            syn: true,
            seq: c,
            window: 65495,
            options: syn_options,
            ..Spec::default()
        },
        Spec {
            from_client: false,
            syn: true,
            seq: s,
            ack: Some(c.wrapping_add(1)),
            window: 65483,
            options: &SYN_OPTIONS,
            ..Spec::default()
        },
        Spec {
            seq: c.wrapping_add(1),
            ack: Some(s + 1),
            ..Spec::default()
        },
        Spec {
            seq: c.wrapping_add(1),
            ack: Some(s + 1),
            payload: msg,
            ..Spec::default()
        },
        Spec {
            from_client: false,
            seq: s + 1,
            ack: Some(c.wrapping_add(1 + n)),
            ..Spec::default()
        },
        Spec {
            fin: true,
            seq: c.wrapping_add(1 + n),
            ack: Some(s + 1),
            ..Spec::default()
        },
        Spec {
            from_client: false,
            fin: true,
            seq: s + 1,
            ack: Some(c.wrapping_add(2 + n)),
            ..Spec::default()
        },
        Spec {
            seq: c.wrapping_add(2 + n),
            ack: Some(s + 2),
            ..Spec::default()
        },
    ];
    // 100 µs apart, so ladders show a time that moves.
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| Frame {
            timestamp: Duration::from_micros(1_700_000_000_000_000 + 100 * i as u64),
            ..frame(link, spec)
        })
        .collect()
}

/// Writes the capture files committed under `harness/tests/fixtures/captures/`
/// (documented in the README there). Run it only to regenerate them:
/// `cargo test -p wire --lib write_committed_captures -- --ignored`.
#[test]
#[ignore = "regenerates committed fixture files"]
fn write_committed_captures() {
    use crate::savefile;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../harness/tests/fixtures/captures");
    std::fs::create_dir_all(&dir).unwrap();
    let names = [
        (LinkType::Ethernet, "ethernet"),
        (LinkType::LinuxSll, "linux-sll"),
        (LinkType::Raw, "raw"),
        (LinkType::Null, "null"),
        (LinkType::Loop, "loop"),
    ];
    for (link, name) in names {
        let bytes = savefile::pcap_bytes(link, &tutorial(link));
        std::fs::write(dir.join(format!("tutorial-{name}.pcap")), bytes).unwrap();
    }
    // The same conversation, only the SYN's window scale changed (7 → 8).
    let mut options = SYN_OPTIONS;
    options[19] = 8;
    let bytes = savefile::pcap_bytes(
        LinkType::Ethernet,
        &tutorial_with_syn_options(LinkType::Ethernet, &options),
    );
    std::fs::write(dir.join("tutorial-ethernet-ws256.pcap"), bytes).unwrap();
}

pub const ALL_LINKS: [LinkType; 9] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Fddi,
    LinkType::Nflog,
];
