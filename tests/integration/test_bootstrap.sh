#!/usr/bin/env bash
# test_bootstrap: upstreams named by host name (https://upstream.test:PORT/..., tls://...,
# a stamp without an address), resolved through a bootstrap server: bootstrap_dns.py, a
# plain-DNS UDP server that answers A upstream.test 127.0.0.1 and AAAA with NODATA, and
# logs every query it receives. Client queries are answered by Unbound over DoH or DoT;
# the bootstrap server sees the upstream's own name (A and AAAA) and nothing else.
#
#   by name       DoH, DoT and a DNS stamp resolved once (A + AAAA), then answered by
#                 Unbound; a dozen client names, and the client asking upstream.test
#                 itself, never reach the bootstrap server; the TTL is kept (60 s at least)
#   no bootstrap  dnsward refuses to start (status 1), naming the upstream and "bootstrap"
#   late server   the bootstrap server down at start-up: dnsward starts, warns, answers
#                 SERVFAIL, and answers properly once the server is up (retry backoff)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig kdig unbound openssl python3 ss
need_dnsward
need_dwq

make_certs
start_unbound

BS_PID=''
BS_EVENTS=$T/bootstrap.events
free_port BS_PORT

# start_bootstrap [bootstrap_dns.py args...]: start bootstrap_dns.py on 127.0.0.1:$BS_PORT
# with a fresh $BS_EVENTS, and wait until it answers.
start_bootstrap() {
    [[ -z $BS_PID ]] || fail "start_bootstrap: already running (pid $BS_PID)"
    : >"$BS_EVENTS"
    python3 "$LIB_DIR/bootstrap_dns.py" --port "$BS_PORT" --events "$BS_EVENTS" "$@" \
        >>"$T/bootstrap.log" 2>&1 &
    BS_PID=$!
    _PIDS+=("$BS_PID")
    if ! wait_until 20 grep -q "^listening $BS_PORT" "$BS_EVENTS"; then
        _show_log "$T/bootstrap.log" "bootstrap_dns.py's output"
        fail "bootstrap_dns.py did not start on port $BS_PORT"
    fi
}

stop_bootstrap() {
    [[ -n $BS_PID ]] || return 0
    stop_pid "$BS_PID"
    BS_PID=''
}

# bs_queries: the queries the bootstrap server received, "NAME TYPE" one a line.
bs_queries() { sed -n 's/^query //p' "$BS_EVENTS"; }

# client_queries TAG: a dozen client queries of distinct names through dnsward (UDP with
# dig, TCP with kdig, both with dwq), and upstream.test A and AAAA asked by the client, all
# answered by Unbound.
client_queries() {
    local tag=$1 i out before
    for i in 1 2 3 4 5 6; do
        expect_a "$tag, dig over UDP, name $i" "client-$i-$tag.bench.test" 192.0.2.1
    done
    for i in 7 8 9; do
        out=$(dw_kdig +tcp +short "client-$i-$tag.bench.test" A 2>&1) || fail "$tag, kdig +tcp, name $i: $out"
        assert_eq "$tag, kdig +tcp, name $i" 192.0.2.1 "$out"
    done
    expect_answer_in_time 5 "$tag, dwq over UDP, name 10" "client-10-$tag.bench.test" 192.0.2.1
    expect_answer_in_time 5 "$tag, dwq over TCP, name 11" "client-11-$tag.bench.test" 192.0.2.1 -t
    expect_answer_in_time 5 "$tag, dwq over TCP, name 12" "Client-12-$tag.Bench.Test" 192.0.2.1 -t
    assert_eq "$tag: queries Unbound received for the 12 client names" 12 \
        "$(ub_count "^client-[0-9]+-$tag\\.bench\\.test\\.\$")"
    # The client asking the upstream's own name: a query like any other, for Unbound.
    before=$(ub_count '^upstream\.test\.$')
    out=$(dw_dig +short upstream.test A 2>&1) || fail "$tag, client asks upstream.test A: $out"
    assert_eq "$tag, client asks upstream.test A (Unbound's local data)" 127.0.0.1 "$out"
    out=$(dw_dig upstream.test AAAA 2>&1) || fail "$tag, client asks upstream.test AAAA: $out"
    assert_eq "$tag, client asks upstream.test AAAA: status" NOERROR "$(dig_status "$out")"
    assert_eq "$tag: Unbound received the client's upstream.test queries" $((before + 2)) \
        "$(ub_count '^upstream\.test\.$')"
}

# expect_only_bootstrap_queries TAG: the bootstrap server received upstream.test A and
# AAAA once each (one resolution), and nothing else.
expect_only_bootstrap_queries() {
    local got
    got=$(bs_queries | sort)
    assert_eq "$1: the queries the bootstrap server received" $'upstream.test. A\nupstream.test. AAAA' "$got"
}

# =======================================================================================
# 1. Host names resolved through the bootstrap server: DoH, DoT, a stamp
stamp_by_name() { # PORT: a DoH stamp with no address but ":PORT", host upstream.test
    python3 - "$1" <<'EOF'
import base64, sys
lp = lambda b: bytes([len(b)]) + b
b = b"\x02" + bytes(8) + lp((":" + sys.argv[1]).encode()) + b"\x00" + lp(b"upstream.test") + lp(b"/dns-query")
print("sdns://" + base64.urlsafe_b64encode(b).decode().rstrip("="))
EOF
}

