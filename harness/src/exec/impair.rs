//! The NFQUEUE verdict loop: the segment rules nftables cannot carry out
//! alone (delay, reorder, reset), done in the harness on the segments a
//! rule's nftables budget selected and queued. (A copy is nftables'
//! own `dup`: see `exec::conditions::Hook::Egress`.)
//!
//! nftables still does the choosing (which way, which kind, the nth, how
//! many), so the loop only ever sees the segments it is to act on, each in
//! the queue numbered after its rule. What it does is deterministic: hold
//! for a fixed time, deliver the later of two first, or replace with a
//! RST. RSTs are sent through a raw socket whose mark
//! ([`INJECTED_RST_MARK`]) every rule skips, so nothing the loop sends is
//! selected again.
//!
//! A reset must land exactly: the receiver takes a RST only when its
//! sequence number is the next one it expects, and the sender's own
//! retransmission of the replaced segment would move that on. So a reset
//! rule queues every selected segment from the nth on, where they leave
//! their sender; the first is dropped and its RST sent, and the RST is
//! queued again where it arrives ([`RST_QUEUE`]). Until the loop there has
//! let it through (the kernel processes a segment within the verdict that
//! lets it through) and said so through their [`Landing`], every later
//! segment of the rule waits; after, each passes at once. On the loopback
//! both are one loop; on a veth pair, one in each namespace.
//!
//! Every wait is bounded: the loop looks at its queue and its timers at
//! most a millisecond apart, a segment held for a partner that never comes
//! is let go after [`PARTNER_WAIT`], and when the cell ends everything
//! still held is delivered before the loop's thread ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::suite::conditions::{Action, Rule};

/// The mark on every copy the harness makes: rules skip it.
pub const INJECTED_MARK: u32 = 0x1713_0000;

/// The mark on every RST the loop sends, which iptables queues back to
/// [`RST_QUEUE`] so the loop knows it has landed.
pub const INJECTED_RST_MARK: u32 = 0x1713_0001;

/// What rules test to skip the loop's own packets: the marks' high half.
pub const INJECTED_MASK: u32 = 0xffff_0000;

/// Rule i's segments go to queue `QUEUE_BASE + i`.
pub const QUEUE_BASE: u16 = 100;

/// Where the loop's own RSTs come back.
pub const RST_QUEUE: u16 = 99;

/// How long a segment waits for the one it is to be swapped with.
pub const PARTNER_WAIT: Duration = Duration::from_secs(2);

/// Whether a rule's segments go through the loop.
pub fn queued(rule: &Rule) -> bool {
    matches!(rule.action, Action::Delay | Action::Reorder | Action::Reset)
}

/// A reset's RST between the loop that sends it and the loop where it
/// lands, which on a veth pair are in two namespaces.
#[derive(Debug, Default)]
pub struct Landing {
    /// The RST's sequence number plus one; 0 before one is sent.
    sent: AtomicU64,
    landed: AtomicBool,
}

impl Landing {
    fn sent(&self, seq: u32) {
        self.sent.store(u64::from(seq) + 1, Ordering::SeqCst);
    }

    /// A RST let through where it lands: the one sent, or another's.
    fn let_through(&self, seq: Option<u32>) {
        if seq.is_some_and(|seq| self.sent.load(Ordering::SeqCst) == u64::from(seq) + 1) {
            self.landed.store(true, Ordering::SeqCst);
        }
    }

    fn has_landed(&self) -> bool {
        self.landed.load(Ordering::SeqCst)
    }
}

/// The running loop of one cell.
pub struct Impairer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<u64>, String>>>,
}

/// A cell that ends early still stops its loop (which then delivers what
/// it holds and ends on its own, within a millisecond).
impl Drop for Impairer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// What one namespace's loop listens to (which namespace acts on what is
/// `exec::conditions::Side`'s to say).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queues {
    /// The rules whose segments are queued here, by index.
    pub rules: Vec<usize>,
    /// Whether a reset's RST lands here ([`RST_QUEUE`]).
    pub rst: bool,
}

