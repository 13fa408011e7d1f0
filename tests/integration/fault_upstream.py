#!/usr/bin/env python3
"""fault_dot.py: a DNS-over-TLS server (RFC 7858) that misbehaves on purpose.

The integration tests point dnsward at it to check that a broken or hostile upstream
costs a retry or a SERVFAIL, never a wrong answer, a hang or the process.

    fault_dot.py --port P --cert C --key K --mode MODE --events FILE [--delay MS]

--delay MS sends each answer (ok, garbage, wrongid, wrongq) MS milliseconds after its
query was read; queries pipelined on a connection are delayed concurrently.

Modes (what happens to every query read from a connection):
    ok         answer correctly: the query's ID and question, A 192.0.2.9 (TTL 60) for a
               query of type A, no record for other types (NOERROR, NODATA)
    stall      never answer; keep the connection open until the client closes it
    close      close the connection, without a word, as soon as a query has been read
    midanswer  send the 2-byte length and half of a correct answer, then close
    garbage    send a well-framed message of random bytes (never the query's ID)
    wrongid    a correct answer whose ID is the query's ID + 1
    wrongq     the query's ID, but the question (and answer) of another name
    sniff      no TLS at all: a plain TCP and UDP listener on the port that records
               whether each connection began with a TLS ClientHello or with a plaintext
               DNS query (for "no plaintext query ever leaves" tests)
("refuse" is simply not running this server.)

Every event goes to the events file, one line each, flushed at once, so a test can count:
    listening PORT
    conn N                         a TCP connection was accepted (before TLS)
    tls N ok | tls N fail REASON   the TLS handshake's outcome
    query NAME TYPE len=L id=ID pad=yes|no   a query was read (NAME as spelled on the wire)
    eof N                          the client closed the connection
    hello N                        (sniff) a connection began with a TLS handshake record
    plain N NAME                   (sniff) a connection carried a plaintext DNS query
    udp NAME | udp ?               (sniff) a UDP datagram arrived

Pipelined queries (several queries on one connection, 2-byte length framing) are read
and answered in order. Standard library only.
"""

import argparse
import heapq
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time

ANSWER_ADDR = bytes([192, 0, 2, 9])

_lock = threading.Lock()
_events = None
_conn_counter = 0


def event(line):
    with _lock:
        _events.write(line + "\n")
        _events.flush()


def next_conn_id():
    global _conn_counter
    with _lock:
        _conn_counter += 1
        return _conn_counter


def parse_name(msg, off):
    """Read an uncompressed name at off. Returns (text, offset past it) or (None, off)."""
    labels = []
    while True:
        if off >= len(msg):
            return None, off
        n = msg[off]
        if n == 0:
            off += 1
            break
        if n & 0xC0:
            return None, off
        if off + 1 + n > len(msg):
            return None, off
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "backslashreplace"))
        off += 1 + n
    return ".".join(labels) + ".", off


def has_padding(msg, off, arcount):
    """Walk the additional records from off (no compression expected in a query) and tell
    whether an OPT record carries a padding option (RFC 7830, code 12)."""
    for _ in range(arcount):
        _, off = parse_name(msg, off)
        if off + 10 > len(msg):
            return False
        rtype, _rclass, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        if rtype == 41:
            i = 0
            while i + 4 <= len(rdata):
                code, olen = struct.unpack("!HH", rdata[i:i + 4])
                if code == 12:
                    return True
                i += 4 + olen
    return False


def parse_query(msg):
    """Returns (id, flags, qname_text, qname_wire, qtype, qclass, question_end) or None."""
    if len(msg) < 12:
        return None
    qid, flags, qd, _an, _ns, ar = struct.unpack("!HHHHHH", msg[:12])
    if qd != 1:
        return None
    name, off = parse_name(msg, 12)
    if name is None or off + 4 > len(msg):
        return None
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    return qid, flags, name, msg[12:off], qtype, qclass, off + 4, ar


def wire_name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        if label:
            b = label.encode("ascii")
            out += bytes([len(b)]) + b
    return out + b"\0"


def build_answer(qid, flags, qname_wire, qtype, qclass):
    rd = flags & 0x0100
    cd = flags & 0x0010
    ancount = 1 if qtype == 1 and qclass == 1 else 0
    hdr = struct.pack("!HHHHHH", qid & 0xFFFF, 0x8080 | rd | cd, 1, ancount, 0, 0)
    body = qname_wire + struct.pack("!HH", qtype, qclass)
    if ancount:
        body += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + ANSWER_ADDR
    return hdr + body


