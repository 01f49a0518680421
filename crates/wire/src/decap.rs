//! Finding the IP packet inside a frame: link headers, VLAN tags, MPLS
//! labels, PPPoE, LLC/SNAP, NFLOG's TLVs, and tunnels.
//!
//! etherparse reads Ethernet, VLAN and the IP and TCP headers; what it does
//! not know is read here, header by header, each check bounded by the
//! bytes there are. The result is the innermost IP packet and, when it came
//! through tunnels, their outer path in words ("VXLAN 10.0.0.1 → 10.0.0.2,
//! VNI 42"), as Wireshark shows the layers above the TCP segment.
//!
//! Tunnels recognised: IP-in-IP and 6in4/4in6 (IP protocols 4 and 41),
//! GRE (47) carrying IP, Ethernet (transparent bridging) or ERSPAN types
//! I–III, and over UDP by their registered ports: VXLAN (4789), GENEVE
//! (6081), GTP-U (2152), Teredo (3544) and AYIYA (5072). A packet nested
//! deeper than [`MAX_TUNNELS`] is an error, never recursed without limit.

use std::net::IpAddr;

/// The most tunnels one packet may be nested in. Real overlays nest one or
/// two; a deeper stack is a malformed (or hostile) packet.
pub const MAX_TUNNELS: usize = 4;

/// The most VLAN tags, MPLS labels or other link headers read before the
/// network layer.
const MAX_LINK_HEADERS: usize = 16;

/// Link types the decapsulation starts from, beyond those the dissector
/// reads itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// An Ethernet frame.
    Ethernet,
    /// A frame's bytes that follow an EtherType already read (Linux cooked
    /// captures).
    EtherType(u16),
    /// An IP packet, either version.
    Ip,
    /// FDDI (DLT 10): frame control, two addresses, then LLC/SNAP.
    Fddi,
    /// Linux NFLOG (DLT 239): a header, then TLVs, one of them the packet.
    Nflog,
}

/// The innermost IP packet of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    pub ip: &'a [u8],
    /// The tunnels it came through in words, innermost first ("IP-in-IP
    /// … inside VXLAN …"); `None` when it came through none.
    pub tunnel: Option<String>,
}

/// The IP packet `data` carries from `start`: `Ok(None)` for a frame that
/// carries none (ARP, STP, a PPP control packet), an error naming the
/// header that is short or malformed.
pub fn find(start: Start, data: &[u8]) -> Result<Option<Found<'_>>, String> {
    let mut layers: Vec<String> = Vec::new();
    let mut next = match start {
        Start::Ethernet => ethernet(data)?,
        Start::EtherType(kind) => by_ether_type(kind, data)?,
        Start::Ip => Some(data),
        Start::Fddi => {
            // Frame control (1) and two 6-byte addresses, then LLC.
            let rest = data
                .get(13..)
                .ok_or("truncated FDDI header (needs 13 bytes)")?;
            llc(rest)?
        }
        Start::Nflog => nflog(data)?,
    };
    loop {
        let Some(ip) = next else {
            return Ok(None);
        };
        match tunnel(ip)? {
            None => {
                return Ok(Some(Found {
                    ip,
                    tunnel: (!layers.is_empty()).then(|| layers.join(" inside ")),
                }))
            }
            Some((words, inner)) => {
                if layers.len() == MAX_TUNNELS {
                    return Err(format!(
                        "tunnels nested deeper than {MAX_TUNNELS} ({}, then {words})",
                        layers.join(" inside ")
                    ));
                }
                // Outermost first reads as "A inside B": the inner path
                // is prepended.
                layers.insert(0, words);
                next = inner;
            }
        }
    }
}

