#!/usr/bin/env bash
# test_doh: DNS-over-HTTPS upstreams (RFC 8484 over HTTP/2) against the real Unbound's DoH
# endpoint, with dig, kdig and dwq as clients.
#
#   post, get   answers over UDP and TCP, NXDOMAIN and NODATA passed through, 500 distinct
#               names at once multiplexed on one connection; the method really sent, the
#               ID 0 and the padding are read from fault_upstream.py's events (Unbound's
#               log does not show them)
#   stamps      sdns:// stamps of Unbound's DoH and DoT endpoints, with and without
#               certificate hashes (SHA-256 of a to-be-signed part); a wrong hash is a
#               TLS failure and the client gets SERVFAIL
#   mixed       a DoT and a DoH upstream in one round-robin pool both carry queries
#   resumption  after the idle timeout the next query reconnects and resumes the session
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig kdig unbound openssl python3 ss
need_dnsward
need_dwq
PY=${PYTHON:-/usr/bin/python3}

make_certs
start_unbound
DOH="https://127.0.0.1:$UB_DOH/dns-query#upstream.test"
DOT="tls://127.0.0.1:$UB_DOT#upstream.test"

ub() { ub_count "^$1\$"; } # ub 'name\.zone\.test\.': queries Unbound received for it

# =======================================================================================
# 1. POST and GET against Unbound

# doh_interop METHOD: one dnsward with Unbound's DoH as its only upstream.
doh_interop() {
    local m=$1 out n
    start_dnsward -u "$DOH" --ca-file "$CERTS/ca.pem" --doh-method "$m" --timeout 5s

    expect_a "$m, dig over UDP" "udp-$m.bench.test" 192.0.2.1
    out=$(dw_kdig +tcp "tcp-$m.bench.test" A 2>&1) || fail "$m, kdig +tcp: no reply: $out"
    assert_contains "$m, kdig +tcp: status" "$out" "status: NOERROR"
    assert_match "$m, kdig +tcp: the record" "$out" \
        "^tcp-$m\\.bench\\.test\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\\.0\\.2\\.1\$"
    assert_contains "$m, kdig +tcp: over TCP" "$out" "(TCP)"
    assert_eq "$m: Unbound received the UDP client's query" 1 "$(ub "udp-$m\\.bench\\.test\\.")"
    assert_eq "$m: Unbound received the TCP client's query" 1 "$(ub "tcp-$m\\.bench\\.test\\.")"

    out=$(dw_dig "nope-$m.nx.test" A 2>&1) || fail "$m, NXDOMAIN: no reply: $out"
    assert_eq "$m, nope-$m.nx.test: status" NXDOMAIN "$(dig_status "$out")"
    assert_match "$m, NXDOMAIN: the SOA in authority" "$out" \
        $'^nx\\.test\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA[[:space:]]+ns\\.nx\\.test\\.'
    out=$(dw_kdig +tcp "nodata.test" AAAA 2>&1) || fail "$m, NODATA: no reply: $out"
    assert_contains "$m, nodata.test AAAA: status" "$out" "status: NOERROR"
    assert_contains "$m, nodata.test AAAA: no answer record" "$out" "ANSWER: 0;"
    assert_match "$m, nodata.test AAAA: the SOA in authority" "$out" \
        $'^nodata\\.test\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA[[:space:]]+ns\\.nodata\\.test\\.'

    # 500 distinct names pipelined by one TCP client: one HTTP/2 connection carries them.
    out=$(dw_dwq -t -n 500 -w 30 "burst-$m.bench.test" A) || fail "$m, 500 distinct names: $out"
    assert_contains "$m, 500 distinct names" "$out" "answered=500 mismatched=0 "
    assert_contains "$m, 500 distinct names" "$out" "rcodes=NOERROR:500 addrs=192.0.2.1:500 "
    n=$(ub "q[0-9]+\\.burst-$m\\.bench\\.test\\.")
    assert_eq "$m, 500 distinct names: queries Unbound received for them" 500 "$n"
    dw_upstream_stats "$UB_DOH"
    echo "#   $m: ${out##* } ms for 500; ${DW_UP_LINE#*: upstream }"
    assert_eq "$m: connections opened (all multiplexed on one)" 1 "${DW_UP[connects]}"
    assert_ge "$m: queries sent upstream" 504 "${DW_UP[queries]}"
    assert_eq "$m: answers accepted (2 + NXDOMAIN + NODATA + 500)" 504 "${DW_UP[answers]}"
    assert_eq "$m: failures" 0 "${DW_UP[failures]}"
    assert_eq "$m: timeouts" 0 "${DW_UP[timeouts]}"
    assert_eq "$m: unmatched" 0 "${DW_UP[unmatched]}"
    assert_eq "$m: state" up "${DW_UP[state]}"
    stop_dnsward_clean
}

