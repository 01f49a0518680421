#!/usr/bin/env python3
"""The baseline of benchmark 1: every cell the harness would run, run by a
plain loop, one after another, with no capture, no namespace and no checks.

It reads the same declarations as the harness (tests/implementations.toml
and tests/scenarios/*.toml), writes each scenario's message to a file,
starts the server, waits for its ready line, runs the client, and waits for
both. It prints the number of cells and the seconds they took.

Usage: bare_loop.py ROOT BIN_DIR
"""
import glob
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import shutil

root, bin_dir = sys.argv[1], sys.argv[2]
with open(os.path.join(root, "tests/implementations.toml"), "rb") as f:
    manifest = tomllib.load(f)
impls = manifest["implementation"]
work = tempfile.mkdtemp(prefix="bare-loop-")


def message(spec):
    m = spec.get("message", {})
    if "text" in m:
        return m["text"].encode()
    if "hex" in m:
        return bytes.fromhex(m["hex"])
    if m.get("generate") == "all-byte-values":
        return bytes(range(256))
    if m.get("generate") == "pattern":
        return bytes(i % 251 for i in range(m["size"]))
    return b"Hello server!"


def available(impl):
    return all(shutil.which(p) for p in impl.get("requires", []))


def supports(impl, scenario, spec):
    if impl.get("scenarios") is not None:
        import fnmatch
        if not any(fnmatch.fnmatch(scenario, g) for g in impl["scenarios"]):
            return False
    return all(f in impl.get("features", []) for f in spec.get("requires", []))


def expand(template, host, port, message_file):
    v6 = ":" in host
    subs = {
        "{root}": root, "{bin}": bin_dir, "{manifest_dir}": os.path.join(root, "tests"),
        "{host_bracketed}": "[%s]" % host if v6 else host, "{host}": host,
        "{ip_version}": "6" if v6 else "4", "{port}": str(port), "{message_file}": message_file,
    }
    out = []
    for arg in template:
        for k, v in subs.items():
            arg = arg.replace(k, v)
        out.append(arg)
    return out


def drain(pipe):
    while pipe.read(65536):
        pass


def free_port(host):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run_cell(server, client, spec, message_file):
    host = spec.get("host", "127.0.0.1")
    port = spec.get("port") or free_port(host)
    srv = None
    if server is not None:
        srv = subprocess.Popen(expand(server["server"], host, port, message_file), cwd=root,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        ready = re.compile(server["ready"])
        stream = srv.stderr if server.get("ready_stream") == "stderr" else srv.stdout
        while True:
            line = stream.readline()
            if not line or ready.search(line.decode(errors="replace").rstrip("\r\n")):
                break
        # Keep reading, as the harness does, so a chatty server never blocks.
        for pipe in (srv.stdout, srv.stderr):
            threading.Thread(target=drain, args=(pipe,), daemon=True).start()
    if os.environ.get("BARE_DEBUG"):
        print(server and server["name"], client["name"], spec.get("description"), file=sys.stderr)
    stdin = open(message_file, "rb") if client.get("stdin") else subprocess.DEVNULL
    subprocess.run(expand(client["client"], host, port, message_file), cwd=root, stdin=stdin,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    if srv is not None:
        srv.wait(timeout=30)


cells = 0
started = time.monotonic()
for path in sorted(glob.glob(os.path.join(root, "tests/scenarios/%s.toml" % os.environ.get("BARE_SCENARIO", "*")))):
    name = os.path.basename(path)[:-5]
    with open(path, "rb") as f:
        spec = tomllib.load(f)
    message_file = os.path.join(work, name + ".bin")
    with open(message_file, "wb") as f:
        f.write(message(spec))
    refused = spec.get("expect", {}).get("outcome") == "refused"
    servers = [None] if refused else [i for i in impls if "server" in i.get("roles", [])]
    clients = [i for i in impls if "client" in i.get("roles", [])]
    for server in servers:
        for client in clients:
            chosen = [client] + ([server] if server else [])
            if not all(available(i) and supports(i, name, spec) for i in chosen):
                continue
            t0 = time.monotonic()
            run_cell(server, client, spec, message_file)
            if os.environ.get("BARE_TIMES"):
                print("%s %s %s %.3f" % (name, server and server["name"] or "none", client["name"],
                                         time.monotonic() - t0), file=sys.stderr)
            cells += 1
elapsed = time.monotonic() - started
shutil.rmtree(work)
print("%d %.3f" % (cells, elapsed))
