#!/usr/bin/env bash
# test_cache: the answer cache, through the real daemon in front of the real Unbound (and
# of fault_upstream.py where the upstream must be slow), with dig, kdig and dwq as clients.
# What reaches the upstream is counted in Unbound's query log (ub_count) or in
# fault_upstream.py's events, and what dnsward did in its own counters (SIGUSR1, dw_stats).
#
#   hits      a repeated question is answered from the cache, its TTLs aged, with the
#             client's ID and spelling; EDNS, DO and CD are part of the key
#   negative  NXDOMAIN and NODATA are cached with their SOA (RFC 2308)
#   expiry    a short TTL runs out and the next query goes upstream again; min-ttl,
#             max-ttl; cache-size 0 turns the cache off
#   coalesce  100 identical queries in flight at once make one upstream query
#   stale     an expired entry answers (TTL 30) when the upstream stalls (after
#             --stale-client-timeout) or is down (RFC 8767), and fresh answers come back
#             with the upstream; never with --serve-stale no
#   prefetch  a name asked continuously is refreshed before it expires
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig kdig unbound openssl python3 ss
need_dnsward
need_dwq

make_certs
start_unbound
UNBOUND="tls://127.0.0.1:$UB_DOT#upstream.test"

# ---------------------------------------------------------------------------------------
# Helpers

