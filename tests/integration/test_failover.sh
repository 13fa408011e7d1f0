#!/usr/bin/env bash
# test_failover: dead, stalling and misbehaving upstreams. A query is answered by a working
# upstream when there is one, and gets SERVFAIL within its deadline when there is none; an
# answer that does not match its query (ID, question) is never accepted; and the daemon
# keeps serving through all of it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig unbound openssl python3 ss
need_dnsward
need_dwq

make_certs
start_unbound
UNBOUND="tls://127.0.0.1:$UB_DOT#upstream.test"

# --- a closed port first, Unbound second -------------------------------------------------------
free_port CLOSED1
free_port CLOSED2
start_dnsward -u "tls://127.0.0.1:$CLOSED1#upstream.test" -u "$UNBOUND" --ca-file "$CERTS/ca.pem" \
    --timeout 3s --attempt-timeout 1s
for i in 1 2 3 4 5; do
    expect_answer_in_time 3 "closed primary, query $i over UDP" "closed-primary-$i.bench.test" 192.0.2.1
    expect_answer_in_time 3 "closed primary, query $i over TCP" "closed-primary-tcp-$i.bench.test" 192.0.2.1 -t
done
stop_dnsward_clean
ok "primary a closed port, secondary Unbound: every query answered by the secondary"

# --- every upstream down -------------------------------------------------------------------------
start_dnsward -u "tls://127.0.0.1:$CLOSED1#upstream.test" -u "tls://127.0.0.1:$CLOSED2#upstream.test" \
    --ca-file "$CERTS/ca.pem" --timeout 2s --attempt-timeout 1s
for i in 1 2 3; do
    expect_servfail_in_time 2 "all upstreams down, query $i over UDP" "all-down-$i.bench.test"
    expect_servfail_in_time 2 "all upstreams down, query $i over TCP" "all-down-tcp-$i.bench.test" -t
done
assert_dw_alive "all upstreams down"
# Still serving: a burst of queries all get their SERVFAIL, none is left unanswered.
out=$(dw_dwq -t -n 200 -w 10 burst.all-down.bench.test A || true)
assert_contains "all upstreams down, 200 pipelined queries" "$out" "answered=200 "
assert_contains "all upstreams down, 200 pipelined queries" "$out" "rcodes=SERVFAIL:200 addrs=none "
stop_dnsward_clean
ok "all upstreams down (two closed ports): SERVFAIL within the deadline, and still serving"

# --- an upstream that goes away and comes back ----------------------------------------------------
start_dnsward -u "$UNBOUND" --ca-file "$CERTS/ca.pem" --timeout 2s --attempt-timeout 1s
expect_answer_in_time 2 "before Unbound stops" restart-before.bench.test 192.0.2.1
stop_unbound
expect_servfail_in_time 2 "while Unbound is down" restart-down.bench.test
start_unbound
t0=$(now_ms)
n=0
until out=$(dw_dwq -w 4 "restart-after-$n.bench.test" A) && grep -q 'A 192.0.2.1' <<<"$out"; do
    n=$((n + 1))
    (($(now_ms) - t0 < 10000)) || fail "no answer within 10 s of Unbound's restart; last: $out"
    sleep 0.5
done
echo "#   answered $(($(now_ms) - t0)) ms after Unbound restarted ($n SERVFAIL before)"
stop_dnsward_clean
ok "an upstream that stops and restarts: SERVFAIL while down, answers again once it is back"

# --- misbehaving upstreams ---------------------------------------------------------------------
for mode in stall close midanswer garbage wrongid wrongq; do
    start_fault F "$mode" good

    # Alone: SERVFAIL in time, never its bad answer.
    start_dnsward -u "tls://127.0.0.1:$F_PORT#upstream.test" --ca-file "$CERTS/ca.pem" \
        --timeout 2s --attempt-timeout 700ms
    expect_servfail_in_time 2 "$mode upstream alone, UDP" "alone-$mode.bench.test"
    expect_servfail_in_time 2 "$mode upstream alone, TCP" "alone-tcp-$mode.bench.test" -t
    assert_ge "$mode upstream alone: queries it read" 1 "$(fault_count F query)"
    assert_dw_alive "$mode upstream alone"
    stop_dnsward_clean
    ok "$mode upstream alone: SERVFAIL within the deadline; its answer never reaches the client"

    # First, with Unbound second: answered by Unbound (192.0.2.1), never by the fault server
    # (192.0.2.9). Query until the fault server has been tried at least once.
    before=$(fault_count F query)
    start_dnsward -u "tls://127.0.0.1:$F_PORT#upstream.test" -u "$UNBOUND" --ca-file "$CERTS/ca.pem" \
        --timeout 3s --attempt-timeout 700ms
    i=0
    while :; do
        i=$((i + 1))
        expect_answer_in_time 3 "$mode upstream first, query $i" "paired-$mode-$i.bench.test" 192.0.2.1
        expect_answer_in_time 3 "$mode upstream first, TCP query $i" "paired-tcp-$mode-$i.bench.test" 192.0.2.1 -t
        ((i >= 2 && $(fault_count F query) > before)) && break
        ((i < 12)) || fail "$mode upstream first: the fault server was never tried in $i queries"
    done
    out=$(dw_dwq -t -n 50 -w 20 "burst-$mode.bench.test" A || true)
    assert_contains "$mode upstream first, 50 pipelined queries" "$out" "answered=50 "
    assert_contains "$mode upstream first, 50 pipelined queries" "$out" "rcodes=NOERROR:50 addrs=192.0.2.1:50 "
    assert_dw_alive "$mode upstream first"
    stop_dnsward_clean
    stop_pid "$F_PID"
    ok "$mode upstream first, Unbound second: answered by Unbound, the bad answer never accepted"
done

# wrongid and wrongq answer 192.0.2.9; the check that no client ever saw it is in the
# expect_* helpers above (SERVFAIL with no record, or exactly 192.0.2.1).
