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

/// One interface of a pcapng file: a pairing's loopback.
#[derive(Debug, Clone)]
pub struct Interface<'a> {
    /// `if_name`: Wireshark's `frame.interface_name`, what a display filter
    /// selects a pairing by in a merged file.
    pub name: String,
    pub description: String,
    pub link: LinkType,
    /// The frames, each with an optional comment (`frame.comment`).
    pub frames: Vec<(&'a Frame, Option<String>)>,
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_ne_bytes());
    out.extend_from_slice(&(value.len().min(u16::MAX as usize) as u16).to_ne_bytes());
    out.extend_from_slice(&value[..value.len().min(u16::MAX as usize)]);
    pad4(out);
}

/// A block: type, total length, body, options (if any, with the end
/// marker), total length again.
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8], options: &[(u16, &[u8])]) {
    let mut content = body.to_vec();
    pad4(&mut content);
    if !options.is_empty() {
        for (code, value) in options {
            option(&mut content, *code, value);
        }
        content.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
    }
    let total = (content.len() + 12) as u32;
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&total.to_ne_bytes());
    out.extend_from_slice(&content);
    out.extend_from_slice(&total.to_ne_bytes());
}

const OPT_COMMENT: u16 = 1;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_DESCRIPTION: u16 = 3;
const OPT_IF_TSRESOL: u16 = 9;

/// pcapng: one section whose comment says what the file holds, one
/// interface per pairing, frames in time order across interfaces, each with
/// its comment. Timestamps in nanoseconds.
pub fn pcapng_bytes(section_comment: &str, interfaces: &[Interface<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_ne_bytes());
    shb.extend_from_slice(&1u16.to_ne_bytes());
    shb.extend_from_slice(&0u16.to_ne_bytes());
    shb.extend_from_slice(&(-1i64).to_ne_bytes()); // section length: not given
    let application = format!("tcp-conformance harness {}", env!("CARGO_PKG_VERSION"));
    block(
        &mut out,
        0x0A0D_0D0A,
        &shb,
        &[
            (OPT_COMMENT, section_comment.as_bytes()),
            (OPT_SHB_USERAPPL, application.as_bytes()),
        ],
    );
    for interface in interfaces {
        let mut idb = Vec::new();
        idb.extend_from_slice(&(interface.link.dlt() as u16).to_ne_bytes());
        idb.extend_from_slice(&0u16.to_ne_bytes());
        idb.extend_from_slice(&FILE_SNAPLEN.to_ne_bytes());
        block(
            &mut out,
            1,
            &idb,
            &[
                (OPT_IF_NAME, interface.name.as_bytes()),
                (OPT_IF_DESCRIPTION, interface.description.as_bytes()),
                (OPT_IF_TSRESOL, &[9]),
            ],
        );
    }
    let mut all: Vec<(u32, &Frame, Option<&String>)> = interfaces
        .iter()
        .enumerate()
        .flat_map(|(i, iface)| {
            iface
                .frames
                .iter()
                .map(move |(f, c)| (i as u32, *f, c.as_ref()))
        })
        .collect();
    all.sort_by_key(|(i, f, _)| (f.timestamp, *i));
    for (interface, frame, comment) in all {
        let nanos = frame.timestamp.as_nanos() as u64;
        let mut epb = Vec::with_capacity(20 + frame.data.len());
        epb.extend_from_slice(&interface.to_ne_bytes());
        epb.extend_from_slice(&((nanos >> 32) as u32).to_ne_bytes());
        epb.extend_from_slice(&(nanos as u32).to_ne_bytes());
        epb.extend_from_slice(&(frame.data.len() as u32).to_ne_bytes());
        epb.extend_from_slice(&frame.wire_len.to_ne_bytes());
        epb.extend_from_slice(&frame.data);
        match comment {
            Some(text) => block(&mut out, 6, &epb, &[(OPT_COMMENT, text.as_bytes())]),
            None => block(&mut out, 6, &epb, &[]),
        }
    }
    out
}

/// Writes `bytes` to `path` whole: to a temporary name first, then renamed,
/// so a full disk never leaves a file that looks complete but is not. (No
/// fsync: this guards against a failed write, not against a power cut, and
/// an fsync per capture would cost more than the capture.)
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("partial");
    let result = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
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

    /// The pcap header names the link type and a snaplen that holds every frame.
    #[test]
    fn pcap_header_names_the_link_type() {
        let bytes = pcap_bytes(LinkType::Ethernet, &[]);
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_ne_bytes());
        assert_eq!(u32::from_ne_bytes(bytes[20..24].try_into().unwrap()), 1);
    }
}
