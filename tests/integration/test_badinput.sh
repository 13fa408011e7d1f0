#!/usr/bin/env bash
# test_badinput: malformed and unsupported queries, over UDP and TCP. Each gets the answer
# RFC 1035/6891 ask for (or a silent drop), the daemon keeps serving, and none of them is
# ever forwarded: Unbound's query log must show only the valid names.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig unbound openssl python3 ss od
need_dnsward
need_dwq

# --- building raw messages in hex ------------------------------------------------------------
hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
qname_hex() { # NAME -> uncompressed wire format
    local out='' l labels
    IFS=. read -ra labels <<<"$1"
    for l in "${labels[@]}"; do out+=$(printf '%02x' "${#l}")$(hex "$l"); done
    echo "${out}00"
}
header_hex() { printf '%04x%04x%04x%04x%04x%04x' "$@"; } # ID FLAGS QD AN NS AR
question_hex() { echo "$(qname_hex "$1")00010001"; }      # NAME, type A, class IN
query_hex() { echo "$(header_hex "$1" 0x0100 1 0 0 0)$(question_hex "$2")"; } # ID NAME
opt_hex() { printf '00%04x%04x%02x%02x%04x0000' 41 1232 0 "${1:-0}" 0; } # [VERSION]
label_of() { printf 'a%.0s' $(seq 1 "$1"); }

make_certs
start_unbound
start_dnsward -u "tls://127.0.0.1:$UB_DOT#upstream.test" --ca-file "$CERTS/ca.pem" --timeout 5s

declare -A PKT WANT
ORDER=()
add() { # NAME EXPECTATION HEX ; EXPECTATION: drop | RCODE (the reply's ID must be 0x1234+i)
    ORDER+=("$1")
    WANT[$1]=$2
    PKT[$1]=$3
}

i=0
next_id() { i=$((i + 1)); ID=$((0x1230 + i)); }

