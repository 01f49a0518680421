//! Running programs and keeping them apart: one child process with bounded
//! waits ([`process`], started by [`spawn`]), the network a cell runs in
//! ([`network`]: its own namespace, a veth pair, or a port lock from
//! [`port_lock`] when neither is possible), and cancellation.

pub mod network;
pub(crate) mod port_lock;
pub mod process;
pub(crate) mod spawn;
pub mod timing;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Asks every wait of a run to stop early: set by Ctrl-C or SIGTERM, read
/// by every bounded wait. A value handed down rather than a global, so a
/// test (or a library user) can run several matrices in one process and
/// cancel one of them.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks for the run to stop; safe from a signal handler's thread.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
