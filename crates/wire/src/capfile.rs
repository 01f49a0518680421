//! Capture files read as a stream, frame by frame: classic pcap (micro- or
//! nanosecond, either byte order) and pcapng (several sections, several
//! interfaces of *different* link types, any `if_tsresol` and
//! `if_tsoffset`).
//!
//! Blocks are parsed by `pcap-parser` over a fixed buffer, so reading a
//! file of any size holds one record at a time. libpcap reads files too,
//! but it refuses a pcapng whose interfaces differ in link type (what
//! `mergecap` makes of an Ethernet and a `tcpdump -i any` capture), and it
//! cannot tell a frame it could not read from the end of the file.
//!
//! What this module promises on bad input: no header field sizes an
//! allocation (a record larger than [`MAX_RECORD`] is an error, whatever
//! its length field says), a frame on an interface the file never declared
//! or of a link type the dissector does not read is [`Next::Unreadable`]
//! (counted, not fatal), and a file that breaks off mid-record is an error
//! that says after which frame.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use crate::dissect::{Frame, LinkType};

/// The read buffer's first size: room for the largest loopback frame
/// (64 KiB plus headers) sixteen times over. Frames are read where they
/// lie in it; a refill moves only the record cut at its end to the front,
/// so the larger it is, the less is ever moved.
const INITIAL_BUFFER: usize = 1024 * 1024;

/// The largest record (pcap packet record or pcapng block) read. The
/// buffer doubles up to here when a record needs it; a record claiming more
/// is refused rather than allocated.
pub const MAX_RECORD: usize = 16 * 1024 * 1024;

/// The file's container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap { nanosecond: bool, big_endian: bool },
    Pcapng,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Pcap {
                nanosecond,
                big_endian,
            } => write!(
                f,
                "pcap ({}, {})",
                if *nanosecond {
                    "nanosecond"
                } else {
                    "microsecond"
                },
                if *big_endian {
                    "big-endian"
                } else {
                    "little-endian"
                }
            ),
            Format::Pcapng => f.write_str("pcapng"),
        }
    }
}

/// One capture interface: its link layer and its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// The `LINKTYPE_*` number as the file gives it.
    pub dlt: i32,
    /// Timestamp units per second (10^6 for classic pcap, 10^9 for its
    /// nanosecond variant, `if_tsresol` in pcapng).
    units_per_second: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_seconds: i64,
}

impl Interface {
    /// The link type, when the dissector reads it.
    pub fn link(&self) -> Option<LinkType> {
        LinkType::from_dlt(self.dlt)
    }
}

/// What [`CaptureFile::next_frame`] or [`CaptureFile::next_view`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A frame, and its link type.
    Frame(LinkType),
    /// A frame record that cannot be dissected, with the reason; it still
    /// has a frame number, as in Wireshark.
    Unreadable(String),
    /// The end of the file.
    End,
}

/// Why the file itself cannot be read (on).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("the file is empty")]
    Empty,
    #[error("not a pcap or pcapng file (its first bytes are no capture header)")]
    NotACapture,
    #[error("the file breaks off in the middle of a record after frame {frames} (truncated?)")]
    Truncated { frames: usize },
    #[error("a record after frame {frames} is malformed ({detail})")]
    Malformed { frames: usize, detail: String },
    #[error("a record after frame {frames} claims more than {} MiB; no frame is that large", MAX_RECORD >> 20)]
    TooLarge { frames: usize },
    #[error("reading failed after frame {frames}: {cause}")]
    Io { frames: usize, cause: String },
}

/// The last error the underlying reader returned, kept for the message:
/// pcap-parser reports a failed read without its cause, and "reading
/// failed" is no help when the cause is "Is a directory".
#[derive(Clone, Default)]
struct LastError(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl LastError {
    fn take(&self) -> String {
        self.0
            .lock()
            .ok()
            .and_then(|mut e| e.take())
            .unwrap_or_else(|| "the reader gave no reason".into())
    }
}

/// A reader that records its errors in a [`LastError`].
struct Remembering<R> {
    inner: R,
    last: LastError,
}

impl<R: Read> Read for Remembering<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if let Ok(mut last) = self.last.0.lock() {
                *last = Some(e.to_string());
            }
        })
    }
}

