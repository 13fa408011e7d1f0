#!/usr/bin/env bash
# test_metrics: the Prometheus endpoint (--metrics-listen) and SIGUSR1's copy of it in the
# log, against a real Unbound over DoT and real clients on every frontend: dig over UDP and
# TCP, kdig over DoT and DoH. The page must pass `promtool check metrics` with no finding
# at all; its counters must move by exactly the queries sent (deltas between two scrapes,
# since start_dnsward's readiness probes count too); hits and misses must add up to the
# queries; the upstream's answers must be the queries Unbound logged. Then the HTTP side:
# HEAD, 404, 405, a malformed request (400) and an oversized head (431) without harm to the
# process, the connection cap, and a clean shutdown with a metrics connection open.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools curl dig kdig promtool unbound
need_dnsward
need_dwq

start_unbound
free_port MET
free_port DOT
free_port DOH
UP="tls://127.0.0.1:$UB_DOT#upstream.test"
start_dnsward -u "$UP" --ca-file "$CERTS/ca.pem" --timeout 5s \
    --metrics-listen "127.0.0.1:$MET" \
    --dot-listen "127.0.0.1:$DOT" --doh-listen "127.0.0.1:$DOH" \
    --cert "$CERTS/good.pem" --key "$CERTS/good.key"
wait_until 10 tcp_listening "$MET" || fail "nothing listens on the metrics port $MET"
assert_contains "the metrics listener is announced" "$(cat "$DW_LOG")" \
    "listening on 127.0.0.1:$MET (metrics, http://127.0.0.1:$MET/metrics)"
URL=http://127.0.0.1:$MET/metrics

# try_scrape FILE: GET /metrics into FILE; true if the status was 200.
try_scrape() {
    [[ $(curl -sS --max-time 5 -D "$1.head" -o "$1" -w '%{http_code}' "$URL" 2>"$T/curl.err") == 200 ]]
}

# scrape FILE: GET /metrics into FILE; the status must be 200 and the type Prometheus's.
scrape() {
    try_scrape "$1" || fail "GET $URL: no 200: $(cat "$T/curl.err" "$1.head" 2>/dev/null)"
    assert_match "GET /metrics: content-type" "$(cat "$1.head")" \
        '^content-type: text/plain; version=0\.0\.4; charset=utf-8'
}

# mval FILE KEY: the value of the sample KEY (name and labels as written) in FILE; fails
# when there is no such sample.
mval() {
    local line
    while IFS= read -r line; do
        if [[ $line == "$2 "* ]]; then
            echo "${line##* }"
            return 0
        fi
    done <"$1"
    fail "no sample '$2' in $1:
$(_quote "$(grep -v '^#' "$1")")"
}

# delta KEY: the sample's growth from $T/m0 to $T/m1 (integers).
delta() { echo $(($(mval "$T/m1" "$1") - $(mval "$T/m0" "$1"))); }

# promtool_clean FILE: promtool finds nothing at all (errors or lint) in the page.
promtool_clean() {
    local out rc=0
    out=$(promtool check metrics <"$1" 2>&1) || rc=$?
    [[ $rc == 0 && -z $out ]] || fail "promtool check metrics (exit $rc) on $1:
$(_quote "$out")"
}

scrape "$T/m0"
promtool_clean "$T/m0"
assert_eq "no upstream answer before the test's queries" 0 \
    "$(mval "$T/m0" "dnsward_upstream_answers_total{upstream=\"$UP\"}")"
ok "the page of a fresh daemon: 200, Prometheus's content type, clean under promtool"

# --- queries on every frontend --------------------------------------------------------------
# Distinct names are misses, a name asked again by the same client is a hit (the same
# client, so that the same EDNS and flags make the same cache key).
a_of() { # what output
    grep -qE '[[:space:]]IN[[:space:]]+A[[:space:]]+192\.0\.2\.1$' <<<"$2" || fail "$1: no answer:
$(_quote "$2")"
}
for n in m1 m2 m3 m4 m5 m1 m2 m3; do
    a_of "UDP $n" "$(dw_dig "$n.bench.test" A 2>&1)"
done
for n in t1 t2 t1; do
    a_of "TCP $n" "$(dw_dig +tcp "$n.bench.test" A 2>&1)"
done
TLS_OPTS=(+tls-ca="$CERTS/ca.pem" +tls-hostname=upstream.test +retry=0 +time=5)
for n in d1 d1; do
    a_of "DoT $n" "$(kdig @127.0.0.1 -p "$DOT" +tls "${TLS_OPTS[@]}" "$n.bench.test" A 2>&1)"
done
for n in h1 h1; do
    a_of "DoH $n" "$(kdig @127.0.0.1 -p "$DOH" +https "${TLS_OPTS[@]}" "$n.bench.test" A 2>&1)"