def frame(msg):
    return struct.pack("!H", len(msg)) + msg


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def respond(mode, msg):
    """What to send for one query: (bytes to send, close afterwards?)."""
    q = parse_query(msg)
    if q is None:
        return b"", False
    qid, flags, _name, qname_wire, qtype, qclass, _end, _ar = q
    if mode == "ok":
        return frame(build_answer(qid, flags, qname_wire, qtype, qclass)), False
    if mode == "stall":
        return b"", False
    if mode == "close":
        return b"", True
    if mode == "midanswer":
        full = frame(build_answer(qid, flags, qname_wire, qtype, qclass))
        return full[:2 + (len(full) - 2) // 2], True
    if mode == "garbage":
        junk = bytearray(os.urandom(48))
        # Never the query's ID, so that a forwarder cannot match it by luck.
        if junk[0] == (qid >> 8) and junk[1] == (qid & 0xFF):
            junk[0] ^= 0xFF
        return frame(bytes(junk)), False
    if mode == "wrongid":
        return frame(build_answer(qid + 1, flags, qname_wire, qtype, qclass)), False
    if mode == "wrongq":
        other = wire_name("evil-other-name.example.")
        return frame(build_answer(qid, flags, other, qtype, qclass)), False
    raise ValueError(mode)


def log_query(msg):
    q = parse_query(msg)
    if q is None:
        event("query ? ? len=%d id=? pad=?" % len(msg))
    else:
        qid, _f, name, _w, qtype, _c, end, ar = q
        pad = "yes" if has_padding(msg, end, ar) else "no"
        event("query %s %d len=%d id=%d pad=%s" % (name, qtype, len(msg), qid, pad))


def serve_tls(ctx, raw, cid, mode, delay):
    """One connection, in one thread: read framed queries as they come (pipelined or
    not), answer each at once or, with a delay, when its time is due, without ever
    holding up the reading of the next query."""
    try:
        raw.settimeout(30)
        try:
            sock = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            event("tls %d fail %s" % (cid, str(e).replace("\n", " ")[:200]))
            raw.close()
            return
        event("tls %d ok" % cid)
        sock.settimeout(None)
        buf = b""
        due = []  # heap of (time, sequence, bytes)
        seq = 0
        done = False
        while not done:
            now = time.monotonic()
            while due and due[0][0] <= now:
                sock.sendall(heapq.heappop(due)[2])
            if sock.pending() == 0:
                wait = max(0.0, due[0][0] - now) if due else None
                readable, _, _ = select.select([sock], [], [], wait)
                if not readable:
                    continue
            data = sock.recv(65536)
            if not data:
                event("eof %d" % cid)
                break
            buf += data
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                n = struct.unpack("!H", buf[:2])[0]
                msg, buf = buf[2:2 + n], buf[2 + n:]
                log_query(msg)
                out, close = respond(mode, msg)
                if close:
                    if out:
                        sock.sendall(out)
                    event("closed %d" % cid)
                    done = True
                    break
                if out and delay:
                    seq += 1
                    heapq.heappush(due, (time.monotonic() + delay, seq, out))
                elif out:
                    sock.sendall(out)
        try:
            sock.close()
        except OSError:
            pass
    except (ssl.SSLError, OSError) as e:
        event("error %d %s" % (cid, str(e).replace("\n", " ")[:200]))


def serve_sniff_tcp(raw, cid):
    try:
        raw.settimeout(10)
        first = raw.recv(5)
        if not first:
            event("eof %d" % cid)
        elif first[0] == 0x16 and len(first) >= 2 and first[1] == 0x03:
            event("hello %d" % cid)
        else:
            rest = b""
            try:
                rest = raw.recv(4096)
            except OSError:
                pass
            data = first + rest
            q = parse_query(data[2:]) if len(data) > 2 else None
            event("plain %d %s" % (cid, q[2] if q else data[:16].hex()))
    except OSError:
        pass
    finally:
        raw.close()


def serve_sniff_udp(usock):
    while True:
        data, _peer = usock.recvfrom(65535)
        q = parse_query(data)
        event("udp %s" % (q[2] if q else "?"))


def main():
    global _events
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--mode", required=True,
                    choices=["ok", "stall", "close", "midanswer", "garbage", "wrongid",
                             "wrongq", "sniff"])
    ap.add_argument("--events", required=True)
    ap.add_argument("--delay", type=int, default=0, help="milliseconds before each answer")
    args = ap.parse_args()
    _events = open(args.events, "a", buffering=1)

    ctx = None
    if args.mode != "sniff":
        if not args.cert or not args.key:
            ap.error("--cert and --key are needed except in sniff mode")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(128)
    if args.mode == "sniff":
        usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        usock.bind(("127.0.0.1", args.port))
        threading.Thread(target=serve_sniff_udp, args=(usock,), daemon=True).start()
    event("listening %d" % args.port)

    delay = args.delay / 1000.0
    while True:
        raw, _peer = lsock.accept()
        cid = next_conn_id()
        event("conn %d" % cid)
        if args.mode == "sniff":
            t = threading.Thread(target=serve_sniff_tcp, args=(raw, cid), daemon=True)
        else:
            t = threading.Thread(target=serve_tls, args=(ctx, raw, cid, args.mode, delay),
                                 daemon=True)
        t.start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
