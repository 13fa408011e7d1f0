#!/usr/bin/env bash
# test_doh_server: the DoH server frontend (RFC 8484) as real clients and hostile ones see it.
# One dnsward forwards to Unbound over DoT and serves DoH on --doh-listen (TLS, ALPN h2 and
# http/1.1) and --doh-plain-listen (h2c with prior knowledge, HTTP/1.1).
#
#   clients     curl --doh-url resolving the name it then connects to, kdig and dig over
#               POST and GET, dnsperf -m doh, h2load, HTTP/1.1 keep-alive, the cleartext
#               listener over h2c and HTTP/1.1
#   responses   content-type, content-length, cache-control max-age (smallest TTL; the SOA's
#               negative lifetime for NXDOMAIN and NODATA), the ID echoed, padded answers
#   errors      400 404 405 413 415 431 each on its own, and the hostile clients of
#               h2_abuse.py (one byte a second: 408 or a close at --doh-header-timeout; 200
#               streams; rapid reset; CONTINUATION floods; HPACK bombs; SETTINGS and PING
#               floods); after each, a new connection is served and the process lives
#   memory      VmRSS after the abuse stays bounded (64 MB; 512 MB under ASan)
#   reload      SIGHUP re-reads --cert/--key: new connections see the new certificate, an
#               open one keeps working; a bad key keeps the old pair
#   acl         a second dnsward: --allow (403), X-Forwarded-For from --trusted-proxy peers
#               only, --doh-idle-timeout, --tcp-max-connections
# The limits and what a hostile client gets are those documented in src/frontend/doh_h2.c
# and doh_server.c; each assertion says which.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools curl kdig dig dnsperf h2load openssl unbound python3 ss
need_dnsward
need_dwq
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import hpack' 2>/dev/null ||
    fail "$PY has no hpack package, which h2_abuse.py needs (Debian: python3-hpack, with python3-h2)"
ABUSE=$LIB_DIR/h2_abuse.py

make_certs
start_unbound

# The served certificate is a copy, so that the reload case can replace it.
cp "$CERTS/good.pem" "$T/srv.pem"
cp "$CERTS/good.key" "$T/srv.key"
free_port DOH
free_port PLAIN
URL="https://127.0.0.1:$DOH/dns-query"
PURL="http://127.0.0.1:$PLAIN/dns-query"
UPSTREAM=(-u "tls://127.0.0.1:$UB_DOT#upstream.test" --ca-file "$CERTS/ca.pem")

# ---------------------------------------------------------------------------------------
# Helpers

# abuse ARGS...: h2_abuse.py on the TLS listener; abuse_plain on the cleartext one. The
# same as commands, for bg: "${ABUSE_TLS[@]}" and "${ABUSE_PLAIN[@]}".
ABUSE_TLS=("$PY" "$ABUSE" --port "$DOH" --ca "$CERTS/ca.pem")
ABUSE_PLAIN=("$PY" "$ABUSE" --port "$PLAIN" --plain)
abuse() { "${ABUSE_TLS[@]}" "$@"; }
abuse_plain() { "${ABUSE_PLAIN[@]}" "$@"; }

# dnsq NAME ID [pad]: a DNS query (RD, type A) on stdout; pad adds RFC 7830 padding.
dnsq() {
    "$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import h2_abuse as h
sys.stdout.buffer.write(h.dns_query(sys.argv[2], int(sys.argv[3]), padding=sys.argv[4:] == ["pad"]))' \
        "$LIB_DIR" "$@"
}
b64q() { dnsq "$@" | base64 -w0 | tr '+/' '-_' | tr -d '='; } # NAME ID: for ?dns=

# dnsinfo FILE: "len=L id=ID rcode=RCODE an=N minttl=T" of a DNS answer, or "notdns len=L".
dnsinfo() {
    "$PY" - "$1" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
def skip_name(o):
    while True:
        n = d[o]
        if n & 0xC0 == 0xC0:
            return o + 2
        if n == 0:
            return o + 1
        o += 1 + n
try:
    qid, fl, qd, an, ns, ar = struct.unpack("!HHHHHH", d[:12])
    assert fl & 0x8000
    o = 12
    for _ in range(qd):
        o = skip_name(o) + 4
    ttls = []
    for _ in range(an):
        o = skip_name(o)
        _t, _c, ttl, rdl = struct.unpack("!HHIH", d[o:o + 10])
        ttls.append(ttl)
        o += 10 + rdl
    rc = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}.get(fl & 15, str(fl & 15))
    print("len=%d id=%d rcode=%s an=%d minttl=%s" % (len(d), qid, rc, an, min(ttls) if ttls else "none"))
except Exception:
    print("notdns len=%d" % len(d))
EOF
}

# req CURL_ARGS...: one curl request; the status in $ST, the headers in $T/hdrs, the body
# in $T/body, the verbose output in $T/curl.err.
ST=''
req() {
    rm -f "$T/hdrs" "$T/body"
    ST=$(curl -sS --max-time 5 --cacert "$CERTS/ca.pem" -D "$T/hdrs" -o "$T/body" -w '%{http_code}' "$@" 2>"$T/curl.err") || true
    touch "$T/hdrs" "$T/body"
}
hdr() { # NAME: the value of that response header (last one), without CR
    grep -i "^$1:" "$T/hdrs" | tail -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//;s/ *$//'
}

# expect_status CASE STATUS CURL_ARGS...
expect_status() {
    local what=$1 want=$2
    shift 2
    req "$@"
    [[ $ST == "$want" ]] || fail "$what: expected HTTP $want, saw '$ST'; headers:
$(_quote "$(cat "$T/hdrs")")
$(_quote "$(cat "$T/curl.err")")"
}

