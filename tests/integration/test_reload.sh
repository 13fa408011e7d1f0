#!/usr/bin/env bash
# test_reload: SIGHUP reloads the whole configuration, through the real daemon in front of
# the real Unbound (and of fault_upstream.py where an upstream must be slow).
#
#   load       dnsperf runs while the configuration is reloaded ten times (strategy,
#              cache size, allow list and the upstream list change): no query is lost,
#              every answer is NOERROR, and the cache's hit count keeps growing
#   cache      an entry cached before the reloads is still answered from the cache
#   in-flight  a query waiting on a slow upstream when the reload replaces that upstream
#              gets the slow upstream's answer, not SERVFAIL
#   effect     a new allow list, a new upstream, a smaller cache, a query log take effect
#              at once
#   broken     a file with an error is refused, the error named with file:line, and the
#              running configuration keeps answering
#   restart    a changed listener is reported as needing a restart, and is not bound
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig dnsperf unbound openssl python3 ss
need_dnsward
need_dwq

make_certs
start_unbound
UNBOUND="tls://127.0.0.1:$UB_DOT#upstream.test"
UNBOUND_DOH="https://127.0.0.1:$UB_DOH/dns-query#upstream.test"
CONF=$T/reload.conf

# write_conf [KEY = VALUE lines...]: the test's configuration: Unbound's DoT as upstream,
# then the lines given.
write_conf() {
    {
        echo "ca-file = $CERTS/ca.pem"
        echo "upstream = $UNBOUND"
        printf '%s\n' "$@"
    } >"$CONF.new"
    mv "$CONF.new" "$CONF"
}

reloads_logged() { grep -c 'SIGHUP: configuration reloaded' "$DW_LOG" || true; }
refusals_logged() { grep -c 'the running configuration stays in force' "$DW_LOG" || true; }

# reload: SIGHUP, and wait until the log says it was put in force (or refused).
reload() {
    local before=$(($(reloads_logged) + $(refusals_logged)))
    kill -HUP "$DW_PID"
    wait_until 5 eval "(( \$(reloads_logged) + \$(refusals_logged) > $before ))" ||
        fail "no reload (or refusal) was logged within 5 s of SIGHUP"
}

status_of() { dig_status "$(dw_dig "$@" 2>&1)"; }

write_conf "strategy = failover"
start_dnsward -c "$CONF"

# ---------------------------------------------------------------------------------------
# load: ten reloads while dnsperf runs
expect_a "warm-up" kept.bench.test 192.0.2.1
[[ $(ub_count 'kept\.bench\.test') == 1 ]] || fail "warm-up: Unbound saw kept.bench.test $(ub_count 'kept\.bench\.test') times"

names=$T/names.txt
for i in $(seq 1 300); do echo "n$i.bench.test A"; done >"$names"
dw_stats
hits0=${DW_STATS[hits]}
perf_out=$T/dnsperf.out
dnsperf -s 127.0.0.1 -p "$DW_PORT" -d "$names" -l 10 -Q 1500 -c 4 -t 5 >"$perf_out" 2>&1 &
perf_pid=$!
_PIDS+=("$perf_pid")
sleep 1
variants=(
    "strategy = round-robin|cache-size = 2M"
    "strategy = fastest|upstream = $UNBOUND_DOH"
    "strategy = failover|allow = 127.0.0.0/8|allow = ::1/128"
    "strategy = round-robin|cache-size = 8M|upstream = $UNBOUND_DOH"
    "strategy = fastest|max-attempts = 2"
    "strategy = failover|timeout = 4s"
    "strategy = round-robin|upstream = $UNBOUND_DOH|prefetch = no"
    "strategy = fastest|cache-size = 4M"
    "strategy = failover|min-ttl = 10"
    "strategy = failover"
)
hits_mid=''
for i in "${!variants[@]}"; do
    IFS='|' read -r -a lines <<<"${variants[$i]}"
    write_conf "${lines[@]}"
    reload
    if ((i == 4)); then
        dw_stats
        hits_mid=${DW_STATS[hits]}
    fi
    sleep 0.7
