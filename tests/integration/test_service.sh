#!/usr/bin/env bash
# test_service: dnsward under a service manager, with the manager's side played by small
# helpers: readiness, reload and stop notification (sd_notify(3), to notify_listener.py),
# sockets passed in (socket activation, sd_listen_fds(3), by socket_activate.py), and
# giving up root after binding (--user, --chroot; those cases need root and are skipped
# without it).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig unbound openssl python3 ss
need_dnsward
need_dwq

PY=${PYTHON:-/usr/bin/python3}
NOTIFY_LISTENER=$LIB_DIR/notify_listener.py
SOCKET_ACTIVATE=$LIB_DIR/socket_activate.py
[[ -x $PY ]] || fail "no python at $PY"

make_certs
start_unbound
UP=(-u "tls://127.0.0.1:$UB_DOT#upstream.test" --ca-file "$CERTS/ca.pem" --timeout 5s
    --log-level info)

# ---------------------------------------------------------------------------------------
# Helpers

# start_notify ADDR: a notification socket at ADDR (a path, or @NAME for an abstract one);
# its datagrams go to $NOTIFY_EVENTS, one "pid=N STATE|STATE..." line each.
NOTIFY_N=0
start_notify() {
    NOTIFY_N=$((NOTIFY_N + 1))
    NOTIFY_ADDR=$1
    NOTIFY_EVENTS=$T/notify.$NOTIFY_N.events
    : >"$NOTIFY_EVENTS"
    "$PY" "$NOTIFY_LISTENER" --socket "$NOTIFY_ADDR" --events "$NOTIFY_EVENTS" \
        >>"$T/notify.$NOTIFY_N.log" 2>&1 &
    NOTIFY_PID=$!
    _PIDS+=("$NOTIFY_PID")
    wait_until 10 grep -qx listening "$NOTIFY_EVENTS" ||
        fail "notify_listener.py did not bind $NOTIFY_ADDR: $(cat "$T/notify.$NOTIFY_N.log")"
}

# notify_count REGEX: how many notifications match REGEX (extended, on the state part).
notify_count() {
    sed -n 's/^pid=[0-9?]* //p' "$NOTIFY_EVENTS" | grep -cE -- "$1" || true
}

# wait_notify REGEX N: wait (10 s at most) until N notifications match REGEX.
wait_notify() {
    wait_until 10 eval "(( \$(notify_count '$1') >= $2 ))" ||
        fail "expected $2 notification(s) matching /$1/ within 10 s; got:
$(_quote "$(cat "$NOTIFY_EVENTS")")"
}

# launch_dw PORT COMMAND...: run COMMAND (dnsward, or a helper that becomes dnsward with
# exec) in the background as the running dnsward, listening on 127.0.0.1:PORT. Does not wait.
launch_dw() {
    [[ -z $DW_PID ]] || fail "launch_dw: one is already running (pid $DW_PID)"
    DW_PORT=$1
    shift
    _DW_N=$((_DW_N + 1))
    DW_LOG=$T/dnsward.$_DW_N.log
    echo "# $*" >"$DW_LOG"
    "$@" >>"$DW_LOG" 2>&1 </dev/null &
    DW_PID=$!
    _PIDS+=("$DW_PID")
}

# wait_dw_answers: the running dnsward answers a probe it answers itself, over UDP and TCP.
wait_dw_answers() {
    local limit=$(($(now_ms) + 20000)) t
    for t in "" -t; do
        until "$DWQ" $t -s 127.0.0.1 -p "$DW_PORT" -w 1 -x "$READY_PROBE" >/dev/null 2>&1; do
            if ! _alive "$DW_PID"; then
                local rc=0
                wait "$DW_PID" || rc=$?
                _forget_pid "$DW_PID"
                DW_PID=''
                fail "dnsward exited with status $rc while starting"
            fi
            (($(now_ms) < limit)) || fail "dnsward answered no probe ${t:-over UDP} within 20 s"
            sleep 0.1
        done
    done
}

# expect_answers CASE NAME: a real query, over UDP then TCP, gets A 192.0.2.1 through the
# upstream.
expect_answers() {
    local what=$1 name=$2 out t
    for t in "" -t; do
        out=$(dw_dwq $t -w 3 "${t:+tcp-}$name" A 2>&1) || fail "$what: no answer ${t:-over UDP}:
$out"
        assert_contains "$what ${t:-over UDP}" "$out" "rcode=NOERROR"
        assert_contains "$what ${t:-over UDP}" "$out" "A 192.0.2.1"
    done
}