doh_interop post
ok "DoH POST to Unbound: UDP and TCP clients, NXDOMAIN, NODATA, 500 names on one connection"
doh_interop get
ok "DoH GET (--doh-method get) to Unbound: the same"

# Which method went out: fault_upstream.py logs it (and answers 192.0.2.9).
start_fault F ok good --proto doh
for m in post get; do
    args=()
    [[ $m == post ]] || args=(--doh-method get)
    start_dnsward -u "https://127.0.0.1:$F_PORT/dns-query#upstream.test" --ca-file "$CERTS/ca.pem" "${args[@]}"
    expect_a "method $m, to the fault server" "method-$m.bench.test" 192.0.2.9
    M=${m^^}
    out=$(grep -E "^query method-$m\\.bench\\.test\\. " "$F_EVENTS" || true)
    assert_match "${args[*]:-default}: the method of the request" "$out" " method=$M\$"
    assert_eq "${args[*]:-default}: requests for method-$m" 1 "$(wc -l <<<"$out")"
    # RFC 8484 §4.1: the ID is 0; RFC 8467: the query is padded (to 128 bytes).
    assert_match "${args[*]:-default}: the query's ID and padding" "$out" " len=128 id=0 pad=yes "
    stop_dnsward_clean
done
stop_pid "$F_PID"
ok "the default method is POST, --doh-method get sends GET; ID 0, padded to 128 bytes"

# =======================================================================================
# 2. DNS stamps (https://dnscrypt.info/stamps-specifications)

# stamp doh|dot ADDR HOST PATH [HASH_HEX...]: an sdns:// stamp; props 0, no bootstrap.
stamp() {
    "$PY" - "$@" <<'EOF'
import base64, sys
proto, addr, host, path = sys.argv[1:5]
hashes = [bytes.fromhex(h) for h in sys.argv[5:]]
def lp(b):
    return bytes([len(b)]) + b
def vlp(items):  # every length but the last has its high bit set
    if not items:
        return b"\x00"
    return b"".join(bytes([len(x) | (0x80 if i < len(items) - 1 else 0)]) + x
                    for i, x in enumerate(items))
b = bytes([2 if proto == "doh" else 3]) + bytes(8) + lp(addr.encode()) + vlp(hashes) + lp(host.encode())
if proto == "doh":
    b += lp(path.encode())
print("sdns://" + base64.urlsafe_b64encode(b).decode().rstrip("="))
EOF
}

# tbs_sha256 CERT: hex SHA-256 of the certificate's TBSCertificate (the DER element the
# certificate's outer SEQUENCE opens with).
tbs_sha256() {
    openssl x509 -in "$1" -outform DER | "$PY" -c '
import hashlib, sys
d = sys.stdin.buffer.read()
def hdr(i):  # (header length, content length) of the DER element at i
    if d[i + 1] < 0x80:
        return 2, d[i + 1]
    n = d[i + 1] & 0x7f
    return 2 + n, int.from_bytes(d[i + 2:i + 2 + n], "big")
h, _ = hdr(0)
th, tl = hdr(h)
print(hashlib.sha256(d[h:h + th + tl]).hexdigest())'
}

