#!/usr/bin/env bash
# test_cli: the command line and the configuration file: -t checks and exits, errors name
# file:line and the key, every key of the shipped file is also a long flag, and a
# configuration that cannot be honoured refuses to start, loudly.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools python3 ss openssl
need_dnsward

CONF=$DNSWARD_SRC/conf/dnsward.conf

# run_dw ARGS...: run the daemon (at most 10 s), set RC, OUT (stdout) and ERR (stderr).
run_dw() {
    RC=0
    timeout 10 "$DNSWARD" "$@" >"$T/out" 2>"$T/err" </dev/null || RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
    ((RC != 124)) || fail "dnsward $* was still running after 10 s (expected it to exit)"
}

# --- -t -------------------------------------------------------------------------------------------
[[ -f $CONF ]] || fail "the shipped configuration $CONF is missing"
run_dw -t -c "$CONF"
assert_eq "dnsward -t -c conf/dnsward.conf: exit status (stderr: $ERR)" 0 "$RC"
ok "dnsward -t -c conf/dnsward.conf exits 0"

free_port P1
run_dw -t -l "127.0.0.1:$P1" -u "tls://127.0.0.1:853#upstream.test" --timeout 3s --attempt-timeout 1500ms \
    --max-attempts 3 --udp-max-size 1232 --tcp-max-inflight 128 --tcp-idle-timeout 10s \
    --padding yes --log-level debug -v
assert_eq "dnsward -t with flags only: exit status (stderr: $ERR)" 0 "$RC"
ok "dnsward -t with flags only (no file) exits 0"

# Every key the shipped file sets is also a long flag, accepted with the same value.
keys=0
while IFS= read -r line; do
    [[ $line =~ ^[[:space:]]*([a-z0-9-]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])[[:space:]]*$ ]] || continue
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    keys=$((keys + 1))
    run_dw -t "--$key" "$value"
    assert_eq "the file's key '$key = $value' as the flag --$key '$value': exit status of -t (stderr: $ERR)" 0 "$RC"
done <"$CONF"
echo "#   $keys keys of conf/dnsward.conf tried as flags"
ok "every key set in conf/dnsward.conf is accepted as a long flag"

