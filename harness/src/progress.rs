//! What the harness says on stderr while a run goes on.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use harness::run::{Observer, RunStart};
use harness::verdict::PairingResult;

/// Progress while the matrix runs, on stderr: one line rewritten in place
/// on a terminal, one line per finished cell otherwise (a CI log), nothing
/// with --quiet or --json.
pub struct Progress {
    total: AtomicUsize,
    finished: AtomicUsize,
    quiet: bool,
    terminal: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            total: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            quiet,
            terminal: std::io::stderr().is_terminal(),
        }
    }
}

impl Observer for Progress {
    fn started(&self, run: &RunStart<'_>) {
        self.total.store(run.runnable, Ordering::SeqCst);
        if self.quiet {
            return;
        }
        eprintln!(
            "harness: {} cells in {} scenarios, {} to run, {} at a time; isolation: {}; artifacts in {}",
            run.cells,
            run.scenarios,
            run.runnable,
            run.workers,
            run.isolation.describe(),
            run.artifacts.display()
        );
        for (name, path) in run.interpreters {
            eprintln!(
                "harness: {name} on PATH is a version manager's shim; its programs run as {} (what the shim runs, without its start-up)",
                path.display()
            );
        }
        if run.shared_fixed_ports {
            eprintln!("harness: warning: without network namespaces, fixed-port scenarios share the host's loopback; a TIME_WAIT left by an earlier cell can change a later SYN (run as root for --isolation netns)");
        }
    }

    fn cell_done(&self, r: &PairingResult) {
        let n = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
        if self.quiet {
            return;
        }
        let state = if r.passed_checks() { "ok" } else { "FAILED" };
        let line = format!(
            "[{n}/{}] {}: {state}",
            self.total.load(Ordering::SeqCst),
            r.id
        );
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("  {line}");
        }
    }

    fn matrix_done(&self) {
        if self.terminal && !self.quiet && self.finished.load(Ordering::SeqCst) > 0 {
            eprintln!();
        }
    }

    fn repeat_done(&self, run: usize, of: usize, same: bool, kept: &std::path::Path) {
        if self.quiet {
            return;
        }
        if same {
            eprintln!("harness: repeat {run}/{of}: every verdict as in run 1");
        } else {
            eprintln!(
                "harness: repeat {run}/{of}: verdicts differ from run 1; kept in {}",
                kept.display()
            );
        }
    }
}
