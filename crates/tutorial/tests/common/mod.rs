//! What the tests that hold the ports to CPython share: one python3
//! process per batch, fed one hex-encoded input per line, answering one
//! line each, so thousands of inputs cost a few interpreter starts.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `script` (which reads stdin line by line) on `inputs`, each sent
/// as one line of hex; its stdout, line by line.
pub fn python_per_line<'a>(
    script: &str,
    inputs: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<String> {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is installed (the reference programs need it too)");
    let input: String = inputs
        .into_iter()
        .map(|data| data.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n")
        .collect();
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(input.as_bytes())
        .expect("write to python3");
    let output = child.wait_with_output().expect("python3 finishes");
    assert!(output.status.success(), "python3 failed");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_string)
        .collect()
}
