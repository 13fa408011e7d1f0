# lib.sh: what every integration test sources.
#
# A test starts its own peers (Unbound, fault_upstream.py) and its own dnsward on free ports of
# 127.0.0.1, queries them with real clients (dig, kdig, dwq), asserts, and stops what it
# started. ctest gives the paths in the environment:
#   DNSWARD        the daemon          (default: $DNSWARD_BUILD/dnsward)
#   DNSWARD_BUILD  the build directory (dwq is $DNSWARD_BUILD/tests/dwq)
#   DNSWARD_SRC    the source tree
# KEEP_TMP=1 keeps the test's temporary directory (configs, certificates, logs).
#
# Nothing here kills a process by name: only the pids this test started, in the exit trap.
# A missing tool fails the test; it never skips.

set -Eeuo pipefail

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DNSWARD_SRC=${DNSWARD_SRC:-$(cd "$LIB_DIR/../.." && pwd)}
DNSWARD_BUILD=${DNSWARD_BUILD:-$DNSWARD_SRC/build}
DNSWARD=${DNSWARD:-$DNSWARD_BUILD/dnsward}
DWQ=${DWQ:-$DNSWARD_BUILD/tests/dwq}
FAULT_UPSTREAM=$LIB_DIR/fault_upstream.py
TEST_NAME=$(basename "$0" .sh)

T=$(mktemp -d "${TMPDIR:-/tmp}/dnsward-$TEST_NAME.XXXXXX")
CERTS=$T/certs

_PIDS=()        # every process this test started and has not reaped yet
_PORTS=()       # every port handed out, never handed out twice
_DW_N=0         # dnsward instances started, for log file names
DW_PID=''       # the dnsward now running (one at a time)
DW_LOG=''       # its stderr
DW_PORT=''      # its UDP+TCP listener on 127.0.0.1
CASES=0

# ---------------------------------------------------------------------------------------
# Reporting

_LAST_OK_MS=$(date +%s%3N)
ok() { # CASE...: one passing case, with the seconds it took since the previous one
    local now
    now=$(date +%s%3N)
    CASES=$((CASES + 1))
    printf 'ok - %s  # %d.%01ds\n' "$*" $(((now - _LAST_OK_MS) / 1000)) $(((now - _LAST_OK_MS) % 1000 / 100))
    _LAST_OK_MS=$now
}

# _quote TEXT: TEXT indented for a failure message, at most 30 lines of it.
_quote() {
    local n
    n=$(wc -l <<<"$1")
    head -n 30 <<<"$1" | sed 's/^/    | /'
    ((n <= 30)) || echo "    | ... ($((n - 30)) more lines)"
}

_show_log() { # file label lines
    local f=$1 label=$2 n=${3:-40}
    [[ -n $f && -s $f ]] || return 0
    echo "---- last $n lines of $label ($f) ----"
    tail -n "$n" "$f" | sed 's/^/    /'
    echo "----"
}

# fail MESSAGE...: the test fails here, showing dnsward's log.
fail() {
    echo "not ok - $*"
    _show_log "$DW_LOG" "dnsward's log"
    exit 1
}

_on_err() { # line command
    echo "not ok - command failed at $TEST_NAME.sh line $1: $2"
    _show_log "$DW_LOG" "dnsward's log"
}
trap '_on_err "$LINENO" "$BASH_COMMAND"' ERR

_alive() { # pid: running and not a zombie
    local st
    [[ -r /proc/$1/stat ]] || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z ]]
}

_forget_pid() {
    local p keep=()
    for p in "${_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    _PIDS=("${keep[@]}")
}

