#!/usr/bin/env python3
"""fault_upstream.py: a DNS-over-TLS (RFC 7858) or DNS-over-HTTPS (RFC 8484, HTTP/2)
server that misbehaves on purpose.

The integration tests point dnsward at it to check that a broken or hostile upstream
costs a retry or a SERVFAIL, never a wrong answer, a hang or the process.

    fault_upstream.py --port P --cert C --key K --mode MODE --events FILE [--delay MS]
                      [--proto dot|doh] [--stall-after N] [--faulty-conns N]

--proto dot (the default) speaks DoT; --proto doh speaks DoH over HTTP/2 (TLS with ALPN
"h2" only; it needs the h2 package, Debian's python3-h2, so run it with /usr/bin/python3).

--delay MS sends each answer (ok, garbage, wrongid, wrongq; for DoH also nondns,
status500, ctype, rst) MS milliseconds after its query was read; queries pipelined on a
connection (or streams on one HTTP/2 connection) are delayed concurrently.

--stall-after N answers the first N queries of the process as the mode says, and then
turns into a black hole: the connection that reads the next query stops reading and
writing (no answer, no PING acknowledgement, no EOF noticed), and every later connection
is accepted by the kernel but never read from (its TLS handshake never completes).

--faulty-conns N (DoH): only the first N connections misbehave as the mode says; later
ones behave as "ok" (for checking that a query is retried on a new connection).

DoT modes (what happens to every query read from a connection):
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

DoH modes (what happens to every complete request, POST of application/dns-message or
GET with ?dns=, on path /dns-query; a request that is not one gets 400, 404, 405 or 415
and a "badreq" event, whatever the mode):
    ok         200, application/dns-message, the answer of the DoT ok mode
    stall      never answer; keep reading and acknowledging frames (SETTINGS, PING,
               WINDOW_UPDATE) until the client closes the connection
    close      close the TCP connection, without a word, when a request is complete
    midanswer  200 headers (content-length of the full answer) and half the body, close
    garbage    200, application/dns-message, 48 random bytes whose first two are the
               query's ID (0): it is the parse, not the ID check, that must reject them
    nondns     200, application/dns-message, the body "hello"
    status500  500, text/plain, a short body
    ctype      200, text/html, an otherwise correct DNS answer
    rst        RST_STREAM with INTERNAL_ERROR
    goaway     GOAWAY (last_stream_id 0, NO_ERROR) when the first request is complete,
               no answer to anything; the connection closes half a second later
    wrongid    a correct answer with ID 1234
    wrongq     the query's ID, but the question (and answer) of another name
    noh2       ALPN offers only "http/1.1" (so no protocol is agreed with a client that
               offers only h2); should the client speak HTTP/2 all the same, it is
               answered as in ok mode, so a client that does not refuse is caught

Every event goes to the events file, one line each, flushed at once, so a test can count:
    listening PORT
    conn N                         a TCP connection was accepted (before TLS)
    tls N ok | tls N fail REASON   the TLS handshake's outcome
    query NAME TYPE len=L id=ID pad=yes|no   a query was read (NAME as spelled on the wire)
                                   DoH adds " method=POST|GET"
    eof N                          the client closed the connection
    closed N                       this server closed the connection (close, midanswer)
    hello N                        (sniff) a connection began with a TLS handshake record
    plain N NAME                   (sniff) a connection carried a plaintext DNS query
    udp NAME | udp ?               (sniff) a UDP datagram arrived
    blackhole N                    (--stall-after) connection N stopped reading
DoH only:
    alpn N PROTO|none              the protocol agreed by ALPN
    ping N                         the client sent a PING (not an acknowledgement)
    rst N STREAM CODE              the client reset a stream
    goaway N CODE                  the client sent GOAWAY
    badreq N STATUS WHAT           a request that is not a DoH query, and the status sent
    h2error N WHAT                 the client broke HTTP/2; the connection is closed

DoT: pipelined queries (several queries on one connection, 2-byte length framing) are read
and answered in order. DoH: any number of concurrent streams; flow-control windows are
acknowledged as data is read. DoT needs only the standard library.
"""

import argparse
import base64
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
_budget = None  # --stall-after: answers left before the black hole; None: no limit
_blackhole = False


def event(line):
    with _lock:
        _events.write(line + "\n")
        _events.flush()


def next_conn_id():
    global _conn_counter
    with _lock:
        _conn_counter += 1
        return _conn_counter


def take_budget():
    """--stall-after: may one more query be answered? Once it says no, it says no for
    every connection (the whole process is a black hole)."""
    global _budget, _blackhole
    with _lock:
        if _blackhole:
            return False
        if _budget is None:
            return True
        if _budget > 0:
            _budget -= 1
            return True
        _blackhole = True
        return False


