#!/usr/bin/env python3
"""bootstrap_dns.py: a tiny plain-DNS UDP server standing for a bootstrap resolver.

    bootstrap_dns.py --port P --events FILE [--name upstream.test] [--addr 127.0.0.1]
                     [--ttl SECONDS]

It listens on 127.0.0.1:P (UDP only) and answers:
    NAME A      NOERROR, one A record ADDR with TTL SECONDS (default 3600)
    NAME AAAA   NOERROR, no record (NODATA), an SOA in the authority section
    NAME other  NOERROR, no record (NODATA), the SOA
    any other   NXDOMAIN, the SOA
each with the query's ID, RD and question, and no OPT record. Something that is not a
query with one question is dropped (event "bad").

Every event goes to the events file, one line each, flushed at once, so a test can read
exactly what reached the server:
    listening PORT
    query NAME TYPE     NAME as spelled on the wire, lower-cased, with the final dot;
                        TYPE a mnemonic (A, AAAA, ...) or TYPEn
    bad LEN             a datagram that was not a query with one question

Standard library only.
"""

import argparse
import socket
import struct
import sys

TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
         33: "SRV", 64: "SVCB", 65: "HTTPS"}


def parse_question(msg):
    """(id, flags, qname wire bytes, qname text, qtype, qclass, end offset) or None."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if flags & 0x8000 or qd != 1:
        return None
    off, labels = 12, []
    while True:
        if off >= len(msg):
            return None
        n = msg[off]
        if n == 0:
            off += 1
            break
        if n > 63 or off + 1 + n > len(msg):
            return None  # compression has no place in a question
        labels.append(msg[off + 1:off + 1 + n])
        off += 1 + n
    if off + 4 > len(msg):
        return None
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    text = "".join(l.decode("ascii", "replace") + "." for l in labels).lower() or "."
    return qid, flags, msg[12:off], text, qtype, qclass, off + 4


def soa_record(zone_wire):
    mname = b"\x02ns" + zone_wire
    rname = b"\x0ahostmaster" + zone_wire
    rdata = mname + rname + struct.pack("!IIIII", 1, 3600, 600, 86400, 60)
    return zone_wire + struct.pack("!HHIH", 6, 1, 60, len(rdata)) + rdata


def answer(q, name, addr, ttl):
    qid, flags, qwire, qtext, qtype, qclass, end = q
    rd = flags & 0x0100
    exists = qtext == name
    rcode = 0 if exists else 3
    answers, authority = [], []
    if exists and qtype == 1 and qclass == 1:
        answers.append(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ttl, 4) + socket.inet_aton(addr))
    else:
        authority.append(soa_record(wire_name(name)))
    header = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1, len(answers),
                         len(authority), 0)
    return header + qwire + struct.pack("!HH", qtype, qclass) + b"".join(answers) + b"".join(authority)


def wire_name(text):
    return b"".join(bytes([len(l)]) + l.encode() for l in text.rstrip(".").split(".")) + b"\0"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--name", default="upstream.test")
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--ttl", type=int, default=3600)
    args = ap.parse_args()
    name = args.name.lower().rstrip(".") + "."
    events = open(args.events, "a", buffering=1)

    def event(line):
        events.write(line + "\n")
        events.flush()

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", args.port))
    event("listening %d" % args.port)
    while True:
        msg, peer = s.recvfrom(65535)
        q = parse_question(msg)
        if q is None:
            event("bad %d" % len(msg))
            continue
        event("query %s %s" % (q[3], TYPES.get(q[4], "TYPE%d" % q[4])))
        s.sendto(answer(q, name, args.addr, args.ttl), peer)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
