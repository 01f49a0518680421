//! The server binary from the outside: help, every bad input, delivery.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use assert_cmd::Command as AssertCommand;
use predicates::prelude::*;

fn server() -> AssertCommand {
    AssertCommand::cargo_bin("server").expect("server binary is built")
}

#[test]
fn help_names_the_options() {
    server()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("--host").and(predicate::str::contains("--port")));
}

#[test]
fn invalid_ports_are_usage_errors() {
    for bad in ["http", "65536", "-1", ""] {
        server()
            .args(["--port", bad])
            .timeout(std::time::Duration::from_secs(10))
            .assert()
            .code(2)
            .stderr(
                predicate::str::starts_with("server: error: invalid port")
                    .and(predicate::str::contains('\n').count(1)),
            );
    }
}

#[test]
fn unknown_option_is_one_line() {
    server().arg("--bogus").assert().code(2).stderr(
        predicate::str::contains('\n')
            .count(1)
            .and(predicate::str::contains("--bogus")),
    );
}

#[test]
fn port_in_use_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().unwrap().port().to_string();
    server()
        .args(["--host", "127.0.0.1", "--port", &port])
        .timeout(std::time::Duration::from_secs(10))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already in use").and(predicate::str::contains("--port")));
}

#[test]
fn unresolvable_host_is_reported() {
    server()
        .args(["--host", "no-such-host.invalid", "--port", "0"])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not resolve"));
}

#[test]
fn serves_one_client_and_prints_each_chunk() {
    let mut child = Command::cargo_bin("server")
        .unwrap()
        .args(["--host", "127.0.0.1", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    stdout.read_line(&mut ready).unwrap();
    let port = tutorial::transcript::parse_ready_line(&ready).expect("ready line");

    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let local = stream.local_addr().unwrap();
    stream.write_all(b"Hello server!").unwrap();
    drop(stream);

    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        rest,
        format!(
            "FROM: ('127.0.0.1', {}) \nMESSAGE: b'Hello server!'\n\n",
            local.port()
        )
    );
}
