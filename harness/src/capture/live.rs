//! Live loopback capture with libpcap.
//!
//! The kernel hands a loopback packet to capture sockets as it is
//! transmitted, into a ring shared with libpcap (TPACKET_V3): frames are
//! packed one after another into blocks, and a block is handed over when it
//! is full or [`BLOCK_TIMEOUT_MS`] after its first frame. So a frame is seen
//! at most a timer tick late, and the ring holds frames by their size, not
//! in slots of the snapshot length each: libpcap's immediate mode
//! (TPACKET_V2) gives every frame a 64 KiB slot on loopback, and a ring big
//! enough for a 1 MiB transfer in 8 KiB writes took 32 MiB per cell.
//! Measured on the default suite (`--jobs 1`, 5 interleaved pairs): peak
//! RSS 41 MiB instead of 219 MiB, wall 0.95x and CPU 0.94x of immediate
//! mode. A cell's frames are cut from the capture only once the drain has
//! seen the teardown, so nothing the comparison needs is still in an
//! unfinished block.
//!
//! A capture can outlive a cell: each cell takes a [`Window`] of it
//! ([`LiveCapture::open_window`], [`LiveCapture::close_window`]), the
//! frames stamped from its start and the counters' growth since.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use wire::dissect::{Frame, LinkType};

use super::file::owned_frame;
use super::{CaptureConfig, CaptureError, CaptureStats};

/// A capture running on its own thread.
///
/// Opening and closing a packet socket each wait for an RCU grace period
/// in the kernel (about 10 ms here), so neither is waited for when it need
/// not be: [`LiveCapture::begin`] lets the caller start the server while
/// the socket is being set up, and dropping a `LiveCapture` leaves the
/// close to the capture thread.
pub struct LiveCapture {
    link: LinkType,
    frames: Arc<Mutex<Vec<Frame>>>,
    stop: Arc<AtomicBool>,
    /// Asks the capture thread to read what the socket holds and answer
    /// with libpcap's counters (see [`LiveCapture::flush`]).
    flushes: mpsc::Sender<mpsc::Sender<Result<CaptureStats, String>>>,
    /// Wakes the capture thread's poll at once when stop or a flush is
    /// asked.
    wake: Wake,
    /// Why the thread ended, when it ended on an error.
    done: Option<mpsc::Receiver<String>>,
}

/// A capture whose device is still being opened.
pub struct StartingCapture {
    frames: Arc<Mutex<Vec<Frame>>>,
    stop: Arc<AtomicBool>,
    flushes: mpsc::Sender<mpsc::Sender<Result<CaptureStats, String>>>,
    wake: Wake,
    ready: mpsc::Receiver<Result<LinkType, CaptureError>>,
    done: mpsc::Receiver<String>,
    thread: Option<JoinHandle<()>>,
    /// Whether dropping it stops the capture: not once handed over.
    owns_thread: bool,
}

/// A pipe whose read end the capture thread polls beside the packet socket.
struct Wake {
    read: Arc<std::os::fd::OwnedFd>,
    write: std::os::fd::OwnedFd,
}

impl Wake {
    fn new() -> std::io::Result<Wake> {
        use std::os::fd::FromRawFd;
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills two descriptors that we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both were just created and are owned by nothing else.
        let (read, write) = unsafe {
            (
                std::os::fd::OwnedFd::from_raw_fd(fds[0]),
                std::os::fd::OwnedFd::from_raw_fd(fds[1]),
            )
        };
        Ok(Wake {
            read: Arc::new(read),
            write,
        })
    }

