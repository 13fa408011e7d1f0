#!/usr/bin/env bash
# test_acl: the allow list on the plain DNS frontends (UDP and TCP). A client outside it gets
# REFUSED for anything it sends that is a query at all (malformed ones included), and none
# of it reaches the cache or the upstream; a client inside it is served as usual. The
# default list is loopback; the command line's list replaces the file's. The refused counter
# of the stats line matches what the clients saw, and the daemon exits cleanly. (The DoT and
# DoH frontends' cases are in their own tests.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig unbound openssl python3 ss od
need_dnsward
need_dwq

# --- raw messages in hex, as test_badinput builds them -----------------------------------------
hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
qname_hex() {
    local out='' l labels
    IFS=. read -ra labels <<<"$1"
    for l in "${labels[@]}"; do out+=$(printf '%02x' "${#l}")$(hex "$l"); done
    echo "${out}00"
}
header_hex() { printf '%04x%04x%04x%04x%04x%04x' "$@"; } # ID FLAGS QD AN NS AR
question_hex() { echo "$(qname_hex "$1")00010001"; }
opt_hex() { printf '00%04x%04x%02x%02x%04x0000' 41 1232 0 "${1:-0}" 0; } # [VERSION]

make_certs
start_unbound
UPSTREAM=(-u "tls://127.0.0.1:$UB_DOT#upstream.test" --ca-file "$CERTS/ca.pem" --timeout 5s)

# dig from a chosen source address of the loopback net (127.0.0.0/8 is all local).
dig_from() { # SOURCE NAME [dig args...]
    local src=$1 name=$2
    shift 2
    dw_dig -b "$src" "$@" "$name" A 2>&1
}

# expect_from SOURCE STATUS NAME [dig args...]: the status a client at SOURCE gets.
expect_from() {
    local src=$1 want=$2 name=$3 out
    shift 3
    out=$(dig_from "$src" "$name" "$@") || fail "dig -b $src $* $name: no reply:
$out"
    assert_eq "dig -b $src $* $name: status" "$want" "$(dig_status "$out")"
    if [[ $want == NOERROR ]]; then
        assert_match "dig -b $src $* $name: answer" "$out" \
            "^$name\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.1\$"
    else
        # REFUSED: the question is echoed, nothing else is said.
        assert_match "dig -b $src $* $name: question echoed" "$out" "^;$name\.[[:space:]]+IN[[:space:]]+A\$"
        assert_match "dig -b $src $* $name: no records" "$out" 'ANSWER: 0, AUTHORITY: 0,'
    fi
}

# refused_at_exit: the refused counter of the stats line dnsward logs as it stops.
refused_at_exit() {
    local line
    line=$(grep 'stats: queries=' "$DW_LOG" | tail -n 1)
    [[ $line =~ \ refused=([0-9]+)\  ]] || fail "no refused= in the last stats line: $line"
    echo "${BASH_REMATCH[1]}"
}

# --- --allow 127.0.0.2/32: 127.0.0.1 is a stranger ----------------------------------------------
start_dnsward "${UPSTREAM[@]}" --allow 127.0.0.2/32 --log-level info
# The readiness probes came from 127.0.0.1 and were refused: count from here.
dw_stats
REFUSED0=${DW_STATS[refused]:-}
[[ -n $REFUSED0 ]] || fail "the stats line has no refused counter: $DW_STATS_LINE"
refused=0

expect_from 127.0.0.2 NOERROR allowed-udp.bench.test
expect_from 127.0.0.2 NOERROR allowed-tcp.bench.test +tcp
ok "a client in the allow list (127.0.0.2) is answered, UDP and TCP"

expect_from 127.0.0.1 REFUSED denied-udp.bench.test
refused=$((refused + 1))
expect_from 127.0.0.1 REFUSED denied-tcp.bench.test +tcp
refused=$((refused + 1))
expect_from 127.0.0.1 REFUSED denied-noedns.bench.test +noedns
refused=$((refused + 1))
ok "a client outside the allow list (127.0.0.1) gets REFUSED with its question, UDP and TCP"

# The cache is not consulted for a stranger: a name an allowed client just had answered is
# still refused.
expect_from 127.0.0.2 NOERROR cached.bench.test
expect_from 127.0.0.1 REFUSED cached.bench.test
refused=$((refused + 1))
expect_from 127.0.0.1 REFUSED cached.bench.test +tcp
refused=$((refused + 1))
ok "a name in the cache is still refused to a stranger"

# Several queries on one TCP connection: each refused, the connection served to the end.
out=$(dw_dwq -t -n 5 denied-pipe.bench.test A) || true
assert_contains "5 pipelined queries from a stranger over TCP" "$out" "answered=5 mismatched=0"
assert_contains "5 pipelined queries from a stranger over TCP" "$out" "rcodes=REFUSED:5"
refused=$((refused + 5))
ok "5 queries pipelined on one TCP connection from a stranger: 5 REFUSED"