# ask NAME [TYPE [dig args...]]: dig through dnsward, showing the header, the question,
# the OPT pseudo-section and the answer and authority sections.
ask() {
    local name=$1 type=${2:-A}
    shift $(($# >= 2 ? 2 : 1))
    dw_dig +noall +comments +question +answer +authority "$@" "$name" "$type" 2>&1
}

# rr_ttl OUTPUT TYPE: the TTL of the first record of TYPE that dig shows (answer or
# authority), or 99999 if there is none (which no TTL check accepts).
rr_ttl() {
    awk -v t="$2" '$0 !~ /^;/ && NF >= 5 && $3 == "IN" && $4 == t { print $2; found = 1; exit }
                   END { if (!found) print 99999 }' <<<"$1"
}

# same_answer OUTPUT: what must not change between an answer from upstream and the same
# answer from the cache (everything but the ID, the TTLs, the timing and the cookie).
same_answer() {
    sed -E -e 's/(id: )[0-9]+/\1ID/' \
        -e '/^;; (Query time|SERVER|WHEN|MSG SIZE|Got answer)/d' -e '/^; COOKIE:/d' -e '/^$/d' \
        -e 's/^([^;[:space:]][^[:space:]]*[[:space:]]+)[0-9]+/\1TTL/' <<<"$1"
}

# stat_delta KEY: DW_STATS[KEY] now minus in the snapshot S0 (an associative array copy).
declare -A S0=()
snapshot() {
    dw_stats
    S0=()
    local k
    for k in "${!DW_STATS[@]}"; do S0[$k]=${DW_STATS[$k]}; done
}
stat_delta() { echo $((${DW_STATS[$1]:-0} - ${S0[$1]:-0})); }

# stop_dnsward_checked: stop_dnsward_clean, and the counters were logged at shutdown.
stop_dnsward_checked() {
    local log=$DW_LOG
    stop_dnsward_clean
    tail -n 5 "$log" | grep -q 'stats: queries=' ||
        fail "no stats line in the last lines of $log at shutdown: $(tail -n 5 "$log")"
}

ub() { ub_count "^$1\$"; } # ub 'name\.zone\.test\.': queries Unbound received for it

# =======================================================================================
# 1. Hits: the second query is answered from the cache
start_dnsward -u "$UNBOUND" --ca-file "$CERTS/ca.pem" --timeout 5s
snapshot

out1=$(ask cache1.bench.test) || fail "cache1: no reply: $out1"
assert_eq "cache1, first query: status" NOERROR "$(dig_status "$out1")"
assert_eq "cache1, first query: TTL from Unbound" 300 "$(rr_ttl "$out1" A)"
assert_eq "cache1, first query: queries Unbound received" 1 "$(ub 'cache1\.bench\.test\.')"
sleep 2.2
out2=$(ask cache1.bench.test) || fail "cache1, second query: no reply: $out2"
assert_eq "cache1, second query 2.2 s later: status" NOERROR "$(dig_status "$out2")"
assert_match "cache1, second query: the record" "$out2" \
    $'^cache1\\.bench\\.test\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\\.0\\.2\\.1$'
assert_eq "cache1, second query: queries Unbound received (a hit sends none)" 1 "$(ub 'cache1\.bench\.test\.')"
ttl=$(rr_ttl "$out2" A)
assert_le "cache1, second query 2.2 s later: TTL lowered by the time in the cache" 298 "${ttl:-999}"
assert_ge "cache1, second query 2.2 s later: TTL lowered by no more than that" 295 "${ttl:-0}"
assert_eq "cache1: the hit is the forwarded answer, but for its ID and TTL" \
    "$(same_answer "$out1")" "$(same_answer "$out2")"
echo "#   TTL 300 from Unbound, $ttl from the cache 2.2 s later"
ok "a repeated query is answered from the cache (no upstream query), its TTL aged"

out=$(ask CaChE1.BeNcH.TeSt) || fail "CaChE1: no reply (dig checks the ID): $out"
assert_eq "CaChE1.BeNcH.TeSt: status" NOERROR "$(dig_status "$out")"
assert_match "CaChE1.BeNcH.TeSt: the question keeps the client's case" "$out" \
    $'^;CaChE1\\.BeNcH\\.TeSt\\.[[:space:]]+IN[[:space:]]+A$'
assert_match "CaChE1.BeNcH.TeSt: the answer's owner name keeps the client's case" "$out" \
    $'^CaChE1\\.BeNcH\\.TeSt\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\\.0\\.2\\.1$'
assert_not_contains "CaChE1.BeNcH.TeSt: no warning from dig" "$out" "WARNING"
out=$(ask cAcHe1.bEnCh.tEsT A +tcp) || fail "cAcHe1 over TCP: no reply: $out"
assert_match "cAcHe1.bEnCh.tEsT over TCP: the answer in the client's case" "$out" \
    $'^cAcHe1\\.bEnCh\\.tEsT\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\\.0\\.2\\.1$'
assert_eq "cache1 in other cases, UDP and TCP: queries Unbound received" 1 "$(ub 'cache1\.bench\.test\.')"
# dwq sends no EDNS: another key, one more upstream query; then hits with its own ID and case.
out=$(dw_dwq -i 4660 cache1.bench.test A) || fail "dwq cache1: $out"
assert_contains "dwq cache1 (no EDNS, first)" "$out" "A 192.0.2.1"
n=$(ub 'cache1\.bench\.test\.')
for id in 0 65535; do
    for t in "" -t; do
        out=$(dw_dwq $t -i "$id" CACHE1.bench.TEST A) || fail "dwq -i $id $t CACHE1: $out"
        assert_contains "dwq ${t:-UDP} -i $id CACHE1.bench.TEST, from the cache" "$out" "rcode=NOERROR id=$id "
        assert_contains "dwq ${t:-UDP} -i $id CACHE1.bench.TEST, from the cache" "$out" "question CACHE1.bench.TEST. A"
        assert_contains "dwq ${t:-UDP} -i $id CACHE1.bench.TEST, from the cache" "$out" \
            "match id=yes question=exact sent_id=$id"
        assert_contains "dwq ${t:-UDP} -i $id CACHE1.bench.TEST, from the cache" "$out" "A 192.0.2.1"
    done
done
assert_eq "dwq's repeated queries: queries Unbound received" "$n" "$(ub 'cache1\.bench\.test\.')"
out=$(dw_kdig +short cache1.bench.test A 2>&1) || fail "kdig cache1: $out"
assert_eq "kdig cache1" 192.0.2.1 "$out"
ok "a hit in another case (dig UDP/TCP, dwq) echoes the client's spelling and ID"

# EDNS, DO and CD are part of the key: each variant is its own upstream query once.
declare -A first=()
variants=(plain +dnssec +cdflag +noedns)
for v in "${variants[@]}"; do
    args=()
    [[ $v == plain ]] || args=("$v")
    before=$(ub 'cache2\.bench\.test\.')
    first[$v]=$(ask cache2.bench.test A "${args[@]}") || fail "cache2 $v: no reply: ${first[$v]}"
    assert_eq "cache2 $v, first time: status" NOERROR "$(dig_status "${first[$v]}")"
    assert_contains "cache2 $v, first time" "${first[$v]}" "192.0.2.1"
    assert_eq "cache2 $v, first time: a query of its own upstream" $((before + 1)) "$(ub 'cache2\.bench\.test\.')"
done
for v in "${variants[@]}"; do
    args=()
    [[ $v == plain ]] || args=("$v")
    out=$(ask cache2.bench.test A "${args[@]}") || fail "cache2 $v, again: no reply: $out"
    assert_eq "cache2 $v, again: the same answer as the first time (but ID and TTL)" \
        "$(same_answer "${first[$v]}")" "$(same_answer "$out")"
    case $v in
    +noedns) assert_not_contains "cache2 +noedns, from the cache: no OPT record" "$out" "OPT PSEUDOSECTION" ;;
    +dnssec) assert_match "cache2 +dnssec, from the cache: OPT with DO" "$out" '; EDNS: version: 0, flags: do;' ;;
    *) assert_contains "cache2 $v, from the cache: an OPT record" "$out" "OPT PSEUDOSECTION" ;;
    esac
