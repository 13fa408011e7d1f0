#!/usr/bin/env bash
# test_doh_server_smoke: the DNS-over-HTTPS server frontend (--doh-listen, --doh-plain-listen)
# with real clients, the quick way round: curl over HTTP/2 and HTTP/1.1 (TLS), with prior
# knowledge and HTTP/1.1 in cleartext, GET and POST; the answer's headers and bytes; the
# error statuses of RFC 8484 and RFC 9110 spot-checked; kdig as a second client; a request
# in flight at shutdown still answered; a clean exit. The full set of cases is
# test_doh_server.sh.
source "$(dirname "$0")/lib.sh"

need_tools curl kdig
PY=${PYTHON:-/usr/bin/python3}
start_unbound
free_port DOH
free_port DOHP
start_dnsward -u "tls://127.0.0.1:$UB_DOT#upstream.test" --ca-file "$CERTS/ca.pem" \
    --doh-listen "127.0.0.1:$DOH" --cert "$CERTS/good.pem" --key "$CERTS/good.key" \
    --doh-plain-listen "127.0.0.1:$DOHP" --timeout 2s
tcp_listening "$DOH" || fail "nothing listens on the DoH port $DOH"
tcp_listening "$DOHP" || fail "nothing listens on the cleartext DoH port $DOHP"

HTTPS=https://127.0.0.1:$DOH/dns-query
HTTP=http://127.0.0.1:$DOHP/dns-query

# query FILE NAME TYPE [ID]: a DNS query (RD) in FILE; prints its base64url (RFC 8484 §6).
query() {
    "$PY" - "$@" <<'EOF'
import base64, struct, sys
path, name, qtype = sys.argv[1], sys.argv[2], int(sys.argv[3])
qid = int(sys.argv[4], 0) if len(sys.argv) > 4 else 0
w = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
for label in name.rstrip(".").split("."):
    w += bytes([len(label)]) + label.encode()
w += b"\0" + struct.pack(">HH", qtype, 1)
open(path, "wb").write(w)
print(base64.urlsafe_b64encode(w).rstrip(b"=").decode())
EOF
}

# answer FILE: "id=N qr=1 rcode=N an=N a=ADDR..." of the DNS message in FILE, or "bad".
answer() {
    "$PY" - "$1" <<'EOF'
import struct, sys
m = open(sys.argv[1], "rb").read()
if len(m) < 12:
    print("bad length %d" % len(m)); sys.exit()
qid, fl, qd, an, ns, ar = struct.unpack(">HHHHHH", m[:12])
def skip(o):
    while True:
        l = m[o]
        if l == 0: return o + 1
        if l >= 0xC0: return o + 2
        o += 1 + l
o = 12
for _ in range(qd):
    o = skip(o) + 4
addrs = []
for _ in range(an):
    o = skip(o)
    t, c, ttl, rdl = struct.unpack(">HHIH", m[o:o + 10])
    o += 10
    if t == 1 and rdl == 4:
        addrs.append(".".join(str(b) for b in m[o:o + 4]))
    o += rdl
print("id=%d qr=%d rcode=%d an=%d a=%s len=%d" % (qid, fl >> 15, fl & 15, an, ",".join(addrs), len(m)))
EOF
}

# doh CASE EXPECTED_STATUS CURL_ARGS...: run curl; sets OUT_HEAD (the response head) and
# OUT_BODY (a file with the body); fails unless the status is the one expected.
OUT_BODY=$T/body
doh() {
    local what=$1 want=$2 code
    shift 2
    rm -f "$OUT_BODY" "$T/head"
    code=$(curl -sS --max-time 10 --cacert "$CERTS/ca.pem" -D "$T/head" -o "$OUT_BODY" \
        -w '%{http_code}' "$@" 2>"$T/curl.err") || true
    OUT_HEAD=$(tr -d '\r' <"$T/head" 2>/dev/null || true)
    [[ $code == "$want" ]] || fail "$what: HTTP status $code, expected $want ($(cat "$T/curl.err"))
$(_quote "$OUT_HEAD")"
}

# expect_dns CASE ADDR: the last response is a DoH answer (RFC 8484 §4.2.1, §5.1) whose
# message answers A ADDR with ID 0.
expect_dns() {
    local what=$1 addr=$2 a len
    assert_contains "$what: content-type" "$OUT_HEAD" "content-type: application/dns-message"
    assert_match "$what: cache-control" "$OUT_HEAD" "cache-control: max-age=(30[0]|[12][0-9]{2}|[1-9][0-9]?)$"
    len=$(sed -nE 's/^content-length: ([0-9]+)$/\1/p' <<<"$OUT_HEAD")
    assert_eq "$what: content-length is the body's length" "$(wc -c <"$OUT_BODY" | tr -d ' ')" "$len"
    a=$(answer "$OUT_BODY")
    assert_match "$what: the body is the DNS answer" "$a" "^id=0 qr=1 rcode=0 an=1 a=$addr "
}

