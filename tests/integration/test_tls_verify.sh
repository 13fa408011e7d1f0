#!/usr/bin/env bash
# test_tls_verify: the upstream's certificate and name are verified, and a query is never
# written to an upstream that failed verification. Each bad upstream is a fault_upstream.py in
# "ok" mode (it would answer anything) that records every query it reads: it must read none.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig unbound openssl python3 ss
need_dnsward
need_dwq

make_certs
TIMEOUT_S=2

# --- a control: the fault server with the good certificate is trusted and answers ----------------
start_fault GOOD ok good
start_dnsward -u "tls://127.0.0.1:$GOOD_PORT#upstream.test" --ca-file "$CERTS/ca.pem" --timeout ${TIMEOUT_S}s
out=$(dw_dwq control.bench.test A) || fail "control: $out"
assert_contains "control: fault_upstream.py with the good certificate answers" "$out" "A 192.0.2.9"
assert_eq "control: queries read by the upstream" 1 "$(fault_count GOOD query)"
stop_dnsward_clean
stop_pid "$GOOD_PID"
ok "control: an upstream with a certificate of the test CA for upstream.test is used"

# --- certificates that must be refused ------------------------------------------------------------
for cert in wrongname selfsigned expired; do
    start_fault BAD ok "$cert"
    start_dnsward -u "tls://127.0.0.1:$BAD_PORT#upstream.test" --ca-file "$CERTS/ca.pem" \
        --timeout ${TIMEOUT_S}s --attempt-timeout 1s
    expect_servfail_in_time $TIMEOUT_S "$cert certificate" "q1-$cert.bench.test"
    expect_servfail_in_time $TIMEOUT_S "$cert certificate, second query" "q2-$cert.bench.test"
    assert_ge "$cert certificate: dnsward did try to connect" 1 "$(fault_count BAD conn)"
    assert_eq "$cert certificate: queries the upstream read" 0 "$(fault_count BAD query)"
    assert_dw_alive "$cert certificate"
    stop_dnsward_clean
    stop_pid "$BAD_PID"
    ok "$cert certificate: SERVFAIL within the deadline, and not one query sent to that upstream"
done

# The same with Unbound as the upstream (a real DoT server): nothing reaches its query log.
start_unbound wrongname
start_dnsward -u "tls://127.0.0.1:$UB_DOT#upstream.test" --ca-file "$CERTS/ca.pem" --timeout ${TIMEOUT_S}s
expect_servfail_in_time $TIMEOUT_S "Unbound with the wrong-name certificate" unbound-wrongname.bench.test
assert_eq "Unbound with the wrong-name certificate: queries it received" 0 "$(ub_count 'unbound-wrongname')"
stop_dnsward_clean
stop_unbound
ok "Unbound with the wrong-name certificate: SERVFAIL, no query in its log"

# A name the certificate does not have, given after '#': refused.
start_unbound good
start_dnsward -u "tls://127.0.0.1:$UB_DOT#other.test" --ca-file "$CERTS/ca.pem" --timeout ${TIMEOUT_S}s
expect_servfail_in_time $TIMEOUT_S "verifying against #other.test" hash-other.bench.test
assert_eq "verifying against #other.test: queries Unbound received" 0 "$(ub_count 'hash-other')"
stop_dnsward_clean
ok "an upstream name that is not in the certificate (#other.test): SERVFAIL, nothing sent"

# Without --ca-file the system store is used, which does not hold the test CA: refused.
start_dnsward -u "tls://127.0.0.1:$UB_DOT#upstream.test" --timeout ${TIMEOUT_S}s
expect_servfail_in_time $TIMEOUT_S "the system trust store (no test CA)" system-store.bench.test
assert_eq "the system trust store: queries Unbound received" 0 "$(ub_count 'system-store')"
stop_dnsward_clean
ok "without --ca-file the test CA is not trusted: SERVFAIL, nothing sent"