# run_dw_fail CASE COMMAND...: COMMAND (dnsward) must exit 1 within 20 s; its output is in
# DW_FAIL_OUT.
run_dw_fail() {
    local what=$1 rc=0
    shift
    DW_FAIL_OUT=$(timeout 20 "$@" 2>&1 </dev/null) || rc=$?
    assert_eq "$what: exit status" 1 "$rc"
}

monotonic_us() { "$PY" -c 'import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)'; }

# ---------------------------------------------------------------------------------------
# sd_notify: READY=1, RELOADING=1 ... READY=1, STOPPING=1

start_notify "$T/notify.sock"
free_port port
launch_dw "$port" env NOTIFY_SOCKET="$NOTIFY_ADDR" "$DNSWARD" -l "127.0.0.1:$port" "${UP[@]}"
wait_notify '^READY=1$' 1
# No probe first: READY=1 must mean that the listeners are up and the upstream is set.
expect_answers "the first query right after READY=1" r1.bench.test
assert_eq "READY=1 is the first notification" "READY=1" "$(sed -n 's/^pid=[0-9?]* //p' "$NOTIFY_EVENTS" | head -n 1)"
assert_eq "READY=1 comes from the daemon itself" "pid=$DW_PID READY=1" "$(grep -m1 'READY=1' "$NOTIFY_EVENTS")"
ok "READY=1 is sent once the listeners answer, by the main process"

assert_contains "root without --user" "$(cat "$DW_LOG")" "running as root: set \`user\`"
ok "as root without --user, the warning that it keeps running as root is logged"

t0=$(monotonic_us)
kill -HUP "$DW_PID"
wait_notify '^READY=1$' 2
t1=$(monotonic_us)
assert_eq "notifications after SIGHUP" 1 "$(notify_count '^RELOADING=1\|MONOTONIC_USEC=[0-9]+$')"
reload_line=$(grep -n 'RELOADING=1' "$NOTIFY_EVENTS" | cut -d: -f1)
ready2_line=$(grep -n 'READY=1' "$NOTIFY_EVENTS" | sed -n 2p | cut -d: -f1)
((reload_line < ready2_line)) || fail "RELOADING=1 (line $reload_line) after READY=1 (line $ready2_line)"
usec=$(sed -nE 's/.*RELOADING=1\|MONOTONIC_USEC=([0-9]+)$/\1/p' "$NOTIFY_EVENTS")
assert_ge "MONOTONIC_USEC is CLOCK_MONOTONIC at the reload (not before the signal)" "$t0" "$usec"
assert_le "MONOTONIC_USEC is CLOCK_MONOTONIC at the reload (not after READY=1)" "$t1" "$usec"
assert_contains "SIGHUP reloaded" "$(cat "$DW_LOG")" "SIGHUP: configuration reloaded"
expect_answers "after the reload" r2.bench.test
ok "SIGHUP: RELOADING=1 with MONOTONIC_USEC of CLOCK_MONOTONIC, then READY=1, then answers"

stop_dnsward_clean
assert_eq "the last notification" "STOPPING=1" "$(sed -n 's/^pid=[0-9?]* //p' "$NOTIFY_EVENTS" | tail -n 1)"
assert_eq "STOPPING=1 once" 1 "$(notify_count '^STOPPING=1$')"
ok "SIGTERM: STOPPING=1, and a clean exit"

# An abstract socket name ("@name"), as systemd in a container may use.
stop_pid "$NOTIFY_PID"
start_notify "@dnsward-test-$$-$RANDOM"
free_port port
launch_dw "$port" env NOTIFY_SOCKET="$NOTIFY_ADDR" "$DNSWARD" -l "127.0.0.1:$port" "${UP[@]}"
wait_notify '^READY=1$' 1
expect_answers "abstract socket: after READY=1" r3.bench.test
stop_dnsward_clean
wait_notify '^STOPPING=1$' 1
ok "an abstract notification socket (@name) gets READY=1 and STOPPING=1"

# ---------------------------------------------------------------------------------------
# Socket activation

