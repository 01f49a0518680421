//! Running the matrix: each cell with its window of a capture ([`cell`]),
//! cells spread over worker threads that keep a namespace and a capture
//! from cell to cell while the cells leave nothing behind ([`workers`]).

pub(crate) mod artifacts;
pub(crate) mod cell;
pub(crate) mod merged;
pub(crate) mod workers;

pub use cell::Timeouts;
