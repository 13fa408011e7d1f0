#!/usr/bin/env bash
# test_robustness: clients and signals that once broke the daemon. A second signal while
# a UDP query waits; clients that pipeline queries and leave before the answers; a TCP
# client that pipelines large answers and never reads them. Each case ends with the
# daemon still serving, or exiting 0 with a clean sanitizer log.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig unbound openssl python3 ss
need_dnsward
need_dwq

make_certs

# --- a second signal while a UDP query waits on a stalled upstream ----------------------------
# Regression: the listeners were freed before the queries in flight were failed, so the
# SERVFAIL for the waiting UDP query was sent through a freed listener.
start_fault STALL stall
start_dnsward -u "tls://127.0.0.1:$STALL_PORT#upstream.test" --ca-file "$CERTS/ca.pem" \
    --timeout 10s --attempt-timeout 9s
dw_dwq -w 5 waiting.bench.test A >"$T/waiting.out" 2>&1 &
waiter=$!
_PIDS+=("$waiter")
wait_until 5 eval '(($(fault_count STALL query) >= 1))' ||
    fail "the stalled upstream never received the query"
kill -TERM "$DW_PID"
sleep 0.2
stop_dnsward_clean TERM
wait "$waiter" || true
_forget_pid "$waiter"
assert_contains "the query in flight at the second signal" "$(cat "$T/waiting.out")" "rcode=SERVFAIL"
ok "a second SIGTERM with a UDP query in flight: SERVFAIL sent, exit 0, sanitizers clean"

# --- clients that send and leave --------------------------------------------------------------
# Regression: a query whose TCP client had gone kept its upstream slot until its answer
# came, so clients that pipelined queries and reset their connections filled the
# upstream connection and a patient client then got SERVFAIL.
start_fault SLOW ok good --delay 1500
start_dnsward -u "tls://127.0.0.1:$SLOW_PORT#upstream.test" --ca-file "$CERTS/ca.pem" \
    --timeout 4s --attempt-timeout 3s --upstream-max-connections 1 --upstream-max-inflight 20
# Five clients each pipeline 20 queries and reset their connection (SO_LINGER 0). A
# client that merely half-closes is still owed its answers (RFC 7766), so only a reset
# or a failed write frees its queries.
python3 - "$DW_PORT" <<'PY'
import socket, struct, sys, time
for c in range(5):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    for i in range(20):
        name = b"".join(bytes([len(l)]) + l for l in [b"leaver%d-%d" % (c, i), b"bench", b"test"]) + b"\0"
        q = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1)
        s.sendall(struct.pack(">H", len(q)) + q)
    time.sleep(0.2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
PY
out=$(dw_dwq -t -n 10 -w 6 patient.bench.test A || true)
assert_contains "a patient client after five that left" "$out" "answered=10 "
assert_contains "a patient client after five that left" "$out" "rcodes=NOERROR:10 "
stop_dnsward_clean
ok "clients that pipeline queries and leave do not keep the upstream's slots"

# --- a TCP client that never reads ----------------------------------------------------------------
# Regression: pausing reads stopped recv() but not the dispatch of queries already read,
# and answers in flight when reading paused were queued without limit, so one client
# that never read its ~50 KB answers made dnsward buffer tens of MB.
start_unbound
# Under AddressSanitizer freed memory goes to a quarantine instead of being reused, so
# peak memory would count every allocation ever made (OpenSSL frees and reallocates its
# record buffer for each burst) rather than what is held at once. Without the quarantine
# the figure means what it means in a normal build. Harmless when not built with ASan.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"
peak_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$DW_PID/status"; }

# never_reader WHAT ARGS...: the case against a dnsward started with ARGS. With the cache
# off every answer comes from upstream while the client's reads are paused (what broke
# first); with it on every answer but the first is a cache hit, written at once.
never_reader() {
    local what=$1 before during reader
    shift
    start_dnsward -u "tls://127.0.0.1:$UB_DOT#upstream.test" --ca-file "$CERTS/ca.pem" \
        --tcp-max-inflight 1000 --tcp-idle-timeout 4s "$@"
    dw_dwq -t huge.test TXT >/dev/null # warm up: connections and buffers exist before measuring
    before=$(peak_kb)
    python3 - "$DW_PORT" <<'EOF' &
import socket, struct, sys, time
# 3000 pipelined queries for huge.test TXT (a ~50 KB answer each), written and never read.
q = bytes.fromhex("0001" "0100" "0001000000000000") + b"\x04huge\x04test\x00" + struct.pack(">HH", 16, 1)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setblocking(False)
sent = 0
for i in range(3000):
    frame = struct.pack(">H", len(q)) + struct.pack(">H", i) + q[2:]
    try:
        s.send(frame)
    except BlockingIOError:
        break
    sent += 1
time.sleep(6)
s.close()
EOF
    reader=$!
    _PIDS+=("$reader")
    sleep 3
    during=$(peak_kb)
    echo "#   $what: peak resident memory: ${before} kB before, ${during} kB after a client that does not read"
    assert_le "$what: growth of peak resident memory (kB) for one client that never reads" 16384 $((during - before))
    assert_dw_alive "$what: a TCP client that never reads"
    expect_a "$what: while a TCP client does not read" "other-${what// /-}.bench.test" 192.0.2.1 +tcp
    wait "$reader" || true
    _forget_pid "$reader"
    stop_dnsward_clean
}
never_reader "cache off" --cache-size 0
ok "a TCP client that pipelines large answers from upstream and never reads them: memory bounded, still serving"
never_reader "cache on"
ok "the same with every answer but the first a cache hit: memory bounded, still serving"
