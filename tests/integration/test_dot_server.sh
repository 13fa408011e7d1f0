#!/usr/bin/env bash
# test_dot_server: the DNS-over-TLS frontend (--dot-listen, RFC 7858) with real clients:
# kdig, dig and dnsperf, and a small Python client (below) for what they cannot do
# (pipelining matched by ID, bytes of our choosing inside TLS, slow and idle clients, the
# connection limit, a connection held across a certificate reload). Inside TLS the
# framing and the answers to bad input must be exactly those of plain TCP: each such case
# runs over both and the outputs are compared.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools kdig dig dnsperf openssl unbound python3 ss od
need_dnsward
need_dwq
PY=${PYTHON:-/usr/bin/python3}
# As in test_robustness: under AddressSanitizer, peak memory would otherwise count every
# allocation ever made rather than what is held at once. Harmless without ASan.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"

make_certs
start_unbound

# --- the client ------------------------------------------------------------------------------
DOTC=$T/dotc.py
cat >"$DOTC" <<'PYEOF'
# dotc.py: a DNS-over-TLS (or, with --plain, DNS-over-TCP) test client for test_dot_server.sh.
# Every mode prints lines made for grep; times are in milliseconds.
import argparse, os, select, socket, ssl, struct, sys, time

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--plain", action="store_true", help="TCP without TLS")
ap.add_argument("--ca")
ap.add_argument("--host", default="upstream.test")
ap.add_argument("--wait", type=float, default=3.0)
ap.add_argument("mode")
ap.add_argument("args", nargs="*")
o = ap.parse_args()


def now_ms():
    return int(time.monotonic() * 1000)


def qname(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l) + b"\0"


def query(qid, name, qtype=1):
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname(name) + struct.pack(">HH", qtype, 1)


def frame(msg):
    return struct.pack(">H", len(msg)) + msg


def ctx():
    c = ssl.create_default_context(cafile=o.ca)
    c.minimum_version = ssl.TLSVersion.TLSv1_2
    return c


def connect(handshake=True):
    s = socket.create_connection(("127.0.0.1", o.port), timeout=o.wait)
    if o.plain:
        return s
    t = ctx().wrap_socket(s, server_hostname=o.host, do_handshake_on_connect=False)
    if handshake:
        t.do_handshake()
    return t


class Reader:
    """Frames from a stream socket, with a deadline."""

    def __init__(self, s):
        self.s, self.buf, self.closed = s, b"", False

    def frame(self, deadline):
        while True:
            if len(self.buf) >= 2:
                n = struct.unpack(">H", self.buf[:2])[0]
                if len(self.buf) >= 2 + n:
                    m, self.buf = self.buf[2:2 + n], self.buf[2 + n:]
                    return m
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            pending = isinstance(self.s, ssl.SSLSocket) and self.s.pending()
            if not pending:
                r, _, _ = select.select([self.s], [], [], left)
                if not r:
                    return None
            try:
                d = self.s.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError, socket.timeout):
                # Readable for TLS records that carry no data (session tickets): the
                # socket's own timeout ends the recv; the deadline is checked above.
                continue
            except (ConnectionError, ssl.SSLError, OSError):
                d = b""
            if not d:
                self.closed = True
            self.buf += d


def describe(m):
    if len(m) < 12:
        return "short len=%d" % len(m)
    qid, flags = struct.unpack(">HH", m[:4])
    return "rcode=%s id=%d qr=%d" % (RCODES.get(flags & 15, str(flags & 15)), qid, flags >> 15)


def parse_question(m):
    i, labels = 12, []
    while m[i]:
        labels.append(m[i + 1:i + 1 + m[i]].decode())
        i += 1 + m[i]
    return ".".join(labels)


if o.mode == "send":
    # send HEX [EXPECT]: write the bytes as given (framing included), print every frame
    # that comes back within --wait (or EXPECT frames and 0.3 s more), then how it ended.
    data = bytes.fromhex(o.args[0])
    expect = int(o.args[1]) if len(o.args) > 1 else None
    s = connect()
    s.sendall(data)
    r, got = Reader(s), 0
    deadline = time.monotonic() + o.wait
    while True:
        m = r.frame(deadline)
        if m is None:
            break
        print(describe(m))
        got += 1
        if expect is not None and got >= expect:
            deadline = min(deadline, time.monotonic() + 0.3)
    print("end closed" if r.closed else "end open")
elif o.mode == "sendclose":
    # sendclose HEX: write the bytes, then close at once.
    s = connect()
    s.sendall(bytes.fromhex(o.args[0]))
    s.close()
    print("sent")