done
assert_not_contains "cache2 +noedns, first time: no OPT record" "${first[+noedns]}" "OPT PSEUDOSECTION"
assert_eq "cache2: queries Unbound received for the 4 variants asked twice each" 4 "$(ub 'cache2\.bench\.test\.')"
# dwq sends neither EDNS nor AD (dig sets AD): its own entry, which never carries an OPT.
out=$(dw_dwq cache2.bench.test A) || fail "dwq cache2 (no EDNS): $out"
assert_not_contains "dwq cache2, no EDNS, first time: no OPT record" "$out" "opt "
n=$(ub 'cache2\.bench\.test\.')
out=$(dw_dwq -t cache2.bench.test A) || fail "dwq -t cache2 (no EDNS): $out"
assert_contains "dwq -t cache2, no EDNS, from the cache" "$out" "A 192.0.2.1"
assert_not_contains "dwq -t cache2, no EDNS, from the cache: no OPT record" "$out" "opt "
assert_eq "cache2: dwq's second query was a hit" "$n" "$(ub 'cache2\.bench\.test\.')"
ok "EDNS, DO (+dnssec), CD (+cdflag), no EDNS: separate entries; +noedns never gets an OPT"

# =======================================================================================
# 2. Negative answers (RFC 2308): NXDOMAIN and NODATA, with their SOA
soa_re=$'^nx\\.test\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA[[:space:]]+ns\\.nx\\.test\\. hostmaster\\.nx\\.test\\. 1 3600 600 86400 60$'
for i in 1 2; do
    out=$(ask nope1.nx.test A) || fail "NXDOMAIN $i: no reply: $out"
    assert_eq "NXDOMAIN, query $i: queries Unbound received" 1 "$(ub 'nope1\.nx\.test\.')"
    assert_eq "NXDOMAIN, query $i: status" NXDOMAIN "$(dig_status "$out")"
    assert_match "NXDOMAIN, query $i: SOA in authority" "$out" "$soa_re"
    assert_match "NXDOMAIN, query $i: counts" "$out" 'ANSWER: 0, AUTHORITY: 1,'
    assert_le "NXDOMAIN, query $i: SOA TTL (at most its MINIMUM, 60)" 60 "$(rr_ttl "$out" SOA)"
done
out=$(dw_dwq -t -e NoPe1.Nx.TeSt A) || fail "NXDOMAIN over TCP: $out"
assert_contains "NXDOMAIN over TCP, EDNS, other case (dwq)" "$out" "rcode=NXDOMAIN"
# Names in the SOA compressed against the question follow its case: compare without case.
assert_contains "NXDOMAIN over TCP, EDNS, other case (dwq)" "${out,,}" "auth soa ns.nx.test. hostmaster.nx.test. 1 3600 600 86400 60"
assert_contains "NXDOMAIN over TCP, EDNS, other case (dwq)" "$out" "question=exact"
n=$(ub 'nope1\.nx\.test\.')
out=$(dw_dwq -e nope1.nx.test A) || fail "NXDOMAIN, dwq -e again: $out"
assert_contains "NXDOMAIN, dwq -e again" "$out" "rcode=NXDOMAIN"
assert_contains "NXDOMAIN, dwq -e again" "$out" "auth SOA ns.nx.test."
assert_eq "NXDOMAIN: the repeated dwq -e was a hit" "$n" "$(ub 'nope1\.nx\.test\.')"
ok "NXDOMAIN is cached with its SOA in authority (a second query sends none upstream)"

