//! Live loopback capture with libpcap, and capture files.
//!
//! Immediate mode is essential: without it libpcap on Linux delivers packets
//! in blocks filled by the kernel, and a capture stopped right after the
//! conversation silently misses the last segments (observed here). The
//! kernel hands a loopback packet to capture sockets as it is transmitted,
//! so once both programs have exited, everything they sent is already in
//! our socket buffer; draining it is then a matter of milliseconds.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::dissect::{Frame, LinkType};

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
    #[error("link type {0} is not supported; the harness reads Ethernet, Linux cooked (SLL), BSD NULL/LOOP and raw IP captures")]
    LinkType(i32),
    #[error("cannot read capture file {path}: {message}")]
    Read { path: String, message: String },
    #[error("cannot write capture file {path}: {message}")]
    Write { path: String, message: String },
    #[error("capture thread failed: {0}")]
    Thread(String),
}

impl CaptureError {
    /// Permission problems are environment errors (exit 2), with a remedy.
    pub fn is_permission(&self) -> bool {
        matches!(self, CaptureError::Permission { .. })
    }
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
            snaplen: 262_144,
            buffer_size: 64 << 20,
        }
    }
}

/// libpcap's own counters, read when the capture stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureStats {
    pub received: u32,
    pub dropped: u32,
    pub if_dropped: u32,
}

/// A capture running on its own thread.
pub struct LiveCapture {
    link: LinkType,
    filter: String,
    frames: Arc<Mutex<Vec<Frame>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<CaptureStats, String>>>,
}

/// What a stopped capture holds.
#[derive(Debug, Clone)]
pub struct Captured {
    pub link: LinkType,
    pub filter: String,
    pub frames: Vec<Frame>,
    pub stats: CaptureStats,
}

/// How long a blocked read waits before looking at the stop flag.
const READ_TIMEOUT_MS: i32 = 5;

fn pcap_message(e: &pcap::Error) -> String {
    e.to_string()
}

fn looks_like_permission(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("permission") || m.contains("not permitted")
}

