//! The client binary from the outside: help, every bad input, delivery.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

fn client() -> Command {
    let mut cmd = Command::cargo_bin("client").expect("client binary is built");
    cmd.timeout(Duration::from_secs(20));
    cmd
}

/// Runs the client against a listener of our own and returns what arrived.
fn deliver(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap();
        got
    });
    let mut cmd = client();
    cmd.args(["--host", "127.0.0.1", "--port", &port])
        .args(args);
    if let Some(input) = stdin {
        cmd.write_stdin(input.to_vec());
    }
    cmd.assert().success().stdout("Sending data...\n");
    reader.join().unwrap()
}

#[test]
fn help_names_the_options() {
    client().arg("--help").assert().success().stdout(
        predicate::str::contains("--message-file")
            .and(predicate::str::contains("--message"))
            .and(predicate::str::contains("--port")),
    );
}

#[test]
fn sends_the_default_message() {
    assert_eq!(deliver(&[], None), b"Hello server!");
}

#[test]
fn sends_the_given_message() {
    assert_eq!(
        deliver(&["--message", "Hola server, are you bored?"], None),
        b"Hola server, are you bored?"
    );
}

#[test]
fn sends_a_file_unchanged() {
    let all: Vec<u8> = (0..=255).collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &all).unwrap();
    assert_eq!(
        deliver(&["--message-file", file.path().to_str().unwrap()], None),
        all
    );
}

#[test]
fn dash_reads_standard_input() {
    assert_eq!(
        deliver(&["--message-file", "-"], Some(b"from stdin\x00\xff")),
        b"from stdin\x00\xff"
    );
}

#[test]
fn refused_connection_is_reported() {
    // A port that was free a moment ago: nothing listens there now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    client()
        .args(["--host", "127.0.0.1", "--port", &port])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            predicate::str::starts_with("client: error: connection refused")
                .and(predicate::str::contains('\n').count(1)),
        );
}

#[test]
fn invalid_ports_are_usage_errors() {
    for bad in ["0", "x", "70000"] {
        client()
            .args(["--port", bad])
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with("client: error: invalid port"));
    }
}

#[test]
fn unreadable_message_file_is_reported_before_connecting() {
    client()
        .args(["--port", "1", "--message-file", "/nonexistent/message"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot read message file '/nonexistent/message'",
        ));
}

#[test]
fn unresolvable_host_is_reported() {
    client()
        .args(["--host", "no-such-host.invalid"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not resolve"));
}

#[test]
fn message_and_message_file_conflict() {
    client()
        .args(["--message", "a", "--message-file", "b"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains('\n').count(1));
}
