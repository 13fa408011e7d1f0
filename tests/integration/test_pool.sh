#!/usr/bin/env bash
# test_pool: the upstream pool's strategies and health, with DoH and DoT upstreams mixed.
# fault_upstream.py in ok mode (A 192.0.2.9) stands for a second resolver next to the real
# Unbound (A 192.0.2.1), so the address of each answer tells which upstream gave it.
#
#   blackhole   failover: the primary frozen (SIGSTOP) mid-run costs one attempt timeout
#               once; the next queries go to the secondary at once; after SIGCONT the
#               primary takes the traffic back within its backoff (at most 16 s)
#   round-robin both upstreams carry queries in turn
#   fastest     the fast upstream carries most queries, the slow one a few (exploration)
#   all down    SERVFAIL within the deadline for every query (two closed ports; an upstream
#               that accepts and closes, 50 queries a second); the connections opened to
#               the latter are bounded by --upstream-connect-rate (and its bucket holds
#               some back when one connection at a rate of 1 is all it may have)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig unbound openssl python3 ss
need_dnsward
need_dwq

make_certs
start_unbound
UB_DOH_URL="https://127.0.0.1:$UB_DOH/dns-query#upstream.test"
UB_DOT_URL="tls://127.0.0.1:$UB_DOT#upstream.test"
PRIMARY=192.0.2.9   # fault_upstream.py, ok mode
SECONDARY=192.0.2.1 # Unbound

# fault_url VAR PROTO: the URL of the fault server started as VAR.
fault_url() {
    local port="${1}_PORT"
    if [[ $2 == doh ]]; then
        echo "https://127.0.0.1:${!port}/dns-query#upstream.test"
    else
        echo "tls://127.0.0.1:${!port}#upstream.test"
    fi
}

# ask NAME [dwq args...]: query NAME through dnsward; sets ADDR to the address of the A
# record it answers with (the test fails on no answer, another rcode or no A record) and
# MS to the milliseconds the query took.
ADDR='' MS=0
ask() {
    local name=$1 t0 out
    shift
    t0=$(now_ms)
    out=$(dw_dwq -w 8 "$@" "$name" A) || fail "$name: no proper answer: $out"
    MS=$(($(now_ms) - t0))
    [[ $out == rcode=NOERROR* ]] || fail "$name: expected NOERROR, saw: $(head -n 1 <<<"$out")"
    ADDR=$(sed -n 's/^A //p' <<<"$out" | head -n 1)
    [[ -n $ADDR ]] || fail "$name: no A record in the answer: $out"
}

