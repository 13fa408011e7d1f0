#!/usr/bin/env bash
# test_forward: plain DNS in, DNS over TLS out, through the real daemon, with dig, kdig and
# dwq as clients and Unbound (then fault_upstream.py) as the upstream.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig kdig unbound openssl python3 ss
need_dnsward
need_dwq

make_certs
start_unbound
start_dnsward -u "tls://127.0.0.1:$UB_DOT#upstream.test" --ca-file "$CERTS/ca.pem" \
    --timeout 5s --log-level debug

# --- A over UDP and TCP, with each client --------------------------------------------------
expect_a "dig, UDP" a1.bench.test 192.0.2.1
expect_a "dig +tcp" a2.bench.test 192.0.2.1 +tcp
ok "dig: A over UDP and over TCP gives 192.0.2.1"

out=$(dw_kdig +short a3.bench.test A 2>&1) || fail "kdig, UDP: no reply: $out"
assert_eq "kdig, UDP: answer" 192.0.2.1 "$out"
out=$(dw_kdig +tcp +short a4.bench.test A 2>&1) || fail "kdig +tcp: no reply: $out"
assert_eq "kdig +tcp: answer" 192.0.2.1 "$out"
ok "kdig: A over UDP and over TCP gives 192.0.2.1"

out=$(dw_dwq a5.bench.test A) || fail "dwq, UDP: $out"
assert_contains "dwq, UDP" "$out" "rcode=NOERROR"
assert_contains "dwq, UDP" "$out" "A 192.0.2.1"
out=$(dw_dwq -t a6.bench.test A) || fail "dwq -t: $out"
assert_contains "dwq -t" "$out" "rcode=NOERROR"
assert_contains "dwq -t" "$out" "A 192.0.2.1"
ok "dwq: A over UDP and over TCP gives 192.0.2.1"

for n in a1 a2 a3 a4 a5 a6; do
    assert_ge "Unbound received the query for $n.bench.test over DoT" 1 "$(ub_count "^$n\.bench\.test\.\$")"
done
ok "every query reached the upstream"

# --- NXDOMAIN with its SOA -------------------------------------------------------------------
out=$(dw_dig nope1.nx.test A 2>&1) || fail "NXDOMAIN: no reply: $out"
assert_eq "NXDOMAIN over UDP: status" NXDOMAIN "$(dig_status "$out")"
assert_match "NXDOMAIN over UDP: SOA in authority" "$out" \
    '^nx\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA[[:space:]]+ns\.nx\.test\. hostmaster\.nx\.test\. 1 3600 600 86400 60$'
assert_match "NXDOMAIN over UDP: counts" "$out" 'ANSWER: 0, AUTHORITY: 1,'
out=$(dw_dwq -t nope2.nx.test A) || fail "NXDOMAIN over TCP: $out"
assert_contains "NXDOMAIN over TCP (dwq)" "$out" "rcode=NXDOMAIN"
assert_contains "NXDOMAIN over TCP (dwq)" "$out" "auth SOA ns.nx.test. hostmaster.nx.test. 1 3600 600 86400 60"
ok "NXDOMAIN is passed through with its SOA in the authority section"

# --- the client's ID and the case of its name --------------------------------------------------
for id in 0 1 4660 65535; do
    for t in "" -t; do
        out=$(dw_dwq $t -i "$id" "MiXeD-$id.CaSe.BeNcH.TeSt" A) || fail "ID $id ${t:-UDP}: $out"
        assert_contains "ID $id ${t:-UDP}: ID and question" "$out" "match id=yes question=exact"
        assert_contains "ID $id ${t:-UDP}: reply ID" "$out" "rcode=NOERROR id=$id "
        assert_contains "ID $id ${t:-UDP}: answer" "$out" "A 192.0.2.1"
    done
done
ok "dwq: the client's ID (0, 1, 4660, 65535) and the name's case come back unchanged, UDP and TCP"

for t in "" +tcp; do
    out=$(dw_dig $t +noall +comments +question +answer UpPeR.lOwEr.BeNcH.tEsT A 2>&1) || fail "dig $t case: $out"
    assert_match "dig ${t:-UDP}: question section keeps the case" "$out" $'^;UpPeR\\.lOwEr\\.BeNcH\\.tEsT\\.[[:space:]]+IN[[:space:]]+A$'
    assert_not_contains "dig ${t:-UDP}: no mismatch warning" "$out" "mismatch"