    fn signal(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: a one-byte write to a pipe we own; a full pipe is fine.
        unsafe { libc::write(self.write.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }
}

/// Empties the wake pipe once its poll has returned, so the next poll
/// waits again; a signal sent after this is seen by the next poll.
fn drain_wake(read: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut sink = [0u8; 64];
    // SAFETY: non-blocking reads into a buffer of the length given.
    while unsafe { libc::read(read.as_raw_fd(), sink.as_mut_ptr().cast(), sink.len()) } > 0 {}
}

/// Where a cell's part of a capture begins: its frames are those stamped
/// from `since` on, its counters those above `stats`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    since: std::time::Duration,
    stats: CaptureStats,
}

impl Window {
    /// The whole of a capture opened for one cell.
    pub fn whole() -> Window {
        Window {
            since: std::time::Duration::ZERO,
            stats: CaptureStats::default(),
        }
    }
}

/// What a stopped capture holds.
#[derive(Debug, Clone)]
pub struct Captured {
    pub link: LinkType,
    pub frames: Vec<Frame>,
    pub stats: CaptureStats,
}

/// How long a caller waits for the capture thread to answer a flush.
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a blocked read waits before looking at the stop flag on its
/// own. Stopping writes to the wake pipe, which ends the wait at once, so
/// this is only a bound: an idle capture (between cells, a server
/// starting) wakes once a second, not every few milliseconds.
const READ_TIMEOUT_MS: i32 = 1000;

/// How long the kernel keeps a partly filled block before handing it over:
/// the latest a frame can be seen. One timer tick at most on any kernel
/// (4 ms at HZ=250).
pub const BLOCK_TIMEOUT_MS: i32 = 1;

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
        LiveCapture::begin(config, filter)?.ready()
    }

    /// Starts opening the device on the capture thread and returns at once;
    /// [`StartingCapture::ready`] waits until it captures.
    pub fn begin(config: &CaptureConfig, filter: &str) -> Result<StartingCapture, CaptureError> {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let wake =
            Wake::new().map_err(|e| CaptureError::Thread(format!("cannot make a pipe: {e}")))?;
        let (ready_tx, ready) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let (flushes, flush_rx) = mpsc::channel();
        let thread = {
            let (config, filter, frames, stop, wake_read) = (
                config.clone(),
                filter.to_string(),
                Arc::clone(&frames),
                Arc::clone(&stop),
                Arc::clone(&wake.read),
            );
            std::thread::spawn(move || {
                let control = Control {
                    stop: &stop,
                    wake: &wake_read,
                    flushes: &flush_rx,
                };
                let outcome = capture_loop(&config, &filter, &frames, &control, &ready_tx);
                if let Err(message) = outcome {
                    let _ = done_tx.send(message);
                }
            })
        };
        Ok(StartingCapture {
            frames,
            stop,
            flushes,
            wake,
            ready,
            done,
            thread: Some(thread),
            owns_thread: true,
        })
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Calls `look` with the frames captured since the first `start`
    /// (numbered from `start + 1`), without copying them; returns how many
    /// frames there are now. The capture thread waits while `look` runs, so
    /// it should be quick.
    pub fn frames_since(&self, start: usize, look: impl FnOnce(usize, &[Frame])) -> usize {
        match self.frames.lock() {
            Ok(frames) => {
                look(start + 1, frames.get(start..).unwrap_or_default());
                frames.len()
            }
            Err(_) => start,
        }
    }

    /// Has the capture thread read everything the socket holds now, and
    /// returns libpcap's counters since the capture opened.
    pub fn flush(&self) -> Result<CaptureStats, CaptureError> {
        // A thread that ended on an error left the reason on `done`.
        let ended = || {
            CaptureError::Thread(match self.done.as_ref().map(mpsc::Receiver::try_recv) {
                Some(Ok(message)) => message,
                _ => "the capture thread has ended".into(),
            })
        };
        let (answer, answered) = mpsc::channel();
        self.flushes.send(answer).map_err(|_| ended())?;
        self.wake.signal();
        match answered.recv_timeout(FLUSH_TIMEOUT) {
            Ok(Ok(stats)) => Ok(stats),
            Ok(Err(message)) => Err(CaptureError::Thread(message)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(ended()),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(CaptureError::Thread(
                "the capture thread did not answer within 5 s".into(),
            )),
        }
    }

    /// Starts a cell's part of a long-lived capture: whatever was captured
    /// before (nothing, when the namespace was checked empty) is dropped.
    pub fn open_window(&self) -> Result<Window, CaptureError> {
        let stats = self.flush()?;
        self.take_frames()?;
        Ok(Window {
            since: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
            stats,
        })
    }

    /// Ends a cell's part: its frames (those stamped from the window's
    /// start, taken out of the capture) and its counters.
    pub fn close_window(&self, window: Window) -> Result<Captured, CaptureError> {
        let stats = self.flush()?;
        let mut frames = self.take_frames()?;
        frames.retain(|f| f.timestamp >= window.since);
        Ok(Captured {
            link: self.link,
            frames,
            stats: CaptureStats {
                received: stats.received.wrapping_sub(window.stats.received),
                dropped: stats.dropped.wrapping_sub(window.stats.dropped),
                if_dropped: stats.if_dropped.wrapping_sub(window.stats.if_dropped),
            },
        })
    }

    fn take_frames(&self) -> Result<Vec<Frame>, CaptureError> {
        Ok(std::mem::take(&mut *self.frames.lock().map_err(|_| {
            CaptureError::Thread("lock poisoned".into())
        })?))
    }
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        // The thread sees the flag, finishes and closes on its own.
        self.stop.store(true, Ordering::SeqCst);
        self.wake.signal();
    }
}

