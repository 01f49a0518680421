#!/usr/bin/env python3
"""The tutorial's TCP client: the reference the Rust port is compared with.

It connects, prints "Sending data...", sends the message with sendall and
closes. Standard library only; Python 3.8+.

Exit codes: 0 sent, 1 runtime failure, 2 bad command line, 130 interrupted.
"""
import argparse
import os
import socket
import sys

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 1712
DEFAULT_MESSAGE = "Hello server!"
EXIT_FAILURE = 1
EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the fix."""

    def error(self, message):
        self.exit(EXIT_USAGE, "%s: error: %s; see --help\n" % (self.prog, message))


def fail(message, code=EXIT_FAILURE):
    sys.stderr.write("client.py: error: %s\n" % message)
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


def read_message(args):
    """The exact bytes to send: argv bytes as given, or a file's bytes."""
    if args.message_file is None:
        # fsencode undoes the surrogateescape decoding of argv, so bytes that
        # are not UTF-8 are sent as they were typed, as the Rust port does.
        return os.fsencode(args.message)
    try:
        if args.message_file == "-":
            return sys.stdin.buffer.read()
        with open(args.message_file, "rb") as handle:
            return handle.read()
    except OSError as err:
        fail("cannot read message file '%s': %s; check --message-file"
             % (args.message_file, err.strerror))


def main():
    parser = OneLineParser(
        prog="client.py",
        description="Connect to HOST:PORT, send one message and close.")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="IPv4 host name or address of the server (default: %(default)s)")
    parser.add_argument("--port", default=str(DEFAULT_PORT),
                        help="TCP port of the server (default: %(default)s)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--message", default=DEFAULT_MESSAGE,
                       help="text to send (default: %(default)s)")
    group.add_argument("--message-file", metavar="PATH",
                       help="send the bytes of PATH unchanged; - reads standard input")
    args = parser.parse_args()
    port = parse_port(args.port, 1)
    message = read_message(args)

    try:
        infos = socket.getaddrinfo(args.host, port, socket.AF_INET, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        fail("host '%s' does not resolve to an IPv4 address: check --host, "
             "or use 127.0.0.1" % args.host)
    address = infos[0][4]

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            sock.connect(address)
        except ConnectionRefusedError:
            fail("connection refused by %s:%d: no server is listening there; "
                 "start the server first or check --host/--port" % address)
        except OSError as err:
            fail("cannot connect to %s:%d: %s" % (address[0], address[1], err.strerror))
        print("Sending data...", flush=True)
        try:
            sock.sendall(message)
        except OSError as err:
            fail("cannot send to %s:%d: %s" % (address[0], address[1], err.strerror))
    finally:
        sock.close()

if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