next_id; add "QR=1 (a response)" drop "$(header_hex $ID 0x8180 1 0 0 0)$(question_hex bad-qr.bench.test)"
next_id; add "5-byte packet" drop "$(printf '%04x' $ID)010000"
next_id; add "QDCOUNT=0" FORMERR "$(header_hex $ID 0x0100 0 0 0 0)"
next_id; add "QDCOUNT=2" FORMERR "$(header_hex $ID 0x0100 2 0 0 0)$(question_hex bad-qd2a.bench.test)$(question_hex bad-qd2b.bench.test)"
next_id; add "compression loop in QNAME" FORMERR "$(header_hex $ID 0x0100 1 0 0 0)c00c00010001"
q=$(question_hex bad-loop.bench.test)
off=$((12 + ${#q} / 2))
next_id; add "compression loop in a record" FORMERR \
    "$(header_hex $ID 0x0100 1 0 0 1)${q}$(printf 'c0%02x' $off)00010001000000000004c0000201"
next_id; add "compression pointer out of range" FORMERR \
    "$(header_hex $ID 0x0100 1 0 0 1)$(question_hex bad-ptr.bench.test)ffff00010001000000000004c0000201"
next_id; add "label of 64 bytes" FORMERR \
    "$(header_hex $ID 0x0100 1 0 0 0)40$(hex "$(label_of 64)")$(qname_hex bad-label64.bench.test)00010001"
long="$(label_of 63).$(label_of 63).$(label_of 63).$(label_of 63).bad-name256"
next_id; add "name over 255 bytes" FORMERR "$(header_hex $ID 0x0100 1 0 0 0)$(question_hex "$long")"
next_id; add "trailing garbage" FORMERR "$(query_hex $ID bad-trailing.bench.test)deadbeef"
next_id; add "two OPT records" FORMERR \
    "$(header_hex $ID 0x0100 1 0 0 2)$(question_hex bad-twoopt.bench.test)$(opt_hex)$(opt_hex)"
next_id; add "opcode NOTIFY (4)" NOTIMP "$(header_hex $ID 0x2000 1 0 0 0)$(question_hex bad-notify.bench.test)"
next_id; add "opcode UPDATE (5)" NOTIMP "$(header_hex $ID 0x2800 1 0 0 0)$(question_hex bad-update.bench.test)"
next_id; add "EDNS version 1" BADVERS "$(header_hex $ID 0x0100 1 0 0 1)$(question_hex bad-edns1.bench.test)$(opt_hex 1)"

# The packets themselves are checked against the parser of a real tool where one applies: a
# valid query built the same way must answer, or the cases prove nothing.
out=$(dw_dwq -x "$(query_hex 0x4242 good-builder.bench.test)") || fail "a valid hand-built query: $out"
assert_contains "a valid hand-built query" "$out" "rcode=NOERROR id=16962 "
assert_contains "a valid hand-built query" "$out" "A 192.0.2.1"
ok "a hand-built valid query is answered (the hex builders are right)"

valid=0
for transport in udp tcp; do
    topt=()
    [[ $transport == tcp ]] && topt=(-t)
    n=0
    for name in "${ORDER[@]}"; do
        n=$((n + 1))
        want=${WANT[$name]}
        pkt=${PKT[$name]}
        id=$((16#${pkt:0:4}))
        out=$(dw_dwq "${topt[@]}" -w 2 -x "$pkt" || true)
        if [[ $want == drop ]]; then
            assert_match "$name over $transport: expected no answer (a deliberate drop)" "$out" '^noanswer'
        else
            assert_match "$name over $transport: expected $want with the client's ID $id" "$out" \
                "^rcode=$want id=$id flags=qr"
            case $want in
            NOTIMP) assert_contains "$name over $transport: the opcode is echoed" "$out" \
                " opcode=$((16#${pkt:4:4} >> 11 & 15))" ;;
            BADVERS) assert_contains "$name over $transport: OPT in the BADVERS answer" "$out" "opt udp=" ;;
            esac
        fi
        assert_dw_alive "after '$name' over $transport"
        valid=$((valid + 1))
        out=$(dw_dwq "${topt[@]}" "good-$transport-$n.bench.test" A) ||
            fail "a valid query over $transport after '$name' got no proper answer: $out"
        assert_contains "valid query over $transport after '$name'" "$out" "A 192.0.2.1"
        ok "$name over $transport: ${want/drop/no answer}; a valid query still answers"
    done
done

out=$(dw_dig +edns=1 +noednsnegotiation bad-edns1-dig.bench.test A 2>&1) || fail "dig +edns=1: no reply: $out"
assert_eq "dig +edns=1: status" BADVERS "$(dig_status "$out")"
assert_match "dig +edns=1: the answer's OPT is version 0" "$out" '; EDNS: version: 0,'
out=$(dw_dig +tcp +edns=1 +noednsnegotiation bad-edns1-digtcp.bench.test A 2>&1) || fail "dig +tcp +edns=1: $out"
assert_eq "dig +tcp +edns=1: status" BADVERS "$(dig_status "$out")"
ok "dig +edns=1 (UDP and TCP): status BADVERS"

# --- broken TCP framing -------------------------------------------------------------------------
out=$(dw_dwq -t -r -w 2 -x "0000" || true)
assert_match "a zero-length TCP frame: no answer" "$out" '^noanswer'
out=$(dw_dwq -t -r -w 2 -x "012c$(header_hex 0x5555 0x0100 1 0 0 0)" || true)
assert_match "a TCP frame announcing 300 bytes and carrying 12: no answer" "$out" '^noanswer'
out=$(dw_dwq -t -r -w 2 -x "00" || true)
assert_match "half a length prefix: no answer" "$out" '^noanswer'
assert_dw_alive "after broken TCP framing"
expect_a "after broken TCP framing" good-framing.bench.test 192.0.2.1 +tcp
ok "broken TCP framing (zero length, short frame, half a prefix): no answer, still serving"

# Two queries in one TCP write, the first malformed: the second still gets its answer or
# the connection is closed; either way the process lives and a new connection works.
two="$(printf '%04x' 16)$(header_hex 0x6666 0x0100 0 0 0 0)deadbeef"
good=$(query_hex 0x7777 good-after-formerr.bench.test)
two+="$(printf '%04x' $((${#good} / 2)))$good"
out=$(dw_dwq -t -r -w 3 -x "$two" || true)
assert_match "a malformed then a valid query in one TCP write: the first gets FORMERR" "$out" '^rcode=FORMERR id=26214 '
assert_dw_alive "after two queries in one TCP write"
ok "a malformed query followed by a valid one on one TCP connection: FORMERR first"

# --- noise: random datagrams and random TCP bytes (bounded) -------------------------------------
python3 - "$DW_PORT" <<'EOF'
import os, random, socket, sys
port = int(sys.argv[1])
random.seed(7)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(500):
    n = random.choice([0, 1, 11, 12, 13, 17, 30, 64, 300, 512, 1400])
    data = bytearray(os.urandom(n))
    if n >= 3:
        data[2] &= 0x7F  # QR=0, so that most reach the parser rather than the QR check
    u.sendto(bytes(data), ("127.0.0.1", port))
for _ in range(20):
    t = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        t.sendall(os.urandom(random.randint(1, 600)))
    except OSError:
        pass
    t.close()
EOF
sleep 0.5
assert_dw_alive "after 500 random datagrams and 20 random TCP streams"
expect_a "after random noise, UDP" good-noise-udp.bench.test 192.0.2.1
expect_a "after random noise, TCP" good-noise-tcp.bench.test 192.0.2.1 +tcp
ok "500 random datagrams and 20 random TCP streams: still serving"

# --- nothing bad went upstream ---------------------------------------------------------------------
bad=$(ub_queries '(^|\.)bad-' || true)
[[ -z $bad ]] || fail "the upstream received queries that should have been rejected:
$bad"
for transport in udp tcp; do
    for n in $(seq 1 ${#ORDER[@]}); do
        assert_ge "Unbound received good-$transport-$n.bench.test" 1 \
            "$(ub_count "^good-$transport-$n\.bench\.test\.\$")"
    done
done
ok "the upstream received every valid query and none of the bad ones"

stop_dnsward_clean
ok "clean shutdown: exit status 0"