done
# kdig folds names to lower case before sending, so it checks the answer, not the case.
out=$(dw_kdig +short KdIg.BeNcH.TeSt A 2>&1) || fail "kdig mixed case: $out"
assert_eq "kdig, mixed-case name" 192.0.2.1 "$out"
ok "dig: the question's case is preserved over UDP and TCP; kdig accepts the answer"

# Identical queries in flight at once: each waiter gets its own ID and its own case.
pids=()
for i in 1 2 3 4; do
    case $i in
    1) name=same.concurrent.bench.test ;;
    2) name=SAME.concurrent.bench.test ;;
    3) name=Same.Concurrent.Bench.Test ;;
    4) name=sAmE.cOnCuRrEnT.bEnCh.TeSt ;;
    esac
    dw_dwq -i $((1000 + i)) "$name" A >"$T/concurrent.$i" 2>&1 &
    pids+=($!)
done
for i in 1 2 3 4; do
    wait "${pids[$((i - 1))]}" || fail "concurrent query $i: $(cat "$T/concurrent.$i")"
    out=$(cat "$T/concurrent.$i")
    assert_contains "concurrent query $i" "$out" "match id=yes question=exact sent_id=$((1000 + i))"
    assert_contains "concurrent query $i" "$out" "A 192.0.2.1"
done
ok "identical queries from four clients: each gets its own ID and case"

# --- a big answer: truncated over UDP, whole over TCP --------------------------------------------
out=$(dw_dig +ignore +bufsize=1232 big.test TXT 2>&1) || fail "big.test +bufsize=1232: $out"
assert_eq "big.test over UDP, bufsize 1232: status" NOERROR "$(dig_status "$out")"
assert_match "big.test over UDP, bufsize 1232: TC set, no answer" "$out" ';; flags: qr[a-z ]* tc[a-z ]*; QUERY: 1, ANSWER: 0,'
size=$(sed -nE 's/.*MSG SIZE  rcvd: ([0-9]+).*/\1/p' <<<"$out")
assert_le "big.test over UDP, bufsize 1232: reply size" 1232 "${size:-99999}"
out=$(dw_dig +ignore +noedns big.test TXT 2>&1) || fail "big.test +noedns: $out"
assert_match "big.test over UDP without EDNS: TC set, no answer" "$out" ';; flags: qr[a-z ]* tc[a-z ]*; QUERY: 1, ANSWER: 0,'
size=$(sed -nE 's/.*MSG SIZE  rcvd: ([0-9]+).*/\1/p' <<<"$out")
assert_le "big.test over UDP without EDNS: reply size" 512 "${size:-99999}"
out=$(dw_dig +ignore +bufsize=4096 big.test TXT 2>&1) || fail "big.test +bufsize=4096: $out"
assert_match "big.test over UDP, bufsize 4096 (above the default --udp-max-size 1232): TC set" "$out" \
    ';; flags: qr[a-z ]* tc[a-z ]*; QUERY: 1, ANSWER: 0,'
out=$(dw_dwq big.test TXT) || fail "dwq big.test UDP: $out"
assert_contains "dwq big.test over UDP, no EDNS" "$out" "tc=1"
assert_contains "dwq big.test over UDP, no EDNS" "$out" " an=0 "
ok "big.test TXT over UDP: TC=1 and no records (bufsize 1232, 4096, no EDNS)"

out=$(dw_dig +tcp big.test TXT 2>&1) || fail "big.test over TCP: $out"
assert_eq "big.test over TCP: status" NOERROR "$(dig_status "$out")"
assert_match "big.test over TCP: whole" "$out" ';; flags: qr[a-z ]*; QUERY: 1, ANSWER: 40,'
assert_not_contains "big.test over TCP: no TC" "$out" " tc"
n=$(grep -cE '^big\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+TXT' <<<"$out" || true)
assert_eq "big.test over TCP: TXT records shown by dig" 40 "$n"
out=$(dw_kdig +tcp +short big.test TXT 2>&1) || fail "kdig big.test over TCP: $out"
assert_eq "kdig big.test over TCP: TXT records" 40 "$(grep -c . <<<"$out")"
out=$(dw_dwq -t big.test TXT) || fail "dwq -t big.test: $out"
assert_eq "dwq -t big.test: TXT records" 40 "$(grep -c '^TXT ' <<<"$out" || true)"
assert_contains "dwq -t big.test" "$out" "tc=0"
# The plain dig over UDP falls back to TCP on TC and then gets it all.
out=$(dw_dig big.test TXT 2>&1) || fail "dig big.test (UDP then TCP): $out"
assert_match "dig big.test, retrying over TCP after TC" "$out" 'ANSWER: 40,'
ok "big.test TXT over TCP: all 40 records (dig, kdig, dwq)"