def is_blackhole():
    with _lock:
        return _blackhole


def black_hole(cid):
    """Never read or write again on this connection; the thread sleeps until the process
    ends (the threads are daemons)."""
    event("blackhole %d" % cid)
    threading.Event().wait()


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


def log_query(msg, suffix=""):
    q = parse_query(msg)
    if q is None:
        event("query ? ? len=%d id=? pad=?%s" % (len(msg), suffix))
    else:
        qid, _f, name, _w, qtype, _c, end, ar = q
        pad = "yes" if has_padding(msg, end, ar) else "no"
        event("query %s %d len=%d id=%d pad=%s%s" % (name, qtype, len(msg), qid, pad, suffix))


def serve_tls(ctx, raw, cid, mode, delay):
    """One connection, in one thread: read framed queries as they come (pipelined or
    not), answer each at once or, with a delay, when its time is due, without ever
    holding up the reading of the next query."""
    if is_blackhole():
        black_hole(cid)
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
                if not take_budget():
                    black_hole(cid)
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


# ---------------------------------------------------------------------------------------
# DNS over HTTPS (RFC 8484) over HTTP/2

DOH_PATH = "/dns-query"
DOH_TYPE = "application/dns-message"
DOH_MAX_BODY = 65535
GOAWAY_LINGER = 0.5  # seconds the connection stays open after our GOAWAY
WRONG_ID = 1234

h2 = None  # the h2 package, imported by main() for --proto doh only


class FrameScanner:
    """Walks the client's HTTP/2 frames by their 9-byte headers, independently of the h2
    state machine, to log PING, RST_STREAM and GOAWAY in every state (also after our own
    GOAWAY, when h2 no longer takes input)."""

    PREFACE = 24  # "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    def __init__(self, cid):
        self.cid = cid
        self.skip = self.PREFACE
        self.buf = b""

    def feed(self, data):
        self.buf += data
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                self.buf = self.buf[n:]
                self.skip -= n
                if self.skip:
                    return
            if len(self.buf) < 9:
                return
            length = int.from_bytes(self.buf[0:3], "big")
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            if len(self.buf) < 9 + length:
                return
            payload = self.buf[9:9 + length]
            self.buf = self.buf[9 + length:]
            if ftype == 0x6 and not flags & 0x1:
                event("ping %d" % self.cid)
            elif ftype == 0x3 and length >= 4:
                event("rst %d %d %d" % (self.cid, sid, int.from_bytes(payload[:4], "big")))
            elif ftype == 0x7 and length >= 8:
                event("goaway %d %d" % (self.cid, int.from_bytes(payload[4:8], "big")))