# =======================================================================================
# (a) failover: the primary black-holed mid-run, and back
ATTEMPT_MS=1500
for proto in doh dot; do
    start_fault P ok good --proto "$proto"
    primary=$(fault_url P "$proto")
    secondary=$UB_DOT_URL
    [[ $proto == dot ]] && secondary=$UB_DOH_URL
    # The attempt timeout is fixed (min = max), so "one attempt timeout" is a known time.
    start_dnsward -u "$primary" -u "$secondary" --ca-file "$CERTS/ca.pem" --timeout 5s \
        --attempt-timeout ${ATTEMPT_MS}ms --attempt-timeout-min ${ATTEMPT_MS}ms
    for i in 1 2 3 4 5; do
        ask "bh-$proto-before-$i.bench.test"
        assert_eq "$proto primary healthy, query $i: answered by" "$PRIMARY" "$ADDR"
    done
    dw_upstream_stats "$secondary"
    assert_eq "$proto primary healthy: queries the secondary got" 0 "${DW_UP[queries]}"

    kill -STOP "$P_PID"
    ask "bh-$proto-first.bench.test"
    first_ms=$MS
    assert_eq "$proto primary frozen, first query: answered by" "$SECONDARY" "$ADDR"
    assert_ge "$proto primary frozen, first query: ms (it waited one attempt timeout)" $((ATTEMPT_MS - 100)) "$first_ms"
    assert_le "$proto primary frozen, first query: ms (one attempt timeout, then the secondary)" \
        $((ATTEMPT_MS + 2000)) "$first_ms"
    dw_upstream_stats "$primary"
    # Marked down at once (one silent timeout), not after three failures.
    assert_contains "$proto primary frozen: dnsward's log" "$(<"$DW_LOG")" \
        "upstream $primary: down for 1 s after 1 failure (Connection timed out)"
    assert_eq "$proto primary frozen: its timeouts" 1 "${DW_UP[timeouts]}"
    n_to=${DW_UP[timeouts]} n_fail=${DW_UP[failures]}
    f_before=$((n_to + n_fail))

    # The next 20: straight to the secondary. A query sent after the primary's backoff
    # (1 s, then 2 s, ...) probes it and waits its timeout: that is the design, and such a
    # query must show as one more failure of the primary (a timeout of the attempt, or of
    # the new connection's TLS handshake); any other slow one is a failure of the test.
    times=() slow=0 t_loop=$(now_ms)
    for i in $(seq 1 20); do
        ask "bh-$proto-after-$i.bench.test"
        assert_eq "$proto primary frozen, query $i after the first: answered by" "$SECONDARY" "$ADDR"
        times+=("$MS")
        ((MS < ATTEMPT_MS / 2)) || slow=$((slow + 1))
    done
    t_loop=$(($(now_ms) - t_loop))
    dw_upstream_stats "$primary"
    n_to=${DW_UP[timeouts]} n_fail=${DW_UP[failures]}
    probes=$((n_to + n_fail - f_before))
    echo "#   $proto: first query after the freeze ${first_ms} ms; next 20 (${t_loop} ms in all): ${times[*]} ms; probes of the frozen primary: $probes"
    assert_le "$proto primary frozen: slow queries among the 20 (each must be a probe of the primary; ms: ${times[*]})" \
        "$probes" "$slow"
    # How many probes the backoff allows in that time: one when each down period ends
    # (1 s, 2 s, 4 s, ...), each then waiting one attempt timeout; and one more for margin.
    cap=1 at=1000 b=1000
    while ((at <= t_loop)); do
        cap=$((cap + 1)) b=$((b * 2))
        at=$((at + ATTEMPT_MS + b))
    done
    assert_le "$proto primary frozen: slow queries among the 20 in $t_loop ms (ms: ${times[*]})" "$cap" "$slow"

    kill -CONT "$P_PID"
    t0=$(now_ms)
    n=0
    while :; do
        ask "bh-$proto-thawed-$n.bench.test"
        [[ $ADDR == "$PRIMARY" ]] && break
        assert_eq "$proto primary thawed, query $n: answered by the secondary until then" "$SECONDARY" "$ADDR"
        n=$((n + 1))
        (($(now_ms) - t0 < 25000)) || fail "$proto primary thawed: no answer from it within 25 s"
        sleep 0.3
    done
    back_ms=$(($(now_ms) - t0))
    echo "#   $proto: primary answering again ${back_ms} ms after SIGCONT ($n queries answered by the secondary meanwhile)"
    assert_le "$proto primary thawed: ms until it answers again (backoff at most 16 s, + one attempt + 1 s)" \
        $((16000 + ATTEMPT_MS + 1000)) "$back_ms"
    for i in 1 2 3 4 5; do
        ask "bh-$proto-back-$i.bench.test"
        assert_eq "$proto primary back, query $i: answered by" "$PRIMARY" "$ADDR"
    done
    dw_upstream_stats "$primary"
    assert_eq "$proto primary back: state" up "${DW_UP[state]}"
    echo "#   ${DW_UP_LINE#*: upstream }"
    stop_dnsward_clean
    stop_pid "$P_PID"
    ok "failover, $proto primary frozen: one timeout (${first_ms} ms), then the secondary at once; back after ${back_ms} ms"
done

# =======================================================================================
# (b) round-robin: both healthy, 40 queries split between them
start_fault P ok good --proto doh
start_dnsward -u "$(fault_url P doh)" -u "$UB_DOT_URL" --strategy round-robin --ca-file "$CERTS/ca.pem"
declare -A got=()
for i in $(seq 1 40); do
    ask "rr-$i.bench.test"
    got[$ADDR]=$((${got[$ADDR]:-0} + 1))
done
echo "#   round-robin: $PRIMARY ${got[$PRIMARY]:-0}, $SECONDARY ${got[$SECONDARY]:-0}"
assert_ge "round-robin: answers by the fault server (of 40)" 10 "${got[$PRIMARY]:-0}"
assert_ge "round-robin: answers by Unbound (of 40)" 10 "${got[$SECONDARY]:-0}"
assert_eq "round-robin: answers in all" 40 $((${got[$PRIMARY]:-0} + ${got[$SECONDARY]:-0}))
assert_eq "round-robin: queries Unbound received" "${got[$SECONDARY]}" "$(ub_count '^rr-[0-9]+\.bench\.test\.$')"
assert_eq "round-robin: queries the fault server received" "${got[$PRIMARY]}" \
    "$(grep -cE '^query rr-[0-9]+\.bench\.test\. ' "$P_EVENTS" || true)"
stop_dnsward_clean
stop_pid "$P_PID"
ok "round-robin: 40 queries split ${got[$PRIMARY]:-0} / ${got[$SECONDARY]:-0}"

