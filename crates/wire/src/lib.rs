//! TCP/IP as it appears on the wire, with no libpcap and no processes: the
//! part of the harness that only reads and writes bytes.
//!
//! The pipeline's first half, one module per step:
//! [`dissect`] turns a captured frame of any supported link type into a
//! [`dissect::Segment`], finding its IP packet through tags, labels and
//! tunnels with [`decap`] (with its [`tcp_options`] kept in wire order);
//! [`conversation`] groups segments into connections, numbers them
//! relative to each side's ISN ([`seq::SeqNum`]), reassembles the streams
//! and tells the phases apart; [`savefile`] writes frames back as pcap or
//! pcapng for Wireshark, and [`capfile`] reads any pcap or pcapng back as a
//! stream.
//!
//! Keeping this crate free of libpcap is deliberate, as smoltcp keeps its
//! `wire` module free of sockets: the fuzz targets and benchmarks depend on
//! it alone, and everything here is a pure function of its input bytes.

pub mod capfile;
pub mod conversation;
pub mod decap;
pub mod defrag;
pub mod dissect;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod savefile;
pub mod seq;
pub mod tcp_options;
