#!/usr/bin/env python3
"""The baseline of `make bench`: every cell the harness would run, run by a
plain loop, with no capture, no namespace, no checks and no artifacts.

It reads the same declarations as the harness (the manifest and the
scenario files), writes each scenario's message to a file, and for each
cell starts the server, waits for its ready line, runs the client, and
waits for both. It is given every advantage: every wait blocks in the
kernel (no timeout, so no polling), nothing is written but the messages,
and output is read only as far as the ready line, then drained by a thread.

With --jobs N it runs N cells at a time, as the harness does; cells of a
scenario with a fixed port take that port's lock, since without namespaces
only one server can hold it.

In a scenario with `record_calls = true` it runs each program under strace
with the harness's options (STRACE below, held equal to
harness/src/calls/strace.rs by a test), writing the trace to a scratch file
it never reads: recording the calls is the work both sides do, so it is
not counted as the harness's overhead.

It prints one line, `CELLS BAD SECONDS`: the cells run, those whose exit
codes were not the expected ones (0 for both programs, a non-zero client
where nobody listens), and the wall time. It exits 1 when any was bad.

Usage: bare_loop.py ROOT BIN_DIR [--manifest PATH] [--scenarios DIR] [--jobs N]
"""
import argparse
import concurrent.futures
import fnmatch
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib

parser = argparse.ArgumentParser()
parser.add_argument("root")
parser.add_argument("bin_dir")
parser.add_argument("--manifest")
parser.add_argument("--scenarios")
parser.add_argument("--jobs", type=int, default=1)
args = parser.parse_args()
root, bin_dir = args.root, args.bin_dir
manifest_path = args.manifest or os.path.join(root, "tests/implementations.toml")
scenarios_dir = args.scenarios or os.path.join(root, "tests/scenarios")
with open(manifest_path, "rb") as f:
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


# The harness's strace command line (harness/src/calls/strace.rs, `wrap`),
# up to the output file.
STRACE = ["strace", "-f", "-qq", "--seccomp-bpf", "-yy", "-s", "0", "-ttt", "-T", "-e",
          "trace=socket,setsockopt,bind,listen,accept,accept4,connect,recvfrom,recvmsg,read,readv,"
          "sendto,sendmsg,write,writev,shutdown,close"]


def traced(argv, spec, name):
    if not spec.get("record_calls"):
        return argv
    return (STRACE + ["-o", os.path.join(work, name + ".strace")]
            + ["--", "setpriv", "--pdeathsig", "KILL", "--"] + argv)


def available(impl):
    return all(shutil.which(p) for p in impl.get("requires", []))


def supports(impl, scenario, spec):
    if impl.get("scenarios") is not None:
        if not any(fnmatch.fnmatch(scenario, g) for g in impl["scenarios"]):
            return False
    return all(f in impl.get("features", []) for f in spec.get("requires", []))


def expand(template, host, port, message_file):
    v6 = ":" in host
    subs = {
        "{root}": root, "{bin}": bin_dir, "{manifest_dir}": os.path.dirname(manifest_path),
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


# Ports for cells without a fixed one: each cell its own, below the
# kernel's ephemeral range, so that no other worker's server takes it and
# no client's connection is given it as its own port (bind(0) hands out
# ephemeral ports, which another worker's client may be using a moment
# later: with two workers that failed a cell in one bench run).
next_port = iter(range(20000, 32000))
next_port_lock = threading.Lock()


def free_port(host):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with next_port_lock:
        for port in next_port:
            with socket.socket(family) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue  # something on this machine holds it
                return port
    raise RuntimeError("no free port left below the ephemeral range")


port_locks = {}


def run_cell(server, client, spec, message_file):
    """Runs one cell; True when both exit codes are the expected ones."""
    host = spec.get("host", "127.0.0.1")
    fixed = spec.get("port")
    lock = port_locks.setdefault(fixed, threading.Lock()) if fixed else None
    if lock:
        lock.acquire()
    try:
        port = fixed or free_port(host)
        srv = None
        readers = []
        if server is not None:
            srv = subprocess.Popen(traced(expand(server["server"], host, port, message_file),
                                          spec, "server-%d" % port), cwd=root,
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
                t = threading.Thread(target=drain, args=(pipe,), daemon=True)
                t.start()
                readers.append(t)
        stdin = open(message_file, "rb") if client.get("stdin") else subprocess.DEVNULL
        code = subprocess.run(traced(expand(client["client"], host, port, message_file),
                                     spec, "client-%d" % port), cwd=root,
                              stdin=stdin, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode
        if srv is None:
            return code != 0  # nobody listens: the client must fail
        server_code = srv.wait()
        for t in readers:
            t.join()
        return code == 0 and server_code == 0
    finally:
        if lock:
            lock.release()


cells = []
for path in sorted(glob.glob(os.path.join(scenarios_dir, "*.toml"))):
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
            tools = ["strace", "setpriv"] if spec.get("record_calls") else []
            if all(shutil.which(t) for t in tools) and all(
                    available(i) and supports(i, name, spec) for i in chosen):
                cells.append((server, client, spec, message_file))

started = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
    results = list(pool.map(lambda c: run_cell(*c), cells))
elapsed = time.monotonic() - started
shutil.rmtree(work)
bad = results.count(False)
print("%d %d %.3f" % (len(cells), bad, elapsed))
sys.exit(1 if bad else 0)