done
ok "15 queries answered: 8 over UDP, 3 over TCP, 2 over DoT, 2 over DoH"

scrape "$T/m1"
promtool_clean "$T/m1"
for tv in udp:8 tcp:3 dot:2 doh:2; do
    assert_eq "dnsward_queries_total{transport=\"${tv%:*}\"} grew by" "${tv#*:}" \
        "$(delta "dnsward_queries_total{transport=\"${tv%:*}\"}")"
done
assert_eq "listener udp grew by" 8 \
    "$(delta "dnsward_listener_queries_total{listener=\"udp 127.0.0.1:$DW_PORT\",transport=\"udp\"}")"
assert_eq "listener tcp grew by" 3 \
    "$(delta "dnsward_listener_queries_total{listener=\"tcp 127.0.0.1:$DW_PORT\",transport=\"tcp\"}")"
assert_eq "listener dot grew by" 2 \
    "$(delta "dnsward_listener_queries_total{listener=\"dot 127.0.0.1:$DOT\",transport=\"dot\"}")"
assert_eq "listener doh grew by" 2 \
    "$(delta "dnsward_listener_queries_total{listener=\"doh 127.0.0.1:$DOH\",transport=\"doh\"}")"
ok "queries by transport and by listener: exactly the queries sent"

assert_eq "cache hits grew by" 6 "$(delta dnsward_cache_hits_total)"
assert_eq "cache misses grew by" 9 "$(delta dnsward_cache_misses_total)"
assert_eq "answers NOERROR grew by" 15 "$(delta 'dnsward_answers_total{rcode="NOERROR"}')"
assert_eq "forwarded grew by" 9 "$(delta dnsward_forwarded_total)"
assert_eq "cache entries" 9 "$(mval "$T/m1" dnsward_cache_entries)"
assert_eq "in flight" 0 "$(mval "$T/m1" dnsward_inflight)"
ok "the cache: 6 hits + 9 misses = 15 queries, 9 entries, 9 forwarded"

ub=$(ub_count '\.bench\.test\.$')
assert_eq "Unbound received" 9 "$ub"
UL="upstream=\"$UP\""
assert_eq "upstream answers = the queries Unbound received" "$ub" \
    "$(mval "$T/m1" "dnsward_upstream_answers_total{$UL}")"
assert_eq "upstream queries" "$ub" "$(mval "$T/m1" "dnsward_upstream_queries_total{$UL,transport=\"dot\"}")"
assert_eq "latency histogram count = answers" "$ub" "$(mval "$T/m1" "dnsward_upstream_latency_seconds_count{$UL}")"
assert_eq "latency +Inf bucket = count" "$ub" \
    "$(mval "$T/m1" "dnsward_upstream_latency_seconds_bucket{$UL,le=\"+Inf\"}")"
le5=$(mval "$T/m1" "dnsward_upstream_latency_seconds_bucket{$UL,le=\"5\"}")
assert_eq "every answer within 5 s" "$ub" "$le5"
assert_eq "upstream up" 1 "$(mval "$T/m1" "dnsward_upstream_up{$UL}")"
assert_eq "no failures" 0 "$(mval "$T/m1" "dnsward_upstream_failures_total{$UL,kind=\"connect\"}")"
assert_ge "connections to the upstream" 1 "$(mval "$T/m1" "dnsward_upstream_connects_total{$UL}")"
srtt=$(mval "$T/m1" "dnsward_upstream_srtt_seconds{$UL}")
awk -v s="$srtt" 'BEGIN { exit !(s > 0 && s < 5) }' || fail "srtt out of range: $srtt"
ok "the upstream: $ub answers as Unbound saw, histogram count and buckets agree, up, srtt ${srtt}s"

# --- the connections gauge --------------------------------------------------------------------
conns() { mval "$T/mc" "dnsward_listener_connections{listener=\"$1\"}"; }
conns_is() { # LISTENER N: a fresh scrape shows N connections on LISTENER
    try_scrape "$T/mc" && [[ $(conns "$1") == "$2" ]]
}
exec {held}<>"/dev/tcp/127.0.0.1/$DW_PORT"
wait_until 5 conns_is "tcp 127.0.0.1:$DW_PORT" 1 || fail "a held TCP connection: gauge $(conns "tcp 127.0.0.1:$DW_PORT"), expected 1"
assert_eq "the metrics listener counts the scrape's own connection" 1 "$(conns "metrics 127.0.0.1:$MET")"
assert_eq "UDP has no connections" 0 "$(conns "udp 127.0.0.1:$DW_PORT")"
exec {held}<&-
wait_until 5 conns_is "tcp 127.0.0.1:$DW_PORT" 0 || fail "a closed TCP connection: gauge $(conns "tcp 127.0.0.1:$DW_PORT"), expected 0"
ok "dnsward_listener_connections: 1 while a TCP connection is held, 0 after; the scrape's own"

