//! Capture: frames off the loopback with libpcap ([`live`]), waiting for
//! a cell's last segments ([`drain`]), capture files read and written
//! ([`file`]), and the comment each saved frame carries ([`annotate`]).

pub mod annotate;
pub(crate) mod drain;
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

impl CaptureConfig {
    /// This configuration for a conversation carrying `message_len` bytes,
    /// on `device` when it is not this one's (a veth).
    ///
    /// Room in the kernel for the whole conversation twice over, however
    /// it is cut into frames: the ring packs frames by their size (see
    /// [`live`]), but a frame never spans two of its blocks, so a block of
    /// 128 KiB may hold a single 64 KiB loopback frame. A veth with MTU
    /// 1500 sends many small frames, which pack well but carry more
    /// headers. A bigger ring costs memory and set-up time, so it grows
    /// only with the message, up to 256 MiB: a transfer of a gigabyte
    /// fills 64 MiB in a few tens of milliseconds, which is as long as the
    /// capture thread may be kept off a core of two.
    pub fn for_message(&self, message_len: usize, device: Option<&str>) -> CaptureConfig {
        let per_byte = if device.is_some() { 8 } else { 4 };
        let buffer_size = message_len
            .saturating_mul(per_byte)
            .clamp(2 << 20, 256 << 20);
        CaptureConfig {
            buffer_size: buffer_size as i32,
            device: device.map_or_else(|| self.device.clone(), str::to_string),
            ..self.clone()
        }
    }
}

/// The capture filter for a conversation on `port`.
pub fn port_filter(port: u16) -> String {
    format!("tcp port {port}")
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

pub use drain::drain;
pub use file::{read_file, save_pcap};
pub use live::{Captured, LiveCapture, StartingCapture, Window};
