#!/usr/bin/env bash
# test_doh_faults: DNS-over-HTTPS upstreams (RFC 8484 over HTTP/2) that misbehave. Each
# is a fault_upstream.py --proto doh in one mode (stalls, closes, cut bodies, garbage,
# other statuses and types, RST_STREAM, GOAWAY, answers to another ID or question, no
# "h2" by ALPN), one with a bad certificate, or a closed port. Alone, it costs the client
# a SERVFAIL within the deadline, never its answer, and the daemon keeps serving; first,
# with Unbound's DoH second, every query is answered by Unbound. The per-upstream counter
# line that dnsward logs on SIGUSR1 files each failure under its kind.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig unbound openssl python3 ss
need_dnsward
need_dwq

make_certs
start_unbound
UNBOUND="https://127.0.0.1:$UB_DOH/dns-query#upstream.test"
TIMEOUT=(--timeout 2s --attempt-timeout 700ms)

doh_url() { echo "https://127.0.0.1:$1/dns-query#upstream.test"; } # PORT

KINDS=(connect tls closed answer http goaway other)

# assert_kind WHAT KIND: the last dw_upstream_stats (lib.sh) has at least one failure of
# KIND, and none of another kind.
assert_kind() {
    local what=$1 kind=$2 k
    assert_ge "$what: failures of kind '$kind' in: $DW_UP_LINE" 1 "${DW_UP[$kind]:--1}"
    for k in "${KINDS[@]}"; do
        [[ $k == "$kind" ]] && continue
        assert_eq "$what: failures of kind '$k' (expected only '$kind') in: $DW_UP_LINE" 0 "${DW_UP[$k]:--1}"
    done
}

# fault_names VAR: the names of the queries the fault server read, one a line.
fault_names() {
    local ev="${1}_EVENTS"
    sed -nE 's/^query ([^ ]+) .*/\1/p' "${!ev}" | tr 'A-Z' 'a-z'
}

# check_doh_queries WHAT VAR METHOD: every query the fault server read came as a DoH query
# should: DNS ID 0 (RFC 8484 §4.1), the method asked for, padded (RFC 8467).
check_doh_queries() {
    local what=$1 ev="${2}_EVENTS" method=$3 bad
    bad=$(grep '^query ' "${!ev}" | grep -vE " id=0 pad=yes method=$method\$" || true)
    [[ -z $bad ]] || fail "$what: queries not sent as ID 0, padded, $method:
$(_quote "$bad")"
}

# ---------------------------------------------------------------------------------------
# A control: the fault server in ok mode is a DoH upstream dnsward uses, by POST and by GET.
for method in post get; do
    M=${method^^}
    start_fault F ok good --proto doh
    URL=$(doh_url "$F_PORT")
    start_dnsward -u "$URL" --doh-method "$method" --ca-file "$CERTS/ca.pem" "${TIMEOUT[@]}"
    expect_answer_in_time 2 "control ($M), UDP" "control-$method.bench.test" 192.0.2.9
    expect_answer_in_time 2 "control ($M), TCP" "control-tcp-$method.bench.test" 192.0.2.9 -t
    out=$(dw_dwq -t -n 50 -w 10 "burst-control-$method.bench.test" A || true)
    assert_contains "control ($M), 50 pipelined queries" "$out" "answered=50 "
    assert_contains "control ($M), 50 pipelined queries" "$out" "rcodes=NOERROR:50 addrs=192.0.2.9:50 "
    assert_eq "control ($M): queries the fault server read" 52 "$(fault_count F query)"
    check_doh_queries "control ($M)" F "$M"
    assert_eq "control ($M): connections" 1 "$(fault_count F conn)"
    dw_upstream_stats "$URL"
    stop_dnsward_clean
    assert_eq "control ($M): answers counted" 52 "${DW_UP[answers]}"
    assert_eq "control ($M): failures counted" 0 "${DW_UP[failures]}"
    stop_pid "$F_PID"
    ok "control: fault_upstream.py in ok mode answers dnsward's DoH $M queries (ID 0, padded), one connection"
done

