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

/// Too few file descriptors (RLIMIT_NOFILE, set by util-linux's prlimit)
/// at every limit from 3 to 12: the server either listens, or says in one
/// line what it could not do (start its runtime, listen, watch for Ctrl-C,
/// accept) and exits 1; never a panic. (tokio's signal driver panicked
/// here when it could not make its socket pair; the server no longer uses
/// it.)
#[test]
fn too_few_descriptors_is_one_line_never_a_panic() {
    let bin = assert_cmd::cargo::cargo_bin("server");
    for limit in 3..=12 {
        let mut child = Command::new("prlimit")
            .arg(format!("--nofile={limit}:{limit}"))
            .arg(&bin)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prlimit (util-linux) runs");
        // Listening: it prints the ready line and waits for a client.
        let mut ready = String::new();
        let stdout = child.stdout.take().unwrap();
        let _ = BufReader::new(stdout).read_line(&mut ready);
        if ready.starts_with("I am listening") {
            child.kill().unwrap();
            let _ = child.wait();
            continue;
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Below what the dynamic loader needs, the program never starts.
        if out.status.code() == Some(127) && stderr.contains("error while loading shared libraries")
        {
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "limit {limit}: {stderr}");
        assert!(
            stderr.starts_with("server: error: ") && stderr.lines().count() == 1,
            "limit {limit}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "limit {limit}: {stderr}");
    }
}
