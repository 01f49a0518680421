//! The harness's errors, each carrying the exit code it ends the process
//! with, so `main` never decides a code itself.
//!
//! The contract (README, "Exit codes"): 0 everything conforms, 1 a cell
//! changed, differs or failed, 2 a usage or environment error, 130
//! interrupted by SIGINT, 143 by SIGTERM (128 + the signal).

use std::fmt;

/// Exit code: every cell conforms.
pub const EXIT_OK: u8 = 0;
/// Exit code: a cell changed from the baseline, differs or failed.
pub const EXIT_CHANGED: u8 = 1;
/// Exit code: bad arguments or input, or an environment that cannot run
/// the suite (no capture permission, a missing file, a full disk).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: interrupted (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// A run that could not be carried out, with the one line that says why
/// and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    code: u8,
}

impl Error {
    /// Bad arguments, bad input files, or an environment that cannot run
    /// the suite: exit 2.
    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            code: EXIT_USAGE,
        }
    }

    /// Interrupted before anything could be reported.
    pub fn interrupted(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            code: EXIT_INTERRUPTED,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Most errors below the top are one-line strings or typed errors with a
/// message; both are usage or environment errors by the time they get here.
impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::usage(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::usage(message)
    }
}
