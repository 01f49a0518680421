//! TCP options as an ordered list, parsed and emitted symmetrically.
//!
//! etherparse's options iterator stops at the first unknown kind, but for a
//! handshake signature the *order* of options, NOP and EOL padding, and
//! unknown kinds are all part of what distinguishes one stack from another
//! (this is how p0f-style fingerprints work). So the options area is parsed
//! here into a list that keeps everything, and [`emit`] turns it back into
//! the same bytes, which the tests use as fixtures.

use std::fmt;

/// One entry of a TCP options area, in wire order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "option", rename_all = "snake_case")]
pub enum TcpOption {
    /// Kind 0. Everything after it is padding and is kept as `padding`.
    Eol { padding: Vec<u8> },
    /// Kind 1.
    Nop,
    /// Kind 2.
    Mss { value: u16 },
    /// Kind 3.
    WindowScale { shift: u8 },
    /// Kind 4.
    SackPermitted,
    /// Kind 5.
    Sack { blocks: Vec<(u32, u32)> },
    /// Kind 8.
    Timestamps { value: u32, echo: u32 },
    /// Any other kind with a well-formed length byte.
    Unknown { kind: u8, data: Vec<u8> },
    /// A length byte that is too small, too large for the area, or wrong
    /// for a known kind. The remaining bytes are kept as they were.
    Malformed { kind: u8, rest: Vec<u8> },
}

impl TcpOption {
    /// The name Wireshark uses in its flow graph and info column.
    pub fn short_name(&self) -> String {
        match self {
            TcpOption::Eol { .. } => "EOL".into(),
            TcpOption::Nop => "NOP".into(),
            TcpOption::Mss { .. } => "MSS".into(),
            TcpOption::WindowScale { .. } => "WS".into(),
            TcpOption::SackPermitted => "SACK_PERM".into(),
            TcpOption::Sack { .. } => "SACK".into(),
            TcpOption::Timestamps { .. } => "TS".into(),
            TcpOption::Unknown { kind, .. } => format!("kind{kind}"),
            TcpOption::Malformed { kind, .. } => format!("malformed(kind{kind})"),
        }
    }
}

impl fmt::Display for TcpOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOption::Mss { value } => write!(f, "MSS={value}"),
            // Wireshark shows the multiplier, e.g. WS=1024 for shift 10.
            TcpOption::WindowScale { shift } => write!(f, "WS={}", 1u64 << (*shift).min(30)),
            TcpOption::Timestamps { value, echo } => write!(f, "TSval={value} TSecr={echo}"),
            TcpOption::Unknown { kind, data } => write!(f, "kind{kind}(len={})", data.len() + 2),
            other => f.write_str(&other.short_name()),
        }
    }
}

/// Parses an options area. Never fails: whatever cannot be understood is
/// kept as [`TcpOption::Malformed`], so the caller can report it.
pub fn parse(area: &[u8]) -> Vec<TcpOption> {
    if area.is_empty() {
        return Vec::new();
    }
    // Room for a SYN's usual five without growing.
    let mut out = Vec::with_capacity(5);
    out.extend(Iter { rest: area });
    out
}

/// The options of an area one by one, in wire order; what [`parse`]
/// collects. It allocates only for the kinds that carry a variable part.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    /// What is left to read; empty once an EOL or a malformed option has
    /// taken the rest.
    rest: &'a [u8],
}

impl Iterator for Iter<'_> {
    type Item = TcpOption;

    fn next(&mut self) -> Option<TcpOption> {
        let area = self.rest;
        let (&kind, after_kind) = area.split_first()?;
        // EOL and a malformed option take every byte after them.
        let everything = |iter: &mut Self| {
            iter.rest = &[];
            after_kind.to_vec()
        };
        match kind {
            0 => {
                return Some(TcpOption::Eol {
                    padding: everything(self),
                })
            }
            1 => {
                self.rest = after_kind;
                return Some(TcpOption::Nop);
            }
            _ => {}
        }
        let len = after_kind.first().map_or(0, |&l| usize::from(l));
        if len < 2 || len > area.len() {
            return Some(TcpOption::Malformed {
                kind,
                rest: everything(self),
            });
        }
        let data = &area[2..len];
        let option = match (kind, data.len()) {
            (2, 2) => TcpOption::Mss {
                value: u16::from_be_bytes([data[0], data[1]]),
            },
            (3, 1) => TcpOption::WindowScale { shift: data[0] },
            (4, 0) => TcpOption::SackPermitted,
            (5, n) if n > 0 && n % 8 == 0 => TcpOption::Sack {
                blocks: data
                    .chunks_exact(8)
                    .map(|b| {
                        (
                            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                            u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                        )
                    })
                    .collect(),
            },
            (8, 8) => TcpOption::Timestamps {
                value: u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
                echo: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            },
            (2..=5 | 8, _) => {
                return Some(TcpOption::Malformed {
                    kind,
                    rest: everything(self),
                })
            }
            _ => TcpOption::Unknown {
                kind,
                data: data.to_vec(),
            },
        };
        self.rest = &area[len..];
        Some(option)
    }
}

/// The most a TCP header can hold: a data offset of 15 words, less the
/// 20-byte fixed header.
pub const MAX_AREA: usize = 40;

/// A segment's options area as captured, kept inline.
///
/// A big transfer is tens of thousands of segments, each with a few
/// options; a list per segment would be tens of thousands of allocations
/// for options that are almost never looked at past the handshake. So the
/// bytes are kept, and read on demand with [`Options::iter`]. They print
/// and serialize as the parsed list.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Options {
    len: u8,
    bytes: [u8; MAX_AREA],
}

