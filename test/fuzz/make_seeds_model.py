#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_dns_answer and fuzz_write_queue
(test/fuzz/corpus/fuzz_dns_answer, test/fuzz/corpus/fuzz_write_queue): well-formed
inputs that reach deep into each target, for the fuzzer to mutate. Run it
from anywhere; it rewrites the seeds it owns (named seed-*)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- fuzz_dns_answer: byte 0 picks family / question echo / name -------
AF_UNSPEC, AF_INET, AF_INET6 = 0, 1, 2
ECHO = 4


def name(n):
    out = b""
    for label in n.strip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(flags=0x8180, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", 0, flags, qd, an, ns, ar)


def rr(owner, rtype, rdata, ttl=60):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


PTR = b"\xc0\x0c"  # the question's name
A1 = bytes([127, 0, 0, 2])
A2 = bytes([127, 0, 0, 1])
AAAA1 = bytes(15) + b"\x01"


def question(n, qtype):
    return name(n) + struct.pack(">HH", qtype, 1)


def dns_seeds():
    s = {}
    s["a-echo"] = bytes([AF_INET | ECHO]) + header(an=2) + rr(PTR, 1, A1) + rr(PTR, 1, A2)
    s["aaaa-echo"] = bytes([AF_INET6 | ECHO]) + header(an=1) + rr(PTR, 28, AAAA1)
    s["both-echo"] = bytes([AF_UNSPEC | ECHO]) + header(an=2) + rr(PTR, 1, A1) + rr(PTR, 28, AAAA1)
    cname = rr(PTR, 5, name("c.fuzz.test")) + rr(name("c.fuzz.test"), 1, A1)
    s["cname-echo"] = bytes([AF_INET | ECHO]) + header(an=2) + cname
    s["a-raw"] = (bytes([AF_INET]) + header(an=1) + question("fuzz.test", 1) + rr(PTR, 1, A1))
    s["aaaa-raw-name1"] = (bytes([AF_INET6 | (1 << 3)]) + header(an=1) +
                           question("a.b.fuzz.test", 28) + rr(PTR, 28, AAAA1))
    s["nxdomain-echo"] = bytes([AF_UNSPEC | ECHO]) + header(flags=0x8183)
    s["servfail-echo"] = bytes([AF_INET | ECHO]) + header(flags=0x8182)
    s["refused-echo"] = bytes([AF_INET | ECHO]) + header(flags=0x8185)
    s["truncated-echo"] = bytes([AF_INET | ECHO]) + header(flags=0x8380)
    s["nodata-echo"] = bytes([AF_INET6 | ECHO]) + header()
    return s


# ---- fuzz_write_queue: see the op table in fuzz_write_queue.cpp --------
WRITE, REF, READ, READ_ALL, RUN, WAIT, DEADLINE = 0, 3, 6, 8, 9, 10, 11
CLOSE_WRITE, CLOSE, PROBE, PEER_CLOSE, ARM = 12, 13, 14, 15, 16
# What an armed operation does inside the next callback.
IN_WRITE, IN_REF, IN_CLOSE, IN_DEADLINE, IN_CLOSE_WRITE, IN_PROBE = 0, 1, 2, 3, 4, 5
GRACEFUL, NOW, ABORT = 0, 1, 2
NO_DEADLINE, PAST, AHEAD_1MS, AHEAD_2MS = 0, 1, 2, 3


def length(n):
    """The two length bytes of a write of n bytes (see pick_length)."""
    if n <= 0x3FFF:
        scale = 0 if n <= 0x3F else 1 if n <= 0x3FF else 2
        value = n
    else:
        scale, value = 3, n >> 2
    return bytes([((value << 2) & 0xFF) | scale, value >> 6])


def ops(*items):
    out = b""
    for it in items:
        if isinstance(it, int):
            out += bytes([it])
        else:
            out += it
    return out


def write(n):
    return ops(WRITE, length(n))


def ref(n):
    return ops(REF, length(n))


def write_queue_seeds():
    cfg_small = 0      # 4 KiB send buffer, epoll
    cfg_small_poll = 4  # 4 KiB send buffer, poll
    cfg_big = 3        # 64 KiB send buffer, epoll
    s = {}
    s["basic"] = ops(cfg_big, write(100), READ_ALL, CLOSE, GRACEFUL)
    s["partial"] = ops(cfg_small, write(30000), ref(20000), ref(0), write(5000), READ, 200, 3,
                       RUN, 2, READ_ALL, RUN, 1, READ, 17, 8, CLOSE, GRACEFUL)
    s["deadline"] = ops(cfg_small, write(50000), DEADLINE, AHEAD_1MS, WAIT, WAIT, WAIT, WAIT,
                        write(10), DEADLINE, NO_DEADLINE, write(10), READ_ALL, CLOSE, GRACEFUL)
    s["close-now"] = ops(cfg_small_poll, write(40000), ref(10000), ref(0), RUN, 1, CLOSE, NOW, write(5))
    s["abort-flush"] = ops(cfg_small, ref(40000), CLOSE, GRACEFUL, PROBE, CLOSE, ABORT, RUN, 1)
    s["close-write"] = ops(cfg_small, write(20000), ref(0), CLOSE_WRITE, write(7), READ_ALL, RUN, 1,
                           READ_ALL, RUN, 1, READ_ALL, CLOSE, GRACEFUL)
    s["peer-close"] = ops(cfg_small_poll, write(40000), PEER_CLOSE, 0, RUN, 1, ref(10), write(10),
                          RUN, 1, CLOSE, GRACEFUL)
    s["past-deadline"] = ops(cfg_big, DEADLINE, PAST, write(3), ref(0), DEADLINE, NO_DEADLINE,
                             write(3), ref(60000), DEADLINE, PAST, WAIT, RUN, 1, write(1), CLOSE, NOW)
    s["closing-deadline"] = ops(cfg_small, write(60000), DEADLINE, AHEAD_2MS, CLOSE, GRACEFUL,
                                WAIT, WAIT, WAIT, WAIT, PROBE)
    s["callback-write"] = ops(cfg_small, ref(20000), ARM, IN_WRITE, length(3000), READ_ALL, RUN, 1,
                              READ_ALL, RUN, 1, READ_ALL, CLOSE, GRACEFUL)
    s["callback-close-now"] = ops(cfg_small, ref(100), ref(30000), ARM, IN_CLOSE, NOW, 0, RUN, 1,
                                  READ, 255, 4, RUN, 2, PROBE)
    s["callback-abort"] = ops(cfg_small_poll, ref(0), ARM, IN_CLOSE, ABORT, 0, write(30000), RUN, 1)
    s["callback-deadline"] = ops(cfg_small, write(30000), DEADLINE, PAST, ARM, IN_DEADLINE, NO_DEADLINE,
                                 0, WAIT, write(500), READ_ALL, RUN, 1, CLOSE, GRACEFUL)
    return s


def store(folder, seeds):
    path = os.path.join(HERE, "corpus", folder)
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):
        if old.startswith("seed-"):
            os.unlink(os.path.join(path, old))
    for key, data in seeds.items():
        with open(os.path.join(path, "seed-" + key), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    store("fuzz_dns_answer", dns_seeds())
    store("fuzz_write_queue", write_queue_seeds())