/// A capture file being read, one frame at a time.
pub struct CaptureFile {
    reader: Box<dyn PcapReaderIterator + Send>,
    /// Why the last read failed, as the system said it.
    last: LastError,
    buffer_size: usize,
    format: Format,
    /// The current section's interfaces, by pcapng interface ID; classic
    /// pcap has one.
    section: Vec<Interface>,
    /// Every interface of every section, for describing the file.
    interfaces: Vec<Interface>,
    /// Frame records read so far: the last frame's number.
    frames: usize,
    /// The length of the record last given as a view: it stays in the
    /// buffer until the next read.
    given: usize,
}

impl fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureFile")
            .field("format", &self.format)
            .field("interfaces", &self.interfaces)
            .field("frames", &self.frames)
            .finish()
    }
}

impl CaptureFile {
    pub fn open(path: &Path) -> Result<CaptureFile, ReadError> {
        let file = std::fs::File::open(path).map_err(|source| ReadError::Open {
            path: path.display().to_string(),
            source,
        })?;
        // No BufReader: the parser's own buffer is the one the file is
        // read into, once, and frames are read where they lie in it.
        CaptureFile::from_reader(file)
    }

    pub fn from_reader(reader: impl Read + Send + 'static) -> Result<CaptureFile, ReadError> {
        let last = LastError::default();
        let reader = Remembering {
            inner: reader,
            last: last.clone(),
        };
        let reader = pcap_parser::create_reader(INITIAL_BUFFER, reader).map_err(|e| match e {
            PcapError::Eof => ReadError::Empty,
            PcapError::ReadError => ReadError::Io {
                frames: 0,
                cause: last.take(),
            },
            _ => ReadError::NotACapture,
        })?;
        let mut file = CaptureFile {
            last,
            reader,
            buffer_size: INITIAL_BUFFER,
            format: Format::Pcapng,
            section: Vec::new(),
            interfaces: Vec::new(),
            frames: 0,
            given: 0,
        };
        // The first block is the file header (pcap) or section header
        // (pcapng); reading it tells the format before any frame.
        file.whole_record()?;
        if let Ok((used, block)) = file.reader.next() {
            if take(
                block,
                &mut file.format,
                &mut file.section,
                &mut file.interfaces,
            )
            .is_none()
            {
                file.reader.consume_noshift(used);
            }
        }
        Ok(file)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Every interface declared so far, in file order (all of them once
    /// the file has been read to its end).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Frame records read so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Reads the next frame into `frame`, reusing its buffer.
    pub fn next_frame(&mut self, frame: &mut Frame) -> Result<Next, ReadError> {
        let (next, view) = self.next_view()?;
        frame.timestamp = view.timestamp;
        frame.wire_len = view.wire_len;
        frame.data.clear();
        frame.data.extend_from_slice(view.data);
        Ok(next)
    }

    /// The next frame, as a view of the bytes where the reader holds
    /// them: nothing is copied. The view lasts until the next read.
    pub fn next_view(&mut self) -> Result<(Next, Frame<&[u8]>), ReadError> {
        // The record given last time is done with.
        self.reader.consume_noshift(std::mem::take(&mut self.given));
        loop {
            let used = self.whole_record()?;
            if used == 0 {
                return Ok((Next::End, empty_view()));
            }
            // Headers and interfaces are read and let go here; a frame is
            // read again below, to be given out (a borrow returned from
            // inside this loop would hold the reader for the refills).
            let Ok((_, block)) = self.reader.next() else {
                break;
            };
            if take(
                block,
                &mut self.format,
                &mut self.section,
                &mut self.interfaces,
            )
            .is_some()
            {
                break;
            }
            self.reader.consume_noshift(used);
        }
        let frames = self.frames;
        let Ok((used, block)) = self.reader.next() else {
            return Err(ReadError::Malformed {
                frames,
                detail: "a record read twice gave two answers".into(),
            });
        };
        let taken = take(
            block,
            &mut self.format,
            &mut self.section,
            &mut self.interfaces,
        );
        self.given = used;
        self.frames += 1;
        Ok(taken.unwrap_or((Next::End, empty_view())))
    }

    /// Makes sure the buffer starts with a whole record, and returns its
    /// length; 0 at the end of the file.
    fn whole_record(&mut self) -> Result<usize, ReadError> {
        loop {
            let frames = self.frames;
            match self.reader.next() {
                Ok((used, _)) => return Ok(used),
                Err(PcapError::Eof) => return Ok(0),
                Err(PcapError::Incomplete(_)) => self.refill()?,
                Err(PcapError::BufferTooSmall) => self.grow()?,
                Err(PcapError::UnexpectedEof) => return Err(ReadError::Truncated { frames }),
                Err(PcapError::ReadError) => {
                    return Err(ReadError::Io {
                        frames,
                        cause: self.last.take(),
                    })
                }
                Err(other) => {
                    let detail = match other {
                        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                            format!("{kind:?}")
                        }
                        _ => "not a record".to_string(),
                    };
                    return Err(ReadError::Malformed { frames, detail });
                }
            }
        }
    }

    /// More bytes for an incomplete record; a full buffer that gained
    /// nothing must grow, or the loop would spin.
    fn refill(&mut self) -> Result<(), ReadError> {
        let before = self.reader.data().len();
        self.reader.refill().map_err(|_| ReadError::Io {
            frames: self.frames,
            cause: self.last.take(),
        })?;
        if self.reader.data().len() == before && !self.reader.reader_exhausted() {
            self.grow()?;
        }
        Ok(())
    }

    fn grow(&mut self) -> Result<(), ReadError> {
        if self.buffer_size >= MAX_RECORD {
            return Err(ReadError::TooLarge {
                frames: self.frames,
            });
        }
        self.buffer_size = (self.buffer_size * 2).min(MAX_RECORD);
        self.reader.grow(self.buffer_size);
        self.reader.refill().map_err(|_| ReadError::Io {
            frames: self.frames,
            cause: self.last.take(),
        })
    }
}

/// Reads one parsed block into the reader's state; for a frame, gives
/// what it is and a view of it.
fn take<'a>(
    block: PcapBlockOwned<'a>,
    format: &mut Format,
    interfaces: &mut Vec<Interface>,
    seen: &mut Vec<Interface>,
) -> Option<(Next, Frame<&'a [u8]>)> {
    let mut declare = |interface: Interface, interfaces: &mut Vec<Interface>| {
        interfaces.push(interface);
        seen.push(interface);
    };
    match block {
        PcapBlockOwned::LegacyHeader(header) => {
            let nanosecond = header.is_nanosecond_precision();
            *format = Format::Pcap {
                nanosecond,
                big_endian: header.is_bigendian(),
            };
            declare(
                Interface {
                    dlt: header.network.0,
                    units_per_second: if nanosecond { 1_000_000_000 } else { 1_000_000 },
                    offset_seconds: 0,
                },
                interfaces,
            );
            None
        }
        PcapBlockOwned::Legacy(record) => {
            let units = interfaces.first().map_or(1_000_000, |i| i.units_per_second);
            let fraction = u64::from(record.ts_usec).min(units - 1);
            let at = timestamp(u64::from(record.ts_sec) * units + fraction, units, 0);
            Some(view(
                at,
                record.data,
                record.caplen,
                record.origlen,
                interfaces.first(),
                0,
            ))
        }
        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
            // A new section: interface IDs start again from 0.
            *format = Format::Pcapng;
            interfaces.clear();
            None
        }
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
            declare(
                Interface {
                    dlt: idb.linktype.0,
                    // An invalid if_tsresol falls back to the default
                    // (microseconds): the time is shown, never compared.
                    units_per_second: idb.ts_resolution().unwrap_or(1_000_000),
                    offset_seconds: idb.if_tsoffset,
                },
                interfaces,
            );
            None
        }
        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
            let interface = interfaces.get(epb.if_id as usize);
            let at = interface.map_or(Duration::ZERO, |i| {
                let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                timestamp(ticks, i.units_per_second, i.offset_seconds)
            });
            Some(view(
                at,
                epb.data,
                epb.caplen,
                epb.origlen,
                interface,
                epb.if_id,
            ))
        }
        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
            // No timestamp and no caplen: the data is the frame (up to the
            // block's padding), always on the first interface.
            let len = spb.origlen.min(spb.data.len() as u32);
            Some(view(
                Duration::ZERO,
                spb.data,
                len,
                spb.origlen,
                interfaces.first(),
                0,
            ))
        }
        PcapBlockOwned::NG(_) => None,
    }
}