nd_soa_re=$'^nodata\\.test\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA[[:space:]]+ns\\.nodata\\.test\\. hostmaster\\.nodata\\.test\\. 1 3600 600 86400 60$'
for i in 1 2; do
    out=$(ask nd1.nodata.test AAAA) || fail "NODATA $i: no reply: $out"
    assert_eq "NODATA (AAAA of an A-only name), query $i: status" NOERROR "$(dig_status "$out")"
    assert_match "NODATA, query $i: counts" "$out" 'ANSWER: 0, AUTHORITY: 1,'
    assert_match "NODATA, query $i: SOA in authority" "$out" "$nd_soa_re"
done
assert_eq "NODATA: queries Unbound received" 1 "$(ub 'nd1\.nodata\.test\.')"
expect_a "the A of the NODATA name (another type: another key)" nd1.nodata.test 192.0.2.4
expect_a "the A of the NODATA name, again" nd1.nodata.test 192.0.2.4
assert_eq "nd1.nodata.test: queries Unbound received (AAAA once, A once)" 2 "$(ub 'nd1\.nodata\.test\.')"
ok "NODATA is cached with its SOA in authority; the type is part of the key"

# =======================================================================================
# 3. Expiry: a TTL of 2 s is refreshed from upstream once it ran out
out=$(ask s1.short.test) || fail "s1.short.test: $out"
assert_le "s1.short.test, first: TTL" 2 "$(rr_ttl "$out" A)"
out=$(ask s1.short.test) || fail "s1.short.test, again: $out"
assert_contains "s1.short.test, again" "$out" "192.0.2.2"
assert_eq "s1.short.test, asked again at once: a hit" 1 "$(ub 's1\.short\.test\.')"
sleep 3.2
out=$(ask s1.short.test) || fail "s1.short.test after 3.2 s: $out"
assert_eq "s1.short.test after 3.2 s: status" NOERROR "$(dig_status "$out")"
assert_contains "s1.short.test after 3.2 s" "$out" "192.0.2.2"
ttl=$(rr_ttl "$out" A)
assert_le "s1.short.test after 3.2 s, upstream up: a fresh TTL (at most 2), not a stale 30" 2 "${ttl:-999}"
assert_eq "s1.short.test after 3.2 s: queries Unbound received" 2 "$(ub 's1\.short\.test\.')"
out=$(ask s1.short.test) || fail "s1.short.test after the refresh: $out"
assert_eq "s1.short.test after the refresh: a hit again" 2 "$(ub 's1\.short\.test\.')"
ok "a TTL of 2: after 3.2 s the next query goes upstream and gets a fresh answer (TTL $ttl)"

dw_stats
echo "#   $DW_STATS_LINE"
assert_eq "stats: no SERVFAIL so far" 0 "$(stat_delta servfail)"
assert_eq "stats: no stale answer while the upstream is up" 0 "$(stat_delta stale)"
assert_ge "stats: hits" 15 "$(stat_delta hits)"
stop_dnsward_checked
ok "stats line on SIGUSR1 and at shutdown; clean exit"

# --- min-ttl, max-ttl; cache-size 0 -------------------------------------------------------
start_dnsward -u "$UNBOUND" --ca-file "$CERTS/ca.pem" --min-ttl 5s --max-ttl 6
out=$(ask mm1.bench.test) || fail "mm1 max-ttl: $out"
out=$(ask mm1.bench.test) || fail "mm1 max-ttl, again: $out"
assert_le "--max-ttl 6: TTL of a 300 s answer from the cache" 6 "$(rr_ttl "$out" A)"
out=$(ask mm2.short.test) || fail "mm2 min-ttl: $out"
sleep 2.5
out=$(ask mm2.short.test) || fail "mm2 min-ttl after 2.5 s: $out"
ttl=$(rr_ttl "$out" A)
assert_eq "--min-ttl 5: a 2 s answer 2.5 s later is still a hit" 1 "$(ub 'mm2\.short\.test\.')"
assert_ge "--min-ttl 5: its TTL after 2.5 s" 1 "${ttl:-0}"
assert_le "--min-ttl 5: its TTL after 2.5 s" 5 "${ttl:-99}"
assert_eq "--max-ttl 6: still a hit after 2.5 s" 1 "$(ub 'mm1\.bench\.test\.')"
sleep 4
out=$(ask mm1.bench.test) || fail "mm1 after 6.5 s: $out"
assert_le "--max-ttl 6: after 6.5 s a fresh answer's TTL" 6 "$(rr_ttl "$out" A)"
assert_eq "--max-ttl 6: after 6.5 s the query went upstream" 2 "$(ub 'mm1\.bench\.test\.')"
out=$(ask mm2.short.test) || fail "mm2 after 6.5 s: $out"
assert_eq "--min-ttl 5: after 6.5 s the query went upstream" 2 "$(ub 'mm2\.short\.test\.')"
stop_dnsward_checked
ok "--min-ttl 5s and --max-ttl 6 bound how long entries live"