elif o.mode == "pipeline":
    # pipeline N SUFFIX...: N queries q<i>.<suffix> (suffixes in turn) in one write,
    # answers matched by ID and question.
    n, suffixes = int(o.args[0]), o.args[1:]
    s = connect()
    names = {}
    out = b""
    for i in range(n):
        qid = 1000 + i
        names[qid] = "q%d.%s" % (i, suffixes[i % len(suffixes)])
        out += frame(query(qid, names[qid]))
    s.sendall(out)
    r = Reader(s)
    deadline = time.monotonic() + o.wait
    answered = mismatched = dup = outoforder = 0
    last, seen, rcodes = -1, set(), {}
    while len(seen) < n:
        m = r.frame(deadline)
        if m is None:
            break
        qid = struct.unpack(">H", m[:2])[0]
        if qid in seen:
            dup += 1
            continue
        if qid not in names or parse_question(m).lower() != names[qid].lower():
            mismatched += 1
            continue
        seen.add(qid)
        answered += 1
        if qid < last:
            outoforder += 1
        last = qid
        rc = RCODES.get(m[3] & 15, str(m[3] & 15))
        rcodes[rc] = rcodes.get(rc, 0) + 1
    print("sent=%d answered=%d mismatched=%d dup=%d outoforder=%d rcodes=%s" % (
        n, answered, mismatched, dup, outoforder,
        ",".join("%s:%d" % kv for kv in sorted(rcodes.items()))))
elif o.mode == "slow":
    # slow INTERVAL: a TLS ClientHello, one byte every INTERVAL seconds, until the server
    # closes; prints when, counted from the TCP connect.
    interval = float(o.args[0])
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx().wrap_bio(inc, outg, server_hostname=o.host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outg.read()
    s = socket.create_connection(("127.0.0.1", o.port))
    t0 = now_ms()
    sent = 0
    end = time.monotonic() + o.wait
    closed = None
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], interval)
        if r:
            try:
                d = s.recv(4096)
            except OSError:
                d = b""
            if not d:
                closed = now_ms() - t0
                break
            continue
        if sent < len(hello):
            try:
                s.send(hello[sent:sent + 1])
            except OSError:
                closed = now_ms() - t0
                break
            sent += 1
    print("closed_after_ms=%s sent=%d" % (closed if closed is not None else "never", sent))
elif o.mode == "idle":
    # idle NAME: one query, then wait for the server to close; prints when, counted from
    # the answer.
    s = connect()
    s.sendall(frame(query(7, o.args[0])))
    r = Reader(s)
    m = r.frame(time.monotonic() + o.wait)
    print("answer " + (describe(m) if m else "none"))
    t0 = now_ms()
    m = r.frame(time.monotonic() + o.wait)
    print("closed_after_ms=%s" % (now_ms() - t0 if r.closed else "never"))
elif o.mode == "hold":
    # hold GOFILE NAME1 NAME2: a query, then wait until GOFILE exists, then another on the
    # same connection; prints both and the CN of the certificate this connection got.
    gofile, n1, n2 = o.args
    s = connect()
    cn = dict(x[0] for x in s.getpeercert()["subject"]).get("commonName")
    s.sendall(frame(query(1, n1)))
    r = Reader(s)
    m = r.frame(time.monotonic() + o.wait)
    print("first " + (describe(m) if m else "none"), flush=True)
    end = time.monotonic() + 30
    while not os.path.exists(gofile) and time.monotonic() < end:
        time.sleep(0.05)
    s.sendall(frame(query(2, n2)))
    m = r.frame(time.monotonic() + o.wait)
    print("second " + (describe(m) if m else "none"))
    print("cn=%s" % cn)
elif o.mode == "limit":
    # limit NAME: two connections, each answered; a third does not get through its
    # handshake while they are open; closing one lets it through.
    a, b = connect(), connect()
    for i, s in enumerate((a, b)):
        s.sendall(frame(query(10 + i, o.args[0])))
        m = Reader(s).frame(time.monotonic() + o.wait)
        print("conn%d %s" % (i + 1, describe(m) if m else "none"))
    c = connect(handshake=False)
    c.setblocking(False)

    def handshake(until):
        while time.monotonic() < until:
            try:
                c.do_handshake()
                return True
            except ssl.SSLWantReadError:
                select.select([c], [], [], max(0, until - time.monotonic()))
            except ssl.SSLWantWriteError:
                select.select([], [c], [], max(0, until - time.monotonic()))
        return False

    print("third_before_close=%s" % ("handshake" if handshake(time.monotonic() + 1.5) else "waiting"))
    a.close()
    t0 = now_ms()
    done = handshake(time.monotonic() + o.wait)
    print("third_after_close=%s after_ms=%d" % ("handshake" if done else "waiting", now_ms() - t0))
    c.setblocking(True)
    c.settimeout(o.wait)
    c.sendall(frame(query(12, o.args[0])))
    m = Reader(c).frame(time.monotonic() + o.wait)
    print("conn3 %s" % (describe(m) if m else "none"))