# ---------------------------------------------------------------------------------------
# run_case LABEL KIND URL [FAULTVAR]: the two halves of one fault.
#  (a) the faulty upstream alone: SERVFAIL within the deadline over UDP and TCP, never its
#      answer; a burst still gets all its SERVFAILs; the failure counted under KIND.
#  (b) first, with Unbound's DoH second: answered by Unbound over UDP and TCP, and a burst
#      of 50 pipelined queries all NOERROR 192.0.2.1.
# FAULTVAR, for a fault server: wait in (b) until it has been tried (a connection for a
# server that must read no query, a query otherwise); QUERIES_EXPECTED=0 for those.
run_case() {
    local label=$1 kind=$2 url=$3 fv=${4:-} i out before what
    local tried=query
    [[ ${QUERIES_EXPECTED:-any} == 0 ]] && tried=conn

    # (a) alone
    start_dnsward -u "$url" --ca-file "$CERTS/ca.pem" "${TIMEOUT[@]}"
    expect_servfail_in_time 2 "$label alone, UDP" "alone-$label.bench.test"
    expect_servfail_in_time 2 "$label alone, TCP" "alone-tcp-$label.bench.test" -t
    if [[ -n $fv ]]; then
        if [[ ${QUERIES_EXPECTED:-any} == 0 ]]; then
            assert_ge "$label alone: connections to the fault server" 1 "$(fault_count "$fv" conn)"
            assert_eq "$label alone: queries the fault server read" 0 "$(fault_count "$fv" query)"
        else
            assert_ge "$label alone: queries the fault server read" 1 "$(fault_count "$fv" query)"
            check_doh_queries "$label alone" "$fv" POST
        fi
    fi
    assert_dw_alive "$label alone"
    out=$(dw_dwq -t -n 20 -w 10 "burst-alone-$label.bench.test" A || true)
    assert_contains "$label alone, 20 pipelined queries" "$out" "answered=20 "
    assert_contains "$label alone, 20 pipelined queries" "$out" "rcodes=SERVFAIL:20 addrs=none "
    expect_servfail_in_time 2 "$label alone, after the burst" "after-$label.bench.test"
    dw_upstream_stats "$url"
    stop_dnsward_clean
    assert_eq "$label alone: answers accepted from it" 0 "${DW_UP[answers]}"
    if [[ $kind == timeouts ]]; then
        assert_ge "$label alone: attempts ended by their deadline in: $DW_UP_LINE" 1 "${DW_UP[timeouts]}"
        assert_eq "$label alone: failures in: $DW_UP_LINE" 0 "${DW_UP[failures]}"
    else
        assert_kind "$label alone" "$kind"
    fi
    case $label in
    stall)
        # A silent connection is probed with a PING (doh.c); this one acknowledges it, so
        # it is alive and kept: no reconnecting to a server that is merely slow.
        assert_ge "stall alone: PINGs the server received" 1 "$(fault_count "$fv" ping)"
        # The very first try that times out is followed by a PING, even though the
        # server's SETTINGS arrived after that query left: SETTINGS are no answer.
        ev="${fv}_EVENTS"
        first_ping=$(grep -n '^ping ' "${!ev}" | head -n 1 | cut -d: -f1)
        second_query=$(grep -n '^query ' "${!ev}" | sed -n 2p | cut -d: -f1)
        [[ -n $first_ping && -n $second_query ]] || fail "stall alone: no PING or no second query in $(cat "${!ev}")"
        assert_le "stall alone: line of the first PING, before the second query's" "$second_query" "$first_ping"
        assert_eq "stall alone: connections opened (the PINGs are acknowledged)" 1 "${DW_UP[connects]}"
        assert_eq "stall alone: connections the server saw" 1 "$(fault_count "$fv" conn)"
        ;;
    goaway)
        # No new stream on a connection that said GOAWAY: the next query needs a new one.
        assert_ge "goaway alone: connections opened" 2 "${DW_UP[connects]}"
        assert_ge "goaway alone: connections the server saw" 2 "$(fault_count "$fv" conn)"
        ;;
    esac
    ok "$label upstream alone: SERVFAIL within 2 s over UDP and TCP, never its answer, still serving; counted as $kind"

    # (b) first, Unbound second
    [[ -z $fv ]] || before=$(fault_count "$fv" "$tried")
    local ub_before
    ub_before=$(ub_count '^paired-')
    start_dnsward -u "$url" -u "$UNBOUND" --ca-file "$CERTS/ca.pem" "${TIMEOUT[@]}"
    i=0
    while :; do
        i=$((i + 1))
        expect_answer_in_time 2 "$label first, UDP query $i" "paired-$label-$i.bench.test" 192.0.2.1
        expect_answer_in_time 2 "$label first, TCP query $i" "paired-tcp-$label-$i.bench.test" 192.0.2.1 -t
        [[ -z $fv ]] && ((i >= 2)) && break
        [[ -n $fv ]] && ((i >= 2 && $(fault_count "$fv" "$tried") > before)) && break
        ((i < 12)) || fail "$label first: the fault server was never tried in $i queries"
    done
    assert_eq "$label first: queries Unbound received" $((ub_before + 2 * i)) "$(ub_count '^paired-')"
    if [[ -n $fv && ${QUERIES_EXPECTED:-any} != 0 ]]; then
        # Each query the fault server read was retried on Unbound (and answered by it,
        # as expect_answer_in_time saw).
        local name
        for name in $(fault_names "$fv" | grep '^paired-' || true); do
            assert_eq "$label first: $name, read by the fault server, retried on Unbound" 1 \
                "$(ub_count "^${name//./\\.}\$")"
        done
    fi
    out=$(dw_dwq -t -n 50 -w 10 "burst-$label.bench.test" A || true)
    assert_contains "$label first, 50 pipelined queries" "$out" "answered=50 "
    assert_contains "$label first, 50 pipelined queries" "$out" "rcodes=NOERROR:50 addrs=192.0.2.1:50 "
    assert_dw_alive "$label first"
    dw_upstream_stats "$UNBOUND"
    assert_ge "$label first: answers from Unbound" $((2 * i + 50)) "${DW_UP[answers]}"
    dw_upstream_stats "$url"
    stop_dnsward_clean
    assert_eq "$label first: answers accepted from it" 0 "${DW_UP[answers]}"
    if [[ $kind == timeouts ]]; then
        assert_ge "$label first: attempts ended by their deadline in: $DW_UP_LINE" 1 "${DW_UP[timeouts]}"
    else
        assert_kind "$label first" "$kind"
    fi
    ok "$label upstream first, Unbound's DoH second: $((2 * i)) queries and a burst of 50 answered by Unbound"
}