Q=$(query "$T/q.bin" h1.bench.test 1)

# --- HTTP/2 over TLS (ALPN h2) ---
doh "h2 GET" 200 --http2 "$HTTPS?dns=$Q"
assert_match "h2 GET: HTTP/2" "$OUT_HEAD" "^HTTP/2 200"
expect_dns "h2 GET" 192.0.2.1
ok "curl --http2 GET: 200, application/dns-message, max-age, the answer"

doh "h2 POST" 200 --http2 --data-binary "@$T/q.bin" -H 'content-type: application/dns-message' "$HTTPS"
expect_dns "h2 POST" 192.0.2.1
ok "curl --http2 POST: 200 and the answer"

# A name not cached yet: the answer comes later, from the upstream.
before=$(ub_count '^p1\.bench\.test\.$')
P1=$(query "$T/p1.bin" p1.bench.test 1)
doh "h2 GET, a cache miss" 200 --http2 "$HTTPS?dns=$P1"
assert_match "cache miss: answered" "$(answer "$OUT_BODY")" "^id=0 qr=1 rcode=0 an=1 a=192.0.2.1 "
assert_eq "cache miss: the upstream was asked once" $((before + 1)) "$(ub_count '^p1\.bench\.test\.$')"
ok "a cache miss is answered from the upstream, later"

# The DNS ID is the client's (RFC 8484 §4.1 allows any), and NXDOMAIN is still a 200 with
# the negative lifetime as max-age (RFC 2308 §5: min(SOA TTL 300, MINIMUM 60)).
query "$T/nx.bin" nope.nx.test 1 0x1234 >/dev/null
doh "NXDOMAIN" 200 --http2 --data-binary "@$T/nx.bin" -H 'content-type: application/dns-message' "$HTTPS"
assert_match "NXDOMAIN: ID echoed, rcode 3" "$(answer "$OUT_BODY")" "^id=4660 qr=1 rcode=3 an=0 "
assert_contains "NXDOMAIN: max-age" "$OUT_HEAD" "cache-control: max-age=60"
ok "NXDOMAIN: 200, the client's ID, max-age from the SOA"

# --- HTTP/1.1 over TLS ---
doh "h1 GET" 200 --http1.1 "$HTTPS?dns=$Q"
assert_match "h1 GET: HTTP/1.1" "$OUT_HEAD" "^HTTP/1.1 200"
expect_dns "h1 GET" 192.0.2.1
doh "h1 POST" 200 --http1.1 --data-binary "@$T/q.bin" -H 'content-type: application/dns-message' "$HTTPS"
expect_dns "h1 POST" 192.0.2.1
ok "curl --http1.1 GET and POST: 200 and the answer"

# --- cleartext ---
doh "h2c GET" 200 --http2-prior-knowledge "$HTTP?dns=$Q"
assert_match "h2c: HTTP/2" "$OUT_HEAD" "^HTTP/2 200"
expect_dns "h2c GET" 192.0.2.1
doh "h2c POST" 200 --http2-prior-knowledge --data-binary "@$T/q.bin" \
    -H 'content-type: application/dns-message' "$HTTP"
expect_dns "h2c POST" 192.0.2.1
doh "cleartext h1 GET" 200 --http1.1 "$HTTP?dns=$Q"
assert_match "cleartext h1: HTTP/1.1" "$OUT_HEAD" "^HTTP/1.1 200"
expect_dns "cleartext h1 GET" 192.0.2.1
ok "cleartext: HTTP/2 with prior knowledge and HTTP/1.1, told apart by the first bytes"