_cleanup() {
    local rc=$? p i
    set +e
    trap - ERR
    for p in "${_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    # A process the test froze (freeze_unbound) acts on SIGTERM only once thawed.
    for p in "${_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; done
    for i in $(seq 1 30); do
        local any=0
        for p in "${_PIDS[@]}"; do _alive "$p" && any=1; done
        ((any)) || break
        sleep 0.1
    done
    for p in "${_PIDS[@]}"; do _alive "$p" && kill -KILL "$p" 2>/dev/null; done
    for p in "${_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if ((rc == 0)); then
        echo "# $TEST_NAME: all $CASES cases passed"
    else
        echo "# $TEST_NAME: FAILED (exit $rc) after $CASES passing cases"
    fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "# files kept in $T"
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# Assertions: each says what was expected and what was seen.

assert_eq() { # what expected seen
    [[ $2 == "$3" ]] || fail "$1: expected '$2', saw '$3'"
}

assert_contains() { # what haystack needle (fixed string)
    grep -qF -- "$3" <<<"$2" || fail "$1: expected output containing '$3', saw:
$(_quote "$2")"
}

assert_not_contains() { # what haystack needle (fixed string)
    ! grep -qF -- "$3" <<<"$2" || fail "$1: expected output without '$3', saw:
$(_quote "$2")"
}

assert_match() { # what text extended-regex
    grep -qE -- "$3" <<<"$2" || fail "$1: expected output matching /$3/, saw:
$(_quote "$2")"
}

assert_le() { # what limit seen (integers)
    (($3 <= $2)) || fail "$1: expected at most $2, saw $3"
}

assert_ge() { # what minimum seen (integers)
    (($3 >= $2)) || fail "$1: expected at least $2, saw $3"
}

need_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || fail "the tool '$t' is needed and missing (the set-up script installs it)"
    done
}

need_dnsward() {
    [[ -x $DNSWARD ]] || fail "no daemon at DNSWARD=$DNSWARD (build it first)"
}

need_dwq() {
    [[ -x $DWQ ]] || fail "no test client at $DWQ (it is built from tests/tools/dwq.c)"
}

now_ms() { date +%s%3N; }

# wait_until SECONDS COMMAND...: poll every 0.1 s until COMMAND succeeds. Returns 1 on timeout.
wait_until() {
    local limit=$(($(now_ms) + $1 * 1000))
    shift
    while ! "$@" >/dev/null 2>&1; do
        (($(now_ms) < limit)) || return 1
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------------------
# Ports

# free_port VAR: a port of 127.0.0.1 free for both TCP and UDP, below the ephemeral range
# (so that no outgoing connection takes it meanwhile), never handed out twice in a test.
free_port() {
    local p
    p=$(python3 - "${_PORTS[@]}" <<'EOF'
import random, socket, sys
used = set(int(x) for x in sys.argv[1:])
for _ in range(2000):
    p = random.randint(20000, 32000)
    if p in used:
        continue
    ok = True
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(p)
        sys.exit(0)
sys.exit(1)
EOF
    ) || fail "no free port found"
    _PORTS+=("$p")
    printf -v "$1" '%s' "$p"
}

udp_bound() { [[ -n $(ss -Hlnu "sport = :$1" 2>/dev/null) ]]; }
tcp_listening() { [[ -n $(ss -Hlnt "sport = :$1" 2>/dev/null) ]]; }

# ---------------------------------------------------------------------------------------
# Certificates

# make_certs: a test CA and, in $CERTS, NAME.pem + NAME.key for
#   good        signed by the CA, SAN DNS:upstream.test, IP:127.0.0.1
#   nameonly    signed by the CA, SAN DNS:upstream.test only (no IP)
#   wrongname   signed by the CA, SAN DNS:other.test only
#   selfsigned  self-signed, SAN DNS:upstream.test, IP:127.0.0.1
#   expired     signed by the CA, SAN as good, valid 2020-01-01 to 2020-01-02 only
#   other       signed by the CA, SAN as good, another key (for a wrong pin)
make_certs() {
    [[ -s $CERTS/good.pem ]] && return 0
    need_tools openssl
    mkdir -p "$CERTS/db/new"
    local log=$CERTS/openssl.log
    {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" -days 3650 -subj "/CN=dnsward test CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        local name san
        for name in good nameonly wrongname expired other; do
            case $name in
            nameonly) san="DNS:upstream.test" ;;
            wrongname) san="DNS:other.test" ;;
            *) san="DNS:upstream.test,IP:127.0.0.1" ;;
            esac
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout "$CERTS/$name.key" -out "$CERTS/$name.csr" -subj "/CN=$name"
            printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
                "$san" >"$CERTS/$name.ext"
            if [[ $name != expired ]]; then
                openssl x509 -req -in "$CERTS/$name.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" \
                    -CAcreateserial -out "$CERTS/$name.pem" -days 825 -extfile "$CERTS/$name.ext"
            fi
        done
        # OpenSSL 3.0's x509 -req cannot set dates in the past; openssl ca can.
        : >"$CERTS/db/index.txt"
        echo 1000 >"$CERTS/db/serial"
        cat >"$CERTS/ca.cnf" <<EOF
