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
pub fn write_pcap(w: &mut impl Write, link: LinkType, frames: &[Frame]) -> io::Result<()> {
    let mut head = Vec::with_capacity(24);
    head.extend_from_slice(&0xa1b2_c3d4u32.to_ne_bytes());
    head.extend_from_slice(&2u16.to_ne_bytes());
    head.extend_from_slice(&4u16.to_ne_bytes());
    head.extend_from_slice(&0i32.to_ne_bytes()); // thiszone
    head.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
    head.extend_from_slice(&FILE_SNAPLEN.to_ne_bytes());
    head.extend_from_slice(&(link.dlt() as u32).to_ne_bytes());
    w.write_all(&head)?;
    for frame in frames {
        let mut record = [0u8; 16];
        record[..4].copy_from_slice(&(frame.timestamp.as_secs() as u32).to_ne_bytes());
        record[4..8].copy_from_slice(&frame.timestamp.subsec_micros().to_ne_bytes());
        record[8..12].copy_from_slice(&(frame.data.len() as u32).to_ne_bytes());
        record[12..].copy_from_slice(&frame.wire_len.to_ne_bytes());
        w.write_all(&record)?;
        w.write_all(&frame.data)?;
    }
    Ok(())
}

/// [`write_pcap`] into memory.
pub fn pcap_bytes(link: LinkType, frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + frames.iter().map(|f| 16 + f.data.len()).sum::<usize>());
    write_pcap(&mut out, link, frames).expect("writing to memory");
    out
}

/// [`write_pcap`] into `path`, whole or not at all.
pub fn save_pcap(path: &Path, link: LinkType, frames: &[Frame]) -> io::Result<()> {
    write_atomically_with(path, |w| write_pcap(w, link, frames))
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
pub fn write_pcapng(
    w: &mut impl Write,
    section_comment: &str,
    interfaces: &[Interface<'_>],
) -> io::Result<()> {
    // Each block is put together in `out`, then written and cleared: the
    // file is never whole in memory.
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
    w.write_all(&out)?;
    out.clear();
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
        w.write_all(&out)?;
        out.clear();
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
        w.write_all(&out)?;
        out.clear();
    }
    Ok(())
}

/// [`write_pcapng`] into memory.
pub fn pcapng_bytes(section_comment: &str, interfaces: &[Interface<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    write_pcapng(&mut out, section_comment, interfaces).expect("writing to memory");
    out
}

/// [`write_pcapng`] into `path`, whole or not at all.
pub fn save_pcapng(
    path: &Path,
    section_comment: &str,
    interfaces: &[Interface<'_>],
) -> io::Result<()> {
    write_atomically_with(path, |w| write_pcapng(w, section_comment, interfaces))
}

/// Writes `bytes` to `path` whole: to a temporary name first, then renamed,
/// so a full disk never leaves a file that looks complete but is not. (No
/// fsync: this guards against a failed write, not against a power cut, and
/// an fsync per capture would cost more than the capture.)
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(path, |w| w.write_all(bytes))
}

/// One block of a pcapng file: its type and its body (without the two
/// length fields).
struct Block {
    kind: u32,
    body: Vec<u8>,
}

/// The largest block [`merge_pcapng`] accepts: a frame of the largest
/// snapshot length with room for its header and comment. A length field
/// beyond it is a damaged file, not a reason to allocate.
const MAX_BLOCK: usize = FILE_SNAPLEN as usize + 64 * 1024;

/// Reads the next block of a pcapng file this module wrote (this machine's
/// byte order); `None` at the end.
fn read_block(r: &mut impl io::Read) -> io::Result<Option<Block>> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let kind = u32::from_ne_bytes(head[..4].try_into().expect("4 bytes"));
    let total = u32::from_ne_bytes(head[4..].try_into().expect("4 bytes")) as usize;
    if !(12..=MAX_BLOCK).contains(&total) || !total.is_multiple_of(4) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a pcapng block of {total} bytes"),
        ));
    }
    let mut body = vec![0u8; total - 8];
    r.read_exact(&mut body)?;
    body.truncate(total - 12); // the trailing length
    Ok(Some(Block { kind, body }))
}

fn write_block(w: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let total = (body.len() + 12) as u32;
    w.write_all(&kind.to_ne_bytes())?;
    w.write_all(&total.to_ne_bytes())?;
    w.write_all(body)?;
    w.write_all(&total.to_ne_bytes())
}

/// One input of a merge: a pcapng file this module wrote, holding one
/// interface, and the name and description its interface gets.
pub struct MergeInput<'a> {
    pub file: &'a Path,
    pub name: String,
    pub description: String,
}