impl Options {
    /// Keeps `area`. A TCP header cannot hold more than [`MAX_AREA`] bytes
    /// of options, so nothing is ever cut; anything past that is ignored.
    pub fn new(area: &[u8]) -> Options {
        let len = area.len().min(MAX_AREA);
        let mut bytes = [0; MAX_AREA];
        bytes[..len].copy_from_slice(&area[..len]);
        Options {
            len: len as u8,
            bytes,
        }
    }

    /// The area exactly as captured.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            rest: self.as_bytes(),
        }
    }

    pub fn to_vec(&self) -> Vec<TcpOption> {
        parse(self.as_bytes())
    }
}

impl Default for Options {
    fn default() -> Self {
        Options::new(&[])
    }
}

impl<'a> IntoIterator for &'a Options {
    type Item = TcpOption;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl serde::Serialize for Options {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// The exact bytes [`parse`] read `options` from.
pub fn emit(options: &[TcpOption]) -> Vec<u8> {
    let mut out = Vec::new();
    for option in options {
        match option {
            TcpOption::Eol { padding } => {
                out.push(0);
                out.extend_from_slice(padding);
            }
            TcpOption::Nop => out.push(1),
            TcpOption::Mss { value } => {
                out.extend_from_slice(&[2, 4]);
                out.extend_from_slice(&value.to_be_bytes());
            }
            TcpOption::WindowScale { shift } => out.extend_from_slice(&[3, 3, *shift]),
            TcpOption::SackPermitted => out.extend_from_slice(&[4, 2]),
            TcpOption::Sack { blocks } => {
                out.extend_from_slice(&[5, (2 + 8 * blocks.len()) as u8]);
                for (left, right) in blocks {
                    out.extend_from_slice(&left.to_be_bytes());
                    out.extend_from_slice(&right.to_be_bytes());
                }
            }
            TcpOption::Timestamps { value, echo } => {
                out.extend_from_slice(&[8, 10]);
                out.extend_from_slice(&value.to_be_bytes());
                out.extend_from_slice(&echo.to_be_bytes());
            }
            TcpOption::Unknown { kind, data } => {
                out.extend_from_slice(&[*kind, (data.len() + 2) as u8]);
                out.extend_from_slice(data);
            }
            TcpOption::Malformed { kind, rest } => {
                out.push(*kind);
                out.extend_from_slice(rest);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcpOption::*;

    /// A Linux loopback SYN's options: MSS 65495, SACK_PERM, TS, NOP, WS.
    const LINUX_SYN: [u8; 20] = [
        0x02, 0x04, 0xff, 0xd7, 0x04, 0x02, 0x08, 0x0a, 0x9a, 0x2b, 0x3c, 0x4d, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    #[test]
    fn linux_syn() {
        let parsed = parse(&LINUX_SYN);
        assert_eq!(
            parsed,
            vec![
                Mss { value: 65495 },
                SackPermitted,
                Timestamps {
                    value: 0x9a2b3c4d,
                    echo: 0
                },
                Nop,
                WindowScale { shift: 7 },
            ]
        );
        assert_eq!(emit(&parsed), LINUX_SYN);
    }

    #[test]
    fn nop_padding_and_eol_are_kept_in_order() {
        let area = [1, 1, 4, 2, 1, 0, 0, 0];
        let parsed = parse(&area);
        assert_eq!(
            parsed,
            vec![
                Nop,
                Nop,
                SackPermitted,
                Nop,
                Eol {
                    padding: vec![0, 0]
                }
            ]
        );
        assert_eq!(emit(&parsed), area);
    }

    #[test]
    fn unknown_kind_does_not_stop_parsing() {
        // TCP Fast Open cookie request (kind 34, len 2) before an MSS.
        let area = [34, 2, 2, 4, 0x05, 0xb4, 254, 4, 0xf9, 0x89];
        let parsed = parse(&area);
        assert_eq!(
            parsed,
            vec![
                Unknown {
                    kind: 34,
                    data: vec![]
                },
                Mss { value: 1460 },
                Unknown {
                    kind: 254,
                    data: vec![0xf9, 0x89]
                },
            ]
        );
        assert_eq!(emit(&parsed), area);
    }

    #[test]
    fn truncated_and_bad_lengths_are_malformed_not_panics() {
        for area in [
            &[2u8][..],
            &[2, 4, 0xff],
            &[8, 1],
            &[3, 2, 7],
            &[77, 200, 1],
        ] {
            let parsed = parse(area);
            assert!(
                matches!(parsed.last(), Some(Malformed { .. })),
                "{area:?} -> {parsed:?}"
            );
            assert_eq!(emit(&parsed), area);
        }
    }

    #[test]
    fn display_matches_wireshark() {
        assert_eq!(WindowScale { shift: 10 }.to_string(), "WS=1024");
        assert_eq!(Mss { value: 65495 }.to_string(), "MSS=65495");
    }

    #[test]
    fn kept_options_read_as_parsed_and_serialize_as_the_list() {
        let kept = Options::new(&LINUX_SYN);
        assert_eq!(kept.as_bytes(), LINUX_SYN);
        assert_eq!(kept.to_vec(), parse(&LINUX_SYN));
        assert_eq!(
            serde_json::to_value(kept).unwrap(),
            serde_json::to_value(parse(&LINUX_SYN)).unwrap()
        );
        assert_eq!(Options::default().to_vec(), vec![]);
    }

    proptest::proptest! {
        #[test]
        fn parse_then_emit_is_identity(area in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            proptest::prop_assert_eq!(emit(&parse(&area)), area);
        }
    }
}
