#!/usr/bin/env python3
"""Seeds the fuzz corpora from the committed fixture captures (real and
built ones): whole files for read_capture, single frames for dissect, and
length-prefixed frame sequences for conversation and fragments. Classic pcap files only
need this small reader; pcapng files are seeded whole."""
import glob
import os
import struct
import sys

root, corpus = sys.argv[1], sys.argv[2]
# LINKTYPE_* number -> index in the dissect target's LINKS table.
LINKS = {1: 0, 113: 1, 276: 2, 101: 3, 228: 4, 229: 5, 0: 6, 108: 7, 10: 8, 239: 9}
for target in ("read_capture", "capfile", "dissect", "conversation", "fragments"):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
for path in sorted(glob.glob(os.path.join(root, "harness/tests/fixtures/captures/*"))):
    name = os.path.basename(path)
    data = open(path, "rb").read()
    for whole in ("read_capture", "capfile"):
        open(os.path.join(corpus, whole, name), "wb").write(data)
    if not name.endswith(".pcap"):
        continue
    # Little-endian micro- or nanosecond magic, else big-endian.
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack(endian + "I", data[20:24])[0]
    at, frames = 24, []
    while at + 16 <= len(data):
        caplen = struct.unpack(endian + "I", data[at + 8:at + 12])[0]
        frames.append(data[at + 16:at + 16 + caplen])
        at += 16 + caplen
    for i, frame in enumerate(frames):
        seed = bytes([LINKS.get(link, 0), 0]) + frame
        open(os.path.join(corpus, "dissect", "%s-%d" % (name, i)), "wb").write(seed)
    if link == 1:
        seq = b"".join(struct.pack(">H", len(f)) + f for f in frames)
        open(os.path.join(corpus, "conversation", name), "wb").write(seq)
        # The same frames as raw IPv4 packets for the fragments target.
        ipv4 = [f[14:] for f in frames if f[12:14] == b"\x08\x00"]
        if ipv4:
            seq = b"".join(struct.pack(">H", len(p)) + p for p in ipv4)
            open(os.path.join(corpus, "fragments", name), "wb").write(seq)