fn empty_view() -> Frame<&'static [u8]> {
    Frame {
        timestamp: Duration::ZERO,
        wire_len: 0,
        data: &[],
    }
}

/// A frame record as a view, and what it is.
fn view<'a>(
    timestamp: Duration,
    data: &'a [u8],
    caplen: u32,
    origlen: u32,
    interface: Option<&Interface>,
    if_id: u32,
) -> (Next, Frame<&'a [u8]>) {
    // pcapng pads the data to 4 bytes; a caplen beyond the data is a lie.
    let captured = &data[..(caplen as usize).min(data.len())];
    let frame = Frame {
        timestamp,
        wire_len: origlen.max(captured.len() as u32),
        data: captured,
    };
    let next = match interface {
        None => Next::Unreadable(format!(
            "interface {if_id} was never declared (no Interface Description Block)"
        )),
        Some(i) => match i.link() {
            Some(link) => Next::Frame(link),
            None => Next::Unreadable(format!(
                "link type {} is not supported; supported: {}",
                i.dlt,
                LinkType::supported()
            )),
        },
    };
    (next, frame)
}

/// `ticks` units since the epoch, shifted by `offset` seconds, as a
/// duration; out-of-range values are clamped, never overflowed.
fn timestamp(ticks: u64, units_per_second: u64, offset: i64) -> Duration {
    let units = units_per_second.max(1);
    let seconds = i128::from(ticks / units) + i128::from(offset);
    let nanos = u128::from(ticks % units) * 1_000_000_000 / u128::from(units);
    Duration::new(seconds.clamp(0, i128::from(u64::MAX)) as u64, nanos as u32)
}

