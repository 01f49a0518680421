//! From captured frames to TCP segments.
//!
//! Link, IP and TCP headers are read by etherparse; only the link types it
//! does not know (BSD NULL/LOOP) and the TCP options area are handled here.
//! A frame that cannot be read is an error carrying its frame number, the
//! same number Wireshark shows, so a user can jump straight to it.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use etherparse::{LaxNetSlice, LaxSlicedPacket, NetSlice, SlicedPacket, TransportSlice};

use crate::decap::{self, Start};
use crate::defrag::{Defragmenter, Fragment};
use crate::seq::SeqNum;
use crate::tcp_options::Options;

/// How a link type's header leads to the IP packet: all the dissector
/// needs to know of a link type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkHeader {
    /// Ethernet, read whole by `decap` (VLAN tags, MPLS, PPPoE, LLC/SNAP).
    Ethernet,
    /// A Linux cooked header of `len` bytes with the EtherType at
    /// `ether_type_at`. (Read here rather than by etherparse, which takes
    /// only the Ethernet hardware type: a capture of `lo` says
    /// ARPHRD_LOOPBACK.)
    Cooked { ether_type_at: usize, len: usize },
    /// Nothing before the IP header.
    Ip,
    /// A 4-byte address family, in network byte order (LOOP) or in the
    /// writer's (NULL), then the IP header.
    LoopbackFamily { network_order: bool },
    /// A header `decap` reads from the frame's start to the IP packet.
    Decap(Start),
}

