//! Capture, dissection, comparison and reports for the TCP tutorial's
//! server × client pairings.

pub mod process;
