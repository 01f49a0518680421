//! IPv4 fragments put back together, in bounded memory.
//!
//! A TCP segment sent through a link whose MTU is smaller than the packet,
//! with Don't Fragment clear, arrives in fragments; only the first holds
//! the TCP header. Wireshark reassembles them and shows the segment in the
//! frame of the fragment that completed it; so does the [`Defragmenter`].
//!
//! Fragments are kept per packet (source, destination, identification,
//! protocol) until the packet is whole, for at most [`TIMEOUT`] of capture
//! time (Linux's own `ipfrag_time`), and never more than
//! [`PENDING_PACKETS`] packets or [`PENDING_BYTES`] bytes at once: a flood
//! of fragments that never complete evicts the oldest and is counted, it
//! does not grow the reader.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::Duration;

/// How long a packet's fragments wait for the rest, in capture time.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Packets being reassembled at once.
pub const PENDING_PACKETS: usize = 256;
/// Fragment bytes held at once.
pub const PENDING_BYTES: usize = 4 << 20;

/// One fragment of an IPv4 packet, copied out of its frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub id: u16,
    pub protocol: u8,
    /// Where its payload goes in the packet's payload, in bytes.
    pub offset: u32,
    /// More fragments follow (the MF flag).
    pub more: bool,
    /// The IP header, kept from the fragment at offset 0.
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
    /// The tunnels its frame came through, in words.
    pub tunnel: Option<String>,
}

type Key = (Ipv4Addr, Ipv4Addr, u16, u8);

#[derive(Debug)]
struct Pending {
    first_seen: Duration,
    /// From the fragment at offset 0.
    header: Option<Vec<u8>>,
    /// Payload pieces by offset.
    pieces: BTreeMap<u32, Vec<u8>>,
    /// The payload's length, once the last fragment (MF clear) is seen.
    end: Option<u32>,
    bytes: usize,
    fragments: usize,
    tunnel: Option<String>,
}

/// Reassembles IPv4 packets from their fragments as frames arrive.
#[derive(Debug, Default)]
pub struct Defragmenter {
    pending: HashMap<Key, Pending>,
    bytes: usize,
    /// Fragments of packets that never completed: timed out, evicted by
    /// the bounds, or left at the end.
    pub abandoned: usize,
}

impl Defragmenter {
    /// Adds a fragment seen at capture time `now`; the whole IP packet
    /// (header with MF and offset cleared, its length set) when this one
    /// completes it, with the tunnels it came through.
    pub fn push(&mut self, now: Duration, fragment: Fragment) -> Option<(Vec<u8>, Option<String>)> {
        self.expire(now);
        let key = (fragment.src, fragment.dst, fragment.id, fragment.protocol);
        // A payload past the IPv4 maximum is not a fragment of anything.
        let end = fragment.offset as usize + fragment.payload.len();
        if end > 65_535 {
            self.abandoned += 1;
            return None;
        }
        let pending = self.pending.entry(key).or_insert_with(|| Pending {
            first_seen: now,
            header: None,
            pieces: BTreeMap::new(),
            end: None,
            bytes: 0,
            fragments: 0,
            tunnel: fragment.tunnel.clone(),
        });
        pending.fragments += 1;
        if fragment.offset == 0 && pending.header.is_none() {
            pending.header = Some(fragment.header);
        }
        if !fragment.more {
            pending.end = Some(end as u32);
        }
        // A duplicate keeps the first copy, as Linux does.
        if !pending.pieces.contains_key(&fragment.offset) {
            pending.bytes += fragment.payload.len();
            self.bytes += fragment.payload.len();
            pending.pieces.insert(fragment.offset, fragment.payload);
        }
        let whole = Self::whole(pending);
        if let Some(packet) = whole {
            let done = self.pending.remove(&key).expect("just used");
            self.bytes -= done.bytes;
            return Some((packet, done.tunnel));
        }
        self.bound();
        None
    }