start_dnsward -u "$UNBOUND" --ca-file "$CERTS/ca.pem" --cache-size 0
for i in 1 2 3; do expect_a "--cache-size 0, query $i" off1.bench.test 192.0.2.1; done
assert_eq "--cache-size 0: every query reaches the upstream" 3 "$(ub 'off1\.bench\.test\.')"
stop_dnsward_checked
ok "--cache-size 0: no cache, every query forwarded"

# =======================================================================================
# 4. Coalescing: 100 identical queries in flight at once, one upstream query.
# fault_upstream.py answers 5 s after each query, so they all wait together for certain;
# the proof that they overlapped is below (all 100 reached dnsward before any answer).
start_fault F ok good --delay 5000
start_dnsward -u "tls://127.0.0.1:$F_PORT#upstream.test" --ca-file "$CERTS/ca.pem" \
    --timeout 12s --attempt-timeout 10s
snapshot
pids=()
limit=$(($(now_ms) + 4500))
for i in $(seq 1 100); do
    t=''
    ((i % 4 == 0)) && t=-t # a quarter over TCP: the flight does not care
    dw_dwq $t -w 20 -i "$i" coal.bench.test A >"$T/coal.$i" 2>&1 &
    pids+=($!)
done
while :; do
    dw_stats
    (($(stat_delta queries) >= 100)) && break
    (($(now_ms) < limit)) || fail "coalescing: only $(stat_delta queries) of the 100 queries reached dnsward within 4.5 s: $DW_STATS_LINE"
    sleep 0.05
done
# dnsward's own counters at that moment prove the overlap: none of the 100 has been
# answered yet (from upstream, the cache or a SERVFAIL), so all of them wait together.
snap="$DW_STATS_LINE"
for k in answered hits stale servfail; do
    assert_eq "coalescing: '$k' when all 100 queries had reached dnsward ($snap)" 0 "$(stat_delta "$k")"
done
# (The one upstream query may still wait for the TLS handshake: at most one.)
assert_le "coalescing: upstream queries while all 100 wait" 1 "$(grep -c '^query coal\.bench\.test\. ' "$F_EVENTS" || true)"
for i in $(seq 1 100); do
    wait "${pids[$((i - 1))]}" || fail "coalesced query $i: $(cat "$T/coal.$i")"
    out=$(<"$T/coal.$i")
    [[ $out == "rcode=NOERROR id=$i "* && $out == *$'\nA 192.0.2.9\n'* &&
        $out == *$'\nmatch id=yes question=exact sent_id='"$i" ]] ||
        fail "coalesced query $i: expected NOERROR, A 192.0.2.9, its own ID $i and question, saw:
$(_quote "$out")"
done
assert_eq "coalescing: upstream queries for the 100" 1 "$(grep -c '^query coal\.bench\.test\. ' "$F_EVENTS" || true)"
dw_stats
echo "#   $DW_STATS_LINE"
assert_eq "stats: coalesced" 99 "$(stat_delta coalesced)"
assert_eq "stats: forwarded" 1 "$(stat_delta forwarded)"
assert_eq "stats: servfail" 0 "$(stat_delta servfail)"
out=$(dw_dwq -w 2 coal.bench.test A) || fail "coal.bench.test a 101st time: $out"
assert_contains "coal.bench.test a 101st time, from the cache" "$out" "A 192.0.2.9"
assert_eq "coal.bench.test a 101st time: no upstream query" 1 "$(grep -c '^query coal\.bench\.test\. ' "$F_EVENTS" || true)"
stop_dnsward_checked
stop_pid "$F_PID"
ok "100 identical queries at once (75 UDP, 25 TCP): one upstream query, 100 answers, each its own ID"