/// Declares the link types, one row each: the variant (with its doc), its
/// `LINKTYPE_*` numbers (the first is the one written), the words error
/// messages use, and its header. A new link type is one row.
macro_rules! link_types {
    ($( $(#[$doc:meta])* $variant:ident = [$($dlt:literal),+], $words:literal, $header:expr; )*) => {
        /// Link-layer header types (the `LINKTYPE_*` numbers of pcap files).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
        pub enum LinkType {
            $( $(#[$doc])* $variant, )*
        }

        /// Every link type with its numbers, words and header.
        const LINK_TYPES: &[(LinkType, &[i32], &str, LinkHeader)] = &[
            $( (LinkType::$variant, &[$($dlt),+], $words, $header), )*
        ];
    };
}

link_types! {
    /// 1: Ethernet; Linux `lo` has all-zero MAC addresses.
    Ethernet = [1], "Ethernet (1, with VLAN tags, MPLS, PPPoE and LLC/SNAP)", LinkHeader::Ethernet;
    /// 113: Linux cooked capture v1 (`tcpdump -i any -y LINUX_SLL`, and
    /// `-i any` before libpcap 1.10): a 16-byte header whose last two
    /// bytes are the EtherType, whatever the device (Ethernet, loopback,
    /// tunnel) and whichever way the packet went.
    LinuxSll = [113], "Linux cooked v1 (113)", LinkHeader::Cooked { ether_type_at: 14, len: 16 };
    /// 276: Linux cooked capture v2 (`tcpdump -i any` with libpcap 1.10 and
    /// later): a 20-byte header that starts with the EtherType.
    LinuxSll2 = [276], "Linux cooked v2 (276)", LinkHeader::Cooked { ether_type_at: 0, len: 20 };
    /// 101 (or 12 or 14 on some systems): raw IPv4/IPv6.
    Raw = [101, 12, 14], "raw IP (101, 12, 14)", LinkHeader::Ip;
    /// 228: raw IPv4, nothing before the IP header.
    Ipv4 = [228], "IPv4 (228)", LinkHeader::Ip;
    /// 229: raw IPv6, nothing before the IP header.
    Ipv6 = [229], "IPv6 (229)", LinkHeader::Ip;
    /// 0: BSD loopback, 4-byte address family in host byte order (macOS `lo0`).
    Null = [0], "BSD NULL (0)", LinkHeader::LoopbackFamily { network_order: false };
    /// 108: OpenBSD loopback, family in network byte order.
    Loop = [108], "LOOP (108)", LinkHeader::LoopbackFamily { network_order: true };
    /// 10: FDDI, with LLC/SNAP before the IP header.
    Fddi = [10], "FDDI (10)", LinkHeader::Decap(Start::Fddi);
    /// 239: Linux NFLOG (`tcpdump -i nflog:N`): a header and TLVs, one of
    /// them the IP packet.
    Nflog = [239], "NFLOG (239)", LinkHeader::Decap(Start::Nflog);
}

impl LinkType {
    fn row(self) -> &'static (LinkType, &'static [i32], &'static str, LinkHeader) {
        LINK_TYPES
            .iter()
            .find(|row| row.0 == self)
            .expect("every link type has its row")
    }

    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        LINK_TYPES
            .iter()
            .find(|row| row.1.contains(&dlt))
            .map(|row| row.0)
    }

    /// The number written for it in a capture file.
    pub fn dlt(self) -> i32 {
        self.row().1[0]
    }

    fn header(self) -> LinkHeader {
        self.row().3
    }

    /// Every link type the dissector reads, for error messages.
    pub fn supported() -> String {
        let words: Vec<&str> = LINK_TYPES.iter().map(|row| row.2).collect();
        let (last, rest) = words.split_last().expect("link types");
        format!("{} and {last}", rest.join(", "))
    }
}

/// One captured frame: owned (`Frame`, the default), or a view of the
/// bytes where they were read (`Frame<&[u8]>`, see [`Frame::view`]).
/// Dissection reads either, and a view is never copied: a file's frames
/// are dissected where the reader holds them.
#[derive(Debug, Clone)]
pub struct Frame<D = Vec<u8>> {
    /// Time since the Unix epoch, as libpcap stamps it.
    pub timestamp: Duration,
    /// Bytes on the wire; `data` may be shorter when a snaplen cut it.
    pub wire_len: u32,
    pub data: D,
}

impl<D: AsRef<[u8]>> Frame<D> {
    /// This frame as a view of its bytes.
    pub fn view(&self) -> Frame<&[u8]> {
        Frame {
            timestamp: self.timestamp,
            wire_len: self.wire_len,
            data: self.data.as_ref(),
        }
    }
}

/// The TCP flags of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub urg: bool,
    pub ece: bool,
    pub cwr: bool,
}

impl std::fmt::Display for Flags {
    /// Wireshark's flow-graph spelling: `SYN, ACK`, `FIN, ACK`, `PSH, ACK`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            (self.fin, "FIN"),
            (self.syn, "SYN"),
            (self.rst, "RST"),
            (self.psh, "PSH"),
            (self.ack, "ACK"),
            (self.urg, "URG"),
            (self.ece, "ECE"),
            (self.cwr, "CWR"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        if set.is_empty() {
            f.write_str("<none>")
        } else {
            f.write_str(&set.join(", "))
        }
    }
}

/// The IP fields a handshake signature looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct IpInfo {
    pub version: u8,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// Don't Fragment; always false for IPv6, which has no such bit.
    pub df: bool,
    /// IPv4 header with options, or IPv6 header with extension headers.
    pub header_len: u16,
    /// IPv4 identification; ignored by every comparison.
    pub id: u16,
}

/// One TCP segment as the conversation model needs it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Segment {
    /// 1-based, as in Wireshark.
    pub frame: usize,
    #[serde(skip)]
    pub timestamp: Duration,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ip: IpInfo,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: Flags,
    pub window: u16,
    pub header_len: u8,
    /// Read on demand: [`Options::iter`].
    pub options: Options,
    /// Payload length from the IP length fields, even if the capture was
    /// cut short by a snaplen.
    pub payload_len: u32,
    /// The captured payload bytes (possibly fewer than `payload_len`).
    #[serde(skip)]
    pub payload: Vec<u8>,
    /// The tunnels the segment came through, in words ("VXLAN
    /// 10.0.0.1 → 10.0.0.2, VNI 42"); `None` for the usual case of none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<String>,
}

impl Segment {
    /// This segment carrying a copy of `payload`.
    pub fn with_payload(mut self, payload: &[u8]) -> Segment {
        self.payload = payload.to_vec();
        self
    }

    /// Sequence space this segment occupies: payload plus SYN and FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload_len + u32::from(self.flags.syn) + u32::from(self.flags.fin)
    }
}

/// Why a frame could not be dissected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("frame {frame}: {problem}")]
pub struct DissectError {
    pub frame: usize,
    pub problem: String,
}

