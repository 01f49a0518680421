//! The harness package's one integration-test binary (ripgrep-style): a
//! small `util` module shared by every test module.

mod util;

mod cli;
mod faults;
mod golden;
mod matrix;
mod parity;