# =======================================================================================
# (c) fastest: a slow upstream (200 ms) first, Unbound second
start_fault P ok good --proto doh --delay 200
start_dnsward -u "$(fault_url P doh)" -u "$UB_DOH_URL" --strategy fastest --ca-file "$CERTS/ca.pem" \
    --timeout 5s
for i in 1 2 3 4 5; do ask "fast-warm-$i.bench.test"; done
dw_upstream_stats "127.0.0.1:$P_PORT"
assert_ge "fastest, warm-up: the slow upstream was measured" 1 "${DW_UP[answers]}"
got=()
slow_ms=()
for i in $(seq 1 60); do
    ask "fast-$i.bench.test"
    got[$ADDR]=$((${got[$ADDR]:-0} + 1))
    [[ $ADDR == "$PRIMARY" ]] && slow_ms+=("$MS")
done
echo "#   fastest: slow (200 ms) ${got[$PRIMARY]:-0}, fast ${got[$SECONDARY]:-0} of 60; the slow one's times: ${slow_ms[*]:-none} ms"
assert_ge "fastest: answers by the fast upstream (of 60)" 48 "${got[$SECONDARY]:-0}"
assert_ge "fastest: answers by the slow upstream (exploration, one request in 20)" 1 "${got[$PRIMARY]:-0}"
assert_eq "fastest: answers in all" 60 $((${got[$PRIMARY]:-0} + ${got[$SECONDARY]:-0}))
for ms in "${slow_ms[@]}"; do
    assert_ge "fastest: an answer by the slow upstream took its delay" 190 "$ms"
done
dw_upstream_stats "127.0.0.1:$P_PORT"
slow_srtt=${DW_UP[srtt-ms]}
dw_upstream_stats "$UB_DOH_URL"
fast_srtt=${DW_UP[srtt-ms]}
echo "#   srtt: slow $slow_srtt ms, fast $fast_srtt ms"
assert_ge "fastest: the slow upstream's srtt" 150 "$slow_srtt"
assert_le "fastest: the fast upstream's srtt" 100 "$fast_srtt"
stop_dnsward_clean
stop_pid "$P_PID"
ok "fastest: ${got[$SECONDARY]:-0} of 60 to the fast upstream, ${got[$PRIMARY]:-0} to the slow one"

# =======================================================================================
# (d) every upstream down
DEADLINE=2
free_port CLOSED1
free_port CLOSED2
start_dnsward -u "https://127.0.0.1:$CLOSED1/dns-query#upstream.test" -u "tls://127.0.0.1:$CLOSED2#upstream.test" \
    --ca-file "$CERTS/ca.pem" --timeout ${DEADLINE}s --attempt-timeout 1s
for i in 1 2 3; do
    expect_servfail_in_time $DEADLINE "two closed ports, query $i over UDP" "closed-$i.bench.test"
    expect_servfail_in_time $DEADLINE "two closed ports, query $i over TCP" "closed-tcp-$i.bench.test" -t
done
out=$(dw_dwq -t -n 200 -w $((DEADLINE + 5)) burst.closed.bench.test A || true)
assert_contains "two closed ports, 200 pipelined queries" "$out" "answered=200 "
assert_contains "two closed ports, 200 pipelined queries" "$out" "rcodes=SERVFAIL:200 addrs=none "
ms=$(sed -nE 's/.*time_ms=([0-9]+).*/\1/p' <<<"$out")
assert_le "two closed ports, 200 pipelined queries: ms until the last SERVFAIL" $((DEADLINE * 1000 + 1000)) "${ms:-99999}"
for u in "127.0.0.1:$CLOSED1" "127.0.0.1:$CLOSED2"; do
    dw_upstream_stats "$u"
    echo "#   ${DW_UP_LINE#*: upstream }"
    assert_eq "closed port $u: answers" 0 "${DW_UP[answers]}"
    assert_ge "closed port $u: connect failures" 1 "${DW_UP[connect]}"
done
assert_dw_alive "two closed ports"
stop_dnsward_clean
ok "all down (two closed ports): SERVFAIL within ${DEADLINE} s for every query, 200 at once included"