/// Reads one frame. `Ok(None)` means a well-formed frame that is not TCP
/// (ARP, UDP, …), which a capture filter would normally have excluded, or
/// a fragment of an IP packet: alone, a fragment is no segment, and a
/// [`Dissector`] puts them back together.
pub fn dissect(
    link: LinkType,
    frame_number: usize,
    frame: &Frame<impl AsRef<[u8]>>,
) -> Result<Option<Segment>, DissectError> {
    Ok(
        match dissect_with(link, frame_number, &frame.view(), Path::Fast)? {
            Dissected::Segment(segment, payload) => Some(segment.with_payload(payload)),
            Dissected::NotTcp | Dissected::Fragment(_) => None,
        },
    )
}

/// A segment without its payload, and the payload beside it: a view of
/// the frame's bytes, or owned when put back together from fragments.
pub type SegmentView<'a> = (Segment, Cow<'a, [u8]>);

/// What one frame holds: a segment comes with its payload as a view of
/// the frame's bytes.
#[derive(Debug)]
enum Dissected<'a> {
    Segment(Segment, &'a [u8]),
    NotTcp,
    /// A fragment of an IPv4 packet, for a [`Defragmenter`].
    Fragment(Fragment),
}

/// Frames dissected one after another, as a capture file is read: IPv4
/// fragments are put back together (bounded, see [`crate::defrag`]), and
/// the segment they held is given in the frame that completed it, as
/// Wireshark shows it.
#[derive(Debug, Default)]
pub struct Dissector {
    defrag: Defragmenter,
}

impl Dissector {
    /// [`dissect`], with fragments kept until their packet is whole.
    pub fn dissect(
        &mut self,
        link: LinkType,
        frame_number: usize,
        frame: &Frame<impl AsRef<[u8]>>,
    ) -> Result<Option<Segment>, DissectError> {
        Ok(self
            .dissect_view(link, frame_number, &frame.view())?
            .map(|(segment, payload)| segment.with_payload(&payload)))
    }

    /// [`Dissector::dissect`] without copying: the segment comes without
    /// its payload, which is given beside it as a view of the frame's
    /// bytes (or, for a packet put back together from fragments, owned).
    pub fn dissect_view<'a>(
        &mut self,
        link: LinkType,
        frame_number: usize,
        frame: &Frame<&'a [u8]>,
    ) -> Result<Option<SegmentView<'a>>, DissectError> {
        match dissect_with(link, frame_number, frame, Path::Fast)? {
            Dissected::Segment(segment, payload) => Ok(Some((segment, Cow::Borrowed(payload)))),
            Dissected::NotTcp => Ok(None),
            Dissected::Fragment(fragment) => {
                let Some((packet, tunnel)) = self.defrag.push(frame.timestamp, fragment) else {
                    return Ok(None);
                };
                let err = |problem: String| DissectError {
                    frame: frame_number,
                    problem: format!("reassembled from fragments: {problem}"),
                };
                Ok(read_ip(&packet, false)
                    .map_err(err)?
                    .map(|(headers, short)| {
                        let (segment, payload) =
                            segment(frame_number, frame.timestamp, headers, tunnel, short);
                        (segment, Cow::Owned(payload.to_vec()))
                    }))
            }
        }
    }

    /// Fragment bytes held now, waiting for the rest of their packet.
    pub fn held_fragment_bytes(&self) -> usize {
        self.defrag.held_bytes()
    }

    /// Fragments whose packet never completed (timed out, evicted, or
    /// still waiting at the end): read once the capture is over.
    pub fn abandoned_fragments(&mut self) -> usize {
        self.defrag.finish()
    }
}

/// Whether [`dissect`] may take the IPv4 fast path; the tests compare it
/// with the slicers alone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Fast,
    #[cfg(test)]
    SlicersOnly,
}

