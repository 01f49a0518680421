//! The harness package's one integration-test binary (ripgrep-style): a
//! small `util` module shared by every test module.

mod util;

mod architecture;
mod browser;
mod cli;
mod conditions;
mod faults;
mod golden;
mod matrix;
mod namespaces;
mod parity;
mod sequence_space;
mod versions;
