//! Capture, dissection, comparison and reports for the TCP tutorial's
//! server × client pairings.
//!
//! The pipeline, one folder per stage, each depending only on those before
//! it (see ARCHITECTURE.md):
//! [`suite`] (the suite as data) → [`exec`] (programs, namespaces) and
//! [`capture`] (libpcap, capture files) → [`verdict`] (signatures, checks,
//! grades, baseline) → [`matrix`] (every cell, on worker threads) →
//! [`report`] (terminal, HTML, JSON, JUnit). The bytes on the wire are read
//! by the `wire` crate, which knows nothing of processes or libpcap.

pub mod capture;
pub mod error;
pub mod exec;
pub mod matrix;
pub mod policy;
pub mod report;
pub mod run;
pub mod suite;
pub mod verdict;