done
wait "$perf_pid" || { cat "$perf_out"; fail "dnsperf failed"; }
_forget_pid "$perf_pid"
[[ $(reloads_logged) == 10 ]] || fail "load: $(reloads_logged) reloads logged, expected 10"
[[ $(refusals_logged) == 0 ]] || fail "load: a reload was refused: $(grep 'stays in force' "$DW_LOG")"
sent=$(sed -nE 's/^ *Queries sent: *([0-9]+).*/\1/p' "$perf_out")
completed=$(sed -nE 's/^ *Queries completed: *([0-9]+).*/\1/p' "$perf_out")
lost=$(sed -nE 's/^ *Queries lost: *([0-9]+).*/\1/p' "$perf_out")
noerror=$(sed -nE 's/^ *Response codes: *NOERROR ([0-9]+).*/\1/p' "$perf_out")
assert_ge "load: queries sent" 5000 "${sent:-0}"
assert_eq "load: queries lost" 0 "${lost:-x}"
assert_eq "load: queries completed" "$sent" "${completed:-x}"
assert_eq "load: NOERROR answers" "$completed" "${noerror:-x}"
dw_stats
assert_ge "load: hits after five reloads" $((hits0 + 1000)) "$hits_mid"
assert_ge "load: hits after ten reloads" $((hits_mid + 1000)) "${DW_STATS[hits]}"
ok "load: 10 reloads under dnsperf ($sent queries, 0 lost, hits $hits0 -> $hits_mid -> ${DW_STATS[hits]})"

expect_a "cache" kept.bench.test 192.0.2.1
[[ $(ub_count 'kept\.bench\.test') == 1 ]] || fail "cache: kept.bench.test was asked upstream again after the reloads"
ok "cache: an entry cached before ten reloads is answered from the cache"

# ---------------------------------------------------------------------------------------
# in-flight: a query on its way to a slow upstream survives the reload that replaces it
start_fault SLOW ok good --delay 1500
write_conf "upstream = tls://127.0.0.1:$SLOW_PORT#upstream.test" "attempt-timeout = 3s" "timeout = 5s"
# The configuration's own upstream line is replaced: write it by hand.
sed -i "/^upstream = tls:\/\/127.0.0.1:$UB_DOT/d" "$CONF"
reload
t0=$(now_ms)
dw_dig slow.inflight.test A >"$T/inflight.out" 2>&1 &
dig_pid=$!
_PIDS+=("$dig_pid")
wait_until 3 eval "(( \$(fault_count SLOW query) >= 1 ))" || fail "in-flight: the slow upstream saw no query"
write_conf "strategy = failover"
reload
wait "$dig_pid" || true
_forget_pid "$dig_pid"
took=$(($(now_ms) - t0))
out=$(cat "$T/inflight.out")
[[ $(dig_status "$out") == NOERROR ]] || fail "in-flight: the query in flight during the reload got: $out"
assert_contains "in-flight: the slow upstream's answer" "$out" "192.0.2.9"
assert_ge "in-flight: it waited for the slow upstream (ms)" 1000 "$took"
expect_a "in-flight: the new upstream answers" new.bench.test 192.0.2.1
ok "in-flight: answered by the replaced upstream after ${took} ms; new queries go to the new one"
stop_pid "$SLOW_PID"

# ---------------------------------------------------------------------------------------
# effect: allow, upstream and cache size take effect at once
write_conf "allow = 127.0.0.2/32"
reload
[[ $(status_of kept.bench.test A) == REFUSED ]] || fail "effect: 127.0.0.1 is no longer allowed, yet got $(status_of kept.bench.test A)"
out=$(dig @127.0.0.1 -p "$DW_PORT" -b 127.0.0.2 +tries=1 +time=5 kept.bench.test A 2>&1)
[[ $(dig_status "$out") == NOERROR ]] || fail "effect: 127.0.0.2 is allowed, yet got: $out"
write_conf "strategy = failover"
reload
[[ $(status_of kept.bench.test A) == NOERROR ]] || fail "effect: 127.0.0.1 allowed again, yet got $(status_of kept.bench.test A)"
ok "effect: a new allow list refuses 127.0.0.1 and admits 127.0.0.2, and back"

