//! Capture: frames off the loopback with libpcap ([`live`]), capture files
//! read and written ([`file`]), and the comment each saved frame carries
//! ([`annotate`]).

pub mod annotate;
pub(crate) mod file;
pub(crate) mod live;

/// Why a capture could not be taken, read or saved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot capture on '{device}': {message}. Run as root, or grant the capability once: sudo setcap cap_net_raw,cap_net_admin=eip {exe}, or let the harness capture inside a user namespace (--isolation userns)")]
    Permission {
        device: String,
        message: String,
        exe: String,
    },
    #[error("cannot capture on '{device}': {message}")]
    Open { device: String, message: String },
    #[error("capture filter '{filter}' was rejected: {message}")]
    Filter { filter: String, message: String },
    #[error("link type {0} is not supported; the harness reads {supported}", supported = wire::dissect::LinkType::supported())]
    LinkType(i32),
    #[error("cannot read capture file {path}: {message}")]
    Read { path: String, message: String },
    #[error("cannot write capture file {path}: {message}")]
    Write { path: String, message: String },
    #[error("capture thread failed: {0}")]
    Thread(String),
}

/// How to open a live capture.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub device: String,
    /// Bytes kept per packet. Loopback frames can be 64 KiB + headers.
    pub snaplen: i32,
    /// Kernel buffer; large so that a burst is never dropped.
    pub buffer_size: i32,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            device: "lo".to_string(),
            // Above the largest loopback frame (MTU 65536 + 14 bytes of Ethernet);
            // libpcap gives each frame a slot this big in immediate mode.
            snaplen: 65_600,
            buffer_size: 1 << 20,
        }
    }
}

/// libpcap's own counters, read when the capture stops.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct CaptureStats {
    pub received: u32,
    pub dropped: u32,
    pub if_dropped: u32,
}

pub use file::{read_file, save_pcap};
pub use live::{Captured, LiveCapture, StartingCapture, Window};