/// The link types of a file's interfaces, each once, in file order.
pub fn distinct_links(interfaces: &[Interface]) -> Vec<i32> {
    let mut out = Vec::new();
    for i in interfaces {
        if !out.contains(&i.dlt) {
            out.push(i.dlt);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::savefile::{pcap_bytes, pcapng_bytes, Interface as Out};

    fn read_all(bytes: Vec<u8>) -> Result<(CaptureFile, Vec<(Next, Frame)>), ReadError> {
        let mut file = CaptureFile::from_reader(std::io::Cursor::new(bytes))?;
        let mut out = Vec::new();
        loop {
            let mut frame = Frame {
                timestamp: Duration::ZERO,
                wire_len: 0,
                data: Vec::new(),
            };
            match file.next_frame(&mut frame)? {
                Next::End => return Ok((file, out)),
                next => out.push((next, frame)),
            }
        }
    }

    #[test]
    fn pcap_is_read_frame_for_frame() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let (file, back) = read_all(pcap_bytes(LinkType::Ethernet, &frames)).unwrap();
        assert_eq!(
            file.format(),
            Format::Pcap {
                nanosecond: false,
                big_endian: false
            }
        );
        assert_eq!(back.len(), frames.len());
        for (a, (next, b)) in frames.iter().zip(&back) {
            assert_eq!(*next, Next::Frame(LinkType::Ethernet));
            assert_eq!(a.data, b.data);
            assert_eq!(a.timestamp.as_micros(), b.timestamp.as_micros());
        }
    }

    #[test]
    fn pcapng_interfaces_of_different_link_types_are_each_read_with_their_own() {
        let eth = fixtures::tutorial(LinkType::Ethernet);
        let sll2 = fixtures::tutorial(LinkType::LinuxSll2);
        fn interface(link: LinkType, frames: &[Frame]) -> Out<'_> {
            Out {
                name: format!("{link:?}"),
                description: String::new(),
                link,
                frames: frames.iter().map(|f| (f, None)).collect(),
            }
        }
        let bytes = pcapng_bytes(
            "two links",
            &[
                interface(LinkType::Ethernet, &eth),
                interface(LinkType::LinuxSll2, &sll2),
            ],
        );
        let (file, back) = read_all(bytes).unwrap();
        assert_eq!(file.format(), Format::Pcapng);
        assert_eq!(distinct_links(file.interfaces()), [1, 276]);
        let count = |link| back.iter().filter(|(n, _)| *n == Next::Frame(link)).count();
        assert_eq!(back.len(), eth.len() + sll2.len());
        assert_eq!(count(LinkType::Ethernet), eth.len());
        assert_eq!(count(LinkType::LinuxSll2), sll2.len());
        // Each frame's bytes are of its own interface's link layer.
        for (next, frame) in &back {
            let Next::Frame(link) = next else {
                panic!("{next:?}")
            };
            assert!(crate::dissect::dissect(*link, 1, frame).unwrap().is_some());
        }
    }

    #[test]
    fn an_unsupported_link_type_is_an_unreadable_frame_not_the_end() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let mut bytes = pcap_bytes(LinkType::Ethernet, &frames);
        bytes[20..24].copy_from_slice(&147u32.to_le_bytes()); // USER0
        let (_, back) = read_all(bytes).unwrap();
        assert_eq!(back.len(), frames.len());
        match &back[0].0 {
            Next::Unreadable(why) => assert!(why.starts_with("link type 147 is not supported")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_truncated_file_says_after_which_frame() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let bytes = pcap_bytes(LinkType::Ethernet, &frames);
        let cut = bytes.len() - 10;
        let err = read_all(bytes[..cut].to_vec()).unwrap_err();
        assert!(matches!(err, ReadError::Truncated { frames: 7 }), "{err}");
    }

    #[test]
    fn a_record_claiming_4_gib_is_refused_not_allocated() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let mut bytes = pcap_bytes(LinkType::Ethernet, &frames[..1]);
        // The first record's caplen and origlen.
        bytes[24 + 8..24 + 16].copy_from_slice(&[0xff; 8]);
        bytes.extend(std::iter::repeat_n(0u8, 1 << 20));
        let err = read_all(bytes).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::TooLarge { frames: 0 } | ReadError::Truncated { frames: 0 }
            ),
            "{err}"
        );
    }

    #[test]
    fn empty_and_foreign_files_are_named() {
        assert!(matches!(read_all(Vec::new()), Err(ReadError::Empty)));
        assert!(matches!(
            read_all(b"GIF89a and then some bytes to fill a header".to_vec()),
            Err(ReadError::NotACapture)
        ));
    }

    #[test]
    fn timestamps_follow_the_resolution_and_never_overflow() {
        assert_eq!(
            timestamp(1_500_000_000_123_456_789, 1_000_000_000, 0),
            Duration::new(1_500_000_000, 123_456_789)
        );
        assert_eq!(timestamp(3, 2, 0), Duration::new(1, 500_000_000));
        assert_eq!(timestamp(u64::MAX, 1, i64::MAX), Duration::new(u64::MAX, 0));
        assert_eq!(timestamp(5, 1, i64::MIN), Duration::ZERO);
    }
}