[ ca ]
default_ca = testca
[ testca ]
database = $CERTS/db/index.txt
new_certs_dir = $CERTS/db/new
serial = $CERTS/db/serial
certificate = $CERTS/ca.pem
private_key = $CERTS/ca.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
commonName = supplied
[ server_ext ]
subjectAltName = DNS:upstream.test,IP:127.0.0.1
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
EOF
        openssl ca -batch -notext -config "$CERTS/ca.cnf" -extensions server_ext \
            -startdate 20200101000000Z -enddate 20200102000000Z \
            -in "$CERTS/expired.csr" -out "$CERTS/expired.pem"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$CERTS/selfsigned.key" -out "$CERTS/selfsigned.pem" -days 825 -subj "/CN=upstream.test" \
            -addext "subjectAltName=DNS:upstream.test,IP:127.0.0.1" -addext "basicConstraints=CA:FALSE"
    } >"$log" 2>&1 || { cat "$log"; fail "could not make the test certificates"; }
    local c
    for c in good nameonly wrongname selfsigned expired other; do
        [[ -s $CERTS/$c.pem && -s $CERTS/$c.key ]] || { cat "$log"; fail "certificate $c was not made"; }
    done
    openssl verify -CAfile "$CERTS/ca.pem" "$CERTS/good.pem" >/dev/null 2>&1 || fail "good.pem does not verify"
    ! openssl verify -CAfile "$CERTS/ca.pem" "$CERTS/expired.pem" >/dev/null 2>&1 || fail "expired.pem verifies"
}

# spki_pin CERT: base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo (RFC 7469).
spki_pin() {
    openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der |
        openssl dgst -sha256 -binary | base64
}

# ---------------------------------------------------------------------------------------
# Unbound: the real upstream, answering from local data.
#   UB_PORT  plain DNS (UDP and TCP)   UB_DOT  DNS over TLS   UB_DOH  DNS over HTTPS
# Every query it receives is logged to $UB_LOG (log-queries), so a test can count them.

UB_PID=''
UB_PORT=''
UB_DOT=''
UB_DOH=''
UB_LOG=$T/unbound.log

# start_unbound [CERTNAME]: start (or restart, on the same ports) Unbound with that
# certificate (default good).
start_unbound() {
    local cert=${1:-good}
    need_tools unbound dig
    make_certs
    [[ -n $UB_PORT ]] || free_port UB_PORT
    [[ -n $UB_DOT ]] || free_port UB_DOT
    [[ -n $UB_DOH ]] || free_port UB_DOH
    local conf=$T/unbound.conf
    cat >"$conf" <<EOF
server:
  interface: 127.0.0.1@$UB_PORT
  interface: 127.0.0.1@$UB_DOT
  interface: 127.0.0.1@$UB_DOH
  tls-port: $UB_DOT
  https-port: $UB_DOH
  tls-service-key: "$CERTS/$cert.key"
  tls-service-pem: "$CERTS/$cert.pem"
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$T"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  log-queries: yes
  log-replies: no
  log-time-ascii: no
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  do-ip6: no
  incoming-num-tcp: 200
  tcp-idle-timeout: 30000
  http-max-streams: 200
  ratelimit: 0
  ip-ratelimit: 0
  local-data: "upstream.test. 3600 IN A 127.0.0.1"
  local-zone: "bench.test." redirect
  local-data: "bench.test. 300 IN A 192.0.2.1"
  local-zone: "short.test." redirect
  local-data: "short.test. 2 IN A 192.0.2.2"
  local-zone: "nx.test." static
  local-data: "nx.test. 300 IN SOA ns.nx.test. hostmaster.nx.test. 1 3600 600 86400 60"
  local-zone: "nodata.test." redirect
  local-data: "nodata.test. 300 IN A 192.0.2.4"
  local-data: "nodata.test. 300 IN SOA ns.nodata.test. hostmaster.nodata.test. 1 3600 600 86400 60"
  local-zone: "prefetch.test." redirect
  local-data: "prefetch.test. 10 IN A 192.0.2.3"
  local-zone: "big.test." static
EOF
    local i x60
    x60=$(printf 'x%.0s' $(seq 1 60))
    for i in $(seq 1 40); do
        printf "  local-data: 'big.test. 300 IN TXT \"%s%02d\"'\n" "$x60" "$i" >>"$conf"
    done
    # huge.test: 200 TXT records of 240 bytes, an answer of about 50 KB (TCP only).
    local x240
    x240=$x60$x60$x60$x60
    echo '  local-zone: "huge.test." static' >>"$conf"
    for i in $(seq 100 299); do
        printf "  local-data: 'huge.test. 300 IN TXT \"%s%03d\"'\n" "$x240" "$i" >>"$conf"
    done
    unbound-checkconf "$conf" >"$T/unbound-checkconf.log" 2>&1 ||
        { cat "$T/unbound-checkconf.log"; fail "unbound-checkconf rejects $conf"; }
    unbound -d -c "$conf" >>"$UB_LOG" 2>&1 &
    UB_PID=$!
    _PIDS+=("$UB_PID")
    # Ready when it answers plain DNS and its DoT and DoH ports listen.
    if ! wait_until 20 _ub_ready; then
        _show_log "$UB_LOG" "Unbound's log"
        fail "Unbound did not become ready on 127.0.0.1:$UB_PORT/$UB_DOT/$UB_DOH"
    fi
}