# The helper binds the ports without SO_REUSEADDR and keeps them across its exec of
# dnsward: a socket dnsward bound itself would fail with EADDRINUSE, so an answer means
# the passed-in sockets were taken. extra is passed in too, but no listener wants it.
free_port port
free_port extra
launch_dw "$port" "$PY" "$SOCKET_ACTIVATE" --udp "127.0.0.1:$port" --udp "127.0.0.1:$extra" \
    --tcp "127.0.0.1:$port" -- "$DNSWARD" -l "127.0.0.1:$port" "${UP[@]}"
wait_dw_answers
expect_answers "socket activation" r4.bench.test
log=$(cat "$DW_LOG")
assert_contains "adopted udp" "$log" "socket activation: udp 127.0.0.1:$port passed in"
assert_contains "adopted tcp" "$log" "socket activation: tcp 127.0.0.1:$port passed in"
assert_eq "UDP sockets bound to port $port" 1 "$(ss -Hlnu "sport = :$port" | wc -l)"
assert_eq "TCP sockets listening on port $port" 1 "$(ss -Hlnt "sport = :$port" | wc -l)"
ok "socket activation: the passed-in UDP and TCP sockets answer (dnsward could not have bound them)"

assert_contains "the unused socket is logged" "$log" \
    "socket activation: udp 127.0.0.1:$extra was passed in, but no listener is configured there; closed"
udp_bound "$extra" && fail "the unused passed-in socket 127.0.0.1:$extra is still bound"
ok "socket activation: a passed-in socket that no listener wants is closed and logged"
stop_dnsward_clean

# The same sockets, but LISTEN_PID names another process: they are not ours to take, so
# dnsward binds its own, and the held port makes that fail.
free_port port
run_dw_fail "LISTEN_PID of another process" "$PY" "$SOCKET_ACTIVATE" --pid 1 \
    --udp "127.0.0.1:$port" --tcp "127.0.0.1:$port" -- "$DNSWARD" -l "127.0.0.1:$port" "${UP[@]}"
assert_contains "LISTEN_PID of another process" "$DW_FAIL_OUT" "udp 127.0.0.1:$port: bind: Address already in use"
assert_not_contains "LISTEN_PID of another process" "$DW_FAIL_OUT" "passed in"
ok "sockets whose LISTEN_PID is another process's are left alone"

free_port port
run_dw_fail "LISTEN_FDS not a number" bash -c 'export LISTEN_PID=$$ LISTEN_FDS=two; exec "$0" "$@"' \
    "$DNSWARD" -l "127.0.0.1:$port" "${UP[@]}"
assert_eq "LISTEN_FDS not a number: one line" \
    "dnsward: socket activation: LISTEN_PID/LISTEN_FDS: Invalid argument" "$DW_FAIL_OUT"
ok "a malformed LISTEN_FDS stops the start with one line and exit status 1"

# ---------------------------------------------------------------------------------------
# Privileges

if (($(id -u) != 0)); then
    echo "# skip: the privilege cases need root (running as uid $(id -u))"
    exit 0
fi

# nobody reads the CA file again on SIGHUP (the command line is parsed again), and runs
# dnsward from the build directory below.
chmod 755 "$T" "$CERTS"
chmod 644 "$CERTS/ca.pem"

nobody_uid=$(id -u nobody)
nobody_gid=$(id -g nobody)
nobody_groups=$(id -G nobody | tr ' ' '\n' | sort -n | tr '\n' ' ' | sed 's/ $//')