impl Impairer {
    /// Starts the loop in the calling thread's network namespace, bound to
    /// `queues`; `None` when there are none. Returns once the queues are
    /// bound, so no selected segment finds nobody listening (it would be
    /// dropped: a queue rule has no bypass, so a loop that is not there
    /// shows as a rule that did not act).
    pub fn start(
        rules: &[Rule],
        queues: Queues,
        landing: Arc<Landing>,
    ) -> Result<Option<Impairer>, String> {
        if queues == Queues::default() {
            return Ok(None);
        }
        let rules = rules.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let (bound_tx, bound_rx) = mpsc::channel();
        let stopping = Arc::clone(&stop);
        // A thread inherits its creator's network namespace: the queues
        // and the raw socket are the cell's.
        let thread = std::thread::Builder::new()
            .name("impair".into())
            .spawn(move || run(&rules, &queues, &landing, &stopping, bound_tx))
            .map_err(|e| format!("cannot start the NFQUEUE loop: {e}"))?;
        match bound_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Some(Impairer {
                stop,
                thread: Some(thread),
            })),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                stop.store(true, Ordering::SeqCst);
                Err("the NFQUEUE loop did not bind its queues within 5 s".into())
            }
        }
    }

    /// Delivers whatever is still held, stops the loop, and returns how
    /// many segments each rule acted on (by rule index; rules the loop
    /// does not carry out read 0).
    pub fn finish(mut self) -> Result<Vec<u64>, String> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| "the NFQUEUE loop panicked".to_string())?,
            None => Ok(Vec::new()),
        }
    }
}

/// A segment the loop holds, and when it goes.
struct Held {
    message: nfq::Message,
    rule: usize,
    until: Instant,
}

/// Where the loop stands with a reset rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResetState {
    /// No segment replaced yet.
    Armed,
    /// The RST is on its way; the rule's segments wait for it.
    Sent(Instant),
    /// The RST has landed: the rule's segments pass.
    Landed,
}

