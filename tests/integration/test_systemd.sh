#!/usr/bin/env bash
# test_systemd: the systemd units CMake builds from systemd/*.in into $DNSWARD_BUILD/systemd/:
# `systemd-analyze verify` accepts both without a word, the service keeps the settings
# the daemon relies on, the socket unit binds what the default configuration listens on,
# and `systemd-analyze security` rates the service's exposure 1.5 or lower. Offline:
# nothing is started, and no systemd needs to run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools systemd-analyze
need_dnsward

MAX_EXPOSURE=1.5
UNITS=$DNSWARD_BUILD/systemd
SERVICE=$UNITS/dnsward.service
SOCKET=$UNITS/dnsward.socket
for u in "$SERVICE" "$SOCKET"; do
    [[ -s $u ]] || fail "no configured unit at $u (CMake builds it from systemd/$(basename "$u").in)"
done

# unit_values FILE KEY: the values of KEY= in FILE, one a line.
unit_values() { sed -nE "s/^$2=(.*)$/\1/p" "$1"; }

# --- what the daemon relies on ------------------------------------------------------------
svc=$(cat "$SERVICE")
assert_eq "Type" notify "$(unit_values "$SERVICE" Type)"
assert_eq "ExecReload" '/bin/kill -HUP $MAINPID' "$(unit_values "$SERVICE" ExecReload)"
assert_eq "Restart" on-failure "$(unit_values "$SERVICE" Restart)"
assert_eq "DynamicUser" yes "$(unit_values "$SERVICE" DynamicUser)"
assert_eq "AmbientCapabilities" CAP_NET_BIND_SERVICE "$(unit_values "$SERVICE" AmbientCapabilities)"
assert_eq "CapabilityBoundingSet" CAP_NET_BIND_SERVICE "$(unit_values "$SERVICE" CapabilityBoundingSet)"
assert_not_contains "never root" "$svc" "User=root"
exec_start=$(unit_values "$SERVICE" ExecStart)
exec_pre=$(unit_values "$SERVICE" ExecStartPre)
read -r binary _ <<<"$exec_start"
[[ $binary == /*/dnsward ]] || fail "ExecStart runs '$binary', not an absolute path to dnsward"
assert_match "ExecStart" "$exec_start" "^$binary -c /.*/dnsward/dnsward\.conf$"
assert_eq "ExecStartPre checks the same configuration" "$binary -t ${exec_start#"$binary "}" "$exec_pre"
! grep -nE '@[A-Z_]+@' "$SERVICE" "$SOCKET" || fail "a @VARIABLE@ was left unsubstituted"
ok "dnsward.service: Type=notify, ExecStartPre -t, ExecReload by SIGHUP, Restart=on-failure, a dynamic user with CAP_NET_BIND_SERVICE only"

# The socket unit binds, for UDP and TCP, exactly the default configuration's listeners.
conf_listen=$(sed -nE 's/^listen[[:space:]]*=[[:space:]]*([^[:space:]#]+).*/\1/p' "$DNSWARD_SRC/conf/dnsward.conf" | sort)
[[ -n $conf_listen ]] || fail "no listen line in conf/dnsward.conf"
assert_eq "ListenDatagram= against conf/dnsward.conf's listen lines" "$conf_listen" "$(unit_values "$SOCKET" ListenDatagram | sort)"
assert_eq "ListenStream= against conf/dnsward.conf's listen lines" "$conf_listen" "$(unit_values "$SOCKET" ListenStream | sort)"
assert_eq "BindIPv6Only (as dnsward binds its own)" ipv6-only "$(unit_values "$SOCKET" BindIPv6Only)"
ok "dnsward.socket: UDP and TCP on $(tr '\n' ' ' <<<"$conf_listen")(the default listeners), IPv6 only on IPv6"

# --- systemd-analyze verify ------------------------------------------------------------------
# verify wants ExecStart's program to exist: a copy of both units with the installed path
# replaced by the binary just built (the rest unchanged), side by side so that the socket
# finds its service.
mkdir -p "$T/units"
for u in "$SERVICE" "$SOCKET"; do
    sed "s|^\(ExecStart[A-Za-z]*=\)$binary |\1$DNSWARD |" "$u" >"$T/units/$(basename "$u")"
done
assert_contains "the copy runs the built binary" "$(cat "$T/units/dnsward.service")" "ExecStart=$DNSWARD -c "
verify() { # DIR: systemd-analyze verify of both units there; prints what it says
    (cd "$1" && systemd-analyze verify --man=no dnsward.service dnsward.socket 2>&1)
}
rc=0
out=$(verify "$T/units") || rc=$?
assert_eq "systemd-analyze verify: exit status (output: $out)" 0 "$rc"
assert_eq "systemd-analyze verify: its complaints" "" "$out"
ok "systemd-analyze verify: both units pass without a warning"

# The same check sees a bad directive: it would catch one in the real units.
mkdir -p "$T/bad"
cp "$T/units/dnsward.socket" "$T/bad/"
sed 's/^ProtectSystem=strict$/ProtectSystem=very/' "$T/units/dnsward.service" >"$T/bad/dnsward.service"
out=$(verify "$T/bad" || true)
assert_contains "systemd-analyze verify of a broken copy" "$out" "dnsward.service:"
assert_contains "systemd-analyze verify of a broken copy" "$out" "very"
ok "systemd-analyze verify: a copy with a bad value is caught (the check can fail)"

# --- systemd-analyze security ----------------------------------------------------------------
out=$(systemd-analyze security --offline=yes "$SERVICE" 2>&1) || fail "systemd-analyze security failed:
$(_quote "$out")"
exposure=$(sed -nE 's/.*Overall exposure level for dnsward\.service: ([0-9]+\.[0-9]+).*/\1/p' <<<"$out")
[[ -n $exposure ]] || fail "no overall exposure in systemd-analyze security's output:
$(_quote "$out")"
echo "# systemd-analyze security: overall exposure $exposure (at most $MAX_EXPOSURE); still exposed:"
grep -F '✗' <<<"$out" | sed -E 's/[[:space:]]+/ /g; s/^/#   /'
awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }' ||
    fail "systemd-analyze security: overall exposure $exposure, more than $MAX_EXPOSURE:
$(_quote "$(grep -F '✗' <<<"$out")")"
ok "systemd-analyze security --offline=yes: overall exposure $exposure <= $MAX_EXPOSURE"
