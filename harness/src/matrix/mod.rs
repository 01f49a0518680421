//! Running the matrix: each cell under its own capture ([`cell`]), cells
//! spread over worker threads that prepare the next cell's network and
//! capture ahead.

pub(crate) mod cell;
pub(crate) mod merged;
pub(crate) mod workers;

pub use cell::Timeouts;
