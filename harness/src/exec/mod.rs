//! Running programs and keeping them apart: one child process with bounded
//! waits ([`process`], started by [`spawn`]), the network a cell runs in
//! ([`network`]: its own namespace, a veth pair, or a port lock from
//! [`port_lock`] when neither is possible; [`sockets`] tells whether a
//! namespace can be used again), the conditions a scenario sets in it
//! ([`conditions`], [`impair`], [`backlog`]; the tables there by
//! [`nf_tables`]), the kernel asked over [`netlink`], Python run without
//! its version manager's shim ([`interpreter`]), and cancellation.

pub mod backlog;
pub mod conditions;
pub mod impair;
pub mod interpreter;
pub(crate) mod netlink;
pub mod network;
pub(crate) mod nf_tables;
pub(crate) mod port_lock;
pub mod process;
pub mod sockets;
pub(crate) mod spawn;
pub mod timing;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

/// Asks every wait of a run to stop early: set by Ctrl-C or SIGTERM, read
/// by every bounded wait. A value handed down rather than a global, so a
/// test (or a library user) can run several matrices in one process and
/// cancel one of them. It remembers the signal that asked, for the exit
/// code (128 + the signal, as a shell reports a death by it).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicI32>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks for the run to stop, as Ctrl-C would.
    pub fn cancel(&self) {
        self.cancel_by_signal(libc::SIGINT);
    }

    /// Asks for the run to stop because `signal` arrived; the first signal
    /// is the one remembered.
    pub fn cancel_by_signal(&self, signal: i32) {
        let _ = self
            .0
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst) != 0
    }

    /// The signal that cancelled the run, if one did.
    pub fn signal(&self) -> Option<i32> {
        Some(self.0.load(Ordering::SeqCst)).filter(|s| *s != 0)
    }
}
