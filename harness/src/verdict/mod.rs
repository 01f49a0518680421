//! Judging a cell: what is compared ([`signature`], under the field
//! policies of [`crate::policy`]), the pass/fail rules ([`checks`]), the
//! graded verdict of each cell ([`grade`]), the expected verdicts
//! ([`baseline`]) and repeated runs ([`repeat`]). Pure functions of what a
//! cell captured and printed: nothing here runs a program.

pub mod baseline;
pub mod checks;
pub mod grade;
pub mod repeat;
pub mod result;
pub mod signature;