/// Writes one pcapng with each input on an interface of its own, frames in
/// time order across interfaces, comments kept: what [`pcapng_bytes`] would
/// write for the same frames, but read back from the inputs' files as it
/// goes, so memory holds one block per input, never the frames.
pub fn merge_pcapng(
    section_comment: &str,
    inputs: &[MergeInput<'_>],
    out: &Path,
) -> io::Result<()> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    const SHB: u32 = 0x0A0D_0D0A;
    const IDB: u32 = 1;
    const EPB: u32 = 6;
    let mut readers = Vec::with_capacity(inputs.len());
    let head = pcapng_bytes(section_comment, &[]);
    write_atomically_with(out, |w| {
        w.write_all(&head)?;
        for (index, input) in inputs.iter().enumerate() {
            let mut r = io::BufReader::new(std::fs::File::open(input.file)?);
            let mut link = None;
            while let Some(block) = read_block(&mut r)? {
                match block.kind {
                    SHB => {}
                    IDB if block.body.len() >= 8 => {
                        link = Some(u16::from_ne_bytes([block.body[0], block.body[1]]));
                        break;
                    }
                    _ => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: no interface before the frames", input.file.display()),
                        ))
                    }
                }
            }
            let mut idb = Vec::new();
            idb.extend_from_slice(&link.unwrap_or(1).to_ne_bytes());
            idb.extend_from_slice(&0u16.to_ne_bytes());
            idb.extend_from_slice(&FILE_SNAPLEN.to_ne_bytes());
            let mut content = Vec::new();
            block(
                &mut content,
                IDB,
                &idb,
                &[
                    (OPT_IF_NAME, input.name.as_bytes()),
                    (OPT_IF_DESCRIPTION, input.description.as_bytes()),
                    (OPT_IF_TSRESOL, &[9]),
                ],
            );
            w.write_all(&content)?;
            readers.push((index as u32, r));
        }
        // The next frame of each input, earliest first.
        let next = |r: &mut io::BufReader<std::fs::File>| -> io::Result<Option<(u64, Vec<u8>)>> {
            while let Some(block) = read_block(r)? {
                if block.kind == EPB && block.body.len() >= 20 {
                    let high = u32::from_ne_bytes(block.body[4..8].try_into().expect("4 bytes"));
                    let low = u32::from_ne_bytes(block.body[8..12].try_into().expect("4 bytes"));
                    return Ok(Some(((u64::from(high) << 32) | u64::from(low), block.body)));
                }
            }
            Ok(None)
        };
        let mut heap = BinaryHeap::new();
        let mut pending: Vec<Option<Vec<u8>>> = vec![None; readers.len()];
        for (slot, (_, r)) in readers.iter_mut().enumerate() {
            if let Some((time, body)) = next(r)? {
                heap.push(Reverse((time, slot)));
                pending[slot] = Some(body);
            }
        }
        while let Some(Reverse((_, slot))) = heap.pop() {
            let mut body = pending[slot].take().expect("a pending frame");
            body[..4].copy_from_slice(&readers[slot].0.to_ne_bytes());
            write_block(w, EPB, &body)?;
            if let Some((time, body)) = next(&mut readers[slot].1)? {
                heap.push(Reverse((time, slot)));
                pending[slot] = Some(body);
            }
        }
        Ok(())
    })
}

/// Writes `path` whole through `fill`, as [`write_atomically`] does.
pub fn write_atomically_with(
    path: &Path,
    fill: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = path.with_extension("partial");
    let result = std::fs::File::create(&tmp).and_then(|f| {
        let mut w = io::BufWriter::with_capacity(256 * 1024, f);
        fill(&mut w)?;
        w.flush()
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

    /// Merging the files of two interfaces gives what writing both at once
    /// gives, byte for byte: the same frames, order, names and comments.
    #[test]
    fn merging_files_equals_writing_the_interfaces_together() {
        let frames = crate::fixtures::tutorial(LinkType::Ethernet);
        // Two interfaces whose frames interleave in time.
        let early: Vec<&Frame> = frames.iter().step_by(2).collect();
        let late: Vec<&Frame> = frames.iter().skip(1).step_by(2).collect();
        fn iface<'a>(name: &str, frames: &[&'a Frame]) -> Interface<'a> {
            Interface {
                name: name.into(),
                description: format!("{name} described"),
                link: LinkType::Ethernet,
                frames: frames
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (*f, (i % 2 == 0).then(|| format!("comment {i}"))))
                    .collect(),
            }
        }
        let dir = std::env::temp_dir().join(format!("wire-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.pcapng"), dir.join("b.pcapng"));
        let mut lo_a = iface("python__rust", &early);
        lo_a.name = "lo".into();
        lo_a.description = "x".into();
        let mut lo_b = iface("rust__python", &late);
        lo_b.name = "lo".into();
        lo_b.description = "y".into();
        write_atomically(&a, &pcapng_bytes("cell a", &[lo_a])).unwrap();
        write_atomically(&b, &pcapng_bytes("cell b", &[lo_b])).unwrap();
        let merged = dir.join("m.pcapng");
        merge_pcapng(
            "both",
            &[
                MergeInput {
                    file: &a,
                    name: "python__rust".into(),
                    description: "python__rust described".into(),
                },
                MergeInput {
                    file: &b,
                    name: "rust__python".into(),
                    description: "rust__python described".into(),
                },
            ],
            &merged,
        )
        .unwrap();
        let expected = pcapng_bytes(
            "both",
            &[iface("python__rust", &early), iface("rust__python", &late)],
        );
        assert_eq!(std::fs::read(&merged).unwrap(), expected);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A length field larger than any block this module writes is an
    /// error, not an allocation of that size.
    #[test]
    fn a_damaged_block_length_is_refused() {
        let mut bytes = pcapng_bytes("x", &[]);
        bytes.extend_from_slice(&6u32.to_ne_bytes());
        bytes.extend_from_slice(&u32::MAX.to_ne_bytes());
        let err = read_block(&mut &bytes[bytes.len() - 8..])
            .err()
            .expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    /// The pcap header names the link type and a snaplen that holds every frame.
    #[test]
    fn pcap_header_names_the_link_type() {
        let bytes = pcap_bytes(LinkType::Ethernet, &[]);
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_ne_bytes());
        assert_eq!(u32::from_ne_bytes(bytes[20..24].try_into().unwrap()), 1);
    }
}
