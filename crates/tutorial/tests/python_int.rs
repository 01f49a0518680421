//! `--port` reads a number as Python's `int(value.strip(), 10)` does, so
//! the ports accept and refuse exactly what the reference scripts do:
//! checked against the python3 on this machine, on hand-picked forms and
//! random ones, and the decimal-digit table against `unicodedata`.

mod common;

use std::process::Command;

use proptest::prelude::*;
use tutorial::endpoint::{decimal_value, python_int, IntError};

/// Python's answer for each line: the number, or `ValueError`.
const PYTHON_INT: &str = r#"
import sys
for line in sys.stdin:
    text = bytes.fromhex(line.strip()).decode("utf-8")
    try:
        print(int(text.strip(), 10))
    except ValueError:
        print("ValueError")
"#;

fn python_ints(batch: &[String]) -> Vec<String> {
    common::python_per_line(PYTHON_INT, batch.iter().map(String::as_bytes))
}

/// Ours, in Python's words: a huge number is still a number to Python, so
/// "out of range" is compared as Python's digits being many.
fn ours(text: &str) -> String {
    match python_int(text) {
        Ok(n) => n.to_string(),
        Err(IntError::NotANumber) => "ValueError".into(),
        Err(IntError::OutOfRange) => "huge".into(),
    }
}

fn agree(batch: &[String]) {
    for (text, theirs) in batch.iter().zip(python_ints(batch)) {
        let mine = ours(text);
        if mine == "huge" {
            assert!(
                theirs.trim_start_matches('-').len() > 38,
                "{text:?}: python says {theirs}"
            );
        } else {
            assert_eq!(mine, theirs, "int({text:?})");
        }
    }
}

#[test]
fn the_forms_int_accepts_and_refuses() {
    let forms = [
        "1712",
        " 1712 ",
        "+1712",
        "-1",
        "1_712",
        "1__712",
        "_1712",
        "1712_",
        "1 712",
        "１７１２",
        "١٧١٢",
        "๑๗๑๒",
        "𝟏𝟕𝟏𝟐",
        "0x6b0",
        "1712.0",
        "1e3",
        "",
        " ",
        "+",
        "-",
        "+-1",
        "--1",
        "\u{1c}1712\u{1f}",
        "\u{a0}1712\u{3000}",
        "\u{200b}1712",
        "½",
        "²",
        "007",
        "0_0",
        "99999999999999999999999999999999999999999999",
        "-99999999999999999999999999999999999999999",
        "1712\n",
        "\t1712",
        "1712x",
    ];
    agree(&forms.map(String::from));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// Random strings of the characters that matter: digits of several
    /// scripts, signs, underscores, spaces and a few others.
    #[test]
    fn random_forms_agree_with_python(batch in prop::collection::vec(
        "[0-9١-٩０-９_+\\- \u{1c}\u{a0}x.]{0,8}", 200)) {
        agree(&batch);
    }
}

/// Every code point's decimal value is Python's (where this machine's
/// Python knows a newer Unicode, only the digits both know are compared
/// from our side; with Unicode 14.0, Python 3.11's, both ways).
#[test]
fn the_decimal_digit_table_is_unicodedatas() {
    let out = Command::new("python3")
        .args([
            "-c",
            "import unicodedata\nprint(unicodedata.unidata_version)\nprint(' '.join('%x:%d' % (c, unicodedata.decimal(chr(c))) for c in range(0x110000) if unicodedata.decimal(chr(c), None) is not None))",
        ])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let version = lines.next().unwrap().to_string();
    let theirs: std::collections::BTreeMap<u32, u32> = lines
        .next()
        .unwrap()
        .split(' ')
        .map(|pair| {
            let (c, d) = pair.split_once(':').unwrap();
            (u32::from_str_radix(c, 16).unwrap(), d.parse().unwrap())
        })
        .collect();
    let mine: std::collections::BTreeMap<u32, u32> = (0..0x110000u32)
        .filter_map(char::from_u32)
        .filter_map(|c| decimal_value(c).map(|d| (u32::from(c), d)))
        .collect();
    for (c, d) in &mine {
        assert_eq!(theirs.get(c), Some(d), "U+{c:04X}");
    }
    if version == "14.0.0" {
        assert_eq!(mine, theirs);
    }
}