free_port DEAD
write_conf "upstream = tls://127.0.0.1:$DEAD#upstream.test" "timeout = 1500ms" "attempt-timeout = 500ms"
sed -i "/^upstream = tls:\/\/127.0.0.1:$UB_DOT/d" "$CONF"
reload
[[ $(status_of never-cached.bench.test A) == SERVFAIL ]] || fail "effect: with a dead upstream an uncached name should get SERVFAIL"
[[ $(status_of kept.bench.test A) == NOERROR ]] || fail "effect: with a dead upstream a cached name should still be answered"
write_conf "strategy = failover"
reload
expect_a "effect: the upstream is back" never-cached.bench.test 192.0.2.1
ok "effect: a dead upstream fails new names while the cache answers the old, and back"

dw_stats
entries_before=${DW_STATS[entries]}
write_conf "cache-size = 0"
reload
dw_stats
assert_eq "effect: entries after cache-size 0" 0 "${DW_STATS[entries]}"
write_conf "strategy = failover"
reload
ok "effect: cache-size 0 empties the cache ($entries_before entries before)"

write_conf "query-log = $T/queries.log"
reload
expect_a "effect: a query log turned on" logged.bench.test 192.0.2.1
wait_until 3 grep -q 'logged\.bench\.test\. A NOERROR' "$T/queries.log" ||
    fail "effect: the query log turned on by a reload has no line for the query: $(cat "$T/queries.log" 2>&1)"
write_conf "strategy = failover"
reload
expect_a "effect: the query log turned off" unlogged.bench.test 192.0.2.1
sleep 1.2
! grep -q 'unlogged' "$T/queries.log" || fail "effect: the query log turned off by a reload still logs"
ok "effect: a reload turns the query log on and off"

# ---------------------------------------------------------------------------------------
# broken: the old configuration keeps answering
write_conf "strategy = failover" "allow = 127.0.0.2/32" "cache-size = lots"
failures=$(refusals_logged)
reload
assert_eq "broken: refusals logged" $((failures + 1)) "$(refusals_logged)"
line=$(grep 'stays in force' "$DW_LOG" | tail -n 1)
assert_contains "broken: the error names file and line" "$line" "$CONF:5: cache-size"
[[ $(status_of bench.test A) == NOERROR ]] || fail "broken: the running configuration (which allows 127.0.0.1) should answer"
printf 'upstream = tls://127.0.0.1:%s#upstream.test\nbogus-key = 1\n' "$UB_DOT" >"$CONF"
reload
assert_contains "broken: unknown key" "$(grep 'stays in force' "$DW_LOG" | tail -n 1)" "bogus-key: unknown key"
write_conf "upstream = https://dns.example/dns-query"
reload
assert_contains "broken: a name without bootstrap" "$(grep 'stays in force' "$DW_LOG" | tail -n 1)" "bootstrap"
expect_a "broken: still answering" another.bench.test 192.0.2.1
assert_dw_alive "broken"
ok "broken: three bad files refused with the reason; the running configuration answers"

# ---------------------------------------------------------------------------------------
# restart: a listener change is reported and not applied
free_port OTHER
write_conf "doh-plain-listen = 127.0.0.1:$OTHER"
reload
assert_contains "restart: reported" "$(grep 'needs a restart' "$DW_LOG" | tail -n 1)" "doh-plain-listen changed"
! tcp_listening "$OTHER" || fail "restart: 127.0.0.1:$OTHER was bound by a reload"
expect_a "restart: still answering on the old listener" bench.test 192.0.2.1
ok "restart: a new listener is reported as needing a restart and not bound"

stop_dnsward_clean
ok "shutdown: clean after $(reloads_logged) reloads"
