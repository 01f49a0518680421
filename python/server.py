#!/usr/bin/env python3
"""The tutorial's TCP server: the reference the Rust port is compared with.

It binds, listens with a backlog of 1, accepts exactly one client and
prints every recv(1024) chunk, so that the three-way handshake, the data and
the teardown can be watched in Wireshark. Standard library only; Python 3.8+.

Exit codes: 0 served one client, 1 runtime failure, 2 bad command line,
130 interrupted.
"""
import argparse
import errno
import socket
import sys

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 1712
EXIT_FAILURE = 1
EXIT_USAGE = 2
RECV_SIZE = 1024


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the fix."""

    def error(self, message):
        self.exit(EXIT_USAGE, "%s: error: %s; see --help\n" % (self.prog, message))


def fail(message, code=EXIT_FAILURE):
    sys.stderr.write("server.py: error: %s\n" % message)
    sys.exit(code)


def parse_port(value, minimum):
    """The same rule as the Rust port's parse_port."""
    try:
        port = int(value.strip(), 10)
    except ValueError:
        reason = "not a number"
    else:
        if minimum <= port <= 65535:
            return port
        reason = "out of range"
    fail("invalid port '%s': %s; use a whole number from %d to 65535"
         % (value, reason, minimum), EXIT_USAGE)


def main():
    parser = OneLineParser(
        prog="server.py",
        description="Listen on HOST:PORT, accept one client and print every "
                    "chunk it sends.")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="IPv4 host name or address to bind (default: %(default)s)")
    parser.add_argument("--port", default=str(DEFAULT_PORT),
                        help="TCP port; 0 picks a free one (default: %(default)s)")
    args = parser.parse_args()
    port = parse_port(args.port, 0)

    try:
        infos = socket.getaddrinfo(args.host, port, socket.AF_INET, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        fail("host '%s' does not resolve to an IPv4 address: check --host, "
             "or use 127.0.0.1" % args.host)
    address = infos[0][4]

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(address)
        sock.listen(1)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            fail("port %d is already in use on %s: stop the other program or "
                 "choose another --port" % (address[1], address[0]))
        fail("cannot listen on %s:%d: %s" % (address[0], address[1], err.strerror))

    # The real port matters when 0 was asked for; parents wait for this line
    # instead of probing, because a probe would be taken as the one client.
    print("I am listening on port %d" % sock.getsockname()[1], flush=True)

    conn, addr = sock.accept()
    try:
        while True:
            data = conn.recv(RECV_SIZE)
            if not data:
                break
            print("FROM: %r " % (addr,))
            print("MESSAGE: %r" % (data,))
            print(flush=True)
    except OSError as err:
        fail("connection from %s:%d broke: %s" % (addr[0], addr[1], err.strerror))
    finally:
        conn.close()
        sock.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