# ---------------------------------------------------------------------------------------
# The fault modes.
declare -A KIND_OF=(
    [stall]=timeouts [close]=closed [midanswer]=closed [garbage]=answer [nondns]=answer
    [status500]=http [ctype]=http [rst]=closed [goaway]=goaway [wrongid]=answer
    [wrongq]=answer [noh2]=tls
)
for mode in stall close midanswer garbage nondns status500 ctype rst goaway wrongid wrongq noh2; do
    start_fault F "$mode" good --proto doh
    if [[ $mode == noh2 ]]; then
        QUERIES_EXPECTED=0 run_case "$mode" "${KIND_OF[$mode]}" "$(doh_url "$F_PORT")" F
        assert_ge "noh2: handshakes that agreed no protocol" 1 "$(grep -c '^alpn [0-9]* none$' "$F_EVENTS" || true)"
        assert_eq "noh2: HTTP/2 spoken after all" 0 "$(grep -c '^h2error ' "$F_EVENTS" || true)"
    else
        run_case "$mode" "${KIND_OF[$mode]}" "$(doh_url "$F_PORT")" F
    fi
    case $mode in
    rst) assert_eq "rst: streams dnsward reset in return" 0 "$(fault_count F rst)" ;;
    esac
    stop_pid "$F_PID"
done