# =======================================================================================
# 5. Serve-stale (RFC 8767)
start_dnsward -u "$UNBOUND" --ca-file "$CERTS/ca.pem" --timeout 5s
snapshot

# 5a. A stalled upstream (Unbound frozen): the stale answer comes by the client timer.
out=$(ask stale1.short.test) || fail "stale1: $out"
assert_contains "stale1, fresh" "$out" "192.0.2.2"
out=$(dw_dwq stale1.short.test A) || fail "stale1 dwq: $out"
assert_contains "stale1 dwq, fresh" "$out" "A 192.0.2.2"
freeze_unbound
sleep 3
t0=$(now_ms)
out=$(ask stale1.short.test) || fail "stale1 with the upstream stalled: no reply: $out"
t1=$(now_ms)
assert_eq "stale1, upstream stalled, expired: status" NOERROR "$(dig_status "$out")"
assert_match "stale1, upstream stalled: the stale record with TTL 30" "$out" \
    $'^stale1\\.short\\.test\\.[[:space:]]+30[[:space:]]+IN[[:space:]]+A[[:space:]]+192\\.0\\.2\\.2$'
assert_le "stale1, upstream stalled: milliseconds until the stale answer (1.8 s timer + 1 s)" 2800 $((t1 - t0))
echo "#   stale answer after $((t1 - t0)) ms with the upstream stalled"
out=$(dw_dwq -w 4 stale1.short.test A) || fail "stale1 dwq, upstream stalled: $out"
assert_contains "stale1 dwq, upstream stalled" "$out" "rcode=NOERROR"
assert_contains "stale1 dwq, upstream stalled" "$out" "A 192.0.2.2"
thaw_unbound
ok "an expired entry with the upstream stalled: the stale answer (TTL 30) within the client timer"

# 5b. The upstream stopped: stale answers, never SERVFAIL; fresh ones once it is back.
t0=$(now_ms)
until out=$(ask stale2.short.test) && [[ $(rr_ttl "$out" A) =~ ^[0-2]$ ]]; do
    (($(now_ms) - t0 < 15000)) || fail "stale2: no fresh answer within 15 s of thawing Unbound: $out"
    sleep 0.3
done
out=$(dw_dwq stale2.short.test A) || fail "stale2 dwq: $out"
assert_contains "stale2 dwq, fresh" "$out" "A 192.0.2.2"
stop_unbound
sleep 3
dw_stats
sf0=${DW_STATS[servfail]}
for t in "" +tcp; do
    t0=$(now_ms)
    out=$(ask stale2.short.test A $t) || fail "stale2 ${t:-UDP}, Unbound stopped: no reply: $out"
    t1=$(now_ms)
    assert_eq "stale2 ${t:-UDP}, Unbound stopped, expired: status" NOERROR "$(dig_status "$out")"
    assert_match "stale2 ${t:-UDP}, Unbound stopped: the stale record with TTL 30" "$out" \
        $'^stale2\\.short\\.test\\.[[:space:]]+30[[:space:]]+IN[[:space:]]+A[[:space:]]+192\\.0\\.2\\.2$'
    assert_le "stale2 ${t:-UDP}, Unbound stopped: milliseconds until the answer" 2800 $((t1 - t0))
done
for t in "" -t; do
    out=$(dw_dwq $t -w 4 stale2.short.test A) || fail "stale2 dwq ${t:-UDP}, Unbound stopped: $out"
    assert_contains "stale2 dwq ${t:-UDP}, Unbound stopped" "$out" "rcode=NOERROR"
    assert_contains "stale2 dwq ${t:-UDP}, Unbound stopped" "$out" "A 192.0.2.2"
done
dw_stats
assert_eq "stats: no SERVFAIL for the stale name while Unbound is down" "$sf0" "${DW_STATS[servfail]}"
ok "an expired entry with the upstream stopped: stale answers (TTL 30) over UDP and TCP, no SERVFAIL"

