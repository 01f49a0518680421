//! Errors in the files that declare the suite: the implementations
//! manifest, the scenarios and the baseline.
//!
//! They are written by hand, so a mistake must read like a compiler error:
//! which file, which entry, what is wrong and, where it helps, the fix.

use std::path::Path;

/// A mistake in a declaration file: file, entry and problem in one line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {entry}: {problem}")]
pub struct DeclarationError {
    pub file: String,
    pub entry: String,
    pub problem: String,
}

impl DeclarationError {
    pub fn new(file: &Path, entry: impl Into<String>, problem: impl Into<String>) -> Self {
        DeclarationError {
            file: file.display().to_string(),
            entry: entry.into(),
            problem: problem.into(),
        }
    }
}

/// Reads `path` whole, or says how to point at the right file.
pub fn read(path: &Path, flag: &str) -> Result<String, DeclarationError> {
    std::fs::read_to_string(path).map_err(|e| {
        DeclarationError::new(path, "file", format!("cannot read it: {e}; pass {flag}"))
    })
}

/// serde's type names (`i64`, `u16`, `a sequence`) as a person writing
/// TOML knows them.
fn in_words(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, words) in [
        ("i64", "a whole number"),
        ("i32", "a whole number"),
        ("u64", "a whole number"),
        ("u32", "a whole number"),
        ("u16", "a whole number"),
        ("u8", "a whole number"),
        ("usize", "a whole number"),
        ("f64", "a number"),
        ("a sequence", "an array"),
        ("a map", "a table"),
    ] {
        out = out.replace(&format!("expected {rust}"), &format!("expected {words}"));
    }
    out
}

/// Parses TOML into `T`, turning a syntax or shape error into one line with
/// its line number.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, DeclarationError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let message = in_words(&e.message().trim().replace('\n', " "));
        DeclarationError::new(
            path,
            line.map_or("syntax".to_string(), |l| format!("line {l}")),
            message,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Port {
        port: Option<i64>,
        list: Option<Vec<String>>,
    }

    #[test]
    fn a_type_error_names_no_rust_type() {
        let e = parse_toml::<Port>(Path::new("s.toml"), "port = \"1712\"").unwrap_err();
        assert!(e.problem.contains("expected a whole number"), "{e}");
        assert!(!e.problem.contains("i64"), "{e}");
        let e = parse_toml::<Port>(Path::new("s.toml"), "list = 3").unwrap_err();
        assert!(e.problem.contains("expected an array"), "{e}");
    }
}