impl StartingCapture {
    /// Waits until the device captures, or says why it cannot.
    pub fn ready(mut self) -> Result<LiveCapture, CaptureError> {
        match self.ready.recv() {
            Ok(Ok(link)) => {
                self.owns_thread = false;
                Ok(LiveCapture {
                    link,
                    frames: Arc::clone(&self.frames),
                    stop: Arc::clone(&self.stop),
                    flushes: self.flushes.clone(),
                    wake: Wake {
                        read: Arc::clone(&self.wake.read),
                        write: self
                            .wake
                            .write
                            .try_clone()
                            .map_err(|e| CaptureError::Thread(e.to_string()))?,
                    },
                    done: Some(std::mem::replace(&mut self.done, mpsc::channel().1)),
                })
            }
            Ok(Err(e)) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
                Err(e)
            }
            Err(_) => Err(CaptureError::Thread(match self.done.recv() {
                Ok(message) => message,
                _ => "capture thread ended before opening the device".into(),
            })),
        }
    }
}

impl Drop for StartingCapture {
    fn drop(&mut self) {
        if self.owns_thread {
            self.stop.store(true, Ordering::SeqCst);
            self.wake.signal();
        }
    }
}

/// What the capture thread is asked from outside, and the pipe that wakes
/// it to look.
struct Control<'a> {
    stop: &'a AtomicBool,
    wake: &'a std::os::fd::OwnedFd,
    flushes: &'a mpsc::Receiver<mpsc::Sender<Result<CaptureStats, String>>>,
}

fn capture_loop(
    config: &CaptureConfig,
    filter: &str,
    frames: &Mutex<Vec<Frame>>,
    control: &Control<'_>,
    ready: &mpsc::Sender<Result<LinkType, CaptureError>>,
) -> Result<(), String> {
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
    // The capture must keep up with the programs it watches: a thread
    // that waits for a core while a sender fills the ring loses frames.
    // Ahead of them by a nice of -10 where allowed (root), as is.
    // SAFETY: setpriority on this thread's own id.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, -10);
    }
    let opened = pcap::Capture::from_device(config.device.as_str())
        .map_err(open_err)
        .and_then(|inactive| {
            inactive
                .immediate_mode(false)
                .snaplen(config.snaplen)
                .buffer_size(config.buffer_size)
                // Without immediate mode, libpcap's timeout is the block's.
                .timeout(BLOCK_TIMEOUT_MS)
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
    // libpcap opens its socket without close-on-exec, so every program the
    // harness starts would inherit it: a server could read the capture, and
    // a program exiting after the capture was closed would hold the last
    // reference and wait on the kernel to release it (~20 ms per exit).
    // The spawner closes everything past stdio in its children already
    // (`spawn.rs`); this covers kernels that refuse its close_range flag
    // (before 5.11).
    // SAFETY: fcntl on a descriptor this thread owns.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
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
                // The socket is read empty: a flush asked for now gets
                // every frame handed over so far, and the counters.
                while let Ok(answer) = control.flushes.try_recv() {
                    let _ = answer.send(
                        capture
                            .stats()
                            .map(|stat| CaptureStats {
                                received: stat.received,
                                dropped: stat.dropped,
                                if_dropped: stat.if_dropped,
                            })
                            .map_err(|e| format!("reading capture stats: {e}")),
                    );
                }
                if control.stop.load(Ordering::SeqCst) {
                    break;
                }
                let mut pollfds = [
                    libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: std::os::fd::AsRawFd::as_raw_fd(control.wake),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ];
                // SAFETY: two valid pollfds for the duration of the call.
                unsafe { libc::poll(pollfds.as_mut_ptr(), 2, READ_TIMEOUT_MS) };
                if pollfds[1].revents != 0 {
                    drain_wake(control.wake);
                }
            }
            Err(e) => return Err(format!("reading packets: {e}")),
        }
    }
    // `capture` is closed here: every cell has taken its frames and
    // counters with a flush.
    drop(capture);
    Ok(())
}