start_unbound # on the same ports
t0=$(now_ms)
n=0
while :; do
    out=$(ask stale2.short.test) || fail "stale2 after Unbound restarted: no reply: $out"
    assert_eq "stale2 after Unbound restarted: status" NOERROR "$(dig_status "$out")"
    ttl=$(rr_ttl "$out" A)
    assert_contains "stale2 after Unbound restarted" "$out" "192.0.2.2"
    [[ $ttl =~ ^[0-2]$ ]] && break
    assert_eq "stale2 after Unbound restarted: a stale TTL until the refresh" 30 "$ttl"
    n=$((n + 1))
    (($(now_ms) - t0 < 45000)) || fail "stale2: still stale 45 s after Unbound restarted: $out"
    sleep 0.5
done
echo "#   fresh answer (TTL $ttl) $(($(now_ms) - t0)) ms after Unbound restarted ($n stale answers before)"
expect_a "a new name after Unbound restarted" stale3.bench.test 192.0.2.1
dw_stats
echo "#   $DW_STATS_LINE"
assert_ge "stats: stale answers" 5 "$(stat_delta stale)"
stop_dnsward_checked
ok "Unbound restarted on the same port: fresh answers (TTL <= 2) come back"

# 5c. --serve-stale no: the same situation gives SERVFAIL.
start_dnsward -u "$UNBOUND" --ca-file "$CERTS/ca.pem" --timeout 2s --serve-stale no
out=$(ask nostale1.short.test) || fail "nostale1: $out"
assert_contains "nostale1, fresh" "$out" "192.0.2.2"
out=$(dw_dwq nostale1.short.test A) || fail "nostale1 dwq: $out"
assert_contains "nostale1 dwq, fresh" "$out" "A 192.0.2.2"
out=$(ask nostale1.short.test) || fail "nostale1 again: $out"
assert_eq "--serve-stale no: the entry is cached all the same" 2 "$(ub 'nostale1\.short\.test\.')"
stop_unbound
sleep 3
t0=$(now_ms)
out=$(ask nostale1.short.test) || fail "nostale1, Unbound stopped: no reply: $out"
t1=$(now_ms)
assert_eq "--serve-stale no, Unbound stopped, expired: status" SERVFAIL "$(dig_status "$out")"
assert_not_contains "--serve-stale no: no stale record" "$out" "192.0.2.2"
assert_le "--serve-stale no: milliseconds until SERVFAIL (deadline 2 s + 1 s)" 3000 $((t1 - t0))
expect_servfail_in_time 2 "--serve-stale no, Unbound stopped (dwq)" nostale1.short.test
dw_stats
assert_eq "--serve-stale no: stats stale" 0 "${DW_STATS[stale]}"
stop_dnsward_checked
start_unbound
ok "--serve-stale no: an expired entry with the upstream down gives SERVFAIL"

# 5d. --stale-client-timeout sets the client timer: 500ms instead of 1.8 s.
start_dnsward -u "$UNBOUND" --ca-file "$CERTS/ca.pem" --timeout 5s --stale-client-timeout 500ms
out=$(ask stale4.short.test) || fail "stale4: $out"
assert_contains "stale4, fresh" "$out" "192.0.2.2"
freeze_unbound
sleep 3
t0=$(now_ms)
out=$(ask stale4.short.test) || fail "stale4 with the upstream stalled: no reply: $out"
t1=$(now_ms)
thaw_unbound
assert_match "stale4, --stale-client-timeout 500ms, upstream stalled: the stale record" "$out" \
    $'^stale4\\.short\\.test\\.[[:space:]]+30[[:space:]]+IN[[:space:]]+A[[:space:]]+192\\.0\\.2\\.2$'
assert_le "stale4, --stale-client-timeout 500ms: milliseconds until the stale answer (well before 1.8 s)" 1400 $((t1 - t0))
echo "#   stale answer after $((t1 - t0)) ms with --stale-client-timeout 500ms"
stop_dnsward_checked
ok "--stale-client-timeout 500ms: the stale answer comes after half a second"

