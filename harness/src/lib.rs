//! Capture, dissection, comparison and reports for the TCP tutorial's
//! server × client pairings.
//!
//! The pipeline, one module per step:
//! [`capture`] (libpcap) → [`dissect`] (etherparse, plus [`tcp_options`]) →
//! [`conversation`] (connections, relative numbers, streams, phases) →
//! [`checks`] (one pairing against the rules) and [`compare`] (one pairing
//! against the reference) → [`report`], graded against the [`baseline`].
//!
//! What runs is data: [`manifest`] declares the implementations,
//! [`scenario`] the scenarios, and [`plan`] crosses them into cells.

pub mod annotate;
pub mod baseline;
pub mod capture;
pub mod checks;
pub mod conversation;
pub mod declaration;
pub mod dissect;
#[cfg(test)]
mod fixtures;
pub mod html;
pub mod inspect;
pub mod isolation;
pub mod junit;
pub mod ladder;
pub mod manifest;
pub mod plan;
pub mod port_lock;
pub mod process;
pub mod repeat;
pub mod report;
pub mod runner;
pub mod savefile;
pub mod scenario;
pub mod signature;
pub mod spawn;
pub mod tcp_options;