# --- 10,000 queries pipelined on one TCP connection ---------------------------------------------
out=$(dw_dwq -t -n 10000 -w 150 pipe.bench.test A) || fail "10000 pipelined queries: $out"
assert_contains "10000 pipelined queries" "$out" "answered=10000 mismatched=0 dup=0"
assert_contains "10000 pipelined queries" "$out" "rcodes=NOERROR:10000 addrs=192.0.2.1:10000 "
echo "#   $out"
n=$(ub_queries '^q[0-9]+\.pipe\.bench\.test\.$' | sort -u | wc -l)
assert_eq "distinct pipelined names that reached Unbound" 10000 "$n"
assert_dw_alive "after 10000 pipelined queries"
ok "10000 queries pipelined on one TCP connection: all answered, all reached the upstream"

expect_a "after the pipeline" after.bench.test 192.0.2.1
stop_dnsward_clean
ok "clean shutdown on SIGTERM: exit status 0"

# --- against fault_upstream.py (ok mode): padding, and the in-flight answer on SIGTERM ---------------
start_fault F ok good --delay 1500
start_dnsward -u "tls://127.0.0.1:$F_PORT#upstream.test" --ca-file "$CERTS/ca.pem" \
    --padding yes --timeout 6s --attempt-timeout 4s

out=$(dw_dwq padded.bench.test A) || fail "padding yes: $out"
assert_contains "padding yes: answer from fault_upstream.py" "$out" "A 192.0.2.9"
line=$(grep '^query padded\.bench\.test\. ' "$F_EVENTS" | head -n 1)
[[ -n $line ]] || fail "padding yes: the upstream got no query for padded.bench.test: $(cat "$F_EVENTS")"
assert_contains "padding yes: the upstream query carries a padding option" "$line" "pad=yes"
len=$(sed -nE 's/.* len=([0-9]+) .*/\1/p' <<<"$line")
(( len % 128 == 0 )) || fail "padding yes: the upstream query is $len bytes, not a multiple of 128 (RFC 8467): $line"
ok "--padding yes: the query upstream is padded to a multiple of 128 bytes"

# A query in flight when SIGTERM comes is answered before the process exits.
dw_dwq -w 10 inflight.bench.test A >"$T/inflight.out" 2>&1 &
qpid=$!
wait_until 10 grep -q '^query inflight\.bench\.test\. ' "$F_EVENTS" ||
    fail "the in-flight query never reached the upstream: $(cat "$F_EVENTS")"
stop_dnsward_clean TERM
wait "$qpid" || fail "the query in flight at SIGTERM got no answer: $(cat "$T/inflight.out")"
out=$(cat "$T/inflight.out")
assert_contains "the query in flight at SIGTERM" "$out" "rcode=NOERROR"
assert_contains "the query in flight at SIGTERM" "$out" "A 192.0.2.9"
ok "SIGTERM with a query in flight: it is answered, then exit status 0"
stop_pid "$F_PID"

start_fault G ok good
start_dnsward -u "tls://127.0.0.1:$G_PORT#upstream.test" --ca-file "$CERTS/ca.pem" --padding no
out=$(dw_dwq unpadded.bench.test A) || fail "padding no: $out"
assert_contains "padding no: answer" "$out" "A 192.0.2.9"
line=$(grep '^query unpadded\.bench\.test\. ' "$G_EVENTS" | head -n 1)
[[ -n $line ]] || fail "padding no: the upstream got no query: $(cat "$G_EVENTS")"
assert_contains "padding no: no padding option upstream" "$line" "pad=no"
ok "--padding no: the query upstream carries no padding"
stop_dnsward_clean INT
ok "clean shutdown on SIGINT: exit status 0"