# serving CASE: the daemon lives, and a request on a new connection is answered.
SERVE_N=0
serving() {
    local what=$1 info
    assert_dw_alive "$what"
    SERVE_N=$((SERVE_N + 1))
    expect_status "$what, then a new connection" 200 --http2 "$URL?dns=$(b64q "serve$SERVE_N.bench.test" 0)"
    info=$(dnsinfo "$T/body")
    assert_match "$what, then a new connection: the answer" "$info" "id=0 rcode=NOERROR an=1 "
}

# field LINE KEY: the value of KEY=value in an h2_abuse.py result line.
field() { sed -nE "s/.*(^| )$2=([^ ]*).*/\\2/p" <<<"$1"; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$DW_PID/status"; }

# bg VAR PROGRAM ARGS...: run a program (not a function: its pid is the program's) in the
# background with output to $T/VAR.out; the pid in VAR.
bg() {
    local var=$1
    shift
    "$@" >"$T/$var.out" 2>&1 &
    printf -v "$var" '%s' "$!"
    _PIDS+=("$!")
}
bg_wait() { # PID: wait for it; its exit status is ignored (the output is asserted)
    wait "$1" || true
    _forget_pid "$1"
}

# =======================================================================================
# 1. The main daemon

start_dnsward "${UPSTREAM[@]}" --doh-listen "127.0.0.1:$DOH" --doh-plain-listen "127.0.0.1:$PLAIN" \
    --cert "$T/srv.pem" --key "$T/srv.key" --doh-header-timeout 2s --timeout 5s
wait_until 10 tcp_listening "$DOH" || fail "nothing listens on the DoH port $DOH"
wait_until 10 tcp_listening "$PLAIN" || fail "nothing listens on the cleartext DoH port $PLAIN"

# --- real clients ----------------------------------------------------------------------

# curl resolves upstream.test (A 127.0.0.1 in Unbound's zone) through dnsward, then
# fetches a file from a small HTTP server there.
free_port WEB
mkdir -p "$T/www"
echo "doh-resolved-$$" >"$T/www/index.txt"
bg WEB_PID "$PY" -m http.server --bind 127.0.0.1 --directory "$T/www" "$WEB"
wait_until 10 tcp_listening "$WEB" || fail "the test's HTTP server did not start on $WEB"
out=$(curl -sS -v --max-time 10 --doh-url "$URL" --cacert "$CERTS/ca.pem" "http://upstream.test:$WEB/index.txt" 2>&1) ||
    fail "curl --doh-url: $out"
assert_contains "curl --doh-url: the file" "$out" "doh-resolved-$$"
assert_contains "curl --doh-url: the DoH resolution" "$out" "DoH Host name: upstream.test"
assert_contains "curl --doh-url: the DoH answer" "$out" "DoH A: 127.0.0.1"
assert_contains "curl --doh-url: DoH over HTTP/2" "$out" "ALPN: server accepted h2"
assert_contains "curl --doh-url: connected to the resolved address" "$out" "Connected to upstream.test (127.0.0.1) port $WEB"
stop_pid "$WEB_PID"
ok "curl --doh-url resolves upstream.test through dnsward and fetches from it"

KD=(kdig @127.0.0.1 -p "$DOH" +retry=0 +time=5 +tls-ca="$CERTS/ca.pem" +tls-hostname=upstream.test)
for m in https https-get; do
    out=$("${KD[@]}" +"$m" "kdig-$m.bench.test" A 2>&1) || fail "kdig +$m: $out"
    M=POST
    [[ $m == https ]] || M=GET
    assert_contains "kdig +$m: HTTP/2 $M" "$out" "(HTTP/2-$M)-(upstream.test/dns-query)-(status: 200)"
    assert_contains "kdig +$m: status" "$out" "status: NOERROR"
    assert_match "kdig +$m: the record" "$out" "^kdig-$m\\.bench\\.test\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\\.0\\.2\\.1\$"
done
ok "kdig +https (POST) and +https-get"

DG=(dig @127.0.0.1 -p "$DOH" +tries=1 +time=5 +tls-ca="$CERTS/ca.pem" +tls-hostname=upstream.test)
for m in https https-get; do
    out=$("${DG[@]}" +"$m" "dig-$m.bench.test" A 2>&1) || fail "dig +$m: $out"
    assert_eq "dig +$m: status" NOERROR "$(dig_status "$out")"
    assert_match "dig +$m: the record" "$out" "^dig-$m\\.bench\\.test\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\\.0\\.2\\.1\$"
    assert_contains "dig +$m: the transport" "$out" "(${m^^})"
done
ok "dig +https and +https-get"

# dnsperf 2.10's DoH keeps one response buffer per connection and takes one answer per
# read: several answers in one TLS record (as dnsward writes all the answers ready after a
# read at once) are lost to it, and with 2 outstanding it stalls ("TODO: need to be able to
# receive multiple responses at the same time" in its net_doh.c). So one query at a time.
printf 'perf1.bench.test A\nperf2.bench.test A\nperf.nx.test A\nnodata.test AAAA\n' >"$T/perf.txt"
for m in POST GET; do
    out=$(timeout 30 dnsperf -m doh -s 127.0.0.1 -p "$DOH" -O "doh-uri=$URL" -O "doh-method=$m" \
        -d "$T/perf.txt" -n 5 -c 1 -q 1 -t 5 2>&1) || fail "dnsperf -m doh ($m): $out"
    assert_contains "dnsperf $m: every query answered" "$out" "Queries completed:    20 (100.00%)"
    assert_contains "dnsperf $m: none lost" "$out" "Queries lost:         0 (0.00%)"
    assert_contains "dnsperf $m: rcodes" "$out" "NOERROR 15 (75.00%), NXDOMAIN 5 (25.00%)"
    assert_match "dnsperf $m: HTTP statuses" "$out" "HTTP/2 return codes: +200: 20$"
done
ok "dnsperf -m doh, POST and GET: 20 queries each, 0 lost"

out=$(timeout 30 h2load -n 2000 -c 1 -m 100 "$URL?dns=$(b64q h2load.bench.test 0)" 2>&1) || fail "h2load: $out"
assert_contains "h2load: requests" "$out" "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout"
assert_contains "h2load: statuses" "$out" "status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx"
ok "h2load -n 2000 -c 1 -m 100: all 2xx"

# HTTP/1.1 keep-alive: three requests on one connection (TLS, then cleartext).
for u in "$URL" "$PURL"; do
    out=$(curl -sS -v --max-time 10 --http1.1 --cacert "$CERTS/ca.pem" -w '%{http_code} %{num_connects}\n' \
        -o /dev/null "$u?dns=$(b64q ka1.bench.test 0)" -o /dev/null "$u?dns=$(b64q ka2.bench.test 0)" \
        -o /dev/null "$u?dns=$(b64q ka3.nx.test 0)" 2>&1) || fail "HTTP/1.1 keep-alive on $u: $out"
    assert_eq "HTTP/1.1 keep-alive on $u: status and connections made, per request" \
        "200 1|200 0|200 0" "$(grep -E '^[0-9]{3} [0-9]+$' <<<"$out" | paste -sd'|')"
    assert_contains "HTTP/1.1 keep-alive on $u: the connection reused" "$out" "Re-using existing connection"
    assert_contains "HTTP/1.1 keep-alive on $u: HTTP/1.1 spoken" "$out" "< HTTP/1.1 200"
done
ok "HTTP/1.1 keep-alive: three requests on one connection, over TLS and cleartext"

# The cleartext listener: h2c with prior knowledge, and HTTP/1.1.
out=$(curl -sS -v --max-time 5 --http2-prior-knowledge -o "$T/body" "$PURL?dns=$(b64q h2c.bench.test 0)" 2>&1) || fail "h2c: $out"
assert_contains "h2c prior knowledge: HTTP/2" "$out" "< HTTP/2 200"
assert_match "h2c prior knowledge: the answer" "$(dnsinfo "$T/body")" "id=0 rcode=NOERROR an=1 "
expect_status "cleartext HTTP/1.1 POST" 200 --http1.1 -H 'content-type: application/dns-message' \
    --data-binary @<(dnsq h1post.bench.test 0) "$PURL"
assert_match "cleartext HTTP/1.1 POST: the answer" "$(dnsinfo "$T/body")" "id=0 rcode=NOERROR an=1 "
assert_contains "cleartext HTTP/1.1 POST: HTTP/1.1" "$(cat "$T/curl.err" "$T/hdrs")" "HTTP/1.1 200"
ok "the cleartext listener: h2c with prior knowledge and HTTP/1.1"

# --- responses -------------------------------------------------------------------------

# A positive answer: Unbound's TTL is 300 (bench.test's local data).
for proto in --http2 --http1.1; do
    expect_status "GET $proto" 200 "$proto" "$URL?dns=$(b64q "resp${proto//-/}.bench.test" 0)"
    info=$(dnsinfo "$T/body")
    assert_match "GET $proto: the answer" "$info" "id=0 rcode=NOERROR an=1 minttl=[0-9]+$"
    assert_eq "GET $proto: content-type" application/dns-message "$(hdr content-type)"
    assert_eq "GET $proto: content-length is the body's" "$(stat -c %s "$T/body")" "$(hdr content-length)"
    cc=$(hdr cache-control)
    assert_match "GET $proto: cache-control" "$cc" '^max-age=[0-9]+$'
    age=${cc#max-age=}
    ttl=$(sed -nE 's/.*minttl=([0-9]+)$/\1/p' <<<"$info")
    assert_ge "GET $proto: max-age above 0" 1 "$age"
    assert_le "GET $proto: max-age at most Unbound's TTL" 300 "$age"
    assert_le "GET $proto: max-age at most the answer's own TTL" "$ttl" "$age"
done
ok "200: content-type application/dns-message, content-length, max-age in (0, 300]"

# NXDOMAIN and NODATA: the SOA's TTL is 300 and its MINIMUM 60: max-age=60 (RFC 2308 §5).
expect_status "NXDOMAIN" 200 --http2 "$URL?dns=$(b64q maxage.nx.test 0)"
assert_match "NXDOMAIN: the answer" "$(dnsinfo "$T/body")" "rcode=NXDOMAIN an=0 "
assert_eq "NXDOMAIN: cache-control" max-age=60 "$(hdr cache-control)"
expect_status "NODATA" 200 --http2 -H 'content-type: application/dns-message' \
    --data-binary @<("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import h2_abuse as h
sys.stdout.buffer.write(h.dns_query("maxage.nodata.test", 0, qtype=28))' "$LIB_DIR") "$URL"
assert_match "NODATA: the answer" "$(dnsinfo "$T/body")" "rcode=NOERROR an=0 "
assert_eq "NODATA: cache-control" max-age=60 "$(hdr cache-control)"
ok "NXDOMAIN and NODATA: max-age=60, the SOA's negative lifetime"

for id in 0 4660 65535; do
    expect_status "POST ID $id" 200 --http2 -H 'content-type: application/dns-message' \
        --data-binary @<(dnsq "id$id.bench.test" "$id") "$URL"
    assert_match "POST ID $id: echoed" "$(dnsinfo "$T/body")" "id=$id rcode=NOERROR an=1 "
    expect_status "GET ID $id" 200 --http2 "$URL?dns=$(b64q "gid$id.bench.test" "$id")"
    assert_match "GET ID $id: echoed" "$(dnsinfo "$T/body")" "id=$id rcode=NOERROR an=1 "
done
ok "the DNS ID is echoed as sent (0, 4660, 65535; POST and GET)"

# Padding (RFC 8467 §4.1: a padded query gets a response padded to a multiple of 468).
out=$("${KD[@]}" +https +padding pad1.bench.test A 2>&1) || fail "kdig +padding: $out"
assert_contains "kdig +padding: status" "$out" "status: NOERROR"
n=$(sed -nE 's/^;; Received ([0-9]+) B$/\1/p' <<<"$out")
[[ -n $n ]] || fail "kdig +padding: no size in its output: $(_quote "$out")"
((n % 468 == 0)) || fail "kdig +padding: a response of $n bytes, not a multiple of 468"
assert_contains "kdig +padding: the response carries padding" "$out" "PADDING:"
expect_status "POST, padded" 200 --http2 -H 'content-type: application/dns-message' --data-binary @<(dnsq pad2.bench.test 0 pad) "$URL"
n=$(stat -c %s "$T/body")
((n > 0 && n % 468 == 0)) || fail "POST of a padded query: a response of $n bytes, not a multiple of 468"
expect_status "POST, not padded" 200 --http2 -H 'content-type: application/dns-message' --data-binary @<(dnsq pad3.bench.test 0) "$URL"
n=$(stat -c %s "$T/body")
assert_le "POST of a query without padding: the response is not padded" 100 "$n"
ok "padded queries get responses of a multiple of 468 bytes, others are not padded"

# --- errors, each on its own -------------------------------------------------------------

GOODQ=$(b64q err.bench.test 0)
expect_status "dns=_-~~~" 400 --http2 "$URL?dns=_-~~~"
expect_status "dns=@#\$% (url-encoded)" 400 --http2 "$URL?dns=%40%23%24%25"
expect_status "dns with base64 padding chars" 400 --http2 "$URL?dns=$GOODQ%3D%3D"
ok "400: dns= that is not base64url"
expect_status "no query string" 400 --http2 "$URL"
expect_status "no dns parameter" 400 --http2 "$URL?ct=application/dns-message&x=1"
expect_status "empty dns parameter" 400 --http2 "$URL?dns="
ok "400: missing or empty dns="
expect_status "other parameters around dns" 200 --http2 "$URL?ct=x&dns=$GOODQ&z=1"
assert_match "other parameters around dns: the answer" "$(dnsinfo "$T/body")" "id=0 rcode=NOERROR an=1 "
ok "other query parameters are ignored"
for proto in --http2 --http1.1; do
    expect_status "empty POST ($proto)" 400 "$proto" -H 'content-type: application/dns-message' --data-binary '' "$URL"
done
ok "400: an empty POST"
expect_status "1 KB of zeros" 400 --http2 -H 'content-type: application/dns-message' --data-binary @<(head -c 1024 /dev/zero) "$URL"
ok "400: a 1 KB body of zeros"
expect_status "a truncated query" 400 --http2 -H 'content-type: application/dns-message' --data-binary @<(dnsq truncated.bench.test 0 | head -c 20) "$URL"
expect_status "a truncated query by GET" 400 --http2 "$URL?dns=$(dnsq truncated.bench.test 0 | head -c 20 | base64 -w0 | tr '+/' '-_' | tr -d '=')"
ok "400: a truncated DNS message (POST and GET)"
expect_status "a response, not a query (QR=1)" 400 --http2 -H 'content-type: application/dns-message' \
    --data-binary @<(dnsq qr.bench.test 0 | "$PY" -c 'import sys; d = bytearray(sys.stdin.buffer.read()); d[2] |= 0x80; sys.stdout.buffer.write(d)') "$URL"
ok "400: a DNS response instead of a query"
for proto in --http2 --http1.1; do
    expect_status "another path ($proto)" 404 "$proto" "https://127.0.0.1:$DOH/resolve?dns=$GOODQ"
    expect_status "a path that only begins like it ($proto)" 404 "$proto" "https://127.0.0.1:$DOH/dns-query-x?dns=$GOODQ"
done
ok "404: another path"
for m in PUT PATCH DELETE; do
    for proto in --http2 --http1.1; do
        expect_status "$m ($proto)" 405 "$proto" -X "$m" -H 'content-type: application/dns-message' --data-binary @<(dnsq put.bench.test 0) "$URL"
        allow=$(hdr allow)
        assert_eq "$m ($proto): the allow header" "GET, POST" "$allow"
    done
done
ok "405 with allow: GET, POST for PUT, PATCH and DELETE (h2 and HTTP/1.1)"
for ct in text/plain application/json application/dns-udpwireformat; do
    expect_status "POST as $ct" 415 --http2 -H "content-type: $ct" --data-binary @<(dnsq ct.bench.test 0) "$URL"
done
expect_status "POST without content-type (h1)" 415 --http1.1 -H 'content-type:' --data-binary @<(dnsq ct.bench.test 0) "$URL"
for ct in 'application/dns-message; charset=binary' 'Application/DNS-Message'; do
    expect_status "POST as $ct" 200 --http2 -H "content-type: $ct" --data-binary @<(dnsq ct2.bench.test 0) "$URL"
done
ok "415: another content type (parameters and case of application/dns-message accepted)"
for accept in 'text/html' '*/*' 'application/json, text/plain;q=0.5'; do
    expect_status "accept: $accept" 200 --http2 -H "accept: $accept" "$URL?dns=$GOODQ"
done
ok "accept is read leniently: any value is answered"
for proto in --http2 --http1.1; do
    expect_status "a body of 70000 bytes ($proto)" 413 "$proto" -H 'content-type: application/dns-message' --data-binary @<(head -c 70000 /dev/zero) "$URL"
done
serving "413"
ok "413: a body over 65,535 bytes (h2 and HTTP/1.1)"

# Header limits: 257 fields (HTTP/1.1 allows 100: 431), and 16 KB of header bytes.
line=$(abuse headers 50) || fail "50 header fields (h2): $line"
assert_eq "50 header fields (h2): status" 200 "$(field "$line" status)"
line=$(abuse headers 257 --proto h1) || fail "257 header fields (HTTP/1.1): $line"
assert_eq "257 header fields (HTTP/1.1): status" 431 "$(field "$line" status)"
serving "257 header fields (HTTP/1.1)"
# doh_h2.c: more than HTTP1_MAX_FIELDS (100) fields or doh-max-header-size bytes is a 431;
# at four times either the stream is reset.
line=$(abuse headers 257) || fail "257 header fields (h2): $line"
assert_eq "257 header fields (h2): status" 431 "$(field "$line" status)"
assert_match "257 header fields (h2): the connection stays" "$line" "goaway=no closed=no"
serving "257 header fields (h2)"
line=$(abuse headers 60 --value-size 300 --proto h1) || fail "18 KB of header (HTTP/1.1): $line"
assert_eq "18 KB of header (HTTP/1.1): status" 431 "$(field "$line" status)"
line=$(abuse headers 60 --value-size 300) || fail "18 KB of header (h2): $line"
assert_eq "18 KB of header (h2): status" 431 "$(field "$line" status)"
line=$(abuse headers 500) || fail "500 header fields (h2): $line"
assert_match "500 header fields (h2): the stream reset, no answer" "$line" "status=none rst=[A-Z_]+ goaway=no closed=no"
serving "18 KB of header"
ok "431: 257 header fields, 18 KB of header (h2 and HTTP/1.1); 500 fields (h2): a reset"

RSS0=$(rss_kb)

# A slow client (one byte a second: TLS+h2, cleartext HTTP/1.1, the TLS handshake itself)
# is dropped at --doh-header-timeout (2 s); a normal client meanwhile is served in < 1 s.
for i in 1 2 3; do Q[i]=$(b64q "during-slow$i.bench.test" 0); done
bg SLOW1 "${ABUSE_TLS[@]}" --timeout 8 slow
bg SLOW2 "${ABUSE_PLAIN[@]}" --timeout 8 slow --proto h1
bg SLOW3 "${ABUSE_TLS[@]}" --timeout 8 slow --stage handshake
bg SLOW4 "${ABUSE_TLS[@]}" --timeout 8 slow --proto h1
# Once all four are connected (their clock runs from there), three requests 0.3 s apart.
conns_to() { ss -Htn state established "dport = :$1" 2>/dev/null | wc -l; }
wait_until 5 eval '(( $(conns_to "$DOH") >= 3 && $(conns_to "$PLAIN") >= 1 ))' ||
    fail "the slow clients did not connect: $(cat "$T"/SLOW*.out)"
for i in 1 2 3; do
    t0=$(now_ms)
    expect_status "a normal client during the slow ones ($i)" 200 --http2 "$URL?dns=${Q[i]}"
    assert_le "a normal client during the slow ones ($i): milliseconds" 1000 $(($(now_ms) - t0))
    sleep 0.3
done
for p in "$SLOW1" "$SLOW2" "$SLOW3" "$SLOW4"; do bg_wait "$p"; done
for s in SLOW1 SLOW2 SLOW3 SLOW4; do
    line=$(cat "$T/$s.out")
    assert_match "slow client $s: dropped before its request was complete" "$line" "^slow .* closed=yes "
done
# When: the h2 client, the cleartext HTTP/1.1 one (408, then a half-close) and the TLS
# handshake at the 2 s header timeout; the HTTP/1.1 client over TLS gets its 408 then, and
# the close after doh_server.c's lingering close (at most DOH_LINGER_S, 2 s, more).
for s in SLOW1 SLOW2 SLOW3 SLOW4; do
    line=$(cat "$T/$s.out")
    at=$(field "$line" after_ms)
    [[ $s != SLOW4 ]] || at=$(field "$line" response_ms)
    assert_ge "slow client $s: dropped at the 2 s header timeout, not before (ms): $line" 1800 "$at"
    assert_le "slow client $s: dropped at the 2 s header timeout, not much later (ms): $line" 3500 "$at"
done
assert_le "slow client SLOW4: closed after the 408 and the lingering close (ms)" 5500 "$(field "$(cat "$T/SLOW4.out")" after_ms)"
# What each got before the close (doh_server.c): HTTP/1.1 a 408; HTTP/2 our SETTINGS (and
# the GOAWAY); the handshake nothing.
assert_match "slow h2 client: no answer" "$(cat "$T/SLOW1.out")" "response=([0-9]+-bytes|none)$"
assert_match "slow HTTP/1.1 client (cleartext): 408" "$(cat "$T/SLOW2.out")" "response=408$"
assert_match "slow TLS handshake: nothing" "$(cat "$T/SLOW3.out")" "response=none$"
assert_match "slow HTTP/1.1 client (TLS): 408" "$(cat "$T/SLOW4.out")" "response=408$"
serving "slow clients"
ok "one byte a second (h2, HTTP/1.1, TLS handshake): dropped at 2 s; others served in < 1 s meanwhile"

# 200 streams at once on one connection: 100 served (--doh-max-streams), 100 refused.
line=$(abuse --name s200.bench.test streams 200) || fail "200 streams: $line"
echo "#   $line"
assert_eq "200 streams: the server's SETTINGS_MAX_CONCURRENT_STREAMS" 100 "$(field "$line" max_streams)"
assert_eq "200 streams: answered 200 with a DNS answer" 100 "$(field "$line" valid)"
assert_eq "200 streams: refused (REFUSED_STREAM)" 100 "$(field "$line" refused)"
assert_eq "200 streams: other outcomes" "0 0 0 0" "$(field "$line" rst_other) $(field "$line" status_other) $(field "$line" lost) $(field "$line" unanswered)"
serving "200 streams"
# After acknowledging our SETTINGS, exceeding the limit is a protocol error (doh_h2.c).
line=$(abuse --name s200b.bench.test streams 200 --ack-settings) || fail "200 streams after the SETTINGS ack: $line"
echo "#   $line"
assert_eq "200 streams beyond an acknowledged limit: GOAWAY" PROTOCOL_ERROR "$(field "$line" goaway)"
assert_le "200 streams beyond an acknowledged limit: at most 100 served" 100 "$(field "$line" ok)"
serving "200 streams beyond an acknowledged limit"
ok "200 streams at once: 100 served, 100 refused (REFUSED_STREAM); after the SETTINGS ack: GOAWAY"

# doh_h2.c: a bucket of 2 x doh-max-streams resets, refilled at doh-max-streams a second.
line=$(abuse rapid-reset 10000) || fail "rapid reset: no GOAWAY or close after 10000 resets: $line"
echo "#   $line"
assert_eq "rapid reset: GOAWAY" ENHANCE_YOUR_CALM "$(field "$line" goaway)"
assert_le "rapid reset: resets sent before the GOAWAY" 1000 "$(field "$line" sent | cut -d/ -f1)"
serving "rapid reset"
line=$(abuse_plain rapid-reset 10000) || fail "rapid reset over h2c: no GOAWAY or close after 10000 resets: $line"
assert_eq "rapid reset over h2c: GOAWAY" ENHANCE_YOUR_CALM "$(field "$line" goaway)"
serving "rapid reset over h2c"
ok "rapid reset (TLS and h2c): GOAWAY(ENHANCE_YOUR_CALM) within 1000 resets"

# doh_h2.c: more than 16 CONTINUATION frames after one HEADERS, or beyond the bound of
# Debian's nghttp2 (8), whichever is lower: GOAWAY(ENHANCE_YOUR_CALM).
line=$(abuse continuation 2000) || fail "CONTINUATION flood of junk headers: $line"
echo "#   $line"
assert_eq "CONTINUATION flood: GOAWAY" ENHANCE_YOUR_CALM "$(field "$line" goaway)"
assert_match "CONTINUATION flood: no answer" "$line" "status=none"
serving "CONTINUATION flood"
line=$(abuse continuation 20000 --frame-size 0 --no-finish) || fail "CONTINUATION flood of empty frames: $line"
echo "#   $line"
assert_eq "CONTINUATION flood of empty frames: GOAWAY" ENHANCE_YOUR_CALM "$(field "$line" goaway)"
serving "empty CONTINUATION flood"
line=$(abuse continuation 8 --frame-size 50 || true) # exits 1: not rejected
assert_match "8 CONTINUATION frames (within the limit) of 400 bytes in all: answered" "$line" "status=200 rst=no goaway=no"
ok "CONTINUATION floods (junk headers, empty frames): GOAWAY(ENHANCE_YOUR_CALM); 8 frames served"

# Counted at the decoded size: 16 MB is far beyond four times 16 KB: the stream is reset.
line=$(abuse hpack-bomb) || fail "HPACK bomb (a 4 KB entry referenced 4000 times): $line"
echo "#   $line"
assert_match "HPACK bomb: the stream reset, the connection kept" "$line" "status=none rst=[A-Z_]+ goaway=no closed=no"
serving "HPACK bomb"
line=$(abuse hpack-bomb --refs 5) || fail "HPACK: a 4 KB entry referenced 5 times: $line"
assert_match "HPACK: 24 KB decoded from a 4 KB block: 431" "$line" "status=431 rst=(no|NO_ERROR) goaway=no"
line=$(abuse hpack-bomb --mode list) || fail "HPACK: a 20 KB header field: $line"
assert_match "HPACK: a 20 KB header field: 431" "$line" "status=431 rst=(no|NO_ERROR) goaway=no"
serving "a 20 KB header field"
line=$(abuse hpack-bomb --mode resize) || fail "HPACK: a table size update to 2^30: $line"
assert_match "HPACK: a table size update to 2^30: COMPRESSION_ERROR" "$line" "goaway=COMPRESSION_ERROR|closed=yes"
serving "an HPACK table size update beyond the limit"
ok "HPACK bomb, oversized field, table size update: rejected"

# doh_h2.c: control frames in a bucket of 200, 20 a second, then GOAWAY(ENHANCE_YOUR_CALM);
# acknowledgements the client does not read are capped (128), then the same GOAWAY.
line=$(abuse ping-flood 100) || fail "100 PINGs: $line"
assert_match "100 PINGs at once (within the limits): all acknowledged, then served" "$line" "acks=100 .*goaway=no closed=no after=200 "
for kind in settings ping; do
    line=$(abuse "$kind-flood" 2000 --batch 50 --read-acks) || fail "$kind flood, acks read: $line"
    echo "#   $line"
    assert_eq "$kind flood, acks read: GOAWAY" ENHANCE_YOUR_CALM "$(field "$line" goaway)"
    assert_le "$kind flood, acks read: frames sent before the GOAWAY" 300 "$(field "$line" sent | cut -d/ -f1)"
    serving "$kind flood, acks read"
    line=$(abuse "$kind-flood" 50000) || fail "$kind flood, acks not read: $line"
    echo "#   $line"
    assert_eq "$kind flood, acks not read: GOAWAY" ENHANCE_YOUR_CALM "$(field "$line" goaway)"
    assert_le "$kind flood, acks not read: acknowledged before the end" 250 "$(field "$line" acks)"
    serving "$kind flood, acks not read"
done
ok "SETTINGS and PING floods: GOAWAY(ENHANCE_YOUR_CALM)"

line=$(abuse --name conn.bench.test conns 20) || fail "20 connections: $line"
assert_eq "20 connections at once (limit 256): all answered" 20 "$(field "$line" ok)"
ok "20 connections held at once are all served"

# --- memory ------------------------------------------------------------------------------
RSS1=$(rss_kb)
echo "#   VmRSS ${RSS0} kB before the abuse, ${RSS1} kB after"
if grep -qaF __asan_init "$DNSWARD"; then # a sanitizer build: shadow memory, quarantine
    assert_le "VmRSS after the abuse (kB, ASan build)" $((512 * 1024)) "$RSS1"
else
    assert_le "VmRSS after the abuse (kB)" $((64 * 1024)) "$RSS1"
    assert_le "VmRSS growth during the abuse (kB)" $((32 * 1024)) $((RSS1 - RSS0))
fi
ok "memory after the abuse: VmRSS ${RSS1} kB"

# --- certificate reload ------------------------------------------------------------------

# peer_cn: the CN of the certificate a new TLS connection sees.
peer_cn() {
    timeout 5 openssl s_client -connect "127.0.0.1:$DOH" -servername upstream.test -CAfile "$CERTS/ca.pem" \
        -alpn h2 </dev/null 2>/dev/null | openssl x509 -noout -subject -nameopt multiline 2>/dev/null |
        sed -nE 's/^ *commonName *= *//p'
}
cn_is() { [[ $(peer_cn) == "$1" ]]; }

assert_eq "before the reload: the certificate" good "$(peer_cn)"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/new.key" -out "$T/new.csr" \
    -subj "/CN=reloaded" >"$T/newcert.log" 2>&1
openssl x509 -req -in "$T/new.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" -set_serial 4242 \
    -out "$T/new.pem" -days 30 -extfile "$CERTS/good.ext" >>"$T/newcert.log" 2>&1 ||
    fail "could not make the second certificate: $(cat "$T/newcert.log")"
bg HOLD "${ABUSE_TLS[@]}" --timeout 15 hold --ready-file "$T/hold.ready" --go-file "$T/hold.go"
wait_until 10 test -e "$T/hold.ready" || fail "the connection held across the reload made no first request: $(cat "$T/HOLD.out")"
cp "$T/new.pem" "$T/srv.pem"
cp "$T/new.key" "$T/srv.key"
kill -HUP "$DW_PID"
wait_until 5 grep -qF "SIGHUP: certificate $T/srv.pem reloaded" "$DW_LOG" || fail "SIGHUP: no reload logged"
wait_until 5 cn_is reloaded || fail "after SIGHUP a new connection still sees the certificate '$(peer_cn)'"
touch "$T/hold.go"
bg_wait "$HOLD"
line=$(cat "$T/HOLD.out")
assert_match "a connection opened before the reload" "$line" "^hold first=200 second=200 cert=good "
out=$(curl -sS -v --max-time 5 --cacert "$CERTS/ca.pem" -o /dev/null -w '%{http_code}' "$URL?dns=$(b64q reload.bench.test 0)" 2>&1) || fail "curl after the reload: $out"
assert_contains "curl after the reload: the subject" "$out" "subject: CN=reloaded"
assert_contains "curl after the reload: verified" "$out" "SSL certificate verify ok."
ok "SIGHUP: new connections see the new certificate, one opened before keeps working"

# A bad key, then a key that does not match the certificate: the old pair stays.
log_since_has() { tail -n +$(($1 + 1)) "$DW_LOG" | grep -qF -- "$2"; } # LINES TEXT
for bad in garbage mismatch; do
    lines_before=$(wc -l <"$DW_LOG")
    if [[ $bad == garbage ]]; then
        printf -- '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n' >"$T/srv.key"
    else
        cp "$CERTS/other.key" "$T/srv.key"
    fi
    kill -HUP "$DW_PID"
    wait_until 5 log_since_has "$lines_before" "the running configuration stays in force" ||
        fail "SIGHUP with a $bad key: no error logged"
    newlog=$(tail -n +$((lines_before + 1)) "$DW_LOG")
    if [[ $bad == garbage ]]; then
        assert_match "SIGHUP with a $bad key: the error" "$newlog" "cannot load private key.*srv\\.key"
    else
        assert_match "SIGHUP with a $bad key: the error" "$newlog" "srv\\.(key|pem).*(key values mismatch|does not match)"
    fi
    assert_not_contains "SIGHUP with a $bad key: not reloaded" "$newlog" "reloaded"
    assert_eq "SIGHUP with a $bad key: the certificate kept" reloaded "$(peer_cn)"
    serving "SIGHUP with a $bad key"
done
cp "$T/new.key" "$T/srv.key"
ok "SIGHUP with a bad or mismatched key: error logged, old certificate kept, still serving"

stop_dnsward_clean
ok "clean shutdown, no sanitizer report"

# =======================================================================================
# 2. Access control, X-Forwarded-For, idle timeout, connection limit

start_dnsward "${UPSTREAM[@]}" --doh-listen "127.0.0.1:$DOH" --doh-plain-listen "127.0.0.1:$PLAIN" \
    --cert "$T/srv.pem" --key "$T/srv.key" --allow 10.0.0.0/8 --allow 127.0.0.2/32 \
    --trusted-proxy 127.0.0.1/32 --doh-idle-timeout 2s --tcp-max-connections 8
wait_until 10 tcp_listening "$DOH" || fail "nothing listens on the DoH port $DOH"
wait_until 10 tcp_listening "$PLAIN" || fail "nothing listens on the cleartext DoH port $PLAIN"
ACLQ=$(b64q acl.bench.test 0)

expect_status "HTTPS from 127.0.0.1 (not allowed)" 403 --http2 --interface 127.0.0.1 "$URL?dns=$ACLQ"
expect_status "HTTPS from 127.0.0.1 (not allowed), HTTP/1.1" 403 --http1.1 --interface 127.0.0.1 "$URL?dns=$ACLQ"
expect_status "HTTPS from 127.0.0.2 (allowed)" 200 --http2 --interface 127.0.0.2 "$URL?dns=$ACLQ"
assert_match "HTTPS from 127.0.0.2: the answer" "$(dnsinfo "$T/body")" "id=0 rcode=NOERROR an=1 "
expect_status "HTTPS from 127.0.0.1 with X-Forwarded-For (only the cleartext listener believes it)" 403 \
    --http2 --interface 127.0.0.1 -H 'X-Forwarded-For: 10.1.2.3' "$URL?dns=$ACLQ"
ok "--allow 127.0.0.2/32: 403 from 127.0.0.1, 200 from 127.0.0.2; XFF ignored on the TLS listener"

for proto in --http2-prior-knowledge --http1.1; do
    expect_status "XFF 10.1.2.3 from the trusted proxy ($proto)" 200 "$proto" --interface 127.0.0.1 -H 'X-Forwarded-For: 10.1.2.3' "$PURL?dns=$ACLQ"
    assert_match "XFF 10.1.2.3 from the trusted proxy ($proto): the answer" "$(dnsinfo "$T/body")" "id=0 rcode=NOERROR an=1 "
    expect_status "XFF 192.0.2.9 from the trusted proxy ($proto)" 403 "$proto" --interface 127.0.0.1 -H 'X-Forwarded-For: 192.0.2.9' "$PURL?dns=$ACLQ"
    expect_status "no XFF from the trusted proxy ($proto)" 403 "$proto" --interface 127.0.0.1 "$PURL?dns=$ACLQ"
    expect_status "XFF 10.1.2.3 from an untrusted, denied peer ($proto)" 403 "$proto" --interface 127.0.0.3 -H 'X-Forwarded-For: 10.1.2.3' "$PURL?dns=$ACLQ"
    expect_status "XFF 192.0.2.9 from an untrusted, allowed peer ($proto)" 200 "$proto" --interface 127.0.0.2 -H 'X-Forwarded-For: 192.0.2.9' "$PURL?dns=$ACLQ"
    # doh_server.c: the LAST entry is the one the trusted proxy wrote; a bad one is a 400.
    expect_status "XFF '192.0.2.9, 10.1.2.3' ($proto)" 200 "$proto" --interface 127.0.0.1 -H 'X-Forwarded-For: 192.0.2.9, 10.1.2.3' "$PURL?dns=$ACLQ"
    expect_status "XFF '10.1.2.3, 192.0.2.9' ($proto)" 403 "$proto" --interface 127.0.0.1 -H 'X-Forwarded-For: 10.1.2.3, 192.0.2.9' "$PURL?dns=$ACLQ"
    expect_status "XFF 'not-an-address' ($proto)" 400 "$proto" --interface 127.0.0.1 -H 'X-Forwarded-For: not-an-address' "$PURL?dns=$ACLQ"
done
ok "X-Forwarded-For: believed from --trusted-proxy only, its last entry (h2c and HTTP/1.1)"

# --doh-idle-timeout 2s: an idle connection is ended after 2 s: HTTP/1.1 closed (a
# half-close); HTTP/2 gets a GOAWAY(NO_ERROR) then, and the close follows the lingering
# close (doh_server.c: at most DOH_LINGER_S, 2 s, more, when the client does not close).
bg IDLE_h2 "${ABUSE_TLS[@]}" --source 127.0.0.2 --timeout 8 idle --proto h2
bg IDLE_h1 "${ABUSE_TLS[@]}" --source 127.0.0.2 --timeout 8 idle --proto h1
bg_wait "$IDLE_h2" # (set by bg)
bg_wait "$IDLE_h1"
for proto in h2 h1; do
    line=$(cat "$T/IDLE_$proto.out")
    echo "#   $line"
    assert_match "idle $proto: closed" "$line" "closed=yes"
    assert_match "idle $proto: answered first" "$line" "status=200 "
    at=$(field "$line" after_ms)
    if [[ $proto == h2 ]]; then
        assert_eq "idle h2: GOAWAY" NO_ERROR "$(field "$line" goaway)"
        assert_le "idle h2: closed after the GOAWAY and the lingering close (ms)" 5500 "$at"
        at=$(field "$line" goaway_ms)
    fi
    assert_ge "idle $proto: ended after 2 s idle, not before (ms)" 1800 "$at"
    assert_le "idle $proto: ended after 2 s idle, not much later (ms)" 3500 "$at"
done
ok "--doh-idle-timeout 2s: idle h2 (GOAWAY) and HTTP/1.1 (close) connections ended at 2 s"

# --tcp-max-connections 8: the DoH listener holds 8 clients at once.
line=$(abuse --source 127.0.0.2 --name lim.bench.test conns 12 --conn-timeout 1) || fail "12 connections: $line"
echo "#   $line"
assert_eq "12 connections with a limit of 8: served" 8 "$(field "$line" ok)"
assert_eq "12 connections with a limit of 8: not served" 4 $(($(field "$line" closed) + $(field "$line" silent)))
wait_until 5 eval 'req --http2 --interface 127.0.0.2 "$URL?dns=$ACLQ"; [[ $ST == 200 ]]' ||
    fail "after the 12 connections closed, a new one is not served (status '$ST')"
ok "--tcp-max-connections 8: 8 of 12 connections served, then new ones again"

stop_dnsward_clean
check_sanitizers "$DW_LOG"
ok "clean shutdown, no sanitizer report"