fn dissect_with<'a>(
    link: LinkType,
    frame_number: usize,
    frame: &Frame<&'a [u8]>,
    path: Path,
) -> Result<Dissected<'a>, DissectError> {
    let err = |problem: String| DissectError {
        frame: frame_number,
        problem,
    };
    let data: &'a [u8] = frame.data;
    // Where the link header ends, and (for NULL/LOOP) checks on it.
    let header = link.header();
    let ip_start = match header {
        LinkHeader::Ethernet => 14,
        LinkHeader::Cooked { len, .. } => {
            if data.len() < len {
                return Err(err(format!(
                    "truncated Linux cooked header (needs {len} bytes)"
                )));
            }
            len
        }
        LinkHeader::Ip | LinkHeader::Decap(_) => 0,
        LinkHeader::LoopbackFamily { network_order } => {
            let header: [u8; 4] = data
                .get(..4)
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| err("truncated loopback header (needs 4 bytes)".into()))?;
            // The family is in the writer's byte order for NULL and in
            // network order for LOOP; accept either, as Wireshark does.
            let family = if network_order {
                u32::from_be_bytes(header)
            } else {
                let le = u32::from_le_bytes(header);
                if le < 256 {
                    le
                } else {
                    u32::from_be_bytes(header)
                }
            };
            if !matches!(family, 2 | 24 | 28 | 30) {
                return Err(err(format!(
                    "loopback address family {other} is neither IPv4 nor IPv6",
                    other = family
                )));
            }
            4
        }
    };
    // A frame cut by the capture's snapshot length is read leniently: its
    // headers are whole, its payload is not, and the IP length fields still
    // say how long the payload was. A frame captured whole must parse
    // strictly; anything short there is a malformed packet.
    let cut = (data.len() as u64) < u64::from(frame.wire_len);
    let fast = match path {
        Path::Fast => ipv4_tcp(header, data, ip_start, cut),
        #[cfg(test)]
        Path::SlicersOnly => None,
    };
    let (headers, tunnel, short) = match fast {
        Some(headers) => (headers, None, false),
        None => {
            let start = match header {
                LinkHeader::Ethernet => Start::Ethernet,
                LinkHeader::Cooked { ether_type_at, .. } => {
                    Start::EtherType(ether_type(data, ether_type_at))
                }
                LinkHeader::Ip | LinkHeader::LoopbackFamily { .. } => Start::Ip,
                LinkHeader::Decap(start) => start,
            };
            // Ethernet is read whole (its tags too); the others from
            // where their link header ends.
            let from = if start == Start::Ethernet {
                0
            } else {
                ip_start
            };
            let Some(found) = decap::find(start, data.get(from..).unwrap_or_default())
                .map_err(|e| err(format!("cannot read headers: {e}")))?
            else {
                return Ok(Dissected::NotTcp);
            };
            if !cut {
                if let Some(fragment) = ipv4_fragment(found.ip, &found.tunnel) {
                    return Ok(Dissected::Fragment(fragment));
                }
            }
            match read_ip(found.ip, cut).map_err(err)? {
                Some((headers, short)) => (headers, found.tunnel, short),
                None => return Ok(Dissected::NotTcp),
            }
        }
    };
    let (segment, payload) = segment(frame_number, frame.timestamp, headers, tunnel, cut || short);
    Ok(Dissected::Segment(segment, payload))
}

/// The fragment `ip` is, if it is one of an IPv4 packet (copied: it is
/// kept until its packet is whole).
fn ipv4_fragment(ip: &[u8], tunnel: &Option<String>) -> Option<Fragment> {
    let v4 = etherparse::Ipv4HeaderSlice::from_slice(ip).ok()?;
    if !v4.is_fragmenting_payload() {
        return None;
    }
    let start = usize::from(v4.ihl()) * 4;
    let end = usize::from(v4.total_len()).min(ip.len());
    Some(Fragment {
        src: v4.source_addr(),
        dst: v4.destination_addr(),
        id: v4.identification(),
        protocol: v4.protocol().0,
        offset: u32::from(v4.fragments_offset().value()) * 8,
        more: v4.more_fragments(),
        header: ip[..start].to_vec(),
        payload: ip.get(start..end).unwrap_or_default().to_vec(),
        tunnel: tunnel.clone(),
    })
}

