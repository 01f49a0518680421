//! Several clients against one server held still: how a backlog fills.
//!
//! `listen(1)` asks the kernel to queue connections the server has not
//! accepted yet. Linux queues up to backlog + 1 of them; the SYN of the
//! next one is dropped without an answer (counted as `ListenOverflows`),
//! and that client retries on its retransmission timer. It does not
//! refuse: the tutorial's comment on `listen(1)` says "start rejecting",
//! and this is what the learner sees instead.
//!
//! Which client lands in the queue and which is dropped depends only on
//! how many came before it, provided the server accepts none meanwhile
//! and the clients do not race each other's handshakes. So the cell holds
//! the server still (SIGSTOP to its process group, as a busy server would
//! be, and waits until it has really stopped) from its ready line, starts
//! the clients one at a time, each once the last one has done what it will
//! do while the server is held, and then lets the server go (SIGCONT).
//! That is read from the client's exit and the kernel's own counters in
//! the cell's namespace (a listen overflow: its SYN was dropped), never
//! from a sleep.

use std::time::{Duration, Instant};

use super::process::Child;
use super::Cancel;

/// How long one client's connect may take to settle before the next
/// client starts anyway: a client that never connects must not hold the
/// cell. A conforming client settles in about a millisecond.
pub const SETTLE_BOUND: Duration = Duration::from_secs(2);

/// The kernel's counts of connections a listener queued and SYNs it
/// dropped because its queue was full, in the calling thread's network
/// namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenCounters {
    /// `Tcp: PassiveOpens`: handshakes completed into a listener's queue.
    pub passive_opens: u64,
    /// `TcpExt: ListenOverflows`: SYNs (or final ACKs) dropped because the
    /// accept queue was full.
    pub overflows: u64,
}

impl ListenCounters {
    /// Reads them from `/proc/thread-self/net`: the thread's namespace,
    /// which is the cell's (`/proc/self/net` would be the main thread's).
    pub fn read() -> std::io::Result<ListenCounters> {
        let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp")?;
        let netstat = std::fs::read_to_string("/proc/thread-self/net/netstat")?;
        let missing = |name: &str| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the kernel's counters have no {name}"),
            )
        };
        Ok(ListenCounters {
            passive_opens: counter(&snmp, "Tcp", "PassiveOpens")
                .ok_or_else(|| missing("Tcp: PassiveOpens"))?,
            overflows: counter(&netstat, "TcpExt", "ListenOverflows")
                .ok_or_else(|| missing("TcpExt: ListenOverflows"))?,
        })
    }
}

/// One counter from the `/proc/net/snmp` layout: a line of names after
/// `group:`, then a line of values after the same prefix.
fn counter(text: &str, group: &str, name: &str) -> Option<u64> {
    let prefix = format!("{group}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let position = names.split_whitespace().position(|n| n == name);
        if let Some(i) = position {
            return values.split_whitespace().nth(i)?.parse().ok();
        }
    }
    None
}

/// How long a queued client is given to finish on its own while the
/// server is held: the tutorial's client sends into the kernel's buffer
/// and exits at once, so what it does is over before the server moves. A
/// client that waits for an answer is queued all the same, and the cell
/// goes on after this.
pub const QUEUED_GRACE: Duration = Duration::from_secs(1);

/// How one client's connect ended up while the server was held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Its SYN was dropped: the backlog is full.
    Dropped,
    /// It exited (queued and done, or it never connected).
    Exited,
    /// Queued, and still running after [`QUEUED_GRACE`].
    Queued,
    /// Nothing counted within [`SETTLE_BOUND`], or the run was cancelled.
    TimedOut,
}

/// Waits until the client just started (`client`) has done what it will
/// do while the server is held: it exited, or the kernel dropped its SYN,
/// or it is queued and still waiting after [`QUEUED_GRACE`]. Waiting for
/// the exit of a queued client, not just its handshake, is what makes the
/// outcome the same on every run: a client that has connected but not yet
/// written when the server is let go would be reset before it sends.
/// Polls every 200 µs, as a connect on loopback settles in about a
/// millisecond and this wait is on every backlog cell's path.
pub fn wait_settled(before: &ListenCounters, client: &Child, cancel: &Cancel) -> Settled {
    let start = Instant::now();
    let mut queued_at = None;
    while start.elapsed() < SETTLE_BOUND && !cancel.is_cancelled() {
        if client.has_exited() {
            return Settled::Exited;
        }
        if let Ok(now) = ListenCounters::read() {
            if now.overflows > before.overflows {
                return Settled::Dropped;
            }
            if now.passive_opens > before.passive_opens {
                let since = *queued_at.get_or_insert_with(Instant::now);
                if since.elapsed() >= QUEUED_GRACE {
                    return Settled::Queued;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    match queued_at {
        Some(_) => Settled::Queued,
        None => Settled::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout as Linux writes it (two groups, names then values).
    const SNMP: &str = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin ActiveOpens PassiveOpens\nTcp: 1 200 7 3\nUdp: InDatagrams\nUdp: 0\n";

    #[test]
    fn a_counter_is_found_by_group_and_name() {
        assert_eq!(counter(SNMP, "Tcp", "PassiveOpens"), Some(3));
        assert_eq!(counter(SNMP, "Tcp", "ActiveOpens"), Some(7));
        assert_eq!(counter(SNMP, "Ip", "DefaultTTL"), Some(64));
        assert_eq!(counter(SNMP, "Tcp", "Nothing"), None);
        assert_eq!(counter(SNMP, "TcpExt", "PassiveOpens"), None);
    }

    /// This kernel has both counters, readable from any thread.
    #[test]
    fn this_kernel_counts_passive_opens_and_overflows() {
        ListenCounters::read().unwrap();
    }
}