class DohConn:
    """One DoH connection, in one thread: feed what is read to h2, act on each complete
    request as the mode says (at once, or when its --delay is due), send what h2 has to
    send."""

    def __init__(self, sock, cid, mode, delay):
        self.sock = sock
        self.cid = cid
        self.mode = mode
        self.delay = delay
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.scanner = FrameScanner(cid)
        self.requests = {}  # stream id -> [headers dict, body bytearray]
        self.due = []       # heap of (time, sequence, function)
        self.seq = 0
        self.h2_live = True  # False once we sent GOAWAY or the client broke HTTP/2
        self.close_at = None
        self.done = False
        self.fin = False  # close with close_quietly

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def run(self):
        self.conn.initiate_connection()
        self.flush()
        while not self.done:
            now = time.monotonic()
            while self.due and self.due[0][0] <= now and not self.done:
                heapq.heappop(self.due)[2]()
                self.flush()
            if self.done:
                break
            if self.close_at is not None and now >= self.close_at:
                event("closed %d" % self.cid)
                break
            if self.sock.pending() == 0:
                deadlines = [t for t in (self.due[0][0] if self.due else None, self.close_at)
                             if t is not None]
                wait = max(0.0, min(deadlines) - now) if deadlines else None
                readable, _, _ = select.select([self.sock], [], [], wait)
                if not readable:
                    continue
            data = self.sock.recv(65536)
            if not data:
                event("eof %d" % self.cid)
                break
            self.scanner.feed(data)
            if not self.h2_live:
                continue
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                event("h2error %d %s" % (self.cid, str(e).replace("\n", " ")[:200]))
                try:
                    self.flush()  # h2's GOAWAY, when it made one
                except OSError:
                    pass
                break
            for ev in events:
                self.on_event(ev)
                if self.done:
                    break
            if not self.done:
                self.flush()
        if self.fin:
            self.close_quietly()
        try:
            self.sock.close()
        except OSError:
            pass

    def close_quietly(self):
        """Close with a TCP FIN and no TLS close_notify, and read (and drop) what the
        client still sends for a moment: closing with unread data would make the kernel
        send a RST, and a RST may make the client drop what it had received."""
        try:
            self.sock.shutdown(socket.SHUT_WR)  # the raw socket's: no TLS alert
            limit = time.monotonic() + 1.0
            while time.monotonic() < limit:
                readable, _, _ = select.select([self.sock], [], [], 0.1)
                if readable and not self.sock.recv(65536):
                    break
        except OSError:
            pass

    def on_event(self, ev):
        E = h2.events
        # A request is complete at its StreamEnded event (h2 also hangs that event on the
        # RequestReceived or DataReceived before it, and lists it after them).
        if isinstance(ev, E.RequestReceived):
            self.requests[ev.stream_id] = [dict(ev.headers), bytearray()]
        elif isinstance(ev, E.DataReceived):
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            req = self.requests.get(ev.stream_id)
            if req is not None:
                req[1] += ev.data
                if len(req[1]) > DOH_MAX_BODY:
                    del self.requests[ev.stream_id]
                    self.bad_request(ev.stream_id, 413, "body over %d bytes" % DOH_MAX_BODY)
        elif isinstance(ev, E.StreamEnded):
            self.on_request(ev.stream_id)
        elif isinstance(ev, E.StreamReset):
            self.requests.pop(ev.stream_id, None)
        elif isinstance(ev, E.ConnectionTerminated):
            # The client's GOAWAY (logged by the scanner): h2 takes no more input.
            self.h2_live = False

    def bad_request(self, sid, status, what):
        event("badreq %d %d %s" % (self.cid, status, what))
        body = (what + "\n").encode()
        self.send_response(sid, status, "text/plain", body)

    def send_response(self, sid, status, ctype, body):
        """Headers and body on stream sid; a stream the client has reset meanwhile is
        skipped. Bodies here are small, well within the initial flow-control window."""
        try:
            self.conn.send_headers(sid, [(":status", str(status)), ("content-type", ctype),
                                         ("content-length", str(len(body))),
                                         ("cache-control", "max-age=60")])
            self.conn.send_data(sid, body, end_stream=True)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass

    def later(self, fn):
        if self.delay:
            self.seq += 1
            heapq.heappush(self.due, (time.monotonic() + self.delay, self.seq, fn))
        else:
            fn()

    def decode_request(self, sid):
        """The DNS query of a complete request, or None after answering it with an error."""
        headers, body = self.requests.pop(sid, (None, None))
        if headers is None:
            return None, None
        method = headers.get(":method", "")
        path = headers.get(":path", "")
        base, _, query = path.partition("?")
        if base != DOH_PATH:
            self.bad_request(sid, 404, "path %s" % path[:100])
            return None, None
        if method == "POST":
            ctype = headers.get("content-type", "")
            if ctype != DOH_TYPE:
                self.bad_request(sid, 415, "content-type %s" % (ctype or "(none)"))
                return None, None
            return bytes(body), method
        if method == "GET":
            for part in query.split("&"):
                k, _, v = part.partition("=")
                if k == "dns":
                    if "=" in v or "+" in v or "/" in v:
                        # RFC 8484 §4.1: base64url, and padding is not used.
                        self.bad_request(sid, 400, "dns= is not unpadded base64url")
                        return None, None
                    try:
                        return base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)), method
                    except (ValueError, TypeError):
                        self.bad_request(sid, 400, "dns= does not decode")
                        return None, None
            self.bad_request(sid, 400, "GET without dns=")
            return None, None
        self.bad_request(sid, 405, "method %s" % method)
        return None, None

    def on_request(self, sid):
        msg, method = self.decode_request(sid)
        if msg is None:
            return
        log_query(msg, " method=%s" % method)
        if not take_budget():
            # The answers already made (to requests read in the same batch) go out; then
            # nothing more, not even a PING acknowledgement.
            self.flush()
            black_hole(self.cid)
        q = parse_query(msg)
        if q is None:
            self.bad_request(sid, 400, "not a DNS query")
            return
        qid, flags, _name, qname_wire, qtype, qclass, _end, _ar = q
        answer = build_answer(qid, flags, qname_wire, qtype, qclass)
        mode = self.mode
        if mode == "ok" or mode == "noh2":
            self.later(lambda: self.send_response(sid, 200, DOH_TYPE, answer))
        elif mode == "stall":
            pass
        elif mode == "close":
            event("closed %d" % self.cid)
            self.done = self.fin = True
        elif mode == "midanswer":
            try:
                self.conn.send_headers(sid, [(":status", "200"), ("content-type", DOH_TYPE),
                                             ("content-length", str(len(answer)))])
                self.conn.send_data(sid, answer[:len(answer) // 2])
                self.flush()
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
            event("closed %d" % self.cid)
            self.done = self.fin = True
        elif mode == "garbage":
            junk = bytearray(os.urandom(48))
            junk[0], junk[1] = qid >> 8, qid & 0xFF
            self.later(lambda: self.send_response(sid, 200, DOH_TYPE, bytes(junk)))
        elif mode == "nondns":
            self.later(lambda: self.send_response(sid, 200, DOH_TYPE, b"hello"))
        elif mode == "status500":
            self.later(lambda: self.send_response(sid, 500, "text/plain",
                                                  b"internal server error\n"))
        elif mode == "ctype":
            self.later(lambda: self.send_response(sid, 200, "text/html", answer))
        elif mode == "rst":
            self.later(lambda: self.reset(sid))
        elif mode == "goaway":
            if self.h2_live:
                self.conn.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR,
                                           last_stream_id=0)
                self.flush()
                self.h2_live = False
                self.close_at = time.monotonic() + GOAWAY_LINGER
        elif mode == "wrongid":
            bad = build_answer(WRONG_ID, flags, qname_wire, qtype, qclass)
            self.later(lambda: self.send_response(sid, 200, DOH_TYPE, bad))
        elif mode == "wrongq":
            other = wire_name("evil-other-name.example.")
            bad = build_answer(qid, flags, other, qtype, qclass)
            self.later(lambda: self.send_response(sid, 200, DOH_TYPE, bad))
        else:
            raise ValueError(mode)

    def reset(self, sid):
        try:
            self.conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.INTERNAL_ERROR)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass


def serve_doh(ctx, raw, cid, mode, delay):
    if is_blackhole():
        black_hole(cid)
    sock = raw
    try:
        raw.settimeout(30)
        try:
            sock = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            event("tls %d fail %s" % (cid, str(e).replace("\n", " ")[:200]))
            raw.close()
            return
        event("tls %d ok" % cid)
        event("alpn %d %s" % (cid, sock.selected_alpn_protocol() or "none"))
        sock.settimeout(None)
        DohConn(sock, cid, mode, delay).run()
    except Exception as e:  # noqa: BLE001 - the end of one connection, whatever broke it
        event("error %d %s %s" % (cid, type(e).__name__, str(e).replace("\n", " ")[:200]))
        try:
            sock.close()
        except OSError:
            pass


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


DOT_MODES = ["ok", "stall", "close", "midanswer", "garbage", "wrongid", "wrongq", "sniff"]
DOH_MODES = ["ok", "stall", "close", "midanswer", "garbage", "nondns", "status500", "ctype",
             "rst", "goaway", "wrongid", "wrongq", "noh2"]


def main():
    global _events, _budget, h2
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--proto", choices=["dot", "doh"], default="dot")
    ap.add_argument("--mode", required=True, choices=sorted(set(DOT_MODES + DOH_MODES)))
    ap.add_argument("--events", required=True)
    ap.add_argument("--delay", type=int, default=0, help="milliseconds before each answer")
    ap.add_argument("--stall-after", type=int, default=None, metavar="N",
                    help="answer N queries, then become a black hole")
    ap.add_argument("--faulty-conns", type=int, default=None, metavar="N",
                    help="(doh) only the first N connections misbehave; later ones are ok")
    args = ap.parse_args()
    modes = DOH_MODES if args.proto == "doh" else DOT_MODES
    if args.mode not in modes:
        ap.error("mode %s is not a %s mode (%s)" % (args.mode, args.proto, ", ".join(modes)))
    if args.faulty_conns is not None and args.proto != "doh":
        ap.error("--faulty-conns is for --proto doh")
    if args.proto == "doh":
        import h2.config
        import h2.connection
        import h2.errors
        import h2.events
        import h2.exceptions
    _budget = args.stall_after
    _events = open(args.events, "a", buffering=1)

    ctx = None
    ok_ctx = None
    if args.mode != "sniff":
        if not args.cert or not args.key:
            ap.error("--cert and --key are needed except in sniff mode")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        if args.proto == "doh":
            ctx.set_alpn_protocols(["http/1.1"] if args.mode == "noh2" else ["h2"])
            ok_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ok_ctx.load_cert_chain(args.cert, args.key)
            ok_ctx.set_alpn_protocols(["h2"])

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
        elif args.proto == "doh":
            if args.faulty_conns is not None and cid > args.faulty_conns:
                c, mode = ok_ctx, "ok"
            else:
                c, mode = ctx, args.mode
            t = threading.Thread(target=serve_doh, args=(c, raw, cid, mode, delay), daemon=True)
        else:
            t = threading.Thread(target=serve_tls, args=(ctx, raw, cid, args.mode, delay),
                                 daemon=True)
        t.start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
