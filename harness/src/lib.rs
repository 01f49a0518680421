//! Capture, dissection, comparison and reports for the TCP tutorial's
//! server × client pairings.
//!
//! The pipeline, one folder per stage. Each module depends only on those
//! listed before it (`tests/suite/architecture.rs` holds the order, and
//! ARCHITECTURE.md explains it):
//!
//! 0. [`schema`]: JSON Schema pieces for hand-written serializations.
//! 1. [`policy`]: every field the harness names and how it is compared;
//!    [`program`]: finding a program on PATH; [`calls`]: a program's
//!    socket calls, read from strace's output.
//! 2. [`suite`]: the suite as data (implementations, scenarios, the plan).
//! 3. [`exec`]: child processes with bounded waits, and the network a cell
//!    runs in; [`capture`]: libpcap, capture files, frame comments.
//! 4. [`verdict`]: signatures, checks, grades, baseline, repeats.
//! 5. [`matrix`]: every cell run on worker threads, its artifacts saved;
//!    [`cmdline`]: the command-line cases (`harness cli`), run and graded.
//! 6. [`run`]: one whole run, as a library call, into a `RunOutcome`.
//! 7. [`report`]: terminal, HTML, JSON, JUnit, ladders, `inspect`.
//! 8. [`merge`]: the shards of one run (`--shard K/N`) combined into one.
//!
//! The bytes on the wire are read by the `wire` crate, which knows nothing
//! of processes or libpcap. [`error`] carries each failure's exit code.

pub mod calls;
pub mod policy;
pub mod program;
pub mod schema;

pub mod suite;

pub mod capture;
pub mod exec;

pub mod verdict;

pub mod cmdline;
pub mod matrix;

pub mod run;

pub mod report;

pub mod merge;

pub mod error;