fn run(
    rules: &[Rule],
    queues: &Queues,
    landing: &Landing,
    stop: &AtomicBool,
    bound: mpsc::Sender<Result<(), String>>,
) -> Result<Vec<u64>, String> {
    let mut queue = match open(queues) {
        Ok(q) => {
            let _ = bound.send(Ok(()));
            q
        }
        Err(e) => {
            let _ = bound.send(Err(e.clone()));
            return Err(e);
        }
    };
    // Every selected segment waits on this thread: ahead of the programs
    // by a nice of -10 where allowed (root), as the capture thread is, so
    // a busy machine does not stretch a swap into a delay.
    // SAFETY: setpriority on this thread's own id.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, -10);
    }
    let mut counts = vec![0u64; rules.len()];
    let mut held: Vec<Held> = Vec::new();
    let mut reset = ResetState::Armed;
    let mut problems = Vec::new();
    // Short right after a segment, when the next is likely close behind;
    // longer while idle, to a millisecond.
    let mut pause = Duration::from_micros(20);
    loop {
        // The RST has landed (here, or in the other namespace): what
        // waited for it goes.
        if matches!(reset, ResetState::Sent(_)) && landing.has_landed() {
            reset = ResetState::Landed;
            release(&mut queue, &mut held, |h| {
                rules[h.rule].action == Action::Reset
            });
        }
        match queue.recv() {
            Ok(message) => {
                pause = Duration::from_micros(20);
                let now = Instant::now();
                if message.get_queue_num() == RST_QUEUE {
                    // A RST where it lands: through it goes, processed
                    // before this verdict returns; then, if it is the
                    // one sent, the sender's loop is told.
                    let seq = sequence_number(message.get_payload());
                    deliver(&mut queue, message, nfq::Verdict::Accept);
                    landing.let_through(seq);
                    continue;
                }
                let rule = usize::from(message.get_queue_num().saturating_sub(QUEUE_BASE));
                let Some(&Rule {
                    action, delay_ms, ..
                }) = rules.get(rule)
                else {
                    deliver(&mut queue, message, nfq::Verdict::Accept);
                    continue;
                };
                match action {
                    Action::Delay => {
                        counts[rule] += 1;
                        let delay = Duration::from_millis(u64::from(delay_ms.unwrap_or(0)));
                        held.push(Held {
                            message,
                            rule,
                            until: now + delay,
                        });
                    }
                    Action::Reset => match reset {
                        ResetState::Armed => {
                            let packet = message.get_payload().to_vec();
                            deliver(&mut queue, message, nfq::Verdict::Drop);
                            if let Some(seq) = sequence_number(&packet) {
                                landing.sent(seq);
                            }
                            // A loop sends one RST at most (the reset is
                            // armed once), and most loops none: the raw
                            // sockets are opened for it here.
                            let sent = Injector::open()
                                .map_err(|e| format!("cannot open a raw socket: {e}"))
                                .and_then(|injector| injector.send(&packet));
                            match sent {
                                Ok(()) => {
                                    counts[rule] += 1;
                                    reset = ResetState::Sent(now);
                                }
                                Err(e) => problems.push(format!("RST not sent: {e}")),
                            }
                        }
                        ResetState::Sent(_) => held.push(Held {
                            message,
                            rule,
                            until: now + PARTNER_WAIT,
                        }),
                        ResetState::Landed => deliver(&mut queue, message, nfq::Verdict::Accept),
                    },
                    Action::Reorder => match held.iter().position(|h| h.rule == rule) {
                        // The later segment first, then the one held.
                        Some(i) => {
                            let first = held.remove(i);
                            deliver(&mut queue, message, nfq::Verdict::Accept);
                            deliver(&mut queue, first.message, nfq::Verdict::Accept);
                            counts[rule] += 2;
                        }
                        None => held.push(Held {
                            message,
                            rule,
                            until: now + PARTNER_WAIT,
                        }),
                    },
                    // nftables' own: never queued.
                    Action::Drop | Action::Duplicate => {
                        deliver(&mut queue, message, nfq::Verdict::Accept)
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Read only once the queue is empty: a segment queued
                // before the stop is still acted on, never left behind.
                let stopping = stop.load(Ordering::SeqCst);
                let now = Instant::now();
                if let ResetState::Sent(at) = reset {
                    if now >= at + PARTNER_WAIT {
                        problems.push(format!(
                            "the RST sent did not come back through the queue within {PARTNER_WAIT:?}"
                        ));
                        reset = ResetState::Landed;
                    }
                }
                // Due (or the cell is over): delivered in the order held.
                // A reorder's segment let go alone was not swapped: not
                // counted, so its rule reads as not applied.
                release(&mut queue, &mut held, |h| stopping || h.until <= now);
                if stopping {
                    break;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
            Err(e) => {
                release(&mut queue, &mut held, |_| true);
                return Err(format!("the NFQUEUE loop failed: {e}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(counts)
    } else {
        Err(problems.join("; "))
    }
}

/// Lets through, in the order held, every held segment `due` picks.
fn release(queue: &mut nfq::Queue, held: &mut Vec<Held>, due: impl Fn(&Held) -> bool) {
    let (go, stay): (Vec<Held>, Vec<Held>) = std::mem::take(held).into_iter().partition(due);
    *held = stay;
    for h in go {
        deliver(queue, h.message, nfq::Verdict::Accept);
    }
}

fn deliver(queue: &mut nfq::Queue, mut message: nfq::Message, verdict: nfq::Verdict) {
    message.set_verdict(verdict);
    let _ = queue.verdict(message);
}

/// A queue bound to `queues`, non-blocking.
fn open(queues: &Queues) -> Result<nfq::Queue, String> {
    let fail = |e: std::io::Error| format!("cannot bind an NFQUEUE queue: {e}");
    let mut queue = nfq::Queue::open().map_err(fail)?;
    for &i in &queues.rules {
        let number = QUEUE_BASE + i as u16;
        queue.bind(number).map_err(fail)?;
        // A GSO packet (a veth pair passes them whole, as the capture
        // shows them: one frame) is queued as it is, not cut into
        // wire-sized segments: one selected segment, one verdict, as the
        // rule's budget counts.
        queue.set_recv_gso(number, true).map_err(fail)?;
    }
    if queues.rst {
        queue.bind(RST_QUEUE).map_err(fail)?;
    }
    queue.set_nonblocking(true);
    Ok(queue)
}

/// Where an IPv4 or IPv6 packet's TCP header starts, and where the
/// packet ends.
fn tcp_span(packet: &[u8]) -> Result<(usize, usize), String> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let ip = etherparse::Ipv4HeaderSlice::from_slice(packet).map_err(|e| e.to_string())?;
            Ok((
                usize::from(ip.ihl()) * 4,
                usize::from(ip.total_len()).min(packet.len()),
            ))
        }
        Some(6) => {
            let ip = etherparse::Ipv6HeaderSlice::from_slice(packet).map_err(|e| e.to_string())?;
            if ip.next_header() != etherparse::IpNumber::TCP {
                return Err("an IPv6 packet with extension headers".into());
            }
            Ok((
                40,
                (40 + usize::from(ip.payload_length())).min(packet.len()),
            ))
        }
        _ => Err("not an IP packet".into()),
    }
}

/// The TCP sequence number of a queued packet.
fn sequence_number(packet: &[u8]) -> Option<u32> {
    let (start, end) = tcp_span(packet).ok()?;
    let tcp = etherparse::TcpHeaderSlice::from_slice(&packet[start..end]).ok()?;
    Some(tcp.sequence_number())
}

/// The RST that replaces `packet` (an IPv4 or IPv6 packet carrying TCP):
/// a RST|ACK from the same sender, with the segment's sequence and
/// acknowledgement numbers, no options and no payload, its TCP checksum
/// computed. The receiver takes it as its peer's reset, since its
/// sequence number is the one expected. The IPv4 header checksum is the
/// kernel's to fill in on a raw socket.
pub fn reset_for(packet: &[u8]) -> Result<Vec<u8>, String> {
    let (ip_len, total) = tcp_span(packet)?;
    let tcp = etherparse::TcpHeaderSlice::from_slice(&packet[ip_len..total])
        .map_err(|e| e.to_string())?;
    let mut header = tcp.to_header();
    header.rst = true;
    header.ack = true;
    header.syn = false;
    header.fin = false;
    header.psh = false;
    header.window_size = 0;
    header.urg = false;
    let _ = header.set_options(&[]);
    let v4 = packet[0] >> 4 == 4;
    header.checksum = if v4 {
        let ip = etherparse::Ipv4HeaderSlice::from_slice(packet).map_err(|e| e.to_string())?;
        header
            .calc_checksum_ipv4_raw(ip.source(), ip.destination(), &[])
            .map_err(|e| e.to_string())?
    } else {
        let ip = etherparse::Ipv6HeaderSlice::from_slice(packet).map_err(|e| e.to_string())?;
        header
            .calc_checksum_ipv6_raw(ip.source(), ip.destination(), &[])
            .map_err(|e| e.to_string())?
    };
    let mut out = packet[..ip_len].to_vec();
    header.write(&mut out).map_err(|e| e.to_string())?;
    if v4 {
        let length = out.len() as u16;
        out[2..4].copy_from_slice(&length.to_be_bytes());
    } else {
        let length = (out.len() - 40) as u16;
        out[4..6].copy_from_slice(&length.to_be_bytes());
    }
    Ok(out)
}

/// Raw sockets that send whole IP packets marked [`INJECTED_RST_MARK`],
/// IPv4 and IPv6.
struct Injector {
    sockets: [Option<std::os::fd::OwnedFd>; 2],
}

impl Injector {
    fn open() -> std::io::Result<Injector> {
        let raw = |family: libc::c_int| -> std::io::Result<std::os::fd::OwnedFd> {
            // SAFETY: a raw socket; IPPROTO_RAW means the packet carries
            // its own IP header (IP_HDRINCL, and IPV6_HDRINCL since 4.5).
            let fd = unsafe {
                libc::socket(
                    family,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    libc::IPPROTO_RAW,
                )
            };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: just opened, owned by nobody else.
            let owned =
                unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            let mark = INJECTED_RST_MARK;
            // SAFETY: SO_MARK takes an int-sized value.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_MARK,
                    (&mark as *const u32).cast(),
                    std::mem::size_of::<u32>() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(owned)
        };
        Ok(Injector {
            sockets: [Some(raw(libc::AF_INET)?), raw(libc::AF_INET6).ok()],
        })
    }

    /// Sends the RST that replaces `packet` to the packet's destination.
    fn send(&self, packet: &[u8]) -> Result<(), String> {
        use std::os::fd::AsRawFd;
        let out = reset_for(packet)?;
        let v4 = out[0] >> 4 == 4;
        let Some(socket) = &self.sockets[usize::from(!v4)] else {
            return Err("no IPv6 raw socket".into());
        };
        // The destination, of the packet's own family.
        // SAFETY: an all-zero sockaddr_storage is valid, and it has room
        // for either family's address, written through its own type.
        let (to, len) = unsafe {
            let mut to: libc::sockaddr_storage = std::mem::zeroed();
            if v4 {
                let sin = &mut *(&mut to as *mut _ as *mut libc::sockaddr_in);
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_addr.s_addr = u32::from_ne_bytes([out[16], out[17], out[18], out[19]]);
                (to, std::mem::size_of::<libc::sockaddr_in>())
            } else {
                let sin6 = &mut *(&mut to as *mut _ as *mut libc::sockaddr_in6);
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_addr.s6_addr.copy_from_slice(&out[24..40]);
                (to, std::mem::size_of::<libc::sockaddr_in6>())
            }
        };
        // SAFETY: sendto from a live buffer to the address just filled in.
        let sent = unsafe {
            libc::sendto(
                socket.as_raw_fd(),
                out.as_ptr().cast(),
                out.len(),
                0,
                (&to as *const libc::sockaddr_storage).cast(),
                len as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data segment as loopback queues it: checksum not filled in.
    fn segment() -> Vec<u8> {
        let builder = etherparse::PacketBuilder::ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(40000, 1712, 1000, 512)
            .ack(77)
            .psh();
        let mut out = Vec::new();
        builder.write(&mut out, b"Hello server!").unwrap();
        // The checksum zeroed, as an offloaded one is.
        out[20 + 16] = 0;
        out[20 + 17] = 0;
        out
    }

    #[test]
    fn a_reset_takes_the_segments_numbers_and_drops_its_payload() {
        let rst = reset_for(&segment()).unwrap();
        let parsed = etherparse::SlicedPacket::from_ip(&rst).unwrap();
        let Some(etherparse::TransportSlice::Tcp(tcp)) = parsed.transport else {
            panic!("no TCP")
        };
        assert!(tcp.rst() && tcp.ack() && !tcp.psh());
        assert_eq!(
            (
                tcp.sequence_number(),
                tcp.acknowledgment_number(),
                tcp.payload().len()
            ),
            (1000, 77, 0)
        );
        assert_eq!(rst.len(), 40);
        assert_eq!(sequence_number(&rst), Some(1000));
        let Some(etherparse::NetSlice::Ipv4(ip)) = parsed.net else {
            panic!("no IPv4")
        };
        assert_eq!(
            tcp.calc_checksum_ipv4(ip.header().source(), ip.header().destination())
                .unwrap(),
            tcp.checksum()
        );
    }

    #[test]
    fn a_landing_is_the_rst_sent_and_no_other() {
        let landing = Landing::default();
        landing.let_through(Some(1000));
        assert!(!landing.has_landed(), "nothing sent yet");
        landing.sent(1000);
        landing.let_through(Some(999));
        landing.let_through(None);
        assert!(!landing.has_landed(), "another RST");
        landing.let_through(Some(1000));
        assert!(landing.has_landed());
    }
}