CA_TBS=$(tbs_sha256 "$CERTS/ca.pem")
LEAF_TBS=$(tbs_sha256 "$CERTS/good.pem")
OTHER_TBS=$(tbs_sha256 "$CERTS/other.pem")
# The same digest by another route (openssl asn1parse), so the helper is not its own judge.
openssl x509 -in "$CERTS/good.pem" -outform DER -out "$T/good.der"
off=$(openssl asn1parse -inform DER -in "$T/good.der" | sed -nE '2s/^ *([0-9]+):d=1 .*SEQUENCE.*/\1/p')
openssl asn1parse -inform DER -in "$T/good.der" -strparse "$off" -noout -out "$T/good.tbs.der"
assert_eq "TBS digest of good.pem, two ways" "$(sha256sum "$T/good.tbs.der" | cut -d' ' -f1)" "$LEAF_TBS"

S_DOH=$(stamp doh "127.0.0.1:$UB_DOH" upstream.test /dns-query)
S_DOT=$(stamp dot "127.0.0.1:$UB_DOT" upstream.test /dns-query)
echo "#   DoH stamp $S_DOH"
echo "#   DoT stamp $S_DOT"
for s in "$S_DOH" "$S_DOT"; do
    start_dnsward -u "$s" --ca-file "$CERTS/ca.pem" --timeout 3s
    expect_a "stamp $s, UDP" "stamp-${#s}.bench.test" 192.0.2.1
    expect_answer_in_time 3 "stamp $s, TCP" "stamp-tcp-${#s}.bench.test" 192.0.2.1 -t
    dw_upstream_stats "$s"
    assert_eq "stamp $s: answers" 2 "${DW_UP[answers]}"
    assert_eq "stamp $s: connects" 1 "${DW_UP[connects]}"
    stop_dnsward_clean
done
assert_eq "stamps: queries Unbound received" 4 "$(ub 'stamp-(tcp-)?[0-9]+\.bench\.test\.')"
ok "sdns:// stamps of Unbound's DoH and DoT endpoints answer"

# With certificate hashes: the CA's, the leaf's, a wrong one next to the right one (any
# one match suffices), and only a wrong one.
for h in "$CA_TBS" "$LEAF_TBS" "$OTHER_TBS $CA_TBS"; do
    for p in doh dot; do
        port=$UB_DOH
        [[ $p == doh ]] || port=$UB_DOT
        # shellcheck disable=SC2086 # $h is one or two digests
        s=$(stamp $p "127.0.0.1:$port" upstream.test /dns-query $h)
        start_dnsward -u "$s" --ca-file "$CERTS/ca.pem" --timeout 3s
        expect_a "$p stamp with hash(es) $h" "hash-$p-${h:0:8}.bench.test" 192.0.2.1
        dw_upstream_stats "$s"
        assert_eq "$p stamp with hash(es) $h: tls failures" 0 "${DW_UP[tls]}"
        stop_dnsward_clean
    done
done
ok "stamps whose hash is the SHA-256 of the CA's or the leaf's TBS (DoH and DoT) answer"