_ub_ready() {
    _alive "$UB_PID" || return 1
    tcp_listening "$UB_DOT" && tcp_listening "$UB_DOH" || return 1
    [[ $(dig +short +tries=1 +time=1 @127.0.0.1 -p "$UB_PORT" upstream.test A 2>/dev/null) == 127.0.0.1 ]]
}

# freeze_unbound / thaw_unbound: SIGSTOP and SIGCONT the running Unbound. While frozen it
# keeps its ports and connections but answers nothing (and logs nothing): a stalled
# upstream. The exit trap thaws it before stopping it.
freeze_unbound() {
    [[ -n $UB_PID ]] || fail "freeze_unbound: Unbound is not running"
    kill -STOP "$UB_PID"
}

thaw_unbound() {
    [[ -n $UB_PID ]] || fail "thaw_unbound: Unbound is not running"
    kill -CONT "$UB_PID"
}

stop_unbound() {
    [[ -n $UB_PID ]] || return 0
    kill -TERM "$UB_PID" 2>/dev/null || true
    wait_until 10 eval '! _alive "$UB_PID"' || kill -KILL "$UB_PID" 2>/dev/null || true
    wait "$UB_PID" 2>/dev/null || true
    _forget_pid "$UB_PID"
    UB_PID=''
    # The ports are free again when nothing listens on them any more.
    wait_until 10 eval '! tcp_listening "$UB_DOT"' || fail "Unbound's port $UB_DOT is still bound after it stopped"
}