# =======================================================================================
# 6. Prefetch: prefetch.test has a TTL of 10. Asked every 0.3 s for 14 s, the name is
# refreshed in the background during the last tenth of its lifetime: every answer comes
# from the cache (one miss: the first), no TTL ever reaches 0, and the refresh reached
# Unbound before the first answer that shows it (so before the old entry ran out).
# prefetch_run NAME SECONDS: sets TTLS[i], BEFORE[i] (Unbound's count before query i), N.
prefetch_run() {
    local name=$1 secs=$2 re i=0 t_end t_next now out
    re="^${name//./\\.}\\.\$"
    TTLS=() BEFORE=()
    t_next=$(now_ms)
    t_end=$((t_next + secs * 1000))
    while ((t_next < t_end)); do
        BEFORE[i]=$(ub_count "$re")
        out=$(ask "$name") || fail "$name, query $i: no reply: $out"
        [[ $out == *"status: NOERROR,"* && $out == *$'\tA\t192.0.2.3'* ]] ||
            fail "$name, query $i: expected NOERROR and A 192.0.2.3, saw:
$(_quote "$out")"
        TTLS[i]=$(rr_ttl "$out" A)
        i=$((i + 1))
        # One query every 0.3 s, whatever the time the checks took (never a burst).
        now=$(now_ms)
        t_next=$((t_next + 300 > now ? t_next + 300 : now))
        ((t_next <= now)) || sleep "$(printf '0.%03d' $((t_next - now)))"
    done
    N=$i
}

# first_rise: the index of the first answer whose TTL is above the one before, or -1.
first_rise() {
    local i
    for ((i = 1; i < N; i++)); do
        ((TTLS[i] > TTLS[i - 1])) && { echo "$i"; return; }
    done
    echo -1
}

start_dnsward -u "$UNBOUND" --ca-file "$CERTS/ca.pem"
snapshot
prefetch_run pf1.prefetch.test 14
dw_stats
echo "#   TTLs: ${TTLS[*]}"
echo "#   $DW_STATS_LINE"
assert_eq "prefetch: the first answer's TTL" 10 "${TTLS[0]}"
for ((i = 0; i < N; i++)); do
    assert_ge "prefetch: TTL of answer $i (${TTLS[*]})" 1 "${TTLS[i]}"
    assert_le "prefetch: TTL of answer $i (${TTLS[*]})" 10 "${TTLS[i]}"
done
m=$(first_rise)
((m > 0)) || fail "prefetch: the TTL never went up again in 14 s: ${TTLS[*]}"
# The last tenth of a 10 s lifetime is the second in which answers say TTL 1.
assert_eq "prefetch: a query fell in the last tenth of the lifetime (TTLs ${TTLS[*]})" 1 "${TTLS[m - 1]}"
assert_eq "prefetch: Unbound had the refresh before the first answer showing it (query $m; TTLs ${TTLS[*]}; before: ${BEFORE[*]})" \
    2 "${BEFORE[m]}"
assert_eq "prefetch: queries Unbound received in 14 s" 2 "$(ub 'pf1\.prefetch\.test\.')"
assert_eq "stats: misses (only the first query)" 1 "$(stat_delta misses)"
assert_eq "stats: hits (every other query)" $((N - 1)) "$(stat_delta hits)"
assert_eq "stats: prefetches" 1 "$(stat_delta prefetches)"
assert_eq "stats: forwarded (the first query and the prefetch)" 2 "$(stat_delta forwarded)"
assert_eq "stats: stale" 0 "$(stat_delta stale)"
stop_dnsward_checked
ok "prefetch: $N queries in 14 s, all from the cache but the first, TTL never 0, refreshed before expiry"

# The same with --prefetch no: the refresh is a miss after expiry, which the checks above
# tell apart (so they do test the prefetch).
start_dnsward -u "$UNBOUND" --ca-file "$CERTS/ca.pem" --prefetch no
snapshot
prefetch_run pf2.prefetch.test 12
dw_stats
echo "#   TTLs: ${TTLS[*]}"
m=$(first_rise)
((m > 0)) || fail "--prefetch no: the TTL never went up again in 12 s: ${TTLS[*]}"
assert_eq "--prefetch no: Unbound's count before the first refreshed answer (the query itself refreshed it)" \
    1 "${BEFORE[m]}"
assert_eq "--prefetch no: stats misses" 2 "$(stat_delta misses)"
assert_eq "--prefetch no: stats prefetches" 0 "$(stat_delta prefetches)"
ok "--prefetch no: the entry expires and the next query is a miss"

# =======================================================================================
# 7. A clean exit after all of it
stop_dnsward_checked
ok "clean shutdown: exit status 0, no sanitizer report, stats logged"