/// An Ethernet frame's payload, through its tags and labels.
fn ethernet(data: &[u8]) -> Result<Option<&[u8]>, String> {
    let kind = data
        .get(12..14)
        .ok_or("truncated Ethernet header (needs 14 bytes)")?;
    by_ether_type(u16::from_be_bytes([kind[0], kind[1]]), &data[14..])
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The IP packet after an EtherType: VLAN tags (802.1Q, 802.1ad, QinQ),
/// MPLS label stacks, PPPoE sessions and 802.3 frames with LLC/SNAP are
/// stepped through.
fn by_ether_type(mut kind: u16, mut rest: &[u8]) -> Result<Option<&[u8]>, String> {
    for _ in 0..MAX_LINK_HEADERS {
        match kind {
            0x0800 | 0x86dd => return Ok(Some(rest)),
            // VLAN tags: 802.1Q, 802.1ad, and the older QinQ value.
            0x8100 | 0x88a8 | 0x9100 => {
                kind = be16(rest, 2).ok_or("truncated VLAN tag (needs 4 bytes)")?;
                rest = &rest[4..];
            }
            // MPLS, unicast and multicast.
            0x8847 | 0x8848 => return mpls(rest),
            // PPPoE session: 6 bytes, then the PPP protocol: two bytes, or
            // one (odd) when the peers agreed to compress it (RFC 1661).
            0x8864 => {
                let first = *rest
                    .get(6)
                    .ok_or("truncated PPPoE header (needs 7 bytes)")?;
                let (protocol, len) = if first & 1 == 1 {
                    (u16::from(first), 7)
                } else {
                    (
                        be16(rest, 6).ok_or("truncated PPPoE header (needs 8 bytes)")?,
                        8,
                    )
                };
                return Ok(match protocol {
                    0x0021 | 0x0057 => Some(&rest[len..]),
                    _ => None,
                });
            }
            // LLC carried under an EtherType of its own (jumbo frames).
            0x8870 => return llc(rest),
            // An 802.3 length, not a type: LLC follows.
            0..=1500 => return llc(rest),
            _ => return Ok(None),
        }
    }
    Err(format!("more than {MAX_LINK_HEADERS} VLAN tags"))
}

/// LLC: with SNAP (AA AA 03, an OUI, an EtherType) the EtherType says
/// what follows; any other LLC carries no IP (STP, NetBIOS).
fn llc(rest: &[u8]) -> Result<Option<&[u8]>, String> {
    match rest.get(..3) {
        Some([0xaa, 0xaa, 0x03]) => {
            let kind = be16(rest, 6).ok_or("truncated SNAP header (needs 8 bytes)")?;
            by_ether_type(kind, &rest[8..])
        }
        Some(_) => Ok(None),
        None => Err("truncated LLC header (needs 3 bytes)".into()),
    }
}

/// An MPLS label stack, to its bottom, then IP by its version nibble (or
/// an Ethernet pseudowire behind a zero control word).
fn mpls(mut rest: &[u8]) -> Result<Option<&[u8]>, String> {
    for _ in 0..MAX_LINK_HEADERS {
        let label = rest
            .get(..4)
            .ok_or("truncated MPLS label (needs 4 bytes)")?;
        let bottom = label[2] & 1 == 1;
        rest = &rest[4..];
        if bottom {
            return match rest.first().map(|b| b >> 4) {
                Some(4 | 6) => Ok(Some(rest)),
                // A pseudowire control word (first nibble 0), then Ethernet.
                Some(0) if rest.len() > 4 => ethernet(&rest[4..]),
                _ => Ok(None),
            };
        }
    }
    Err(format!("more than {MAX_LINK_HEADERS} MPLS labels"))
}

/// NFLOG: family (1), version (1), resource id (2), then TLVs whose length
/// and type are in the capturing host's byte order (libpcap's
/// LINKTYPE_NFLOG), each padded to 4 bytes; type 9 is the packet.
fn nflog(data: &[u8]) -> Result<Option<&[u8]>, String> {
    const PAYLOAD: u16 = 9;
    let mut at = 4;
    if data.len() < at {
        return Err("truncated NFLOG header (needs 4 bytes)".into());
    }
    // The byte order is the writer's: little-endian hosts are the rule, a
    // TLV length below 4 means the other order.
    let little = data
        .get(4..6)
        .is_none_or(|l| u16::from_le_bytes([l[0], l[1]]) >= 4);
    let read = |at: usize| -> Option<u16> {
        let b = data.get(at..at + 2)?;
        Some(if little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    while at + 4 <= data.len() {
        let (Some(len), Some(kind)) = (read(at), read(at + 2)) else {
            break;
        };
        let len = usize::from(len);
        if len < 4 {
            return Err(format!(
                "NFLOG TLV at byte {at} has length {len}, less than its header"
            ));
        }
        if kind & 0x7fff == PAYLOAD {
            let end = (at + len).min(data.len());
            return Ok(Some(&data[at + 4..end]));
        }
        at += len.div_ceil(4) * 4;
    }
    Ok(None)
}

/// If the IP packet `ip` is a tunnel's, what it is in words and the inner
/// IP packet (or `None` when the tunnel carries something else).
#[allow(clippy::type_complexity)]
fn tunnel(ip: &[u8]) -> Result<Option<(String, Option<&[u8]>)>, String> {
    let Ok((sliced, _)) = etherparse::LaxIpSlice::from_slice(ip) else {
        // Not a readable IP header: the caller's parser says why.
        return Ok(None);
    };
    // A fragment's payload is read once the packet is whole.
    if sliced.is_fragmenting_payload() {
        return Ok(None);
    }
    let payload = sliced.payload();
    let (src, dst): (IpAddr, IpAddr) = (sliced.source_addr(), sliced.destination_addr());
    let outer_v4 = sliced.ipv4().is_some();
    // "VXLAN 192.0.2.1 → 192.0.2.2, VNI 42": the name, the outer path,
    // then what identifies the tunnel.
    let path = |words: &str| match words.split_once(", ") {
        Some((name, detail)) => format!("{name} {src} → {dst}, {detail}"),
        None => format!("{words} {src} → {dst}"),
    };
    let bytes = payload.payload;
    Ok(match payload.ip_number.0 {
        4 => Some((
            path(if outer_v4 { "IP-in-IP" } else { "4in6" }),
            Some(bytes),
        )),
        41 => Some((
            path(if outer_v4 { "6in4" } else { "IPv6-in-IPv6" }),
            Some(bytes),
        )),
        47 => gre(bytes)?.map(|(name, inner)| (path(&name), inner)),
        17 => udp_tunnel(bytes)?.map(|(name, inner)| (path(&name), inner)),
        _ => None,
    })
}

/// GRE (RFC 2784/2890): flags and version, a protocol type, then optional
/// checksum, key and sequence words.
#[allow(clippy::type_complexity)]
fn gre(bytes: &[u8]) -> Result<Option<(String, Option<&[u8]>)>, String> {
    let (Some(flags), Some(protocol)) = (be16(bytes, 0), be16(bytes, 2)) else {
        return Err("truncated GRE header (needs 4 bytes)".into());
    };
    // Version 1 is PPTP's enhanced GRE, which carries PPP: not read.
    if flags & 0x7 != 0 {
        return Ok(None);
    }
    let (checksum, key, sequence) = (
        flags & 0x8000 != 0,
        flags & 0x2000 != 0,
        flags & 0x1000 != 0,
    );
    let key_at = 4 + if checksum { 4 } else { 0 };
    let len = key_at + if key { 4 } else { 0 } + if sequence { 4 } else { 0 };
    let rest = bytes
        .get(len..)
        .ok_or_else(|| format!("truncated GRE header (needs {len} bytes)"))?;
    let key_words = if key {
        let k = &bytes[key_at..key_at + 4];
        format!(", key {}", u32::from_be_bytes([k[0], k[1], k[2], k[3]]))
    } else {
        String::new()
    };
    Ok(Some(match protocol {
        0x0800 | 0x86dd => (format!("GRE{key_words}"), Some(rest)),
        // Transparent Ethernet bridging (NVGRE, gretap).
        0x6558 => (format!("GRE (Ethernet){key_words}"), ethernet(rest)?),
        // ERSPAN type I has no header of its own (and no sequence number);
        // type II has 8 bytes.
        0x88be if !sequence => ("ERSPAN type I".to_string(), ethernet(rest)?),
        0x88be => {
            let session = be16(rest, 2).ok_or("truncated ERSPAN header (needs 8 bytes)")? & 0x3ff;
            let frame = rest
                .get(8..)
                .ok_or("truncated ERSPAN header (needs 8 bytes)")?;
            (
                format!("ERSPAN type II, session {session}"),
                ethernet(frame)?,
            )
        }
        // Type III: 12 bytes, and 8 more when its O flag is set.
        0x22eb => {
            let session = be16(rest, 2).ok_or("truncated ERSPAN header (needs 12 bytes)")? & 0x3ff;
            let optional = rest.get(11).is_some_and(|b| b & 1 == 1);
            let len = if optional { 20 } else { 12 };
            let frame = rest
                .get(len..)
                .ok_or_else(|| format!("truncated ERSPAN header (needs {len} bytes)"))?;
            (
                format!("ERSPAN type III, session {session}"),
                ethernet(frame)?,
            )
        }
        other => (format!("GRE (protocol {other:#06x})"), None),
    }))
}

/// The tunnels carried over UDP, by their registered ports (either end).
#[allow(clippy::type_complexity)]
fn udp_tunnel(bytes: &[u8]) -> Result<Option<(String, Option<&[u8]>)>, String> {
    let (Some(src), Some(dst)) = (be16(bytes, 0), be16(bytes, 2)) else {
        return Ok(None);
    };
    let body = bytes.get(8..).unwrap_or_default();
    let port = [dst, src]
        .into_iter()
        .find(|p| matches!(p, 4789 | 6081 | 2152 | 3544 | 5072));
    let short = |name: &str, need: usize| format!("truncated {name} header (needs {need} bytes)");
    Ok(match port {
        Some(4789) => {
            let header = body.get(..8).ok_or_else(|| short("VXLAN", 8))?;
            let vni = u32::from_be_bytes([0, header[4], header[5], header[6]]);
            Some((format!("VXLAN, VNI {vni}"), ethernet(&body[8..])?))
        }
        Some(6081) => {
            let header = body.get(..8).ok_or_else(|| short("GENEVE", 8))?;
            let len = 8 + usize::from(header[0] & 0x3f) * 4;
            let inner = body.get(len..).ok_or_else(|| short("GENEVE", len))?;
            let vni = u32::from_be_bytes([0, header[4], header[5], header[6]]);
            let protocol = u16::from_be_bytes([header[2], header[3]]);
            let inner = match protocol {
                0x6558 => ethernet(inner)?,
                other => by_ether_type(other, inner)?,
            };
            Some((format!("GENEVE, VNI {vni}"), inner))
        }
        Some(2152) => gtp_u(body)?,
        Some(3544) => {
            // Teredo: an IPv6 packet, perhaps behind an authentication
            // (0x0001) or origin indication (0x0000) header.
            let mut at = 0;
            if be16(body, 0) == Some(0x0001) {
                let (Some(id), Some(auth)) = (body.get(2), body.get(3)) else {
                    return Err(short("Teredo authentication", 4));
                };
                at += 4 + usize::from(*id) + usize::from(*auth) + 9;
            }
            if be16(body, at) == Some(0x0000) {
                at += 8;
            }
            let inner = body
                .get(at..)
                .filter(|b| b.first().is_some_and(|v| v >> 4 == 6));
            inner.map(|inner| ("Teredo".to_string(), Some(inner)))
        }
        Some(5072) => {
            // AYIYA: identity and signature lengths in the first bytes,
            // then the next header (4 or 41) and the packet.
            let header = body.get(..8).ok_or_else(|| short("AYIYA", 8))?;
            let id_len = 1usize << (header[0] >> 4);
            let sig_len = usize::from(header[1] >> 4) * 4;
            let len = 8 + id_len + sig_len;
            let inner = body.get(len..).ok_or_else(|| short("AYIYA", len))?;
            matches!(header[3], 4 | 41).then(|| ("AYIYA".to_string(), Some(inner)))
        }
        _ => None,
    })
}

/// GTP-U (user plane, 2152): 8 bytes, 4 more when any of its E, S or PN
/// flags is set, then extension headers; a G-PDU (type 255) carries an IP
/// packet.
#[allow(clippy::type_complexity)]
fn gtp_u(body: &[u8]) -> Result<Option<(String, Option<&[u8]>)>, String> {
    let header = body
        .get(..8)
        .ok_or("truncated GTP-U header (needs 8 bytes)")?;
    if header[0] >> 5 != 1 || header[1] != 0xff {
        return Ok(None);
    }
    let teid = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let mut at = 8;
    if header[0] & 0x07 != 0 {
        let mut next = *body
            .get(11)
            .ok_or("truncated GTP-U header (needs 12 bytes)")?;
        at = 12;
        if header[0] & 0x04 != 0 {
            for _ in 0..MAX_LINK_HEADERS {
                if next == 0 {
                    break;
                }
                let len = usize::from(*body.get(at).ok_or("truncated GTP-U extension header")?) * 4;
                if len == 0 {
                    return Err("GTP-U extension header of length 0".into());
                }
                next = *body
                    .get(at + len - 1)
                    .ok_or("truncated GTP-U extension header")?;
                at += len;
            }
        }
    }
    let inner = body
        .get(at..)
        .filter(|b| b.first().is_some_and(|v| matches!(v >> 4, 4 | 6)));
    Ok(Some((format!("GTP-U, TEID {teid}"), inner)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal IPv4 header (20 bytes) around `payload`, protocol `proto`.
    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut p = vec![0x45, 0];
        p.extend(total.to_be_bytes());
        p.extend([0, 0, 0x40, 0, 64, proto, 0, 0]);
        p.extend(src);
        p.extend(dst);
        p.extend(payload);
        p
    }

    fn udp(dst: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = 50000u16.to_be_bytes().to_vec();
        u.extend(dst.to_be_bytes());
        u.extend(((8 + payload.len()) as u16).to_be_bytes());
        u.extend([0, 0]);
        u.extend(payload);
        u
    }

    fn ether(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut e = vec![0u8; 12];
        e.extend(kind.to_be_bytes());
        e.extend(payload);
        e
    }

    const INNER: [u8; 4] = [10, 0, 0, 1];

    /// The innermost packet, a TCP-less IPv4 packet standing in for one.
    fn inner() -> Vec<u8> {
        ipv4(6, INNER, [10, 0, 0, 2], &[0u8; 20])
    }

    #[test]
    fn vlan_qinq_mpls_pppoe_and_snap_are_stepped_through() {
        let ip = inner();
        let mut qinq = vec![0, 1, 0x81, 0x00, 0, 2, 0x08, 0x00];
        qinq.extend(&ip);
        let frames = [
            ether(0x88a8, &qinq),
            ether(
                0x8847,
                &[[0, 0, 0x10, 64].as_slice(), &[0, 0, 0x21, 64], &ip].concat(),
            ),
            ether(
                0x8864,
                &[[0x11, 0, 0, 1, 0, 0, 0x00, 0x21].as_slice(), &ip].concat(),
            ),
            ether(
                (8 + ip.len()) as u16,
                &[[0xaa, 0xaa, 3, 0, 0, 0, 0x08, 0x00].as_slice(), &ip].concat(),
            ),
        ];
        for frame in &frames {
            let found = find(Start::Ethernet, frame).unwrap().expect("an IP packet");
            assert_eq!(found.ip, ip.as_slice());
            assert_eq!(found.tunnel, None);
        }
        // FDDI: 13 bytes, then LLC/SNAP.
        let fddi = [
            &[0x50u8; 13][..],
            &[0xaa, 0xaa, 3, 0, 0, 0, 0x08, 0x00],
            &ip,
        ]
        .concat();
        assert_eq!(find(Start::Fddi, &fddi).unwrap().unwrap().ip, ip.as_slice());
        // Not IP: ARP, STP's LLC.
        assert_eq!(
            find(Start::Ethernet, &ether(0x0806, &[0; 28])).unwrap(),
            None
        );
        assert_eq!(
            find(Start::Ethernet, &ether(38, &[0x42, 0x42, 3])).unwrap(),
            None
        );
    }

    #[test]
    fn nflog_tlvs_lead_to_the_packet() {
        let ip = inner();
        let mut nflog = vec![2, 0, 0, 5];
        // A prefix TLV ("hi\0", padded), then the payload TLV.
        nflog.extend(7u16.to_le_bytes());
        nflog.extend(10u16.to_le_bytes());
        nflog.extend(b"hi\0\0");
        nflog.extend(((4 + ip.len()) as u16).to_le_bytes());
        nflog.extend(9u16.to_le_bytes());
        nflog.extend(&ip);
        assert_eq!(
            find(Start::Nflog, &nflog).unwrap().unwrap().ip,
            ip.as_slice()
        );
    }

    #[test]
    fn tunnels_are_named_with_their_outer_path() {
        let ip = inner();
        let outer = |proto, payload: &[u8]| ipv4(proto, [192, 0, 2, 1], [192, 0, 2, 2], payload);
        let vxlan = [[8u8, 0, 0, 0, 0, 0, 42, 0].as_slice(), &ether(0x0800, &ip)].concat();
        let geneve = [
            [0u8, 0, 0x65, 0x58, 0, 0, 7, 0].as_slice(),
            &ether(0x0800, &ip),
        ]
        .concat();
        let gtp = [[0x30u8, 0xff, 0, 40, 0, 0, 0, 9].as_slice(), &ip].concat();
        let gre_key = [[0x20u8, 0, 0x08, 0x00, 0, 0, 0, 5].as_slice(), &ip].concat();
        let erspan2 = [
            [0x10u8, 0, 0x88, 0xbe, 0, 0, 0, 1].as_slice(),
            &[0x10, 0, 0, 3, 0, 0, 0, 0],
            &ether(0x0800, &ip),
        ]
        .concat();
        let cases = [
            (
                outer(17, &udp(4789, &vxlan)),
                "VXLAN 192.0.2.1 → 192.0.2.2, VNI 42",
            ),
            (
                outer(17, &udp(6081, &geneve)),
                "GENEVE 192.0.2.1 → 192.0.2.2, VNI 7",
            ),
            (
                outer(17, &udp(2152, &gtp)),
                "GTP-U 192.0.2.1 → 192.0.2.2, TEID 9",
            ),
            (outer(47, &gre_key), "GRE 192.0.2.1 → 192.0.2.2, key 5"),
            (
                outer(47, &erspan2),
                "ERSPAN type II 192.0.2.1 → 192.0.2.2, session 3",
            ),
            (outer(4, &ip), "IP-in-IP 192.0.2.1 → 192.0.2.2"),
        ];
        for (packet, words) in &cases {
            let found = find(Start::Ip, packet).unwrap().expect(words);
            assert_eq!(found.ip, ip.as_slice(), "{words}");
            assert_eq!(found.tunnel.as_deref(), Some(*words));
        }
        // Two deep: IP-in-IP inside VXLAN.
        let nested = [
            [8u8, 0, 0, 0, 0, 0, 42, 0].as_slice(),
            &ether(0x0800, &outer(4, &ip)),
        ]
        .concat();
        let packet = outer(17, &udp(4789, &nested));
        let found = find(Start::Ip, &packet).unwrap().unwrap();
        assert_eq!(
            found.tunnel.as_deref(),
            Some("IP-in-IP 192.0.2.1 → 192.0.2.2 inside VXLAN 192.0.2.1 → 192.0.2.2, VNI 42")
        );
    }

    /// A packet nested deeper than the bound is an error, not a recursion.
    #[test]
    fn nesting_is_bounded() {
        let mut packet = inner();
        for _ in 0..=MAX_TUNNELS {
            packet = ipv4(4, [192, 0, 2, 1], [192, 0, 2, 2], &packet);
        }
        let error = find(Start::Ip, &packet).unwrap_err();
        assert!(error.starts_with("tunnels nested deeper than 4"), "{error}");
    }

    /// Every header cut anywhere gives an error or nothing, never a panic.
    #[test]
    fn short_headers_never_panic() {
        let ip = inner();
        let vxlan = [[8u8, 0, 0, 0, 0, 0, 42, 0].as_slice(), &ether(0x0800, &ip)].concat();
        let packet = ipv4(17, [192, 0, 2, 1], [192, 0, 2, 2], &udp(4789, &vxlan));
        for cut in 0..packet.len() {
            let _ = find(Start::Ip, &packet[..cut]);
            let _ = find(Start::Ethernet, &packet[..cut]);
            let _ = find(Start::Nflog, &packet[..cut]);
            let _ = find(Start::Fddi, &packet[..cut]);
        }
    }
}