# GOAWAY, more closely: a server that sends GOAWAY on its first connection only. The query
# it did not process is retried, on a new connection to the same server, and answered.
start_fault F goaway good --proto doh --faulty-conns 1
URL=$(doh_url "$F_PORT")
start_dnsward -u "$URL" --ca-file "$CERTS/ca.pem" "${TIMEOUT[@]}"
expect_answer_in_time 2 "GOAWAY on the first connection" goaway-retried.bench.test 192.0.2.9
assert_eq "GOAWAY on the first connection: times the query was read" 2 \
    "$(fault_names F | grep -c '^goaway-retried\.bench\.test\.$' || true)"
assert_eq "GOAWAY on the first connection: connections" 2 "$(fault_count F conn)"
expect_answer_in_time 2 "GOAWAY on the first connection, next query" goaway-next.bench.test 192.0.2.9
assert_eq "GOAWAY on the first connection: connections after the next query" 2 "$(fault_count F conn)"
dw_upstream_stats "$URL"
stop_dnsward_clean
assert_eq "GOAWAY on the first connection: goaway failures" 1 "${DW_UP[goaway]}"
assert_eq "GOAWAY on the first connection: answers" 2 "${DW_UP[answers]}"
assert_eq "GOAWAY on the first connection: connects" 2 "${DW_UP[connects]}"
stop_pid "$F_PID"
ok "GOAWAY (last stream 0): the query is retried on a new connection to the same upstream and answered"

# ---------------------------------------------------------------------------------------
# Bad certificates: the server (ok mode, it would answer anything) must read no query.
for cert in wrongname selfsigned expired; do
    start_fault F ok "$cert" --proto doh
    QUERIES_EXPECTED=0 run_case "$cert" tls "$(doh_url "$F_PORT")" F
    stop_pid "$F_PID"
done

# A closed port.
free_port CLOSED
run_case refuse connect "$(doh_url "$CLOSED")"

# ---------------------------------------------------------------------------------------
# A server that answers three queries and then turns into a black hole (the connection
# stops being read: no answer, no PING acknowledgement), first; Unbound second. The three
# are answered by it (192.0.2.9 is right there: a correct answer); every later query is
# answered by Unbound within the deadline, never SERVFAIL.
start_fault F ok good --proto doh --stall-after 3
URL=$(doh_url "$F_PORT")
start_dnsward -u "$URL" -u "$UNBOUND" --ca-file "$CERTS/ca.pem" "${TIMEOUT[@]}"
for i in 1 2 3; do
    expect_answer_in_time 2 "stall-after 3, query $i" "before-hole-$i.bench.test" 192.0.2.9
done
# Query on (UDP and TCP in turn, 0.2 s apart) until dnsward has given up on the dark
# connection and tried a new one, and at least 9 times.
t0=$(now_ms)
i=3
while :; do
    i=$((i + 1))
    t=""
    ((i % 2)) && t=-t
    expect_answer_in_time 2 "stall-after 3, query $i ${t:-UDP}" "after-hole-$i.bench.test" 192.0.2.1 $t
    ((i >= 12 && $(fault_count F conn) >= 2)) && break
    (($(now_ms) - t0 < 20000)) || fail "stall-after 3: no new connection to the dark server within 20 s ($i queries)"
    sleep 0.2
done
assert_ge "stall-after 3: the fault server went dark" 1 "$(fault_count F blackhole)"
out=$(dw_dwq -t -n 50 -w 10 burst-after-hole.bench.test A || true)
assert_contains "stall-after 3, 50 pipelined queries" "$out" "answered=50 "
assert_contains "stall-after 3, 50 pipelined queries" "$out" "rcodes=NOERROR:50 addrs=192.0.2.1:50 "
assert_dw_alive "stall-after 3"
dw_upstream_stats "$URL"
stop_dnsward_clean
assert_eq "stall-after 3: answers accepted from the fault server" 3 "${DW_UP[answers]}"
assert_ge "stall-after 3: attempts on the black hole ended by their deadline" 1 "${DW_UP[timeouts]}"
# The dark connection answers no PING: dnsward gives up on it and tries a new one.
assert_ge "stall-after 3: connections opened (the silent one abandoned)" 2 "${DW_UP[connects]}"
stop_pid "$F_PID"
ok "an upstream that answers 3 queries and then goes dark: every later query answered by Unbound in time"
