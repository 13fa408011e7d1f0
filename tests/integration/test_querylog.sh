#!/usr/bin/env bash
# test_querylog: the query log (--query-log FILE) of a dnsward forwarding to Unbound over
# DoT. Over UDP and TCP: a miss is a line with source upstream, the upstream's URL and a
# latency; a hit is a line with source cache; a malformed query is FORMERR by dnsward
# itself (local); a client outside --allow gets REFUSED (local). logrotate's move-then-HUP
# sends the next lines to a new file at the path while the moved one keeps what it had,
# and the last lines are written at exit. Without --query-log no file is opened. And the
# log's lines carry the sd-daemon "<N>" priority prefix exactly when JOURNAL_STREAM names
# the daemon's stderr.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools dig unbound openssl python3 ss stat
need_dnsward
need_dwq

# The test decides where JOURNAL_STREAM is set (the test runner itself may be a service).
unset JOURNAL_STREAM

make_certs
start_unbound
URL="tls://127.0.0.1:$UB_DOT#upstream.test"
UPSTREAM=(-u "$URL" --ca-file "$CERTS/ca.pem" --timeout 5s)

TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
LAT='[0-9]+\.[0-9]ms'
re_escape() { sed 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$1"; }
URL_RE=$(re_escape "$URL")

# qlog_has FILE REGEX: FILE has a line matching REGEX (whole line).
qlog_has() { [[ -f $1 ]] && grep -qE -- "^$2\$" "$1"; }

# expect_line FILE WHAT REGEX: such a line shows up within 5 s (lines are written at most
# a second late).
expect_line() {
    wait_until 5 qlog_has "$1" "$3" || fail "$2: no line matching /^$3\$/ in $1:
$(_quote "$(cat "$1" 2>/dev/null)")"
}

# open_files PID: the paths of the regular files of the test's directory the process has
# open, but for its stderr (the test's log of it).
open_files() {
    local fd path
    for fd in /proc/"$1"/fd/*; do
        path=$(readlink "$fd" 2>/dev/null) || continue
        if [[ -f $fd && $path == "$T"/* && $path != "$DW_LOG" ]]; then
            echo "$path"
        fi
    done
}

# has_open PATH: the running dnsward has exactly that file open.
has_open() { open_files "$DW_PID" | grep -qxF -- "$1"; }

expect_status() { # CASE STATUS dig args...
    local what=$1 want=$2 out
    shift 2
    out=$(dw_dig "$@" 2>&1) || fail "$what: no reply:
$out"
    assert_eq "$what: status" "$want" "$(dig_status "$out")"
}

# --- one instance with the log: misses, hits, FORMERR, over UDP and TCP ----------------
QLOG=$T/query.log
start_dnsward "${UPSTREAM[@]}" --query-log "$QLOG"
has_open "$QLOG" || fail "the query log is not open: $(open_files "$DW_PID")"
assert_eq "the log file's mode (0640 less the umask)" "$(printf '%o' $((0640 & ~$(umask))))" \
    "$(stat -c '%a' "$QLOG")"
# The readiness probes (QDCOUNT=0) are dnsward's own FORMERR, over both transports.
expect_line "$QLOG" "probe over UDP" "$TS 127\.0\.0\.1 udp - - FORMERR local - $LAT"
expect_line "$QLOG" "probe over TCP" "$TS 127\.0\.0\.1 tcp - - FORMERR local - $LAT"
ok "the readiness probes are logged as FORMERR by dnsward itself"

expect_status "udp miss" NOERROR bench.test A
expect_line "$QLOG" "udp miss" "$TS 127\.0\.0\.1 udp bench\.test\. A NOERROR upstream $URL_RE $LAT"
expect_status "udp hit" NOERROR bench.test A
expect_line "$QLOG" "udp hit" "$TS 127\.0\.0\.1 udp bench\.test\. A NOERROR cache - 0\.0ms"
# The first miss opened the TLS connection: its latency cannot be nothing.
miss=$(grep -E " udp bench\.test\. A NOERROR upstream " "$QLOG" | head -n 1)
[[ $miss != *" 0.0ms" ]] || fail "a miss over a new DoT connection logged no latency: $miss"
ok "udp: a miss is logged with the upstream's URL and a latency, a hit as cache"

expect_status "tcp miss" NXDOMAIN +tcp www.nx.test AAAA
expect_line "$QLOG" "tcp miss" "$TS 127\.0\.0\.1 tcp www\.nx\.test\. AAAA NXDOMAIN upstream $URL_RE $LAT"
expect_status "tcp hit" NXDOMAIN +tcp www.nx.test AAAA
expect_line "$QLOG" "tcp hit" "$TS 127\.0\.0\.1 tcp www\.nx\.test\. AAAA NXDOMAIN cache - $LAT"
expect_status "tcp hit of the udp entry" NOERROR +tcp bench.test A
expect_line "$QLOG" "tcp hit" "$TS 127\.0\.0\.1 tcp bench\.test\. A NOERROR cache - $LAT"
ok "tcp: a miss (NXDOMAIN, AAAA) and hits are logged likewise"

# A query with a valid question and a trailing byte: FORMERR, the name as asked.
dw_dwq -x "beef01000001000000000000056d616c6666047465737400000100010a" >/dev/null ||
    fail "no answer to a malformed query"
expect_line "$QLOG" "malformed over udp" "$TS 127\.0\.0\.1 udp malff\.test\. A FORMERR local - $LAT"
dw_dwq -t -x "beef01000002000000000000" >/dev/null || fail "no answer to a malformed query over tcp"
ok "a malformed query is logged as FORMERR by dnsward itself, over udp and tcp"

# Unusual names stay one word: a space and a newline are escaped (the trailing byte makes
# the query FORMERR, so that it goes nowhere).
dw_dwq -x "beef0100000100000000000003612062050a7465737400000100010a" >/dev/null ||
    fail "no answer to a query for a name with a space and a newline"
expect_line "$QLOG" "escaped name" "$TS 127\.0\.0\.1 udp a\\\\032b\.\\\\010test\. A FORMERR local - $LAT"
lines=$(wc -l <"$QLOG")
fields=$(awk '{print NF}' "$QLOG" | sort -u | tr '\n' ' ')
assert_eq "every line has nine fields" "9 " "$fields"
ok "a name with a space and a newline is escaped; every line has nine fields ($lines lines)"

# --- logrotate: move, then SIGHUP ----------------------------------------------------------
mv "$QLOG" "$QLOG.1"
kill -HUP "$DW_PID"
wait_until 5 test -f "$QLOG" || fail "no new $QLOG within 5 s of SIGHUP"
expect_status "after the reopen" NOERROR short.test A
expect_line "$QLOG" "after the reopen" "$TS 127\.0\.0\.1 udp short\.test\. A NOERROR upstream $URL_RE $LAT"
assert_not_contains "the moved file" "$(cat "$QLOG.1")" "short.test."
assert_contains "the moved file keeps its lines" "$(cat "$QLOG.1")" " bench.test. A NOERROR upstream "
has_open "$QLOG" || fail "the new file is not open: $(open_files "$DW_PID")"
! has_open "$QLOG.1" || fail "the moved file is still open: $(open_files "$DW_PID")"
ok "move-then-HUP: new lines go to a new file at the path, the moved one keeps the old"

# The last lines are written at exit, even within the flush second.
expect_status "just before the stop" NOERROR +tcp nodata.test A
stop_dnsward_clean
grep -qE "^$TS 127\.0\.0\.1 tcp nodata\.test\. A NOERROR upstream $URL_RE $LAT\$" "$QLOG" ||
    fail "the last answer is not in the log after a clean stop:
$(_quote "$(cat "$QLOG")")"
ok "the last lines are written at exit"
plain=$(grep -c '^dnsward\[' "$DW_LOG" || true)
prefixed=$(grep -cE '^<[0-7]>' "$DW_LOG" || true)
assert_ge "plain log lines without JOURNAL_STREAM" 2 "$plain"
assert_eq "no <N> prefix without JOURNAL_STREAM" 0 "$prefixed"

# --- REFUSED: a client outside --allow -------------------------------------------------------
QLOG2=$T/refused.log
start_dnsward "${UPSTREAM[@]}" --allow 127.0.0.2/32 --query-log "$QLOG2"
expect_status "udp from outside allow" REFUSED bench.test A
expect_line "$QLOG2" "udp refused" "$TS 127\.0\.0\.1 udp bench\.test\. A REFUSED local - $LAT"
expect_status "tcp from outside allow" REFUSED +tcp bench.test TXT
expect_line "$QLOG2" "tcp refused" "$TS 127\.0\.0\.1 tcp bench\.test\. TXT REFUSED local - $LAT"
expect_status "udp from inside allow" NOERROR -b 127.0.0.2 bench.test A
expect_line "$QLOG2" "allowed client" "$TS 127\.0\.0\.2 udp bench\.test\. A NOERROR upstream $URL_RE $LAT"
stop_dnsward_clean
ok "REFUSED for a client outside allow is logged by dnsward itself, over udp and tcp"

# --- without --query-log nothing is written -------------------------------------------------
listing() { find "$T" -maxdepth 1 -type f ! -name 'dnsward.*.log' | sort; }
before=$(listing)
start_dnsward "${UPSTREAM[@]}"
expect_status "no log: query" NOERROR bench.test A
expect_status "no log: hit" NOERROR bench.test A
sleep 1.2
files=$(open_files "$DW_PID")
assert_eq "no file open but stderr" "" "$files"
after=$(listing)
assert_eq "no new file in the test directory" "$before" "$after"
stop_dnsward_clean
ok "without --query-log no file is opened or written"

# --- the journal's priority prefix -----------------------------------------------------------
# start_dnsward writes the daemon's stderr to $T/dnsward.N.log, truncating it in place: its
# device and inode are known before the start.
next_log=$T/dnsward.$((_DW_N + 1)).log
: >"$next_log"
export JOURNAL_STREAM
JOURNAL_STREAM=$(stat -c '%d:%i' "$next_log")
start_dnsward "${UPSTREAM[@]}"
unset JOURNAL_STREAM
assert_eq "the journal instance's log" "$next_log" "$DW_LOG"
kill -USR1 "$DW_PID"
wait_until 5 grep -q 'stats: queries=' "$DW_LOG" || fail "no stats line within 5 s of SIGUSR1"
stop_dnsward_clean
body=$(grep -v '^# dnsward' "$DW_LOG")
assert_match "notice lines carry <5>" "$body" '^<5>dnsward\[notice\]: forwarding to '
assert_match "the stats line carries <5>" "$body" '^<5>dnsward\[notice\]: stats: queries='
unprefixed=$(grep -vcE '^<[0-7]>dnsward\[' <<<"$body" || true)
assert_eq "every line has the prefix" 0 "$unprefixed"
ok "with JOURNAL_STREAM naming stderr every line starts with <N>"

# Inherited but naming another file (stderr redirected): plain lines.
next_log=$T/dnsward.$((_DW_N + 1)).log
: >"$next_log"
export JOURNAL_STREAM
JOURNAL_STREAM="$(stat -c '%d' "$next_log"):1"
start_dnsward "${UPSTREAM[@]}"
unset JOURNAL_STREAM
stop_dnsward_clean
body=$(grep -v '^# dnsward' "$DW_LOG")
assert_match "plain notice lines" "$body" '^dnsward\[notice\]: forwarding to '
prefixed=$(grep -cE '^<[0-7]>' <<<"$body" || true)
assert_eq "no line has the prefix" 0 "$prefixed"
ok "with JOURNAL_STREAM naming another file the lines stay plain"
