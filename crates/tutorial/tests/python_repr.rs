//! The Rust repr must equal CPython's `repr(bytes)` on any input.
//!
//! Each proptest case sends a batch of random byte strings to one python3
//! process (hex in, repr out), so thousands of inputs cost a few interpreter
//! starts rather than thousands.

mod common;

use proptest::prelude::*;
use tutorial::py_bytes_repr;

const PYTHON_REPR: &str = r#"
import sys
for line in sys.stdin:
    print(repr(bytes.fromhex(line.strip())))
"#;

fn python_reprs(batch: &[Vec<u8>]) -> Vec<String> {
    common::python_per_line(PYTHON_REPR, batch.iter().map(Vec::as_slice))
}

/// Bytes biased towards the interesting ones: quotes, backslash, escapes,
/// the printable boundaries 0x1f/0x20/0x7e/0x7f and high bytes.
fn tricky_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(vec![
            b'\'', b'"', b'\\', b'\t', b'\n', b'\r', 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xff
        ]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn rust_repr_equals_python_repr(batch in prop::collection::vec(prop::collection::vec(tricky_byte(), 0..48), 1..300)) {
        let expected = python_reprs(&batch);
        prop_assert_eq!(expected.len(), batch.len());
        for (data, python) in batch.iter().zip(&expected) {
            prop_assert_eq!(&py_bytes_repr(data), python, "input {:02x?}", data);
        }
    }
}