# ub_queries [REGEX]: the names (lower case, with the final dot) of the queries Unbound
# received, one line per query, optionally only those matching REGEX.
ub_queries() {
    # A line of log-queries: "[1700000000] unbound[12:0] info: 127.0.0.1 q1.bench.test. A IN"
    sed -nE 's/.* info: 127\.0\.0\.1 ([^ ]+) [A-Z0-9]+ IN$/\1/p' "$UB_LOG" | tr 'A-Z' 'a-z' |
        { if [[ $# -gt 0 ]]; then grep -E -- "$1" || true; else cat; fi; }
}

ub_count() { # REGEX: how many queries matching it Unbound received
    ub_queries "$1" | wc -l | tr -d ' '
}

# ---------------------------------------------------------------------------------------
# fault_upstream.py: a misbehaving DoT or DoH upstream (see its header for the modes). It
# runs on Debian's python (${PYTHON:-/usr/bin/python3}), which has the h2 package for DoH.

# start_fault VAR MODE [CERTNAME [--proto dot|doh] [extra arguments...]]: sets ${VAR}_PORT,
# ${VAR}_PID and ${VAR}_EVENTS (its event log). CERTNAME defaults to good; sniff mode uses
# none. --proto defaults to dot; e.g. start_fault F stall good --proto doh --delay 500.
start_fault() {
    local var=$1 mode=$2 cert=${3:-good} proto=dot
    shift 2
    (($# == 0)) || shift
    if [[ ${1:-} == --proto ]]; then
        proto=${2:?start_fault: --proto needs dot or doh}
        shift 2
    fi
    local py=${PYTHON:-/usr/bin/python3}
    command -v "$py" >/dev/null 2>&1 || fail "the python for fault_upstream.py is missing: $py (set PYTHON)"
    if [[ $proto == doh ]] && ! "$py" -c 'import h2.connection' 2>/dev/null; then
        fail "$py has no h2 package, which fault_upstream.py --proto doh needs (Debian: python3-h2; the set-up script installs it)"
    fi
    make_certs
    local port events pid
    free_port port
    events=$T/fault-$var.events
    : >"$events"
    local args=(--port "$port" --proto "$proto" --mode "$mode" --events "$events")
    [[ $mode == sniff ]] || args+=(--cert "$CERTS/$cert.pem" --key "$CERTS/$cert.key")
    "$py" "$FAULT_UPSTREAM" "${args[@]}" "$@" >>"$T/fault-$var.log" 2>&1 &
    pid=$!
    _PIDS+=("$pid")
    printf -v "${var}_PORT" '%s' "$port"
    printf -v "${var}_PID" '%s' "$pid"
    printf -v "${var}_EVENTS" '%s' "$events"
    if ! wait_until 20 grep -q "^listening $port" "$events"; then
        _show_log "$T/fault-$var.log" "fault_upstream.py's output"
        fail "fault_upstream.py ($proto, $mode) did not start on port $port"
    fi
}

# fault_count VAR KIND: how many events of that kind (query, conn, hello, plain, udp, ...)
fault_count() {
    local ev="${1}_EVENTS"
    grep -c "^$2 " "${!ev}" || true
}

stop_pid() { # PID: stop one process this test started
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    wait_until 10 eval '! _alive "$pid"' || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    _forget_pid "$pid"
}

# ---------------------------------------------------------------------------------------
# dnsward

# check_sanitizers LOG: fail if a sanitizer reported anything.
check_sanitizers() {
    local pat
    for pat in "ERROR: AddressSanitizer" "runtime error:" "LeakSanitizer" "ERROR: ThreadSanitizer"; do
        if grep -qF -- "$pat" "$1"; then
            echo "---- sanitizer report in $1 ----"
            grep -n -A 30 -F -- "$pat" "$1" | head -n 60 | sed 's/^/    /'
            fail "the sanitizer reported '$pat'"
        fi
    done
}

# start_dnsward ARGS...: start the daemon with a new UDP+TCP listener 127.0.0.1:$DW_PORT
# and ARGS; wait until both of its ports are bound and it answers, over UDP and TCP, a
# probe that it must answer itself (a query with QDCOUNT=0: FORMERR, or any reply), so
# that no test's upstream ever sees a query the test did not send.
READY_PROBE=beef00000000000000000000
start_dnsward() {
    need_dnsward
    need_dwq
    [[ -z $DW_PID ]] || fail "start_dnsward: one is already running (pid $DW_PID)"
    free_port DW_PORT
    _DW_N=$((_DW_N + 1))
    DW_LOG=$T/dnsward.$_DW_N.log
    echo "# dnsward -l 127.0.0.1:$DW_PORT $*" >"$DW_LOG"
    "$DNSWARD" -l "127.0.0.1:$DW_PORT" "$@" 2>>"$DW_LOG" >>"$DW_LOG" </dev/null &
    DW_PID=$!
    _PIDS+=("$DW_PID")
    local limit=$(($(now_ms) + 20000))
    while ! { udp_bound "$DW_PORT" && tcp_listening "$DW_PORT"; }; do
        if ! _alive "$DW_PID"; then
            local rc=0
            wait "$DW_PID" || rc=$?
            _forget_pid "$DW_PID"
            DW_PID=''
            fail "dnsward exited with status $rc before it listened on 127.0.0.1:$DW_PORT (args: $*)"
        fi
        (($(now_ms) < limit)) || fail "dnsward did not bind 127.0.0.1:$DW_PORT (UDP and TCP) within 20 s"
        sleep 0.1
    done
    local t
    for t in "" -t; do
        until "$DWQ" $t -s 127.0.0.1 -p "$DW_PORT" -w 1 -x "$READY_PROBE" >/dev/null 2>&1; do
            _alive "$DW_PID" || fail "dnsward died while starting"
            (($(now_ms) < limit)) || fail "dnsward bound 127.0.0.1:$DW_PORT but answered no probe ${t:-over UDP} within 20 s"
            sleep 0.1
        done
    done
}

dw_alive() { [[ -n $DW_PID ]] && _alive "$DW_PID"; }

assert_dw_alive() { # what
    dw_alive || fail "${1:-dnsward}: the daemon is no longer running"
}

# stop_dnsward_clean [SIGNAL]: send SIGTERM (or SIGNAL), wait at most 5 s, and require
# exit status 0 and a log free of sanitizer reports.
stop_dnsward_clean() {
    local sig=${1:-TERM}
    [[ -n $DW_PID ]] || fail "stop_dnsward_clean: no dnsward is running"
    _alive "$DW_PID" || {
        local rc=0
        wait "$DW_PID" || rc=$?
        _forget_pid "$DW_PID"
        DW_PID=''
        fail "dnsward had already exited (status $rc) before it was asked to stop"
    }
    kill "-$sig" "$DW_PID"
    local limit=$(($(now_ms) + 5000))
    while _alive "$DW_PID"; do
        if (($(now_ms) >= limit)); then
            kill -KILL "$DW_PID" 2>/dev/null || true
            wait "$DW_PID" 2>/dev/null || true
            _forget_pid "$DW_PID"
            DW_PID=''
            fail "dnsward did not exit within 5 s of SIG$sig"
        fi
        sleep 0.05
    done
    local rc=0
    wait "$DW_PID" || rc=$?
    _forget_pid "$DW_PID"
    DW_PID=''
    check_sanitizers "$DW_LOG"
    ((rc == 0)) || fail "dnsward exited with status $rc after SIG$sig (expected 0)"
}

# dw_stats: ask the running dnsward for its counters (SIGUSR1 logs one "stats: k=v ..."
# line) and put them in DW_STATS[k]; DW_STATS_LINE is the whole line.
declare -A DW_STATS=()
DW_STATS_LINE=''
_dw_stats_lines() { grep -c 'stats: queries=' "$DW_LOG" || true; }
dw_stats() {
    [[ -n $DW_PID ]] || fail "dw_stats: no dnsward is running"
    local before kv
    before=$(_dw_stats_lines)
    kill -USR1 "$DW_PID"
    wait_until 5 eval "(( \$(_dw_stats_lines) > $before ))" ||
        fail "dnsward logged no stats line within 5 s of SIGUSR1"
    DW_STATS_LINE=$(grep 'stats: queries=' "$DW_LOG" | tail -n 1)
    DW_STATS=()
    for kv in ${DW_STATS_LINE#*stats: }; do
        [[ $kv == *=* ]] && DW_STATS[${kv%%=*}]=${kv#*=}
    done
    [[ -n ${DW_STATS[queries]:-} ]] || fail "dw_stats: cannot read the stats line: $DW_STATS_LINE"
}

# Clients aimed at the running dnsward. Each prints what it got; dig and kdig exit
# non-zero when no reply came, dwq as documented in dwq.c.
dw_dig() { dig @127.0.0.1 -p "$DW_PORT" +tries=1 +time="${DIG_TIME:-8}" "$@"; }
dw_kdig() { kdig @127.0.0.1 -p "$DW_PORT" +retry=0 +time="${DIG_TIME:-8}" "$@"; }
dw_dwq() { "$DWQ" -s 127.0.0.1 -p "$DW_PORT" "$@"; }

# dig_status OUTPUT: the status word of dig's header line (NOERROR, SERVFAIL, ...)
dig_status() { sed -nE 's/.*status: ([A-Z0-9]+),.*/\1/p' <<<"$1" | head -n 1; }

# expect_a CASE NAME ADDR [dig args...]: a query through dnsward answers A ADDR.
expect_a() {
    local what=$1 name=$2 addr=$3 out
    shift 3
    out=$(dw_dig "$@" "$name" A 2>&1) || fail "$what: dig got no reply for $name:
$out"
    assert_eq "$what: status of $name" NOERROR "$(dig_status "$out")"
    assert_match "$what: answer of $name" "$out" "^$name\.?[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+$addr\$"
}

# expect_servfail_in_time DEADLINE_S CASE NAME [dwq args...]: the client gets SERVFAIL with
# its own ID and question (never silence, never an answer record) within the query
# deadline plus one second.
expect_servfail_in_time() {
    local deadline=$1 what=$2 name=$3 t0 t1 out
    shift 3
    t0=$(now_ms)
    out=$(dw_dwq -w $((deadline + 5)) "$@" "$name" A || true)
    t1=$(now_ms)
    assert_contains "$what: the client gets SERVFAIL" "$out" "rcode=SERVFAIL"
    assert_contains "$what: SERVFAIL carries the client's ID and question" "$out" "match id=yes question=exact"
    assert_not_contains "$what: no answer record" "$out" "A 192.0.2"
    assert_le "$what: milliseconds until SERVFAIL (deadline ${deadline}s + 1 s)" $((deadline * 1000 + 1000)) $((t1 - t0))
}

# expect_answer_in_time DEADLINE_S CASE NAME ADDR [dwq args...]: A ADDR within the deadline.
expect_answer_in_time() {
    local deadline=$1 what=$2 name=$3 addr=$4 t0 t1 out
    shift 4
    t0=$(now_ms)
    out=$(dw_dwq -w $((deadline + 5)) "$@" "$name" A) || fail "$what: no proper answer for $name:
$out"
    t1=$(now_ms)
    assert_contains "$what: rcode" "$out" "rcode=NOERROR"
    assert_contains "$what: answer" "$out" "A $addr"
    local others
    others=$(grep -E '^A ' <<<"$out" | grep -vxF "A $addr" || true)
    [[ -z $others ]] || fail "$what: an A record other than $addr reached the client: $others"
    assert_le "$what: milliseconds until the answer (deadline ${deadline}s)" $((deadline * 1000)) $((t1 - t0))
}

# ---------------------------------------------------------------------------------------
# Per-upstream counters

# dw_upstream_stats URL_SUBSTRING: ask the running dnsward for its counters (SIGUSR1 also
# logs one "upstream URL: state=... queries=N ..." line per upstream) and put the fields of
# the upstream whose URL contains URL_SUBSTRING (a fixed string; it must pick exactly one)
# in DW_UP[k] (state, queries, answers, failures, timeouts, unmatched, connects, resumed,
# throttled, srtt-ms, rto-ms and the failure kinds connect, tls, closed, answer, http,
# goaway, other); DW_UP_LINE is the whole line.
declare -A DW_UP=()
DW_UP_LINE=''
_dw_upstream_lines() { # URL_SUBSTRING: that upstream's stats lines so far
    grep -F ']: upstream ' "$DW_LOG" | grep -F -- "$1" | grep -E ': state=(up|down) ' || true
}
dw_upstream_stats() {
    [[ -n $DW_PID ]] || fail "dw_upstream_stats: no dnsward is running"
    local sub=$1 before kv lines n
    before=$(_dw_upstream_lines "$sub" | wc -l)
    kill -USR1 "$DW_PID"
    wait_until 5 eval "(( \$(_dw_upstream_lines \"\$sub\" | wc -l) > $before ))" ||
        fail "dnsward logged no stats line for an upstream matching '$sub' within 5 s of SIGUSR1"
    # Every upstream's line is written in the same callback: give the others a moment, so
    # that a substring matching more than one upstream is caught, not half-read.
    sleep 0.1
    lines=$(_dw_upstream_lines "$sub")
    n=$(($(wc -l <<<"$lines") - before))
    ((n == 1)) || fail "dw_upstream_stats: '$sub' matches $n upstreams:
$(_quote "$(tail -n "$n" <<<"$lines")")"
    DW_UP_LINE=$(tail -n 1 <<<"$lines")
    DW_UP=()
    # The URL may hold '=' (a query string) but not ' state=': read from there on.
    for kv in state=${DW_UP_LINE##*: state=}; do
        [[ $kv == *=* ]] && DW_UP[${kv%%=*}]=${kv#*=}
    done
    [[ -n ${DW_UP[queries]:-} && -n ${DW_UP[other]:-} ]] ||
        fail "dw_upstream_stats: cannot read the upstream line: $DW_UP_LINE"
}

# wait_dnsward_exit [SECONDS]: the running dnsward was told to stop (a signal the test sent
# itself): wait at most SECONDS (default 5) for it to exit, and require exit status 0 and a
# log free of sanitizer reports.
wait_dnsward_exit() {
    local secs=${1:-5} rc=0
    [[ -n $DW_PID ]] || fail "wait_dnsward_exit: no dnsward is running"
    if ! wait_until "$secs" eval '! _alive "$DW_PID"'; then
        kill -KILL "$DW_PID" 2>/dev/null || true
        wait "$DW_PID" 2>/dev/null || true
        _forget_pid "$DW_PID"
        DW_PID=''
        fail "dnsward did not exit within $secs s"
    fi
    wait "$DW_PID" || rc=$?
    _forget_pid "$DW_PID"
    DW_PID=''
    check_sanitizers "$DW_LOG"
    ((rc == 0)) || fail "dnsward exited with status $rc (expected 0)"
}