for p in doh dot; do
    port=$UB_DOH
    [[ $p == doh ]] || port=$UB_DOT
    s=$(stamp $p "127.0.0.1:$port" upstream.test /dns-query "$OTHER_TBS")
    before=$(ub "wronghash-(tcp-)?$p\\.bench\\.test\\.")
    start_dnsward -u "$s" --ca-file "$CERTS/ca.pem" --timeout 2s --attempt-timeout 1s
    expect_servfail_in_time 2 "$p stamp with a wrong hash, UDP" "wronghash-$p.bench.test"
    expect_servfail_in_time 2 "$p stamp with a wrong hash, TCP" "wronghash-tcp-$p.bench.test" -t
    dw_upstream_stats "$s"
    echo "#   wrong hash, $p: ${DW_UP_LINE#*: upstream sdns://*: }"
    assert_ge "$p stamp with a wrong hash: tls failures" 1 "${DW_UP[tls]}"
    assert_eq "$p stamp with a wrong hash: answers" 0 "${DW_UP[answers]}"
    assert_eq "$p stamp with a wrong hash: queries Unbound received" "$before" \
        "$(ub "wronghash-(tcp-)?$p\\.bench\\.test\\.")"
    assert_dw_alive "$p stamp with a wrong hash"
    stop_dnsward_clean
done
ok "a stamp with only a wrong certificate hash: SERVFAIL, a tls failure, no query sent"

# =======================================================================================
# 3. DoT and DoH in one pool, round-robin
start_dnsward -u "$DOT" -u "$DOH" --strategy round-robin --ca-file "$CERTS/ca.pem" --timeout 5s
for i in $(seq 1 20); do
    expect_answer_in_time 5 "mixed pool, query $i" "mixed-$i.bench.test" 192.0.2.1
done
out=$(dw_dwq -t -n 200 -w 30 mixed-burst.bench.test A) || fail "mixed pool, 200 names: $out"
assert_contains "mixed pool, 200 names" "$out" "answered=200 mismatched=0 "
assert_contains "mixed pool, 200 names" "$out" "rcodes=NOERROR:200 addrs=192.0.2.1:200 "
dw_upstream_stats "tls://127.0.0.1:$UB_DOT"
dot_a=${DW_UP[answers]} dot_f=${DW_UP[failures]}
dw_upstream_stats "https://127.0.0.1:$UB_DOH"
doh_a=${DW_UP[answers]} doh_f=${DW_UP[failures]}
echo "#   answers: DoT $dot_a, DoH $doh_a"
assert_ge "mixed pool: answers by the DoT upstream (of 220)" 50 "$dot_a"
assert_ge "mixed pool: answers by the DoH upstream (of 220)" 50 "$doh_a"
assert_eq "mixed pool: answers in all" 220 $((dot_a + doh_a))
assert_eq "mixed pool: failures" 0 $((dot_f + doh_f))
assert_eq "mixed pool: queries Unbound received" 220 "$(ub '(q[0-9]+\.)?mixed-(burst|[0-9]+)\.bench\.test\.')"
stop_dnsward_clean
ok "DoT and DoH in one round-robin pool: both carry queries ($dot_a and $doh_a of 220)"

# =======================================================================================
# 4. TLS session resumption after the idle close
for u in "$DOH" "$DOT"; do
    start_dnsward -u "$u" --ca-file "$CERTS/ca.pem" --upstream-idle-timeout 1s
    for i in 1 2 3; do
        expect_a "$u, query $i" "resume-$i-${u%%:*}.bench.test" 192.0.2.1
        dw_upstream_stats "$u"
        assert_eq "$u, after query $i: connections (each previous one closed idle)" "$i" "${DW_UP[connects]}"
        assert_eq "$u, after query $i: resumed sessions" $((i - 1)) "${DW_UP[resumed]}"
        assert_eq "$u, after query $i: failures" 0 "${DW_UP[failures]}"
        # The idle connection must have closed (1 s) before the next query: no established
        # connection to Unbound's port is left after 2.5 s.
        sleep 2.5
        port=${u##*:}
        port=${port%%[/#]*}
        [[ -z $(ss -Htn state established "dport = :$port" 2>/dev/null) ]] ||
            fail "$u: a connection to port $port is still open 2.5 s after the last query (idle timeout 1s)"
    done
    stop_dnsward_clean
done
ok "after --upstream-idle-timeout 1s the next query reconnects and resumes the TLS session (DoH, DoT)"