# --- cleartext HTTP/1.1 pipelining past the write pause: every answer, promptly ---
# 300 GETs for big.test (about 3 KB each, some 900 KB in all, beyond DOH_WRITE_PAUSE) in
# one write: the parser stops at the pause, and must resume once the socket has taken
# what was queued, not at the idle timeout.
BIG=$(query "$T/bigq.bin" big.test 16)
doh "cleartext h1 GET big.test" 200 --http1.1 "$HTTP?dns=$BIG" # cached from here on
out=$("$PY" - "$DOHP" "$BIG" <<'EOF' 2>&1
import socket, sys, time
port, q = int(sys.argv[1]), sys.argv[2]
n = 300
req = ("GET /dns-query?dns=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
       "Accept: application/dns-message\r\n\r\n" % q).encode()
s = socket.create_connection(("127.0.0.1", port), timeout=5)
t0 = time.monotonic()
s.sendall(req * n)
buf = b""
while buf.count(b"HTTP/1.1 200 ") < n and time.monotonic() - t0 < 5:
    s.settimeout(max(0.01, 5 - (time.monotonic() - t0)))
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    if not d:
        break
    buf += d
print("responses=%d ms=%d" % (buf.count(b"HTTP/1.1 200 "), (time.monotonic() - t0) * 1000))
EOF
)
assert_match "300 pipelined GETs: all answered within 5 s" "$out" "^responses=300 "
ok "cleartext HTTP/1.1: 300 pipelined GETs past the write pause, all answered ($out)"

# --- error statuses, over both versions ---
head -c 70000 /dev/zero >"$T/big.bin"
for v in --http2 --http1.1; do
    doh "$v no dns parameter" 400 "$v" "$HTTPS"
    doh "$v dns not base64url" 400 "$v" "$HTTPS?dns=%%%"
    doh "$v not a query (a header only)" 400 "$v" "$HTTPS?dns=AAAAAAAAAAAAAAAA"
    doh "$v another path" 404 "$v" "https://127.0.0.1:$DOH/other?dns=$Q"
    doh "$v PUT" 405 "$v" -X PUT "$HTTPS?dns=$Q"
    assert_contains "$v 405: allow" "$OUT_HEAD" "allow: GET, POST"
    doh "$v POST text/plain" 415 "$v" --data-binary "@$T/q.bin" -H 'content-type: text/plain' "$HTTPS"
    doh "$v POST 70000 bytes" 413 "$v" --data-binary "@$T/big.bin" \
        -H 'content-type: application/dns-message' "$HTTPS"
    # The connection serves on after a request it refused: two requests, one connection.
    codes=$(curl -sS --max-time 10 --cacert "$CERTS/ca.pem" "$v" -o /dev/null -o /dev/null \
        -w '%{http_code} %{num_connects}\n' "https://127.0.0.1:$DOH/other?dns=$Q" "$HTTPS?dns=$Q")
    assert_eq "$v a 404, then a 200 on the same connection" "404 1 200 0" "$(echo $codes)"
done
ok "400, 404, 405 (with allow), 415, 413 over HTTP/2 and HTTP/1.1"

# Browsers send several media types in Accept: read leniently, never 406.
doh "accept" 200 --http2 -H 'accept: text/html, application/dns-message;q=0.9, */*;q=0.1' "$HTTPS?dns=$Q"
expect_dns "accept" 192.0.2.1
ok "any Accept is fine"

# --- kdig: another client's HTTP/2 POST, with padding ---
out=$(kdig @127.0.0.1 -p "$DOH" +https +tls-ca="$CERTS/ca.pem" +tls-hostname=upstream.test \
    +padding +time=5 +retry=0 h1.bench.test A 2>&1) || fail "kdig +https got no answer:
$(_quote "$out")"
assert_match "kdig: answer" "$out" "h1\.bench\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.1"
assert_match "kdig: HTTP/2 status" "$out" "HTTP/2-POST.*status: 200"
assert_contains "kdig: the padded query gets a padded answer (RFC 8467)" "$out" "PADDING:"
ok "kdig +https: the answer, padded"

# --- shutdown: a request in flight is answered (SERVFAIL by its deadline), then exit 0 ---
freeze_unbound
S1=$(query "$T/s1.bin" s1.bench.test 1)
curl -sS --max-time 10 --http2 --cacert "$CERTS/ca.pem" -o "$T/s1.out" -w '%{http_code}' \
    "$HTTPS?dns=$S1" >"$T/s1.code" 2>"$T/s1.err" &
curl_pid=$!
_PIDS+=("$curl_pid")
sleep 0.5
t0=$(now_ms)
stop_dnsward_clean
t1=$(now_ms)
wait "$curl_pid" || fail "curl in flight at shutdown failed: $(cat "$T/s1.err")"
_forget_pid "$curl_pid"
thaw_unbound
assert_eq "in flight at shutdown: HTTP status" 200 "$(cat "$T/s1.code")"
assert_match "in flight at shutdown: SERVFAIL" "$(answer "$T/s1.out")" "^id=0 qr=1 rcode=2 "
# The query's deadline (2 s, 0.5 s of it gone), then the connection closes at once.
assert_le "milliseconds from SIGTERM to exit" 3000 $((t1 - t0))
ok "shutdown: the request in flight gets its answer (SERVFAIL), dnsward exits 0, sanitizers clean"