/// A segment from its IP and TCP headers, without its payload, and the
/// payload as a view of the same bytes. The payload is empty when it is
/// `short` of what the IP header announces (a snaplen cut it, or the
/// frame is shorter than its packet): the stream's bytes are then unknown
/// whatever part of them was captured, and only counted.
fn segment<'a>(
    frame_number: usize,
    timestamp: Duration,
    headers: (IpParts, etherparse::TcpSlice<'a>),
    tunnel: Option<String>,
    short: bool,
) -> (Segment, &'a [u8]) {
    let ((ip, src_ip, dst_ip, ip_payload_len), tcp) = headers;
    let header_len = tcp.data_offset() * 4;
    let payload_len = ip_payload_len.saturating_sub(u32::from(header_len));
    let payload: &'a [u8] = if short {
        &[]
    } else {
        // Never more than the IP header announces (link padding, or a
        // malformed length field, is not payload).
        let payload = tcp.payload();
        &payload[..payload.len().min(payload_len as usize)]
    };
    let segment = Segment {
        frame: frame_number,
        timestamp,
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        ip,
        seq: SeqNum(tcp.sequence_number()),
        ack: SeqNum(tcp.acknowledgment_number()),
        flags: Flags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            psh: tcp.psh(),
            urg: tcp.urg(),
            ece: tcp.ece(),
            cwr: tcp.cwr(),
        },
        window: tcp.window_size(),
        header_len,
        options: Options::new(tcp.options()),
        payload_len,
        payload: Vec::new(),
        tunnel,
    };
    (segment, payload)
}

/// What a segment keeps of its IP header: the fields, both addresses, and
/// the payload length the header announces.
type IpParts = (IpInfo, IpAddr, IpAddr, u32);

fn ip_parts(header: Ip<'_>, tcp: &etherparse::TcpSlice<'_>) -> IpParts {
    ip_parts_with(header, tcp, None)
}

/// [`ip_parts`], with the IP payload's length taken from the captured
/// bytes (`captured`) where the header's length field is 0: a TSO/GSO
/// packet as its sender's own capture shows it, before the kernel or the
/// card cut it into segments and filled the field in.
fn ip_parts_with(header: Ip<'_>, tcp: &etherparse::TcpSlice<'_>, captured: Option<u32>) -> IpParts {
    match header {
        Ip::V4(h) => {
            let ip = IpInfo {
                version: 4,
                ttl: h.ttl(),
                df: h.dont_fragment(),
                header_len: u16::from(h.ihl()) * 4,
                id: h.identification(),
            };
            let payload = match (h.total_len(), captured) {
                (0, Some(captured)) => captured,
                (total, _) => u32::from(total).saturating_sub(u32::from(ip.header_len)),
            };
            (
                ip,
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                payload,
            )
        }
        Ip::V6(h) => {
            let header_len = (tcp.slice().as_ptr() as usize - h.slice().as_ptr() as usize) as u16;
            let ip = IpInfo {
                version: 6,
                ttl: h.hop_limit(),
                df: false,
                header_len,
                id: 0,
            };
            // IPv6 payload length counts extension headers too.
            let payload = match (h.payload_length(), captured) {
                (0, Some(captured)) => captured,
                (length, _) => {
                    u32::from(length).saturating_sub(u32::from(header_len.saturating_sub(40)))
                }
            };
            (
                ip,
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                payload,
            )
        }
    }
}