cases=(
    "https://upstream.test:$UB_DOH/dns-query|3600|3600"
    "tls://upstream.test:$UB_DOT|5|60"
    "$(stamp_by_name "$UB_DOH")|120|120"
)
for c in "${cases[@]}"; do
    IFS='|' read -r url ttl kept <<<"$c"
    tag=${url%%:*}
    start_bootstrap --ttl "$ttl"
    start_dnsward -u "$url" --bootstrap "127.0.0.1:$BS_PORT" --ca-file "$CERTS/ca.pem" --timeout 5s
    # Resolved before serving: main waits (bounded) for the first resolution.
    assert_contains "$tag: dnsward's log" "$(<"$DW_LOG")" \
        "upstream $url: upstream.test resolved to 1 addresses (ttl $kept s)"
    client_queries "$tag"
    dw_upstream_stats "$url"
    echo "#   $tag: ${DW_UP_LINE#*: upstream }"
    assert_eq "$tag: answers by the upstream (12 names, upstream.test A and AAAA)" 14 "${DW_UP[answers]}"
    assert_eq "$tag: failures" 0 "${DW_UP[failures]}"
    expect_only_bootstrap_queries "$tag"
    stop_dnsward_clean
    stop_bootstrap
    ok "$tag upstream by name, bootstrap TTL $ttl (kept $kept s): 14 client queries via Unbound; the bootstrap server saw upstream.test A and AAAA only"
done

# =======================================================================================
# 2. A host name and no bootstrap server: refused at start-up
free_port P
for url in "https://upstream.test:$UB_DOH/dns-query" "tls://upstream.test:$UB_DOT" "$(stamp_by_name "$UB_DOH")"; do
    rc=0
    out=$(timeout 10 "$DNSWARD" -l "127.0.0.1:$P" -u "$url" --ca-file "$CERTS/ca.pem" 2>&1 </dev/null) || rc=$?
    assert_eq "$url without --bootstrap: exit status" 1 "$rc"
    assert_contains "$url without --bootstrap: the message names the upstream" "$out" "$url"
    assert_contains "$url without --bootstrap: the message says what is missing" "$out" "bootstrap"
    assert_eq "$url without --bootstrap: one line" 1 "$(wc -l <<<"$out")"
    ! tcp_listening "$P" || fail "$url without --bootstrap: something listens on $P"
done
echo "#   $out"
ok "a host name without --bootstrap: exit status 1, one line naming the upstream and 'bootstrap'"

# =======================================================================================
# 3. The bootstrap server down at start-up, up later
url="https://upstream.test:$UB_DOH/dns-query"
: >"$BS_EVENTS"
t_dw=$(now_ms)
start_dnsward -u "$url" --bootstrap "127.0.0.1:$BS_PORT" --ca-file "$CERTS/ca.pem" --timeout 2s
assert_contains "bootstrap server down at start-up: dnsward's warning" "$(<"$DW_LOG")" \
    "dnsward[warn]: upstream $url: could not resolve upstream.test (Connection refused); retrying in 1 s"
expect_servfail_in_time 2 "bootstrap server down, the upstream has no address yet" late-down.bench.test
assert_eq "bootstrap server down: queries Unbound received" 0 "$(ub_count '^late-down\.bench\.test\.$')"
assert_dw_alive "bootstrap server down"
start_bootstrap
t_bs=$(now_ms)
n=0
while :; do
    out=$(dw_dwq -w 4 "late-$n.bench.test" A || true)
    [[ $out == *$'\nA 192.0.2.1\n'* ]] && break
    assert_contains "bootstrap server just started, query $n: until resolved" "$out" "rcode=SERVFAIL"
    n=$((n + 1))
    (($(now_ms) - t_bs < 30000)) || fail "no answer within 30 s of the bootstrap server's start: $out"
    sleep 0.3
done
after=$(($(now_ms) - t_bs))
echo "#   bootstrap server started $((t_bs - t_dw)) ms after dnsward; answers $after ms later ($n SERVFAIL before)"
# The retries come 1, 3, 7, 15 s after start-up (a backoff doubling from 1 s): the server
# came up within a few seconds, so the retry after 7 s (+ margin) at the latest finds it.
assert_le "ms from the bootstrap server's start to the first answer (retry backoff)" \
    $((7000 + 3000 - (t_bs - t_dw) > 3000 ? 7000 + 3000 - (t_bs - t_dw) : 3000)) "$after"
assert_contains "late bootstrap server: dnsward's log" "$(<"$DW_LOG")" \
    "upstream $url: upstream.test resolved to 1 addresses (ttl 3600 s)"
client_queries late
expect_only_bootstrap_queries "late bootstrap server"
stop_dnsward_clean
stop_bootstrap
ok "bootstrap server down at start-up: dnsward starts and warns, SERVFAIL, then answers ${after} ms after the server is up"