    /// The packet, if its pieces cover it from 0 to its end.
    fn whole(pending: &Pending) -> Option<Vec<u8>> {
        let header = pending.header.as_ref()?;
        let end = pending.end?;
        let mut payload = Vec::with_capacity(end as usize);
        for (offset, piece) in &pending.pieces {
            let offset = *offset as usize;
            if offset > payload.len() {
                return None;
            }
            let skip = payload.len() - offset;
            payload.extend_from_slice(piece.get(skip..).unwrap_or_default());
        }
        if payload.len() < end as usize {
            return None;
        }
        payload.truncate(end as usize);
        let mut packet = header.clone();
        let total = (packet.len() + payload.len()).min(65_535) as u16;
        packet[2..4].copy_from_slice(&total.to_be_bytes());
        // Flags and fragment offset: only DF may stay.
        packet[6] &= 0x40;
        packet[7] = 0;
        packet.extend_from_slice(&payload);
        Some(packet)
    }

    /// Drops packets whose first fragment is older than [`TIMEOUT`].
    fn expire(&mut self, now: Duration) {
        let stale: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.first_seen) > TIMEOUT)
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.drop_packet(&key);
        }
    }

    /// Evicts the oldest packets while over either bound.
    fn bound(&mut self) {
        while self.pending.len() > PENDING_PACKETS || self.bytes > PENDING_BYTES {
            let Some(oldest) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.first_seen)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.drop_packet(&oldest);
        }
    }

    fn drop_packet(&mut self, key: &Key) {
        if let Some(p) = self.pending.remove(key) {
            self.bytes -= p.bytes;
            self.abandoned += p.fragments;
        }
    }

    /// Fragments still waiting: counted as abandoned at the end of a
    /// capture.
    pub fn finish(&mut self) -> usize {
        let keys: Vec<Key> = self.pending.keys().copied().collect();
        for key in keys {
            self.drop_packet(&key);
        }
        self.abandoned
    }

    /// Bytes held now (for the bound's tests).
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x20, 0, 64, 6, 0, 0];
        h.extend([10, 0, 0, 1, 10, 0, 0, 2]);
        h
    }

    fn fragment(offset: u32, more: bool, payload: &[u8]) -> Fragment {
        Fragment {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            id: 0x1234,
            protocol: 6,
            offset,
            more,
            header: if offset == 0 { header() } else { Vec::new() },
            payload: payload.to_vec(),
            tunnel: None,
        }
    }

    #[test]
    fn fragments_in_any_order_make_the_packet() {
        let mut d = Defragmenter::default();
        let t = Duration::from_secs(1);
        assert_eq!(d.push(t, fragment(16, false, b"QRSTUV")), None);
        assert_eq!(d.push(t, fragment(0, true, b"ABCDEFGH")), None);
        let (packet, _) = d.push(t, fragment(8, true, b"IJKLMNOP")).expect("whole");
        assert_eq!(&packet[20..], b"ABCDEFGHIJKLMNOPQRSTUV");
        assert_eq!(u16::from_be_bytes([packet[2], packet[3]]), 42);
        assert_eq!((packet[6], packet[7]), (0, 0), "MF and offset cleared");
        assert_eq!((d.held_bytes(), d.finish()), (0, 0));
    }

    #[test]
    fn a_packet_never_completed_is_abandoned_after_the_timeout() {
        let mut d = Defragmenter::default();
        assert_eq!(d.push(Duration::ZERO, fragment(0, true, b"ABCDEFGH")), None);
        assert_eq!(d.push(TIMEOUT * 2, fragment(8, false, b"IJ")), None);
        assert_eq!(d.abandoned, 1);
        assert_eq!(d.finish(), 2);
    }

    /// A flood of fragments that never complete stays within the bounds.
    #[test]
    fn a_fragment_flood_never_grows_past_the_bound() {
        let mut d = Defragmenter::default();
        for id in 0..10_000u32 {
            let mut f = fragment(0, true, &[0; 1400]);
            f.id = id as u16;
            f.src = Ipv4Addr::from(id);
            d.push(Duration::from_millis(u64::from(id)), f);
            assert!(d.held_bytes() <= PENDING_BYTES);
            assert!(d.pending.len() <= PENDING_PACKETS);
        }
        assert!(d.abandoned >= 10_000 - PENDING_PACKETS);
    }
}
