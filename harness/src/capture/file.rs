//! Capture files: read by [`wire::capfile`] (pcap and pcapng alike),
//! written by [`wire::savefile`].

use std::path::Path;
use std::time::Duration;

use wire::capfile::{CaptureFile, Next};
use wire::dissect::{Frame, LinkType};
use wire::savefile;

use super::CaptureError;

/// Copies a libpcap packet out of its buffer, which the next read reuses.
pub(super) fn owned_frame(packet: &pcap::Packet<'_>) -> Frame {
    let ts = packet.header.ts;
    // A file can hold any numbers here; out-of-range ones are clamped, not
    // trusted to multiply without overflow.
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let micros = u32::try_from(ts.tv_usec).unwrap_or(0).min(999_999);
    Frame {
        timestamp: Duration::new(secs, micros * 1000),
        wire_len: packet.header.len,
        data: packet.data.to_vec(),
    }
}

/// Writes frames as a classic pcap file, which Wireshark and tshark open.
pub fn save_pcap(path: &Path, link: LinkType, frames: &[Frame]) -> Result<(), CaptureError> {
    savefile::save_pcap(path, link, frames).map_err(|e| CaptureError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Reads a whole pcap or pcapng file of one link type into memory (a
/// cell's own capture, a fixture); `inspect` streams instead (see
/// the survey in the verdict stage).
pub fn read_file(path: &Path) -> Result<(LinkType, Vec<Frame>), CaptureError> {
    let read_err = |message: String| CaptureError::Read {
        path: path.display().to_string(),
        message,
    };
    let mut file = CaptureFile::open(path).map_err(|e| read_err(e.to_string()))?;
    let mut frames = Vec::new();
    let mut link = None;
    loop {
        let mut frame = Frame {
            timestamp: Duration::ZERO,
            wire_len: 0,
            data: Vec::new(),
        };
        match file
            .next_frame(&mut frame)
            .map_err(|e| read_err(e.to_string()))?
        {
            Next::End => break,
            Next::Frame(this) if link.is_none_or(|l| l == this) => {
                link = Some(this);
                frames.push(frame);
            }
            Next::Frame(other) => {
                return Err(read_err(format!(
                    "frame {} is {other:?}, not {:?}: one link type was expected",
                    file.frames(),
                    link.unwrap_or(other)
                )))
            }
            Next::Unreadable(why) => {
                return match file.interfaces().iter().find(|i| i.link().is_none()) {
                    Some(i) => Err(CaptureError::LinkType(i.dlt)),
                    None => Err(read_err(format!("frame {}: {why}", file.frames()))),
                }
            }
        }
    }
    let link = link
        .or_else(|| file.interfaces().first().and_then(|i| i.link()))
        .unwrap_or(LinkType::Ethernet);
    Ok((link, frames))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wire::savefile::{pcap_bytes, pcapng_bytes, write_atomically, Interface};

    #[test]
    fn pcapng_is_read_back_frame_for_frame() {
        let frames = wire::fixtures::tutorial(LinkType::Ethernet);
        let interface = Interface {
            name: "hello/python×rust".into(),
            description: "test".into(),
            link: LinkType::Ethernet,
            frames: frames
                .iter()
                .map(|f| (f, Some("a comment, ünïcode".to_string())))
                .collect(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcapng");
        write_atomically(&path, &pcapng_bytes("section", &[interface])).unwrap();
        let (link, back) = read_file(&path).unwrap();
        assert_eq!(link, LinkType::Ethernet);
        assert_eq!(back.len(), frames.len());
        for (a, b) in frames.iter().zip(&back) {
            assert_eq!(a.data, b.data);
            assert_eq!(a.timestamp.as_micros(), b.timestamp.as_micros());
        }
    }

    #[test]
    fn frames_above_64_kib_survive_a_round_trip() {
        let big = Frame {
            timestamp: Duration::new(1_700_000_000, 123_456_000),
            wire_len: 65_549,
            data: vec![0xab; 65_549],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pcap");
        write_atomically(
            &path,
            &pcap_bytes(LinkType::Ethernet, std::slice::from_ref(&big)),
        )
        .unwrap();
        let (link, frames) = read_file(&path).unwrap();
        assert_eq!(link, LinkType::Ethernet);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data.len(), 65_549);
        assert_eq!(frames[0].wire_len, 65_549);
        assert_eq!(frames[0].timestamp, big.timestamp);
    }
}