# -t checks without binding: a port already taken is no error for -t.
free_port BUSY
python3 -c '
import socket, sys, time
t = socket.socket(); t.bind(("127.0.0.1", int(sys.argv[1]))); t.listen(1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", int(sys.argv[1])))
time.sleep(120)' "$BUSY" &
HOLDER=$!
_PIDS+=("$HOLDER")
wait_until 10 tcp_listening "$BUSY" || fail "could not occupy port $BUSY"
run_dw -t -l "127.0.0.1:$BUSY" -u "tls://127.0.0.1:853#upstream.test"
assert_eq "dnsward -t with a listener on a port in use: exit status (stderr: $ERR)" 0 "$RC"
ok "dnsward -t binds nothing (a port in use is no error for -t)"

# --- errors in a file name the file, the line and the key -----------------------------------------
cat >"$T/unknown.conf" <<'EOF'
# a comment
timeout = 3s
no-such-key = 1
EOF
run_dw -t -c "$T/unknown.conf"
assert_eq "an unknown key on line 3: exit status" 1 "$RC"
assert_contains "an unknown key on line 3: the message names file:line" "$ERR" "unknown.conf:3"
assert_contains "an unknown key on line 3: the message names the key" "$ERR" "no-such-key"
ok "an unknown key: exit 1, message names unknown.conf:3 and the key"

cat >"$T/badvalue.conf" <<'EOF'
max-attempts = 3
timeout = soon
EOF
run_dw -t -c "$T/badvalue.conf"
assert_eq "a bad value on line 2: exit status" 1 "$RC"
assert_contains "a bad value on line 2: the message names file:line" "$ERR" "badvalue.conf:2"
assert_contains "a bad value on line 2: the message names the key" "$ERR" "timeout"
ok "a bad value: exit 1, message names badvalue.conf:2 and the key"

cat >"$T/badupstream.conf" <<'EOF'
# upstreams
upstream = tls://127.0.0.1:853#upstream.test

upstream = tls://[not-an-address]:853
EOF
run_dw -t -c "$T/badupstream.conf"
assert_eq "a bad upstream URL on line 4: exit status" 1 "$RC"
assert_contains "a bad upstream URL on line 4: the message names file:line" "$ERR" "badupstream.conf:4"
assert_contains "a bad upstream URL on line 4: the message names the key" "$ERR" "upstream"
ok "a bad upstream URL: exit 1, message names badupstream.conf:4 and the key"

cat >"$T/garbled.conf" <<'EOF'
timeout = 3s
this line is not a setting
EOF
run_dw -t -c "$T/garbled.conf"
assert_eq "a line that is no setting: exit status" 1 "$RC"
assert_contains "a line that is no setting: the message names file:line" "$ERR" "garbled.conf:2"
ok "a line that is not key = value: exit 1, message names garbled.conf:2"

run_dw -t -c "$T/does-not-exist.conf"
assert_eq "a missing configuration file: exit status" 1 "$RC"
assert_contains "a missing configuration file: the message names it" "$ERR" "does-not-exist.conf"
ok "a missing configuration file: exit 1, message names it"

run_dw -t --timeout soon
assert_eq "--timeout soon: exit status" 1 "$RC"
assert_contains "--timeout soon: the message names the flag" "$ERR" "timeout"
ok "a bad value on the command line: exit 1, message names the flag"

# --- --version, -h, unknown flags ------------------------------------------------------------------
version=$(sed -nE 's/^project\(dnsward VERSION ([0-9.]+).*/\1/p' "$DNSWARD_SRC/CMakeLists.txt")
run_dw --version
assert_eq "--version: exit status" 0 "$RC"
assert_contains "--version: prints the version" "$OUT" "${version:-0.}"
ok "--version exits 0 and prints $version"

run_dw -h
assert_eq "-h: exit status" 0 "$RC"
for flag in -l -u -c -t --ca-file --timeout --attempt-timeout --max-attempts --udp-max-size \
    --tcp-max-connections --tcp-max-inflight --tcp-idle-timeout --upstream-idle-timeout \
    --pin-sha256 --padding --log-level --version; do
    assert_contains "-h: the usage mentions $flag" "$OUT" "$flag"
done
ok "-h exits 0 and lists every flag"

run_dw --no-such-flag
((RC != 0)) || fail "--no-such-flag: expected a non-zero exit status, saw 0"
assert_contains "--no-such-flag: the message names it" "$ERR" "no-such-flag"
ok "an unknown flag exits non-zero ($RC) and names it"

run_dw -t extra-argument
((RC != 0)) || fail "a stray argument: expected a non-zero exit status, saw 0"
ok "a stray non-option argument exits non-zero ($RC)"

# --- configurations that would weaken security, or cannot work, refuse to start ---------------------
for url in "udp://127.0.0.1:53" "tcp://127.0.0.1:53" "http://127.0.0.1/dns-query"; do
    run_dw -t -u "$url"
    ((RC != 0)) || fail "the plaintext upstream '$url' was accepted (dnsward -t exited 0)"
done
ok "plaintext upstream URLs (udp://, tcp://, http://) are refused"

run_dw -t -u "tls://127.0.0.1:853#upstream.test" --pin-sha256 'not base64!'
((RC != 0)) || fail "a malformed --pin-sha256 was accepted"
run_dw -t -u "tls://127.0.0.1:853#upstream.test" --pin-sha256 "$(printf 'short' | base64)"
((RC != 0)) || fail "a --pin-sha256 that is not 32 bytes was accepted"
ok "a malformed or short --pin-sha256 is refused"

free_port P2
run_dw -l "127.0.0.1:$P2" -u "tls://127.0.0.1:853#upstream.test" --ca-file "$T/no-such-ca.pem"
((RC != 0)) || fail "a missing --ca-file: dnsward exited 0 (expected it to refuse to start)"
assert_contains "a missing --ca-file: the message names it" "$ERR" "no-such-ca.pem"
ok "a --ca-file that does not exist: refuses to start, names the file"

run_dw -l "127.0.0.1:$BUSY" -u "tls://127.0.0.1:853#upstream.test"
((RC != 0)) || fail "a listener on a port in use: dnsward exited 0 (expected it to refuse to start)"
assert_contains "a listener on a port in use: the message names the address" "$ERR" "$BUSY"
ok "a listener on a port in use: refuses to start, names the address"
stop_pid "$HOLDER"