impl LiveCapture {
    /// Opens the device, installs `filter` and starts reading. Returns only
    /// once packets matching the filter are being captured, so the caller
    /// can start the programs right away.
    pub fn start(config: &CaptureConfig, filter: &str) -> Result<LiveCapture, CaptureError> {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let (config, filter, frames, stop) = (
                config.clone(),
                filter.to_string(),
                Arc::clone(&frames),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || capture_loop(&config, &filter, &frames, &stop, &ready_tx))
        };
        match ready_rx.recv() {
            Ok(Ok(link)) => Ok(LiveCapture {
                link,
                filter: filter.to_string(),
                frames,
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(CaptureError::Thread(match thread.join() {
                Ok(Err(message)) => message,
                _ => "capture thread ended before opening the device".into(),
            })),
        }
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    /// A copy of the frames captured so far.
    pub fn snapshot(&self) -> Vec<Frame> {
        self.frames.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Stops reading and returns everything captured with libpcap's stats.
    pub fn stop(mut self) -> Result<Captured, CaptureError> {
        self.stop.store(true, Ordering::SeqCst);
        let stats = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(stats))) => stats,
            Some(Ok(Err(message))) => return Err(CaptureError::Thread(message)),
            _ => return Err(CaptureError::Thread("capture thread panicked".into())),
        };
        let frames = std::mem::take(
            &mut *self
                .frames
                .lock()
                .map_err(|_| CaptureError::Thread("lock poisoned".into()))?,
        );
        Ok(Captured {
            link: self.link,
            filter: self.filter.clone(),
            frames,
            stats,
        })
    }
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn capture_loop(
    config: &CaptureConfig,
    filter: &str,
    frames: &Mutex<Vec<Frame>>,
    stop: &AtomicBool,
    ready: &mpsc::Sender<Result<LinkType, CaptureError>>,
) -> Result<CaptureStats, String> {
    let open_err = |e: pcap::Error| {
        let message = pcap_message(&e);
        if looks_like_permission(&message) {
            CaptureError::Permission {
                device: config.device.clone(),
                message,
                exe: std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "harness".into()),
            }
        } else {
            CaptureError::Open {
                device: config.device.clone(),
                message,
            }
        }
    };
    let opened = pcap::Capture::from_device(config.device.as_str())
        .map_err(open_err)
        .and_then(|inactive| {
            inactive
                .immediate_mode(true)
                .snaplen(config.snaplen)
                .buffer_size(config.buffer_size)
                .timeout(READ_TIMEOUT_MS)
                .open()
                .map_err(open_err)
        });
    let mut capture = match opened {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return Err("open failed".into());
        }
    };
    if let Err(e) = capture.filter(filter, true) {
        let _ = ready.send(Err(CaptureError::Filter {
            filter: filter.to_string(),
            message: pcap_message(&e),
        }));
        return Err("filter failed".into());
    }
    let dlt = capture.get_datalink().0;
    let Some(link) = LinkType::from_dlt(dlt) else {
        let _ = ready.send(Err(CaptureError::LinkType(dlt)));
        return Err("unsupported link type".into());
    };
    // In immediate mode libpcap's own read timeout is not honoured on
    // Linux (a read blocks until a packet comes), so read non-blocking and
    // wait on the descriptor ourselves, with a bound.
    let mut capture = match capture.setnonblock() {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(CaptureError::Open {
                device: config.device.clone(),
                message: format!("cannot switch to non-blocking mode: {e}"),
            }));
            return Err("setnonblock failed".into());
        }
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&capture);
    let _ = ready.send(Ok(link));

    // After stop is asked, keep reading until the socket is empty, so
    // packets already queued in the kernel are not left behind.
    loop {
        match capture.next_packet() {
            Ok(packet) => {
                let frame = owned_frame(&packet);
                if let Ok(mut all) = frames.lock() {
                    all.push(frame);
                }
            }
            Err(pcap::Error::TimeoutExpired) => {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let mut pollfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                unsafe { libc::poll(&mut pollfd, 1, READ_TIMEOUT_MS) };
            }
            Err(e) => return Err(format!("reading packets: {e}")),
        }
    }
    let stat = capture
        .stats()
        .map_err(|e| format!("reading capture stats: {e}"))?;
    Ok(CaptureStats {
        received: stat.received,
        dropped: stat.dropped,
        if_dropped: stat.if_dropped,
    })
}

/// Copies a libpcap packet out of its buffer, which the next read reuses.
fn owned_frame(packet: &pcap::Packet<'_>) -> Frame {
    let ts = packet.header.ts;
    Frame {
        timestamp: Duration::new(ts.tv_sec as u64, ts.tv_usec as u32 * 1000),
        wire_len: packet.header.len,
        data: packet.data.to_vec(),
    }
}

/// Writes frames as a classic pcap file, which Wireshark and tshark open.
pub fn save_pcap(path: &Path, link: LinkType, frames: &[Frame]) -> Result<(), CaptureError> {
    crate::savefile::write_atomically(path, &crate::savefile::pcap_bytes(link, frames)).map_err(
        |e| CaptureError::Write {
            path: path.display().to_string(),
            message: e.to_string(),
        },
    )
}

/// Reads a pcap or pcapng file (libpcap reads both).
pub fn read_file(path: &Path) -> Result<(LinkType, Vec<Frame>), CaptureError> {
    let read_err = |message: String| CaptureError::Read {
        path: path.display().to_string(),
        message,
    };
    let mut capture = pcap::Capture::from_file(path).map_err(|e| read_err(e.to_string()))?;
    let dlt = capture.get_datalink().0;
    let link = LinkType::from_dlt(dlt).ok_or(CaptureError::LinkType(dlt))?;
    let mut frames = Vec::new();
    loop {
        match capture.next_packet() {
            Ok(packet) => frames.push(owned_frame(&packet)),
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => return Err(read_err(format!("after {} frames: {e}", frames.len()))),
        }
    }
    Ok((link, frames))
}