# udp_load COUNT INTERVAL_MS PREFIX WAIT_S: send COUNT queries (A of q<i>.PREFIX) over UDP
# to dnsward, one every INTERVAL_MS by the clock (a shell loop cannot keep that pace on a
# slow machine), and collect the replies; prints
#   sent=N answered=N rcodes=SERVFAIL:N,... mismatched=N max_ms=M span_ms=S
# where max_ms is the slowest reply and span_ms the time from the first query to the last.
udp_load() {
    python3 - "$DW_PORT" "$@" <<'EOF'
import collections, select, socket, struct, sys, time
port, count, interval = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000
prefix, wait_s = sys.argv[4], float(sys.argv[5])
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
def question(i):
    labels = ("q%d.%s" % (i, prefix)).encode().split(b".")
    return b"".join(bytes([len(l)]) + l for l in labels) + b"\0" + struct.pack("!HH", 1, 1)
sent, got, rcodes, mismatched, slowest = {}, {}, collections.Counter(), 0, 0.0
t0 = time.monotonic()
end = t0 + (count - 1) * interval + wait_s  # the last query's wait ends then
i = 0
while True:
    now = time.monotonic()
    if i < count and now >= t0 + i * interval:
        qid = (i * 7919 + 1) & 0xFFFF
        s.send(struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question(i))
        sent[qid] = (i, now)
        i += 1
        continue
    if i >= count and (len(got) == count or now > end):
        break
    nxt = t0 + i * interval if i < count else end
    if not select.select([s], [], [], max(0.0, min(nxt - now, 0.05)))[0]:
        continue
    msg = s.recv(65535)
    qid, flags = struct.unpack("!HH", msg[:4])
    q = question(sent[qid][0]) if qid in sent else None
    if q is None or qid in got or msg[12:12 + len(q)] != q:
        mismatched += 1
        continue
    got[qid] = time.monotonic() - sent[qid][1]
    slowest = max(slowest, got[qid])
    rcodes[RCODES.get(flags & 0xF, str(flags & 0xF))] += 1
print("sent=%d answered=%d rcodes=%s mismatched=%d max_ms=%d span_ms=%d" % (
    len(sent), len(got), ",".join("%s:%d" % kv for kv in sorted(rcodes.items())) or "none",
    mismatched, slowest * 1000, (time.monotonic() - t0) * 1000))
EOF
}

# An upstream that accepts, takes the query and closes: 50 queries a second for 3 s. With
# the defaults the pool's backoff bounds the connections before the connect rate does; with
# one connection and a rate of 1 (a bucket of 2) the bucket itself is what stops them.
for variant in "doh 2 4" "dot 2 4" "doh 1 1"; do
    read -r proto RATE MAXC <<<"$variant"
    what="$proto close mode, connect rate $RATE, max connections $MAXC"
    start_fault C close good --proto "$proto"
    start_dnsward -u "$(fault_url C "$proto")" --ca-file "$CERTS/ca.pem" --timeout ${DEADLINE}s \
        --attempt-timeout 1s --upstream-connect-rate "$RATE" --upstream-max-connections "$MAXC"
    conns0=$(fault_count C conn)
    t0=$(now_ms)
    out=$(udp_load 150 20 "close-$proto-$RATE.bench.test" $((DEADLINE + 1)))
    secs=$((($(now_ms) - t0 + 999) / 1000))
    conns=$(($(fault_count C conn) - conns0))
    dw_upstream_stats "127.0.0.1:$C_PORT"
    echo "#   $what: $out; $conns connections accepted in ${secs} s"
    echo "#   ${DW_UP_LINE#*: upstream }"
    assert_contains "$what, 150 queries at 50 a second" "$out" \
        "sent=150 answered=150 rcodes=SERVFAIL:150 mismatched=0 "
    ms=$(sed -nE 's/.*max_ms=([0-9]+).*/\1/p' <<<"$out")
    assert_le "$what: ms until the slowest SERVFAIL (deadline ${DEADLINE} s + 1 s)" \
        $((DEADLINE * 1000 + 1000)) "$ms"
    span=$(sed -nE 's/.*span_ms=([0-9]+).*/\1/p' <<<"$out")
    assert_le "$what: ms to send 150 at 50 a second and collect the replies" 7000 "$span"
    # A token bucket of RATE a second that holds RATE + upstream-max-connections at most.
    bound=$((RATE * secs + RATE + MAXC + 1))
    assert_le "$what: connections accepted in ${secs} s" "$bound" "$conns"
    assert_le "$what: connections dnsward counts" "$bound" "${DW_UP[connects]}"
    assert_ge "$what: the fault server was reached" 1 "$conns"
    if ((MAXC == 1)); then
        assert_ge "$what: connections the bucket held back" 1 "${DW_UP[throttled]}"
    fi
    assert_dw_alive "$what"
    expect_servfail_in_time $DEADLINE "$what, still serving" "close-$proto-$RATE-after.bench.test"
    stop_dnsward_clean
    stop_pid "$C_PID"
done
ok "all down (accepts and closes, DoH and DoT): 150 queries at 50 a second all SERVFAIL in time, connections bounded"