# --- HTTP -----------------------------------------------------------------------------------------
status_of() { curl -sS --max-time 5 -o "$T/body" -D "$T/head" -w '%{http_code}' "$@" 2>"$T/curl.err" || true; }
assert_eq "GET /other" 404 "$(status_of "http://127.0.0.1:$MET/other")"
assert_eq "GET /metricsx" 404 "$(status_of "http://127.0.0.1:$MET/metricsx")"
assert_eq "POST /metrics" 405 "$(status_of -X POST --data-binary x=1 "$URL")"
assert_match "405 says what is allowed" "$(cat "$T/head")" '^allow: GET, HEAD'
assert_eq "GET /metrics?x=1" 200 "$(status_of "$URL?x=1")"
get_len=$(wc -c <"$T/body")
assert_eq "HEAD /metrics" 200 "$(status_of -I "$URL")"
head_len=$(sed -nE 's/^content-length: ([0-9]+).*/\1/p' "$T/head" | tr -d '\r')
assert_ge "HEAD's content-length is a page's" 3000 "$head_len"
assert_le "HEAD's content-length is a page's" $((get_len + 100)) "$head_len"
ok "HTTP: 404 for another path, 405 (with Allow) for POST, HEAD with the page's length"

# raw TEXT: send TEXT (printf format) on a new connection; prints the status line.
raw() {
    local fd line=''
    exec {fd}<>"/dev/tcp/127.0.0.1/$MET"
    # shellcheck disable=SC2059
    printf "$1" >&"$fd"
    IFS= read -r -t 5 line <&"$fd" || true
    exec {fd}<&-
    echo "${line%$'\r'}"
}
assert_eq "a garbage request" "HTTP/1.1 400 Bad Request" "$(raw 'GARBAGE \x01\x02\r\n\r\n')"
big=$(head -c 10000 /dev/zero | tr '\0' a)
assert_eq "a head over 8 KiB" "HTTP/1.1 431 Request Header Fields Too Large" \
    "$(raw "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: $big\r\n\r\n")"
assert_eq "HTTP/2.0 request line" "HTTP/1.1 505 HTTP Version Not Supported" \
    "$(raw 'GET /metrics HTTP/2.0\r\n\r\n')"
assert_dw_alive "after bad requests"
scrape "$T/m2"
promtool_clean "$T/m2"
ok "a malformed request gets 400, an oversized head 431, a bad version 505; the page is still served"

# --- the connection cap --------------------------------------------------------------------------
fds=()
for i in $(seq 1 16); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$MET"
    fds+=("$fd")
done
sleep 0.3
code=$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "$URL" 2>/dev/null || true)
assert_eq "a 17th connection waits (curl times out)" 000 "$code"
grep -qF "metrics 127.0.0.1:$MET: 16 connections" "$DW_LOG" || fail "the cap was not logged"
for fd in "${fds[@]}"; do exec {fd}<&-; done
wait_until 5 try_scrape "$T/m3" || fail "no page once the 16 connections closed"
ok "16 connections at most: the 17th waits in the backlog, and is served once they close"

# --- SIGUSR1 ----------------------------------------------------------------------------------------
before=$(grep -c ']: dnsward_queries_total{transport="udp"} ' "$DW_LOG" || true)
kill -USR1 "$DW_PID"
wait_until 5 eval "(( \$(grep -c ']: dnsward_queries_total{transport=\"udp\"} ' \"\$DW_LOG\") > $before ))" ||
    fail "SIGUSR1 logged no metrics lines"
sleep 0.2
scrape "$T/m4"
for key in 'dnsward_queries_total{transport="udp"}' dnsward_cache_hits_total \
    "dnsward_upstream_answers_total{$UL}"; do
    logged=$(grep -F "]: $key " "$DW_LOG" | tail -n 1)
    assert_eq "SIGUSR1's $key" "$(mval "$T/m4" "$key")" "${logged##* }"
done
assert_not_contains "SIGUSR1 logs no comments" "$(cat "$DW_LOG")" "]: # TYPE"
nlog=$(grep -c ']: dnsward_' "$DW_LOG")
npage=$(grep -vc '^#' "$T/m4")
assert_eq "one log line per sample" "$npage" "$nlog"
assert_contains "the one-line summary is still logged" "$(cat "$DW_LOG")" "stats: queries="
ok "SIGUSR1: every sample line in the log, one each, the same values as the page"

# --- shutdown with a metrics connection open ---------------------------------------------------------
exec {idle}<>"/dev/tcp/127.0.0.1/$MET"
sleep 0.2
t0=$(now_ms)
stop_dnsward_clean
exec {idle}<&-
assert_le "milliseconds to stop with an idle metrics connection" 3000 $(($(now_ms) - t0))
ok "clean shutdown with an idle metrics connection open"