/// The EtherType a Linux cooked header names (the caller has checked the
/// header is whole).
fn ether_type(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

/// An IP header, either version.
enum Ip<'a> {
    V4(etherparse::Ipv4HeaderSlice<'a>),
    V6(etherparse::Ipv6HeaderSlice<'a>),
}

/// The common case, unfragmented TCP over IPv4, read header by header:
/// the slicers' general results are large, and a big transfer is nothing
/// but these. `None` for anything else, or anything wrong: this path only
/// ever accepts, and the general path gives every error its words.
///
/// A frame captured whole must hold the whole IP packet, and its TCP
/// segment ends where the IP length says (what follows is link padding);
/// a frame `cut` by the snaplen holds what it holds.
fn ipv4_tcp(
    header: LinkHeader,
    data: &[u8],
    ip_start: usize,
    cut: bool,
) -> Option<(IpParts, etherparse::TcpSlice<'_>)> {
    let ip_bytes = match header {
        LinkHeader::Ethernet if data.get(12..14) == Some(&[0x08, 0x00]) => data.get(14..),
        LinkHeader::Cooked { ether_type_at, .. } if ether_type(data, ether_type_at) == 0x0800 => {
            data.get(ip_start..)
        }
        LinkHeader::Ip | LinkHeader::LoopbackFamily { .. } => data.get(ip_start..),
        _ => None,
    }
    .filter(|b| b.first().is_some_and(|v| v >> 4 == 4))?;
    let v4 = etherparse::Ipv4HeaderSlice::from_slice(ip_bytes).ok()?;
    if v4.protocol() != etherparse::IpNumber::TCP || v4.is_fragmenting_payload() {
        return None;
    }
    let start = usize::from(v4.ihl()) * 4;
    let end = if cut {
        ip_bytes.len()
    } else {
        let total = usize::from(v4.total_len());
        if total < start || total > ip_bytes.len() {
            return None;
        }
        total
    };
    let tcp = etherparse::TcpSlice::from_slice(ip_bytes.get(start..end)?).ok()?;
    Some((ip_parts(Ip::V4(v4), &tcp), tcp))
}

/// The IP and TCP headers of an IP packet, and whether its payload is
/// short of what the IP header announces. `None` when it is not TCP.
///
/// A packet captured whole must parse strictly; where it does not, it is
/// read as Wireshark reads it: a TSO/GSO packet whose length field is 0
/// takes its length from the captured bytes (and is whole), and a packet
/// shorter than its length field keeps its headers and counts its payload
/// from that field (and is short, as if a snaplen had cut it). A frame
/// `cut` by the snaplen is read leniently from the start.
#[allow(clippy::type_complexity)]
fn read_ip(
    bytes: &[u8],
    cut: bool,
) -> Result<Option<((IpParts, etherparse::TcpSlice<'_>), bool)>, String> {
    let mut strict_error = None;
    if !cut {
        match SlicedPacket::from_ip(bytes) {
            Ok(sliced) => {
                let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
                    return Ok(None);
                };
                return match sliced.net {
                    Some(NetSlice::Ipv4(v4)) => {
                        Ok(Some(((ip_parts(Ip::V4(v4.header()), &tcp), tcp), false)))
                    }
                    Some(NetSlice::Ipv6(v6)) => {
                        Ok(Some(((ip_parts(Ip::V6(v6.header()), &tcp), tcp), false)))
                    }
                    Some(NetSlice::Arp(_)) | None => Err("TCP without an IP header".into()),
                };
            }
            Err(e) => strict_error = Some(e.to_string()),
        }
    }
    let sliced = LaxSlicedPacket::from_ip(bytes).map_err(|e| {
        format!(
            "cannot read headers: {}",
            strict_error.clone().unwrap_or_else(|| e.to_string())
        )
    })?;
    let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
        return match (sliced.stop_err, strict_error) {
            (_, Some(strict)) => Err(format!("cannot read headers: {strict}")),
            (Some((e, layer)), None) => Err(format!(
                "cannot read headers cut by the snapshot length ({layer:?}): {e}"
            )),
            (None, None) => Ok(None),
        };
    };
    // The TCP segment as captured: its header and what there is of its
    // payload.
    let captured = tcp.slice().len() as u32;
    let (parts, short) = match sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let tso = v4.header().total_len() == 0;
            (
                ip_parts_with(Ip::V4(v4.header()), &tcp, tso.then_some(captured)),
                cut || (!tso && v4.payload().incomplete),
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let tso = v6.header().payload_length() == 0;
            (
                ip_parts_with(Ip::V6(v6.header()), &tcp, tso.then_some(captured)),
                cut || (!tso && v6.payload().incomplete),
            )
        }
        Some(LaxNetSlice::Arp(_)) | None => return Err("TCP without an IP header".into()),
    };
    Ok(Some(((parts, tcp), short)))
}