# A stranger's malformed or unsupported query gets REFUSED too, not FORMERR, NOTIMP or
# BADVERS (dwq sends from 127.0.0.1); a packet that is not a query at all is still dropped.
declare -A PKT=(
    ["QDCOUNT=0"]="$(header_hex 0x1301 0x0100 0 0 0 0)"
    ["QDCOUNT=2"]="$(header_hex 0x1302 0x0100 2 0 0 0)$(question_hex bad-qd2a.bench.test)$(question_hex bad-qd2b.bench.test)"
    ["trailing garbage"]="$(header_hex 0x1303 0x0100 1 0 0 0)$(question_hex bad-trailing.bench.test)deadbeef"
    ["opcode NOTIFY"]="$(header_hex 0x1304 0x2000 1 0 0 0)$(question_hex bad-notify.bench.test)"
    ["EDNS version 1"]="$(header_hex 0x1305 0x0100 1 0 0 1)$(question_hex bad-edns1.bench.test)$(opt_hex 1)"
    ["valid, by hand"]="$(header_hex 0x1306 0x0100 1 0 0 0)$(question_hex denied-hex.bench.test)"
)
for name in "${!PKT[@]}"; do
    pkt=${PKT[$name]}
    id=$((16#${pkt:0:4}))
    for t in "" -t; do
        out=$(dw_dwq $t -w 3 -x "$pkt" || true)
        assert_match "$name from a stranger ${t:-over UDP}: REFUSED with its ID" "$out" "^rcode=REFUSED id=$id flags=qr"
        refused=$((refused + 1))
    done
done
for t in "" -t; do
    out=$(dw_dwq $t -w 1 -x "$(header_hex 0x1307 0x8180 1 0 0 0)$(question_hex bad-qr.bench.test)" || true)
    assert_match "a response (QR=1) from a stranger ${t:-over UDP}: dropped" "$out" '^noanswer'
done
ok "a stranger's malformed, unsupported and hand-built queries: REFUSED (UDP and TCP); a response: dropped"

# The allowed client is still served after all that.
expect_from 127.0.0.2 NOERROR allowed-after.bench.test
expect_from 127.0.0.2 NOERROR allowed-after-tcp.bench.test +tcp
assert_dw_alive "after the refused queries"

# Nothing a stranger sent reached the upstream; what the allowed client sent did.
leaked=$(ub_queries '(^denied-|^bad-)' || true)
[[ -z $leaked ]] || fail "the upstream received queries of a client outside the allow list:
$leaked"
assert_eq "Unbound received cached.bench.test once (the allowed client's)" 1 "$(ub_count '^cached\.bench\.test\.$')"
for n in allowed-udp allowed-tcp allowed-after allowed-after-tcp; do
    assert_eq "Unbound received $n.bench.test" 1 "$(ub_count "^$n\.bench\.test\.\$")"
done
ok "the upstream never saw a stranger's query, and saw each allowed one"

assert_match "a refused client is logged with its address" "$(cat "$DW_LOG")" \
    'query from 127\.0\.0\.1 refused: not in allow'
stop_dnsward_clean
assert_eq "refused counter at shutdown (after the probes' $REFUSED0)" "$refused" $(($(refused_at_exit) - REFUSED0))
ok "the refused counter matches ($refused); clean shutdown"

# --- the default: loopback ------------------------------------------------------------------------
start_dnsward "${UPSTREAM[@]}"
expect_from 127.0.0.1 NOERROR default-udp.bench.test
expect_from 127.0.0.1 NOERROR default-tcp.bench.test +tcp
expect_from 127.0.0.2 NOERROR default-other.bench.test
out=$(dw_dwq -x "$(header_hex 0x1308 0x0100 2 0 0 0)$(question_hex bad-default.bench.test)$(question_hex bad-default2.bench.test)" || true)
assert_match "a malformed query from an allowed client: FORMERR, as before" "$out" '^rcode=FORMERR id=4872 '
stop_dnsward_clean
assert_eq "refused counter at shutdown, default list" 0 "$(refused_at_exit)"
ok "without allow, loopback clients (127.0.0.1, 127.0.0.2) are answered and nothing is refused"

# --- --allow 127.0.0.0/8 ---------------------------------------------------------------------------
start_dnsward "${UPSTREAM[@]}" --allow 127.0.0.0/8
expect_from 127.0.0.1 NOERROR net-one.bench.test
expect_from 127.0.0.2 NOERROR net-two.bench.test +tcp
stop_dnsward_clean
assert_eq "refused counter at shutdown, 127.0.0.0/8" 0 "$(refused_at_exit)"
ok "--allow 127.0.0.0/8 answers 127.0.0.1 and 127.0.0.2"

# --- the file's list, and the command line's over it --------------------------------------------------
printf 'allow = 192.0.2.0/24\nallow = 127.0.0.1\n' >"$T/acl.conf"
start_dnsward "${UPSTREAM[@]}" -c "$T/acl.conf"
expect_from 127.0.0.1 NOERROR file-one.bench.test
expect_from 127.0.0.2 REFUSED file-two.bench.test
stop_dnsward_clean
start_dnsward "${UPSTREAM[@]}" -c "$T/acl.conf" --allow 127.0.0.2
expect_from 127.0.0.2 NOERROR cli-two.bench.test
expect_from 127.0.0.1 REFUSED cli-one.bench.test +tcp
stop_dnsward_clean
ok "allow from the file applies; --allow on the command line replaces the file's list"

out=$("$DNSWARD" -t --allow 127.0.0.0/33 2>&1) && fail "dnsward -t accepted --allow 127.0.0.0/33"
assert_contains "dnsward -t --allow 127.0.0.0/33" "$out" \
    "command line: --allow: prefix must be between 0 and 32 (IPv4) or 128 (IPv6)"
ok "a bad allow network stops dnsward -t with the reason"
