//! TCP sequence numbers: 32-bit values that wrap (RFC 9293 §3.4).
//!
//! A newtype rather than a bare `u32`, so that the only arithmetic on them
//! is the wrapping kind: an offset added to a number, or the distance from
//! one number to a later one. Plain `+` or `-` on a `u32` would panic in a
//! debug build on the first connection whose ISN is near 2³², one time in
//! a few thousand runs, which is exactly the kind of flake this project
//! refuses.

use std::fmt;
use std::ops::{Add, Sub};

/// An absolute sequence or acknowledgement number, as carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(transparent)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// Whether `self` comes before `other` in sequence space (serial number
    /// arithmetic, RFC 1982): within half the space ahead.
    pub fn is_before(self, other: SeqNum) -> bool {
        self != other && (other - self) < (1 << 31)
    }
}

/// A number `offset` bytes further on.
impl Add<u32> for SeqNum {
    type Output = SeqNum;
    fn add(self, offset: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(offset))
    }
}

/// A number `offset` bytes back.
impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    fn sub(self, offset: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(offset))
    }
}

/// The distance from `base` forward to `self`: a relative number as
/// Wireshark shows it, whatever wrapped in between.
impl Sub<SeqNum> for SeqNum {
    type Output = u32;
    fn sub(self, base: SeqNum) -> u32 {
        self.0.wrapping_sub(base.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_wraps_at_two_to_the_32() {
        let isn = SeqNum(u32::MAX - 1);
        assert_eq!(isn + 3, SeqNum(1));
        assert_eq!(SeqNum(1) - isn, 3);
        assert_eq!(SeqNum(1) - 3, isn);
    }

    #[test]
    fn order_follows_serial_number_arithmetic() {
        assert!(SeqNum(u32::MAX).is_before(SeqNum(5)));
        assert!(!SeqNum(5).is_before(SeqNum(u32::MAX)));
        assert!(!SeqNum(7).is_before(SeqNum(7)));
    }
}