/// Every TCP segment of a capture, with the frames that could not be read.
pub fn dissect_all(link: LinkType, frames: &[Frame]) -> (Vec<Segment>, Vec<DissectError>) {
    let mut segments = Vec::with_capacity(frames.len());
    let mut errors = Vec::new();
    for (index, frame) in frames.iter().enumerate() {
        match dissect(link, index + 1, frame) {
            Ok(Some(segment)) => segments.push(segment),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    (segments, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, Spec, ALL_LINKS};

    #[test]
    fn the_link_table_gives_each_number_one_type_and_names_it() {
        let mut seen = std::collections::BTreeSet::new();
        for (link, numbers, words, _) in LINK_TYPES {
            assert_eq!(LinkType::from_dlt(link.dlt()), Some(*link));
            for n in *numbers {
                assert!(seen.insert(*n), "LINKTYPE {n} twice");
                assert_eq!(LinkType::from_dlt(*n), Some(*link));
                assert!(words.contains(&n.to_string()), "{words} names {n}");
            }
            assert!(LinkType::supported().contains(words));
        }
        assert_eq!(LinkType::from_dlt(147), None, "a user DLT is not read");
    }

    #[test]
    fn a_frame_cut_by_the_snaplen_keeps_its_headers_and_payload_length() {
        for link in ALL_LINKS {
            let mut frames = fixtures::tutorial(link);
            let data = &mut frames[3]; // the 13-byte data segment
            let whole = data.data.len();
            data.data.truncate(whole - 10);
            let (segments, errors) = dissect_all(link, &frames);
            assert!(errors.is_empty(), "{link:?}: {errors:?}");
            let s = &segments[3];
            // Counted, not kept: what was captured of a cut payload is not used.
            assert_eq!((s.payload_len, s.payload.len()), (13, 0), "{link:?}");
            assert_eq!(s.flags.to_string(), "ACK", "{link:?}");
        }
    }

    /// The fast path must read every frame as the slicers do, including
    /// the odd ones it should decline: padded, cut, lying about lengths,
    /// fragmented, or not TCP at all.
    #[test]
    fn the_ipv4_fast_path_reads_every_frame_as_the_slicers_do() {
        let mut frames = Vec::new();
        for link in ALL_LINKS {
            for frame in fixtures::tutorial(link) {
                let ip = match link {
                    LinkType::Ethernet => 14,
                    LinkType::LinuxSll => 16,
                    LinkType::LinuxSll2 => 20,
                    LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => 0,
                    LinkType::Null | LinkType::Loop => 4,
                    LinkType::Fddi => 21,
                    LinkType::Nflog => 8,
                };
                let mut variants = vec![frame.clone()];
                // Link padding after the IP packet.
                let mut padded = frame.clone();
                padded.data.extend_from_slice(&[0; 6]);
                padded.wire_len = padded.data.len() as u32;
                variants.push(padded);
                // Cut by a snaplen anywhere.
                for keep in [ip + 10, ip + 20, ip + 30, ip + 40, frame.data.len() - 1] {
                    let mut cut = frame.clone();
                    cut.data.truncate(keep.min(frame.data.len()));
                    variants.push(cut);
                }
                // Every byte of the IP and TCP headers changed, in turn.
                for at in ip..(ip + 60).min(frame.data.len()) {
                    for value in [0x00, 0x45, 0xff] {
                        let mut odd = frame.clone();
                        odd.data[at] = value;
                        variants.push(odd);
                    }
                }
                frames.extend(variants.into_iter().map(|f| (link, f)));
            }
        }
        for (n, (link, frame)) in frames.iter().enumerate() {
            let fast = dissect_with(*link, n + 1, &frame.view(), Path::Fast);
            let slow = dissect_with(*link, n + 1, &frame.view(), Path::SlicersOnly);
            assert_eq!(
                format!("{fast:?}"),
                format!("{slow:?}"),
                "{link:?} frame {:02x?}",
                frame.data
            );
        }
    }

    /// A frame that holds less than its IP length says, though no snaplen
    /// cut it (a capture tool that truncated it, a broken writer), keeps
    /// its headers as Wireshark shows them: the segment is there, its
    /// payload counted from the IP length and not kept.
    #[test]
    fn a_whole_frame_shorter_than_its_ip_length_is_read_as_cut() {
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        let frame = &mut frames[3];
        frame.data.truncate(frame.data.len() - 10);
        frame.wire_len = frame.data.len() as u32;
        let (segments, errors) = dissect_all(LinkType::Ethernet, &frames);
        assert!(errors.is_empty(), "{errors:?}");
        let s = &segments[3];
        assert_eq!((s.frame, s.payload_len, s.payload.len()), (4, 13, 0));
        // Cut inside the TCP header, it is malformed.
        frames[3].data.truncate(14 + 20 + 10);
        frames[3].wire_len = frames[3].data.len() as u32;
        let (_, errors) = dissect_all(LinkType::Ethernet, &frames);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].frame, 4);
    }

    /// A TSO/GSO packet as its sender's capture shows it: IPv4 total
    /// length 0, the segment as long as the frame. Its length comes from
    /// the captured bytes, and its payload is kept.
    #[test]
    fn a_tso_frame_with_ip_length_zero_takes_the_captured_length() {
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        let frame = &mut frames[3];
        frame.data[16..18].copy_from_slice(&[0, 0]);
        let (segments, errors) = dissect_all(LinkType::Ethernet, &frames);
        assert!(errors.is_empty(), "{errors:?}");
        let s = &segments[3];
        assert_eq!(
            (s.payload_len, s.payload.as_slice()),
            (13, &b"Hello server!"[..])
        );
    }

    #[test]
    fn every_link_type_gives_the_same_segment() {
        for link in ALL_LINKS {
            let frames = fixtures::tutorial(link);
            let (segments, errors) = dissect_all(link, &frames);
            assert!(errors.is_empty(), "{link:?}: {errors:?}");
            assert_eq!(segments.len(), 8, "{link:?}");
            let syn = &segments[0];
            assert!(syn.flags.syn && !syn.flags.ack, "{link:?}");
            assert_eq!(syn.seq.0, fixtures::CLIENT_ISN);
            assert_eq!(syn.window, 65495);
            assert_eq!(syn.src.port(), 50514);
            assert_eq!(syn.ip.version, 4);
            assert_eq!(syn.ip.ttl, 64);
            assert_eq!(syn.header_len, 40);
            assert_eq!(
                crate::tcp_options::emit(&syn.options.to_vec()),
                fixtures::SYN_OPTIONS
            );
            let data = &segments[3];
            assert_eq!(data.payload, b"Hello server!");
            assert_eq!(data.payload_len, 13);
            assert_eq!(data.frame, 4);
        }
    }

    #[test]
    fn unknown_option_kind_and_nop_padding_survive_dissection() {
        let options = [1, 1, 34, 2, 2, 4, 5, 180, 1, 0, 0, 0];
        let f = fixtures::frame(
            LinkType::Ethernet,
            &Spec {
                syn: true,
                options: &options,
                ..Spec::default()
            },
        );
        let s = dissect(LinkType::Ethernet, 1, &f).unwrap().unwrap();
        let names: Vec<String> = s.options.iter().map(|o| o.short_name()).collect();
        assert_eq!(names, ["NOP", "NOP", "kind34", "MSS", "NOP", "EOL"]);
    }

    #[test]
    fn ipv6_on_raw_ip() {
        let mut data = Vec::new();
        etherparse::PacketBuilder::ipv6([0; 16], [0; 16], 64)
            .tcp(1, 2, 3, 4)
            .syn()
            .write(&mut data, b"")
            .unwrap();
        let f = Frame {
            timestamp: Duration::ZERO,
            wire_len: data.len() as u32,
            data,
        };
        let s = dissect(LinkType::Raw, 1, &f).unwrap().unwrap();
        assert_eq!(s.ip.version, 6);
        assert_eq!(s.ip.header_len, 40);
        assert_eq!(s.ip.ttl, 64);
        assert!(!s.ip.df);
    }

    #[test]
    fn truncated_frames_are_errors_with_their_frame_number() {
        let whole = fixtures::frame(
            LinkType::Ethernet,
            &Spec {
                payload: b"abcdef",
                ..Spec::default()
            },
        );
        for cut in [0, 3, 13, 20, 40, 50] {
            let f = Frame {
                data: whole.data[..cut].to_vec(),
                ..whole.clone()
            };
            let frames = vec![whole.clone(), f];
            let (segments, errors) = dissect_all(LinkType::Ethernet, &frames);
            assert_eq!(segments.len(), 1, "cut at {cut}");
            assert_eq!(errors.len(), 1, "cut at {cut}");
            assert_eq!(errors[0].frame, 2);
        }
        let short_null = Frame {
            data: vec![2, 0],
            ..whole
        };
        assert_eq!(
            dissect(LinkType::Null, 7, &short_null).unwrap_err().frame,
            7
        );
    }

    #[test]
    fn non_tcp_frames_are_skipped() {
        let mut data = Vec::new();
        etherparse::PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .udp(1, 2)
            .write(&mut data, b"x")
            .unwrap();
        let f = Frame {
            timestamp: Duration::ZERO,
            wire_len: data.len() as u32,
            data,
        };
        assert!(dissect(LinkType::Ethernet, 1, &f).unwrap().is_none());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for len in 0..300 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let f = Frame {
                timestamp: Duration::ZERO,
                wire_len: len,
                data,
            };
            for link in ALL_LINKS {
                let _ = dissect(link, 1, &f);
            }
        }
    }
}