# --- an upstream given by IP address only ----------------------------------------------------------
start_dnsward -u "tls://127.0.0.1:$UB_DOT" --ca-file "$CERTS/ca.pem" --timeout ${TIMEOUT_S}s
out=$(dw_dwq by-ip.bench.test A) || fail "tls://127.0.0.1:PORT without #name: $out"
assert_contains "tls://127.0.0.1:PORT without #name, certificate with IP:127.0.0.1" "$out" "A 192.0.2.1"
assert_ge "by-ip: queries Unbound received" 1 "$(ub_count '^by-ip\.bench\.test\.$')"
stop_dnsward_clean
ok "tls://127.0.0.1:PORT without #name: verified against the certificate's IP address, answered"

start_fault NAMEONLY ok nameonly
start_dnsward -u "tls://127.0.0.1:$NAMEONLY_PORT" --ca-file "$CERTS/ca.pem" --timeout ${TIMEOUT_S}s
expect_servfail_in_time $TIMEOUT_S "tls://127.0.0.1:PORT against a certificate without that IP" by-ip-nameonly.bench.test
assert_eq "by IP, name-only certificate: queries the upstream read" 0 "$(fault_count NAMEONLY query)"
stop_dnsward_clean
stop_pid "$NAMEONLY_PID"
ok "tls://127.0.0.1:PORT against a certificate without IP:127.0.0.1: SERVFAIL, nothing sent"

# --- SPKI pins ------------------------------------------------------------------------------------
right=$(spki_pin "$CERTS/good.pem")
wrong=$(spki_pin "$CERTS/other.pem")
[[ $right != "$wrong" ]] || fail "the two pins are equal"
start_dnsward -u "tls://127.0.0.1:$UB_DOT#upstream.test" --pin-sha256 "$right" --ca-file "$CERTS/ca.pem" \
    --timeout ${TIMEOUT_S}s
out=$(dw_dwq pinned.bench.test A) || fail "the right pin: $out"
assert_contains "the right pin" "$out" "A 192.0.2.1"
stop_dnsward_clean
ok "--pin-sha256 with the upstream's key: answered"

start_fault PIN ok good
start_dnsward -u "tls://127.0.0.1:$PIN_PORT#upstream.test" --pin-sha256 "$wrong" --ca-file "$CERTS/ca.pem" \
    --timeout ${TIMEOUT_S}s
expect_servfail_in_time $TIMEOUT_S "a wrong pin" wrong-pin.bench.test
assert_ge "a wrong pin: dnsward did connect" 1 "$(fault_count PIN conn)"
assert_eq "a wrong pin: queries the upstream read" 0 "$(fault_count PIN query)"
stop_dnsward_clean
stop_pid "$PIN_PID"
ok "--pin-sha256 with another key's pin: SERVFAIL, nothing sent"

# --- no plaintext, ever ---------------------------------------------------------------------------
# The "upstream" is a plain TCP/UDP listener: dnsward must speak TLS to it (and so fail),
# never DNS in the clear, and never over UDP.
start_fault SNIFF sniff
start_dnsward -u "tls://127.0.0.1:$SNIFF_PORT#upstream.test" --ca-file "$CERTS/ca.pem" --timeout ${TIMEOUT_S}s
expect_servfail_in_time $TIMEOUT_S "a plaintext upstream" sniffed.bench.test
assert_ge "a plaintext upstream: connections" 1 "$(fault_count SNIFF conn)"
assert_ge "a plaintext upstream: connections that began with a TLS handshake" 1 "$(fault_count SNIFF hello)"
assert_eq "a plaintext upstream: DNS queries seen in the clear over TCP" 0 "$(fault_count SNIFF plain)"
assert_eq "a plaintext upstream: UDP datagrams" 0 "$(fault_count SNIFF udp)"
stop_dnsward_clean
stop_pid "$SNIFF_PID"
ok "an upstream that does not speak TLS: SERVFAIL; only TLS handshakes were sent, no plaintext query"
