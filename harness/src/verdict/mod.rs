//! Judging a cell: what is compared ([`signature`], under the field
//! policies of [`crate::policy`]), the pass/fail rules ([`checks`]), the
//! graded verdict of each cell ([`grade`]), the expected verdicts
//! ([`baseline`]) and repeated runs ([`repeat`]); and for a capture file
//! of any size, its connections grouped by signature ([`survey`]); a
//! program's socket calls against the reference's ([`calls`]). Pure
//! functions of what was captured and printed: nothing here runs a program.

pub mod baseline;
pub(crate) mod calls;
pub(crate) mod checks;
pub(crate) mod grade;
pub(crate) mod repeat;
pub(crate) mod result;
pub mod signature;
pub mod survey;

pub use baseline::{Change, Comparison};
pub use checks::{Check, CheckId};
pub use grade::{Cell, Counts, Verdict};
pub use repeat::{FlakyCell, RepeatSummary, Repeats};
pub use result::PairingResult;