elif o.mode == "owed":
    # owed NAME READYFILE: send a query, create READYFILE, then print the answer (whenever
    # it comes, within --wait) and whether the server closed afterwards.
    s = connect()
    s.sendall(frame(query(99, o.args[0])))
    open(o.args[1], "w").close()
    r = Reader(s)
    t0 = now_ms()
    m = r.frame(time.monotonic() + o.wait)
    print("answer %s after_ms=%d" % (describe(m) if m else "none", now_ms() - t0))
    r.frame(time.monotonic() + 3)
    print("closed" if r.closed else "open")
elif o.mode == "flood":
    # flood N NAME QTYPE DELAY late|never: N queries for NAME (ID i), pipelined in one
    # write; then nothing for DELAY seconds; then read every answer (late), or go on
    # reading nothing for --wait seconds (never).
    n, name, qtype, delay, how = int(o.args[0]), o.args[1], int(o.args[2]), float(o.args[3]), o.args[4]
    s = connect()
    s.sendall(b"".join(frame(query(i, name, qtype)) for i in range(n)))
    time.sleep(delay)
    if how == "never":
        time.sleep(o.wait)
        print("sent=%d" % n)
        sys.exit(0)
    r, seen, size = Reader(s), set(), 0
    deadline = time.monotonic() + o.wait
    while len(seen) < n:
        m = r.frame(deadline)
        if m is None:
            break
        seen.add(struct.unpack(">H", m[:2])[0])
        size += len(m)
    print("sent=%d answered=%d bytes=%d %s" % (n, len(seen), size, "closed" if r.closed else "open"))
else:
    sys.exit("unknown mode " + o.mode)
PYEOF

# dotc ARGS...: the Python client against the DoT listener; dotc_tcp: the same client,
# without TLS, against the plain TCP listener.
dotc() { "$PY" "$DOTC" --port "$DOT_PORT" --ca "$CERTS/ca.pem" "$@"; }
dotc_tcp() { "$PY" "$DOTC" --plain --port "$DW_PORT" "$@"; }

TLS_OPTS=(+tls +tls-ca="$CERTS/ca.pem" +tls-hostname=upstream.test)
dot_kdig() { kdig @127.0.0.1 -p "$DOT_PORT" +retry=0 +time=5 "${TLS_OPTS[@]}" "$@"; }
dot_dig() { dig @127.0.0.1 -p "$DOT_PORT" +tries=1 +time=5 "${TLS_OPTS[@]}" "$@"; }
kdig_status() { sed -nE 's/.*status: ([A-Z0-9]+).*/\1/p' <<<"$1" | head -n 1; }

# start_dot ARGS...: dnsward with a DoT listener on DOT_PORT and ARGS, ready when a DoT
# query is answered.
start_dot() {
    free_port DOT_PORT
    start_dnsward -v -u "tls://127.0.0.1:$UB_DOT#upstream.test" --ca-file "$CERTS/ca.pem" \
        --dot-listen "127.0.0.1:$DOT_PORT" "$@"
    wait_until 10 tcp_listening "$DOT_PORT" || fail "dnsward does not listen on the DoT port $DOT_PORT"
    assert_match "the DoT listener is announced" "$(cat "$DW_LOG")" "listening on 127\.0\.0\.1:$DOT_PORT \(dns-over-tls\)"
}

