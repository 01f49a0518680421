//! Writing captures to files Wireshark opens.
//!
//! Written by hand rather than through libpcap's dumper, because
//! `pcap_open_dead` fixes the file's snapshot length at 65535 bytes, and
//! loopback frames carry up to 65535 bytes of IP *plus* the link header:
//! readers then cut the biggest frames of a large transfer short. The
//! format is small and fully specified, so the writer is too.

use std::io::{self, Write};
use std::path::Path;

use crate::dissect::{Frame, LinkType};

/// The snapshot length written into file headers: libpcap's maximum, above
/// any loopback frame.
pub const FILE_SNAPLEN: u32 = 262_144;

/// Classic pcap with microsecond timestamps, in this machine's byte order
/// (readers accept both).
pub fn pcap_bytes(link: LinkType, frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + frames.iter().map(|f| 16 + f.data.len()).sum::<usize>());
    out.extend_from_slice(&0xa1b2_c3d4u32.to_ne_bytes());
    out.extend_from_slice(&2u16.to_ne_bytes());
    out.extend_from_slice(&4u16.to_ne_bytes());
    out.extend_from_slice(&0i32.to_ne_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
    out.extend_from_slice(&FILE_SNAPLEN.to_ne_bytes());
    out.extend_from_slice(&(link.dlt() as u32).to_ne_bytes());
    for frame in frames {
        out.extend_from_slice(&(frame.timestamp.as_secs() as u32).to_ne_bytes());
        out.extend_from_slice(&frame.timestamp.subsec_micros().to_ne_bytes());
        out.extend_from_slice(&(frame.data.len() as u32).to_ne_bytes());
        out.extend_from_slice(&frame.wire_len.to_ne_bytes());
        out.extend_from_slice(&frame.data);
    }
    out
}

/// Writes `bytes` to `path` whole: to a temporary name first, then renamed,
/// so a full disk never leaves a file that looks complete but is not.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("partial");
    let result = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match result {
        Ok(()) => std::fs::rename(&tmp, path),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn frames_above_64_kib_survive_a_round_trip_through_libpcap() {
        let big = Frame {
            timestamp: Duration::new(1_700_000_000, 123_456_000),
            wire_len: 65_549,
            data: vec![0xab; 65_549],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pcap");
        write_atomically(&path, &pcap_bytes(LinkType::Ethernet, std::slice::from_ref(&big))).unwrap();
        let (link, frames) = crate::capture::read_file(&path).unwrap();
        assert_eq!(link, LinkType::Ethernet);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data.len(), 65_549);
        assert_eq!(frames[0].wire_len, 65_549);
        assert_eq!(frames[0].timestamp, big.timestamp);
    }
}
