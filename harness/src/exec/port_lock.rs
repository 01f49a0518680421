//! A machine-wide lock on a fixed port.
//!
//! A scenario with a fixed port (the tutorial's 7456) can run only one
//! server at a time on it, not just within one harness run but across all of
//! them: two `cargo test` binaries, or a test and a `make run`, would
//! otherwise bind the same port and each capture the other's connections.
//! An advisory `flock` on a file named after the port serialises them. The
//! kernel drops the lock when the holder dies, so a killed run cannot leave
//! it held.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct PortLock {
    _file: File,
}

fn lock_path(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("tcp-conformance-harness-port-{port}.lock"))
}

/// Takes the lock on `port`, waiting at most `timeout` (polling, so that
/// `cancelled` is honoured too).
pub fn lock(
    port: u16,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<PortLock, String> {
    let path = lock_path(port);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open the port lock {}: {e}", path.display()))?;
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: flock on a file descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(PortLock { _file: file });
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(format!("cannot lock {}: {err}", path.display()));
        }
        if cancelled() {
            return Err("interrupted".into());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "port {port} stayed in use by another harness run for {}s (lock {}); wait for it to finish",
                timeout.as_secs(),
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_times_out() {
        let port = 1; // never bound by the tests; only the lock file matters
        let first = lock(port, Duration::from_secs(1), &|| false).unwrap();
        let second = lock(port, Duration::from_millis(100), &|| false);
        assert!(second.unwrap_err().contains("another harness run"));
        drop(first);
        assert!(lock(port, Duration::from_millis(100), &|| false).is_ok());
    }
}