# --- hex builders (as in test_badinput.sh) ---------------------------------------------------------
hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
qname_hex() {
    local out='' l labels
    IFS=. read -ra labels <<<"$1"
    for l in "${labels[@]}"; do out+=$(printf '%02x' "${#l}")$(hex "$l"); done
    echo "${out}00"
}
header_hex() { printf '%04x%04x%04x%04x%04x%04x' "$@"; }
question_hex() { echo "$(qname_hex "$1")00010001"; }
query_hex() { echo "$(header_hex "$1" 0x0100 1 0 0 0)$(question_hex "$2")"; }
framed() { printf '%04x%s' $((${#1} / 2)) "$1"; } # HEX -> with its 2-byte length prefix

# --- the server's own certificate, replaceable for the reload ----------------------------------------
SRV_PEM=$T/server.pem
SRV_KEY=$T/server.key
cp "$CERTS/good.pem" "$SRV_PEM"
cp "$CERTS/good.key" "$SRV_KEY"
# A second certificate from the test CA, same names, another CN and key.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/reloaded.key" \
    -out "$T/reloaded.csr" -subj "/CN=reloaded" >"$T/reload-cert.log" 2>&1
openssl x509 -req -in "$T/reloaded.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" -CAcreateserial \
    -out "$T/reloaded.pem" -days 30 -extfile "$CERTS/good.ext" >>"$T/reload-cert.log" 2>&1 ||
    fail "cannot make the second server certificate: $(cat "$T/reload-cert.log")"
served_cn() { # the CN of the certificate a new connection gets
    openssl s_client -connect "127.0.0.1:$DOT_PORT" -servername upstream.test -showcerts </dev/null 2>/dev/null |
        openssl x509 -noout -subject 2>/dev/null | sed -nE 's/.*CN ?= ?([^,/]+).*/\1/p'
}

start_dot --cert "$SRV_PEM" --key "$SRV_KEY" --timeout 2s

# --- real clients -------------------------------------------------------------------------------------
out=$(dot_kdig one.bench.test A 2>&1) || fail "kdig +tls: no answer: $out"
assert_eq "kdig +tls: status" NOERROR "$(kdig_status "$out")"
assert_match "kdig +tls: the answer" "$out" '^one\.bench\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.1$'
assert_contains "kdig +tls: over TLS" "$out" ";; TLS session (TLS1."
ok "kdig +tls gets the answer"

out=$(dot_dig two.bench.test A 2>&1) || fail "dig +tls: no answer: $out"
assert_eq "dig +tls: status" NOERROR "$(dig_status "$out")"
assert_match "dig +tls: the answer" "$out" '^two\.bench\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.1$'
assert_match "dig +tls: over TLS" "$out" "SERVER: 127\.0\.0\.1#$DOT_PORT\(127\.0\.0\.1\) \(TLS\)"
assert_not_contains "dig +tls: an unpadded query gets an unpadded answer (RFC 8467)" "$out" "PAD"
ok "dig +tls gets the answer"

out=$(dot_kdig no.nx.test A 2>&1) || fail "kdig +tls NXDOMAIN: no answer: $out"
assert_eq "kdig +tls: NXDOMAIN passes through" NXDOMAIN "$(kdig_status "$out")"
assert_match "kdig +tls: NXDOMAIN with its SOA" "$out" 'nx\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA'
ok "NXDOMAIN passes through over DoT"

before=$(ub_count '^cached\.bench\.test\.$')
for i in 1 2; do
    out=$(dot_kdig cached.bench.test A 2>&1) || fail "kdig +tls, query $i: $out"
    assert_eq "cached.bench.test, query $i: status" NOERROR "$(kdig_status "$out")"
    assert_match "cached.bench.test, query $i: answer" "$out" 'IN[[:space:]]+A[[:space:]]+192\.0\.2\.1$'
done
assert_eq "cached.bench.test: queries that reached Unbound" $((before + 1)) "$(ub_count '^cached\.bench\.test\.$')"
ok "a second identical query over DoT is answered from the cache"

out=$(dot_kdig +padding=468 padded.bench.test A 2>&1) || fail "kdig +padding: $out"
assert_eq "kdig +padding: status" NOERROR "$(kdig_status "$out")"
assert_match "kdig +padding: the answer carries a PADDING option" "$out" ';; PADDING: [0-9]+ B'
size=$(sed -nE 's/^;; Received ([0-9]+) B$/\1/p' <<<"$out")
[[ -n $size ]] || fail "kdig +padding: no message size in its output: $(_quote "$out")"
assert_eq "kdig +padding: the answer's size ($size) is a multiple of 468" 0 $((size % 468))
ok "a padded query over DoT gets an answer padded to a multiple of 468 bytes ($size B)"

out=$(dot_kdig huge.test TXT 2>&1) || fail "kdig +tls huge.test TXT: $out"
assert_eq "a ~50 KB answer over DoT: status" NOERROR "$(kdig_status "$out")"
assert_match "a ~50 KB answer over DoT: all 200 records" "$out" 'ANSWER: 200;'
ok "a ~50 KB answer (many TLS records) arrives whole"

# --- pipelining -----------------------------------------------------------------------------------------
out=$(dot_kdig +keepopen +noall +answer ka.bench.test A kb.bench.test A kc.bench.test A 2>&1) ||
    fail "kdig +keepopen: $out"
for n in ka kb kc; do
    assert_match "kdig +keepopen: $n" "$out" "^$n\.bench\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.1$"
done
ok "kdig +keepopen: three queries on one connection, three answers"

out=$(dotc --wait 10 pipeline 200 pipe.bench.test nx.test bench.test)
assert_contains "200 queries pipelined on one TLS connection" "$out" \
    "sent=200 answered=200 mismatched=0 dup=0 "
assert_contains "200 pipelined queries: rcodes" "$out" "rcodes=NOERROR:133,NXDOMAIN:67"
echo "#   $out"
ok "200 queries pipelined in one write on one TLS connection: all answered, matched by ID and question"

# --- dnsperf ----------------------------------------------------------------------------------------------
printf '%s A\n' perf1.bench.test perf2.bench.test perf3.bench.test perf4.bench.test >"$T/perf.txt"
for n in 1 2 3 4; do dot_kdig "perf$n.bench.test" A >/dev/null || fail "warming perf$n.bench.test"; done
out=$(timeout 30 dnsperf -m dot -s 127.0.0.1 -p "$DOT_PORT" -d "$T/perf.txt" -n 500 -c 2 -l 10 2>&1) ||
    fail "dnsperf -m dot failed: $(_quote "$out")"
assert_match "dnsperf -m dot: all completed" "$out" 'Queries completed:[[:space:]]+2000 \(100\.00%\)'
assert_match "dnsperf -m dot: none lost" "$out" 'Queries lost:[[:space:]]+0 '
assert_match "dnsperf -m dot: all NOERROR" "$out" 'Response codes:[[:space:]]+NOERROR 2000 \(100\.00%\)'
echo "#   dnsperf: $(grep -E 'Queries per second' <<<"$out" | tr -s ' ')"
ok "dnsperf -m dot: 2000 queries over 2 connections, 0 lost"

# --- bad input inside TLS, exactly as over plain TCP ---------------------------------------------------
# bad_case WHAT HEX N EXPECTED: the bytes, written as given, over DoT and over TCP; both
# must print EXPECTED: the frames that came back (N of them, and none in the 0.3 s after),
# and whether the connection stayed open.
# The two run side by side, to keep the waits short.
both() { # ARGS...: dotc ARGS and dotc_tcp ARGS at once; sets DOT_OUT and TCP_OUT
    local p1 p2 rc1=0 rc2=0
    dotc "$@" >"$T/both.dot" 2>&1 &
    p1=$!
    dotc_tcp "$@" >"$T/both.tcp" 2>&1 &
    p2=$!
    _PIDS+=("$p1" "$p2")
    wait "$p1" || rc1=$?
    wait "$p2" || rc2=$?
    _forget_pid "$p1"
    _forget_pid "$p2"
    DOT_OUT=$(cat "$T/both.dot")
    TCP_OUT=$(cat "$T/both.tcp")
    ((rc1 == 0)) || fail "dotc $*: the client failed over DoT: $DOT_OUT"
    ((rc2 == 0)) || fail "dotc $*: the client failed over TCP: $TCP_OUT"
}
bad_case() {
    local what=$1 bytes=$2 n=$3 want=$4 dot tcp w=2
    ((n > 0)) || w=1 # nothing expected: how long nothing comes
    both --wait $w send "$bytes" "$n"
    dot=$DOT_OUT
    tcp=$TCP_OUT
    assert_eq "$what over TCP" "$want" "$tcp"
    assert_eq "$what over DoT (as over TCP)" "$want" "$dot"
    assert_dw_alive "after $what"
}
good=$(query_hex 0x4242 after-bad.bench.test)
ANS=$'rcode=NOERROR id=16962 qr=1'
bad_case "a frame of length 0, then a query" "0000$(framed "$good")" 1 "$ANS"$'\nend open'
bad_case "a frame of 1 byte, then a query" "0001ff$(framed "$good")" 1 "$ANS"$'\nend open'
bad_case "a response (QR=1), then a query" \
    "$(framed "$(header_hex 0x5151 0x8180 1 0 0 0)$(question_hex bad-qr.bench.test)")$(framed "$good")" \
    1 "$ANS"$'\nend open'
bad_case "QDCOUNT=0, then a query" "$(framed "$(header_hex 0x5252 0x0100 0 0 0 0)")$(framed "$good")" \
    2 $'rcode=FORMERR id=21074 qr=1\n'"$ANS"$'\nend open'
bad_case "garbage in a frame (a name running off the end), then a query" \
    "$(framed "$(header_hex 0x5353 0x0100 1 0 0 0)3fffffffff")$(framed "$good")" \
    2 $'rcode=FORMERR id=21331 qr=1\n'"$ANS"$'\nend open'
bad_case "a frame announcing 300 bytes and carrying 12" "012c$(header_hex 0x5454 0x0100 1 0 0 0)" \
    0 "end open"
# Random bytes: whatever TCP does with them, DoT must do the same.
noise=$(od -An -tx1 -v -N 600 /dev/urandom | tr -d ' \n')
both --wait 1 send "$noise"
assert_eq "600 random bytes over DoT (as over TCP)" "$TCP_OUT" "$DOT_OUT"
both sendclose "012c$(header_hex 0x5555 0x0100 1 0 0 0)"
assert_dw_alive "after a truncated frame and a close"
out=$(dotc send "$(framed "$(query_hex 0x5656 still.bench.test)")" 1)
assert_contains "a query after the bad input" "$out" "rcode=NOERROR id=22102 qr=1"
bad=$(ub_queries '(^|\.)bad-' || true)
[[ -z $bad ]] || fail "bad queries reached the upstream: $bad"
ok "bad input inside TLS (frames of 0 and 1 byte, a response, FORMERR cases, a short frame, noise, a cut): answered or dropped exactly as over TCP"

# --- clients that do not speak TLS, or do not trust us ---------------------------------------------------
# The lines a failed handshake may cost: the TLS stream's (a TLS error, with OpenSSL's
# reason) or the DoT listener's (a connection cut or timed out during the handshake).
tls_lines() { grep -cE 'tls: client 127\.0\.0\.1:|: client 127\.0\.0\.1:[0-9]+: (TLS handshake failed|no TLS handshake)' "$DW_LOG" || true; }
before=$(tls_lines)
t0=$(now_ms)
out=$("$DWQ" -t -s 127.0.0.1 -p "$DOT_PORT" -w 4 plain-to-dot.bench.test A || true)
t1=$(now_ms)
assert_match "plain DNS over TCP to the DoT port: the connection is closed" "$out" '^noanswer closed'
assert_le "plain DNS to the DoT port: closed at once, not at a timeout (ms)" 1500 $((t1 - t0))
wait_until 3 eval '(( $(tls_lines) > before ))' || fail "the failed handshake was not logged"
assert_eq "log lines for the failed handshake" $((before + 1)) "$(tls_lines)"
assert_dw_alive "after a plain-DNS client on the DoT port"
before=$(tls_lines)
out=$(kdig @127.0.0.1 -p "$DOT_PORT" +retry=0 +time=3 +tls +tls-ca="$CERTS/ca.pem" \
    +tls-hostname=wrong.test wrongname.bench.test A 2>&1 || true)
assert_not_contains "a client expecting another name gets no answer" "$out" "192.0.2.1"
wait_until 3 eval '(( $(tls_lines) > before ))' || fail "the rejected handshake was not logged"
assert_eq "log lines for the rejected handshake" $((before + 1)) "$(tls_lines)"
out=$(dot_kdig after-tls-failures.bench.test A 2>&1) || fail "a query after the failed handshakes: $out"
assert_eq "a query after the failed handshakes" NOERROR "$(kdig_status "$out")"
ok "plain DNS on the DoT port, and a client rejecting our certificate: one log line each, closed, serving on"

# --- certificate reload ----------------------------------------------------------------------------------
assert_eq "the certificate served before the reload" good "$(served_cn)"
rm -f "$T/go"
dotc --wait 5 hold "$T/go" held1.bench.test held2.bench.test >"$T/hold.out" 2>&1 &
holder=$!
_PIDS+=("$holder")
wait_until 5 grep -q '^first ' "$T/hold.out" || fail "the held connection got no first answer"
cp "$T/reloaded.pem" "$SRV_PEM"
cp "$T/reloaded.key" "$SRV_KEY"
kill -HUP "$DW_PID"
wait_until 5 grep -q 'SIGHUP: certificate .* reloaded' "$DW_LOG" || fail "no reload logged after SIGHUP"
assert_eq "a new connection after the reload gets the new certificate" reloaded "$(served_cn)"
out=$(dot_kdig after-reload.bench.test A 2>&1) || fail "kdig after the reload: $out"
assert_eq "kdig after the reload" NOERROR "$(kdig_status "$out")"
touch "$T/go"
wait "$holder" || fail "the held connection's client failed: $(cat "$T/hold.out")"
_forget_pid "$holder"
out=$(cat "$T/hold.out")
assert_contains "the connection opened before the reload: first query" "$out" "first rcode=NOERROR id=1 qr=1"
assert_contains "the connection opened before the reload: a query after it" "$out" "second rcode=NOERROR id=2 qr=1"
assert_contains "the connection opened before the reload kept its certificate" "$out" "cn=good"
ok "SIGHUP: new connections get the new certificate; one opened before keeps working"

# A bad pair (a key that does not match) and then a missing key: the old pair stays.
reload_errors() { grep -c 'SIGHUP: .*the running configuration stays in force' "$DW_LOG" || true; }
for bad in mismatch missing; do
    errs=$(reload_errors)
    case $bad in
    mismatch) cp "$CERTS/other.key" "$SRV_KEY" ;;
    missing) rm -f "$SRV_KEY" ;;
    esac
    kill -HUP "$DW_PID"
    wait_until 5 eval "(( \$(reload_errors) > $errs ))" ||
        fail "a reload with a $bad key logged no error"
    assert_dw_alive "after a reload with a $bad key"
    assert_eq "after a reload with a $bad key, the certificate served" reloaded "$(served_cn)"
    out=$(dot_kdig "bad-reload-$bad.bench.test" A 2>&1) || fail "kdig after a $bad reload: $out"
    assert_eq "kdig after a reload with a $bad key" NOERROR "$(kdig_status "$out")"
done
echo "#   $(grep 'SIGHUP: .*keeping' "$DW_LOG" | tail -n 1)"
ok "SIGHUP with a mismatched or a missing key: an error logged, the old certificate kept, serving on"

# --- shutdown with an answer owed ----------------------------------------------------------------------
# The upstream stalls; SIGTERM stops reading but the query in flight gets its answer
# (SERVFAIL at its deadline), then the connection closes and dnsward exits 0.
freeze_unbound
rm -f "$T/owed.ready"
dotc --wait 8 owed owed.bench.test "$T/owed.ready" >"$T/owed.out" 2>&1 &
owed=$!
_PIDS+=("$owed")
wait_until 5 test -e "$T/owed.ready" || fail "the owed query was not sent"
sleep 0.3
kill -TERM "$DW_PID"
wait "$owed" || true
_forget_pid "$owed"
wait_dnsward_exit 5
thaw_unbound
out=$(cat "$T/owed.out")
assert_match "a DoT query in flight at SIGTERM is still answered" "$out" '^answer rcode=SERVFAIL id=99 qr=1'
assert_contains "then the connection closes" "$out" "closed"
ok "shutdown: the answer owed on a DoT connection goes out, then it closes; exit 0, sanitizers clean"

# --- slow clients: the handshake deadline -------------------------------------------------------------
start_dot --cert "$CERTS/good.pem" --key "$CERTS/good.key" --doh-header-timeout 1s --tcp-idle-timeout 2s
dotc --wait 6 slow 0.3 >"$T/slow1.out" 2>&1 & # a ClientHello, one byte every 0.3 s
slow1=$!
dotc --wait 6 slow 60 >"$T/slow2.out" 2>&1 & # connects and sends nothing
slow2=$!
_PIDS+=("$slow1" "$slow2")
sleep 0.3
t0=$(now_ms)
out=$(dot_kdig meanwhile.bench.test A 2>&1) || fail "a client while two slow ones hold connections: $out"
t1=$(now_ms)
assert_eq "a client served while slow ones hold connections" NOERROR "$(kdig_status "$out")"
assert_le "it is served without waiting for them (ms)" 700 $((t1 - t0))
wait "$slow1" "$slow2" || fail "the slow clients failed: $(cat "$T/slow1.out" "$T/slow2.out")"
_forget_pid "$slow1"
_forget_pid "$slow2"
for f in slow1 slow2; do
    out=$(cat "$T/$f.out")
    ms=$(sed -nE 's/^closed_after_ms=([0-9]+) .*/\1/p' <<<"$out")
    [[ -n $ms ]] || fail "$f: the server never closed it: $out"
    assert_ge "$f: closed at the 1 s handshake deadline, not before (ms)" 900 "$ms"
    assert_le "$f: closed at the 1 s handshake deadline (ms)" 2000 "$ms"
    echo "#   $f: $out"
done
assert_eq "handshake timeouts logged" 2 "$(grep -c 'no TLS handshake within 1000 ms' "$DW_LOG" || true)"
ok "clients that send a ClientHello a byte at a time, or nothing: closed at the handshake deadline; another is served meanwhile"

out=$(dotc --wait 5 idle idle.bench.test)
assert_contains "an idle DoT connection: its query is answered" "$out" "answer rcode=NOERROR id=7 qr=1"
ms=$(sed -nE 's/^closed_after_ms=([0-9]+)$/\1/p' <<<"$out")
[[ -n $ms ]] || fail "an idle DoT connection was never closed: $out"
assert_ge "an idle DoT connection lives past the handshake deadline, to the idle timeout (ms)" 1800 "$ms"
assert_le "an idle DoT connection is closed at the 2 s idle timeout (ms)" 3500 "$ms"
ok "an idle DoT connection is closed at tcp-idle-timeout (${ms} ms), not at the handshake deadline"

# A client that reads its ~50 KB answers late: reading pauses while they wait (in the
# kernel and then in the TLS stream's queue) and resumes as the client takes them, until
# all 300 (15 MB) are out. A stall here would be a missed resume.
# Warmed with the same query (no EDNS): kdig's would be another cache entry.
out=$(dotc flood 1 huge.test 16 0 late)
assert_contains "warming huge.test TXT" "$out" "sent=1 answered=1 "
out=$(dotc --wait 15 flood 300 huge.test 16 1 late)
echo "#   a late reader: $out"
assert_match "300 pipelined ~50 KB answers, read late: all delivered" "$out" '^sent=300 answered=300 bytes=[0-9]{8} open$'
ok "a DoT client that reads 300 large answers late gets them all (reading pauses and resumes)"

# One that never reads: reading pauses, nothing more is buffered for it, and with nothing
# owed and nothing taken the idle timeout closes it.
peak_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$DW_PID/status"; }
established() { ss -Htn state established "( sport = :$DOT_PORT )" | wc -l; }
before=$(peak_kb)
dotc --wait 3 flood 300 huge.test 16 0 never >/dev/null 2>&1 &
reader=$!
_PIDS+=("$reader")
sleep 1
assert_eq "a DoT client that never reads: its connection is open" 1 "$(established)"
during=$(peak_kb)
echo "#   peak resident memory: ${before} kB before, ${during} kB with a DoT client that does not read"
assert_le "growth of peak memory (kB) for a DoT client that never reads" 16384 $((during - before))
out=$(dot_kdig while-not-reading.bench.test A 2>&1) || fail "a query while a DoT client does not read: $out"
assert_eq "a query while a DoT client does not read" NOERROR "$(kdig_status "$out")"
wait_until 4 eval '(( $(established) == 0 ))' || fail "the never-reading DoT client was not closed by the idle timeout"
wait "$reader" || true
_forget_pid "$reader"
ok "a DoT client that never reads: memory bounded, others served, closed at the idle timeout"
stop_dnsward_clean

# --- the connection limit ----------------------------------------------------------------------------
start_dot --cert "$CERTS/good.pem" --key "$CERTS/good.key" --tcp-max-connections 2 --cache-size 0
out=$(dotc --wait 5 limit limit.bench.test)
echo "$out" | sed 's/^/#   /'
assert_contains "connection 1" "$out" "conn1 rcode=NOERROR id=10 qr=1"
assert_contains "connection 2" "$out" "conn2 rcode=NOERROR id=11 qr=1"
assert_contains "a third connection waits while two are open" "$out" "third_before_close=waiting"
assert_contains "the third gets through once one closes" "$out" "third_after_close=handshake"
ms=$(sed -nE 's/.*third_after_close=handshake after_ms=([0-9]+).*/\1/p' <<<"$out")
assert_le "the third's handshake after the close (ms)" 1000 "$ms"
assert_contains "the third connection's query" "$out" "conn3 rcode=NOERROR id=12 qr=1"
assert_contains "the limit is logged" "$(cat "$DW_LOG")" "dot 127.0.0.1:$DOT_PORT: 2 connections (tcp-max-connections)"
ok "--tcp-max-connections 2: a third DoT client waits until one closes, then is served"

# Without the cache, 60 identical queries wait for one upstream answer and are answered
# together: a burst of 3 MB in one turn of the loop. TCP writes each answer through to
# the socket as it goes; DoT must not count what it has not offered the kernel yet as
# unread, and serves the burst to a client that reads, as TCP does.
both --wait 10 flood 60 huge.test 16 0 late
echo "#   a burst of 60 answers of ~50 KB: TCP: $TCP_OUT; DoT: $DOT_OUT"
assert_match "a burst of 60 large answers over TCP" "$TCP_OUT" '^sent=60 answered=60 bytes=[0-9]{7} open$'
assert_match "a burst of 60 large answers over DoT" "$DOT_OUT" '^sent=60 answered=60 bytes=[0-9]{7} open$'
ok "a 3 MB burst of answers finishing together reaches a reading client over DoT as over TCP"

# Without the cache every answer comes from upstream, 128 at a time (tcp-max-inflight),
# into the queue of a client that does not read: beyond the hard cap it is closed.
before=$(peak_kb)
out=$(dotc --wait 3 flood 300 huge.test 16 0 never)
during=$(peak_kb)
echo "#   peak resident memory: ${before} kB before, ${during} kB after a DoT client that does not read"
assert_le "growth of peak memory (kB), answers from upstream, a DoT client that never reads" 16384 $((during - before))
assert_contains "closed beyond the write queue's cap" "$(cat "$DW_LOG")" \
    "dot 127.0.0.1:$DOT_PORT: a client leaves its answers unread: closing"
out=$(dot_kdig after-unread.bench.test A 2>&1) || fail "a query after the unread answers: $out"
assert_eq "a query after a client left its answers unread" NOERROR "$(kdig_status "$out")"
stop_dnsward_clean
ok "a DoT client that never reads answers from upstream: closed beyond the write queue's cap, memory bounded"

# --- the access list ---------------------------------------------------------------------------------
start_dot --cert "$CERTS/good.pem" --key "$CERTS/good.key" --allow 127.0.0.2/32
out=$(dot_kdig -b 127.0.0.1 acl-out.bench.test A 2>&1) || fail "kdig +tls from 127.0.0.1: no reply: $out"
assert_eq "DoT from 127.0.0.1, outside --allow 127.0.0.2/32" REFUSED "$(kdig_status "$out")"
out=$(dot_kdig -b 127.0.0.2 acl-in.bench.test A 2>&1) || fail "kdig +tls from 127.0.0.2: no reply: $out"
assert_eq "DoT from 127.0.0.2, inside --allow 127.0.0.2/32" NOERROR "$(kdig_status "$out")"
assert_eq "the refused query did not reach Unbound" 0 "$(ub_count '^acl-out\.bench\.test\.$')"
stop_dnsward_clean
ok "--allow 127.0.0.2/32: a DoT client from 127.0.0.1 gets REFUSED, one from 127.0.0.2 an answer"