# status_field PID FIELD: the values of a /proc/PID/status line, single-spaced.
status_field() { sed -nE "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s '[:space:]' ' ' | sed 's/ $//'; }

# check_nobody CASE: the running dnsward is nobody in every id, with no capability left.
check_nobody() {
    local what=$1 groups
    assert_eq "$what: Uid (real, effective, saved, fs)" \
        "$nobody_uid $nobody_uid $nobody_uid $nobody_uid" "$(status_field "$DW_PID" Uid)"
    assert_eq "$what: Gid (real, effective, saved, fs)" \
        "$nobody_gid $nobody_gid $nobody_gid $nobody_gid" "$(status_field "$DW_PID" Gid)"
    groups=$(status_field "$DW_PID" Groups | tr ' ' '\n' | sort -n | tr '\n' ' ' | sed 's/ $//')
    assert_eq "$what: supplementary groups" "$nobody_groups" "$groups"
    assert_eq "$what: effective capabilities" 0000000000000000 "$(status_field "$DW_PID" CapEff)"
    assert_eq "$what: permitted capabilities" 0000000000000000 "$(status_field "$DW_PID" CapPrm)"
}

start_notify "$T/notify-nobody.sock"
free_port port
launch_dw "$port" env NOTIFY_SOCKET="$NOTIFY_ADDR" "$DNSWARD" -l "127.0.0.1:$port" "${UP[@]}" \
    --user nobody
wait_notify '^READY=1$' 1
check_nobody "--user nobody"
expect_answers "--user nobody" r5.bench.test
assert_contains "--user nobody: logged" "$(cat "$DW_LOG")" "running as user nobody (uid $nobody_uid, gid $nobody_gid)"
assert_not_contains "--user nobody: no root warning" "$(cat "$DW_LOG")" "running as root"
ok "--user nobody: every uid and gid is nobody's, no capability is left, and it answers"

kill -HUP "$DW_PID"
wait_notify '^READY=1$' 2
assert_eq "--user nobody: RELOADING=1" 1 "$(notify_count '^RELOADING=1\|')"
assert_contains "--user nobody: SIGHUP" "$(cat "$DW_LOG")" "SIGHUP: configuration reloaded"
expect_answers "--user nobody, after SIGHUP" r6.bench.test
check_nobody "--user nobody, after SIGHUP"
stop_dnsward_clean
wait_notify '^STOPPING=1$' 1
ok "--user nobody: SIGHUP reloads (RELOADING=1, then READY=1), SIGTERM stops cleanly (STOPPING=1, exit 0)"

# A chroot into an empty directory: the trust store (--ca-file here) was read before it.
jail=$T/jail
mkdir "$jail"
start_notify "$T/notify-jail.sock"
free_port port
# LeakSanitizer reads /proc/PID/task at exit, which the chroot hides: the leak check is the
# other cases' (a sanitizer build's report would fail them).
launch_dw "$port" env NOTIFY_SOCKET="$NOTIFY_ADDR" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    "$DNSWARD" -l "127.0.0.1:$port" "${UP[@]}" --user nobody --chroot "$jail"
wait_notify '^READY=1$' 1
check_nobody "--chroot"
assert_eq "--chroot: /proc/PID/root" "$jail" "$(readlink "/proc/$DW_PID/root")"
assert_eq "--chroot: /proc/PID/cwd" "$jail" "$(readlink "/proc/$DW_PID/cwd")"
expect_answers "--user nobody --chroot (a new TLS connection verified inside the chroot)" r7.bench.test
kill -HUP "$DW_PID"
wait_notify '^READY=1$' 2
# The files named on the command line are outside the chroot now: the reload may fail,
# but says so, and the running configuration serves on.
assert_match "--chroot: SIGHUP" "$(cat "$DW_LOG")" \
    "SIGHUP: (configuration reloaded|.*the running configuration stays in force)"
expect_answers "--chroot, after SIGHUP" r8.bench.test
stop_dnsward_clean
wait_notify '^STOPPING=1$' 1
ok "--user nobody --chroot DIR: root is DIR, it answers, notifies, reloads and stops cleanly"

free_port port
run_dw_fail "--user no-such-user" "$DNSWARD" -l "127.0.0.1:$port" "${UP[@]}" --user "no-such-user-$$"
assert_eq "--user no-such-user: the error line" \
    "dnsward[error]: user 'no-such-user-$$': no such user" "$(grep -F '[error]' <<<"$DW_FAIL_OUT")"
ok "--user no-such-user: one error line and exit status 1"

# Not root: the user it already is may be configured, another may not.
free_port port
launch_dw "$port" setpriv --reuid=nobody --regid="$nobody_gid" --clear-groups \
    "$DNSWARD" -l "127.0.0.1:$port" "${UP[@]}" --user nobody
wait_dw_answers
expect_answers "started as nobody, --user nobody" r9.bench.test
assert_not_contains "started as nobody: no root warning" "$(cat "$DW_LOG")" "running as root"
stop_dnsward_clean
ok "started as nobody with --user nobody: runs"

free_port port
run_dw_fail "started as nobody, --user root" setpriv --reuid=nobody --regid="$nobody_gid" \
    --clear-groups "$DNSWARD" -l "127.0.0.1:$port" "${UP[@]}" --user root
assert_contains "started as nobody, --user root" "$DW_FAIL_OUT" \
    "dnsward[error]: user 'root': cannot switch to it without root (running as uid $nobody_uid)"
ok "started as nobody with --user root: refused with one line and exit status 1"
