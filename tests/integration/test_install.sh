#!/usr/bin/env bash
# test_install: the packaging. `cmake --install` into a DESTDIR puts every file where the
# prefix says, with sane modes, and nothing else (nothing from tests/); the installed unit
# starts the installed binary with the installed configuration; the manual pages are
# lint-clean and document every configuration key; the example configurations and the
# installed one pass `dnsward -t`; and docker/Dockerfile is checked without a Docker
# engine: its stages and user, that its packages exist in Debian's archive, that its
# run-time list provides every library the daemon links, and that its health check works
# against a real dnsward.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools cmake mandoc man apt-cache dpkg dpkg-query ldd python3 openssl pkg-config cmp
need_dnsward

SRC=$DNSWARD_SRC
DOCKERFILE=$SRC/docker/Dockerfile
EXAMPLES=(dnsward.conf laptop.conf router.conf lan-doh.conf)

# run_dw ARGS...: run the daemon (at most 10 s), set RC and OUT (stdout and stderr).
run_dw() {
    RC=0
    OUT=$(timeout 10 "$DNSWARD" "$@" 2>&1 </dev/null) || RC=$?
    ((RC != 124)) || fail "dnsward $* was still running after 10 s (expected it to exit)"
}

# expect_check WHAT ARGS...: `dnsward -t ARGS` says the configuration is ok.
expect_check() {
    local what=$1
    shift
    run_dw -t "$@"
    ((RC == 0)) || fail "$what: dnsward -t $* exited $RC: $OUT"
    assert_contains "$what" "$OUT" "configuration ok"
}

# cache_value BUILD VAR: a variable of a build directory's CMakeCache.txt.
cache_value() {
    sed -n "s/^$2:[A-Z]*=//p" "$1/CMakeCache.txt" | head -n 1
}

# install_dir BUILD NAME DEFAULT: CMAKE_INSTALL_<NAME> as GNUInstallDirs sets it: the
# cache's value, or (when the cache holds it empty, as for DOCDIR and MANDIR) its default.
install_dir() {
    local v
    v=$(cache_value "$1" "CMAKE_INSTALL_$2")
    echo "${v:-$3}"
}

# mode PATH: octal permission bits, as 644.
mode() { stat -c %a "$1"; }

# ---------------------------------------------------------------------------------------
# Installation

# check_tree WHAT ROOT BUILD: the files `cmake --install BUILD` put under ROOT (its
# DESTDIR) are exactly the expected ones, where BUILD's configuration says, with sane
# modes. Sets SBIN, SYSCONF, UNITDIR, MAN8, MAN5 (absolute, without ROOT).
check_tree() {
    local what=$1 root=$2 build=$3 prefix docdir mandir unitdir f
    prefix=$(cache_value "$build" CMAKE_INSTALL_PREFIX)
    [[ $prefix == /* ]] || fail "$what: CMAKE_INSTALL_PREFIX of $build is '$prefix'"
    prefix=${prefix%/}
    local dataroot
    dataroot=$(install_dir "$build" DATAROOTDIR share)
    SBIN=$prefix/$(install_dir "$build" SBINDIR sbin)
    docdir=$prefix/$(install_dir "$build" DOCDIR "$dataroot/doc/dnsward")
    mandir=$prefix/$(install_dir "$build" MANDIR "$dataroot/man")
    # GNUInstallDirs' absolute SYSCONFDIR: /etc for the prefix /usr, /etc/opt/X for /opt/X.
    case $prefix in
    /usr) SYSCONF=/etc ;;
    /opt/*) SYSCONF=/etc$prefix ;;
    *) SYSCONF=$prefix/$(install_dir "$build" SYSCONFDIR etc) ;;
    esac
    unitdir=$(cache_value "$build" DNSWARD_SYSTEMD_UNITDIR)
    [[ -n $unitdir ]] || fail "$what: no DNSWARD_SYSTEMD_UNITDIR in $build/CMakeCache.txt"
    [[ $unitdir == /* ]] || unitdir=$prefix/$unitdir
    UNITDIR=$unitdir
    MAN8=$mandir/man8/dnsward.8
    MAN5=$mandir/man5/dnsward.conf.5

    local -A want=(
        ["$SBIN/dnsward"]=755
        ["$SYSCONF/dnsward/dnsward.conf"]=644
        ["$MAN8"]=644
        ["$MAN5"]=644
        ["$UNITDIR/dnsward.service"]=644
        ["$UNITDIR/dnsward.socket"]=644
    )
    for f in "${EXAMPLES[@]}"; do want["$docdir/examples/$f"]=644; done

    local seen expected
    seen=$(cd "$root" && find . \( -type f -o -type l \) -printf '/%P\n' | sort)
    expected=$(printf '%s\n' "${!want[@]}" | sort)
    [[ $seen == "$expected" ]] || fail "$what: the installed files differ from the expected ones:
$(diff <(echo "$expected") <(echo "$seen") | grep '^[<>]' || true)
(< expected, > installed)"
    for f in "${!want[@]}"; do
        [[ -f $root$f && ! -L $root$f ]] || fail "$what: $f is not a regular file"
        assert_eq "$what: mode of $f" "${want[$f]}" "$(mode "$root$f")"
    done
    # Directories: no one but the owner may write to any.
    local bad
    bad=$(find "$root" -mindepth 1 -type d -perm /022 -printf '/%P (%m)\n')
    [[ -z $bad ]] || fail "$what: directories writable by group or others: $bad"

    # The shipped files, unchanged.
    cmp -s "$SRC/conf/dnsward.conf" "$root$SYSCONF/dnsward/dnsward.conf" ||
        fail "$what: the installed $SYSCONF/dnsward/dnsward.conf differs from conf/dnsward.conf"
    for f in "${EXAMPLES[@]}"; do
        cmp -s "$SRC/conf/$f" "$root$docdir/examples/$f" || fail "$what: examples/$f differs from conf/$f"
    done
    cmp -s "$SRC/man/dnsward.8" "$root$MAN8" || fail "$what: $MAN8 differs from man/dnsward.8"
    cmp -s "$SRC/man/dnsward.conf.5" "$root$MAN5" || fail "$what: $MAN5 differs from man/dnsward.conf.5"
    run_dw --version
    local version=$OUT
    OUT=$("$root$SBIN/dnsward" --version 2>&1) || fail "$what: the installed $SBIN/dnsward --version failed: $OUT"
    assert_eq "$what: the installed binary's --version" "$version" "$OUT"

    # The units start the installed binary with the installed configuration.
    local svc=$root$UNITDIR/dnsward.service line
    for line in ExecStart ExecStartPre; do
        local cmd
        cmd=$(sed -n "s/^$line=//p" "$svc" | head -n 1)
        [[ -n $cmd ]] || fail "$what: no $line= in $UNITDIR/dnsward.service"
        assert_eq "$what: the program of $line=" "$SBIN/dnsward" "${cmd%% *}"
        assert_contains "$what: the configuration of $line=" "$cmd" "-c $SYSCONF/dnsward/dnsward.conf"
    done
    assert_contains "$what: the socket unit names the service" "$(cat "$root$UNITDIR/dnsward.socket")" \
        "Service=dnsward.service"
    ! grep -n '@[A-Z_]*@' "$svc" "$root$UNITDIR/dnsward.socket" ||
        fail "$what: the units have unconfigured @VARIABLES@"
}

# 1. The test's own build, as configured (DESTDIR=... cmake --install BUILD).
ROOT1=$T/root-build
out=$(DESTDIR=$ROOT1 cmake --install "$DNSWARD_BUILD" 2>&1) ||
    fail "DESTDIR=$ROOT1 cmake --install $DNSWARD_BUILD failed:
$(_quote "$out")"
check_tree "cmake --install of the build" "$ROOT1" "$DNSWARD_BUILD"
ok "DESTDIR install of the build ($(cache_value "$DNSWARD_BUILD" CMAKE_INSTALL_PREFIX)): every file, right modes, nothing else; the unit runs $SBIN/dnsward"

# 2. The same binary in a distribution's layout (prefix /usr). A fresh configuration of
# the same sources with that prefix, with the build's binary in place of a rebuild: the
# prefix changes no byte of the binary (nothing is compiled in from it), only where
# things go and what the units say.
B=$T/build-usr
out=$(cmake -S "$SRC" -B "$B" -DCMAKE_INSTALL_PREFIX=/usr -DDNSWARD_TESTS=OFF 2>&1) ||
    fail "configuring $SRC with the prefix /usr failed:
$(_quote "$out")"
grep -qF "$B/dnsward\"" "$B/cmake_install.cmake" ||
    fail "the install script of $B does not take the daemon from $B/dnsward"
cp "$DNSWARD" "$B/dnsward"
ROOT=$T/root
out=$(DESTDIR=$ROOT cmake --install "$B" 2>&1) || fail "DESTDIR=$ROOT cmake --install $B failed:
$(_quote "$out")"
check_tree "cmake --install with the prefix /usr" "$ROOT" "$B"
assert_eq "prefix /usr: the daemon" /usr/sbin/dnsward "$SBIN/dnsward"
assert_eq "prefix /usr: the configuration (GNUInstallDirs' /etc, not /usr/etc)" /etc "$SYSCONF"
sd_unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
if [[ -n $sd_unitdir ]]; then
    assert_eq "prefix /usr: the unit directory is systemd's own (pkg-config)" "$sd_unitdir" "$UNITDIR"
else
    assert_eq "prefix /usr: the unit directory without systemd's pkg-config file" /usr/lib/systemd/system "$UNITDIR"
fi
ok "DESTDIR install with the prefix /usr: $SBIN/dnsward, $SYSCONF/dnsward/dnsward.conf, units in $UNITDIR"

# An administrator's configuration survives a second install.
CONF=$ROOT$SYSCONF/dnsward/dnsward.conf
echo "# edited by the administrator" >>"$CONF"
sum=$(md5sum <"$CONF")
out=$(DESTDIR=$ROOT cmake --install "$B" 2>&1) || fail "a second install failed: $out"
assert_eq "a second install keeps the edited $SYSCONF/dnsward/dnsward.conf" "$sum" "$(md5sum <"$CONF")"
assert_contains "a second install says it kept the configuration" "$out" "Keeping: $CONF"
ok "a second install keeps an edited configuration, and says so"

# ---------------------------------------------------------------------------------------
# Manual pages

for page in "$ROOT$MAN8" "$ROOT$MAN5"; do
    out=$(mandoc -Tlint -Wwarning "$page" 2>&1) || true
    [[ -z $out ]] || fail "mandoc -Tlint -Wwarning $(basename "$page") is not clean:
$(_quote "$out")"
    text=$(MANWIDTH=80 man -l "$page" 2>&1) || fail "man -l $(basename "$page") failed: $text"
    assert_contains "man -l $(basename "$page") renders" "$text" "DESCRIPTION"
done
ok "both manual pages are clean for mandoc -Tlint -Wwarning and render with man -l"
text8=$(MANWIDTH=80 man -l "$ROOT$MAN8" 2>&1)
for section in OPTIONS SIGNALS "RUNNING AS A SERVICE" FILES "EXIT STATUS" EXAMPLES "SEE ALSO"; do
    assert_contains "dnsward(8) has the section $section" "$text8" "$section"
done
for sig in SIGHUP SIGUSR1 SIGINT SIGTERM; do assert_contains "dnsward(8) describes $sig" "$text8" "$sig"; done
ok "dnsward(8) has its sections and describes every signal"

# Every key of the daemon (its --help lists them all, from the one table in config.c) has
# an entry in dnsward.conf(5), and every entry there is a key of the daemon.
run_dw --help
keys=$(sed -n '/^Settings/,/^$/p' <<<"$OUT" | sed -nE 's/^  (-[a-z], )? *--([a-z0-9-]+).*/\2/p' | sort -u)
nkeys=$(wc -l <<<"$keys")
assert_ge "keys in dnsward --help" 40 "$nkeys"
documented=$(sed -nE 's/^\.It Cm ([a-z0-9-]+) No = .*/\1/p' "$SRC/man/dnsward.conf.5" | sort -u)
missing=$(comm -23 <(echo "$keys") <(echo "$documented"))
[[ -z $missing ]] || fail "dnsward.conf(5) has no entry for these keys: $(echo $missing)"
extra=$(comm -13 <(echo "$keys") <(echo "$documented"))
[[ -z $extra ]] || fail "dnsward.conf(5) documents keys the daemon does not have: $(echo $extra)"
ok "dnsward.conf(5) documents exactly the $nkeys keys of dnsward --help"

# ---------------------------------------------------------------------------------------
# Configurations

make_certs
expect_check "the installed $SYSCONF/dnsward/dnsward.conf" -c "$ROOT$SYSCONF/dnsward/dnsward.conf"
expect_check "conf/laptop.conf" -c "$SRC/conf/laptop.conf"
expect_check "conf/router.conf" -c "$SRC/conf/router.conf"
# The certificate paths of lan-doh.conf are read when the file is, so a --cert flag after
# it comes too late: the test's certificate goes in their place, and nothing else changes.
LAN=$T/lan-doh.conf
sed -e "s#^cert = /etc/dnsward/.*#cert = $CERTS/good.pem#" \
    -e "s#^key = /etc/dnsward/.*#key = $CERTS/good.key#" "$SRC/conf/lan-doh.conf" >"$LAN"
assert_eq "lines of lan-doh.conf changed for the test's certificate" 2 \
    "$(diff "$SRC/conf/lan-doh.conf" "$LAN" | grep -c '^>' || true)"
expect_check "conf/lan-doh.conf (test certificate)" -c "$LAN" --cert "$CERTS/good.pem" --key "$CERTS/good.key"
ok "dnsward -t passes the installed configuration and laptop, router and lan-doh.conf"

# The OpenWrt command line in router.conf's comment is the same configuration: it passes
# -t, and it sets exactly the keys the file sets.
cmdline=$(sed -n '/procd_set_param command/,/[^\\]$/p' "$SRC/conf/router.conf" |
    sed -e 's/^#//' -e 's/\\$//' -e 's/procd_set_param command//' | tr '\n' ' ')
[[ -n $cmdline ]] || fail "router.conf has no procd_set_param command line in its comments"
# Split as the shell would (the URLs are quoted for their '#'), without running anything.
mapfile -t words < <(python3 -c 'import shlex, sys; print("\n".join(shlex.split(sys.argv[1])))' "$cmdline")
[[ ${words[0]} == */dnsward ]] || fail "router.conf's command line does not start with dnsward: ${words[0]}"
expect_check "router.conf's OpenWrt command line" "${words[@]:1}"
flag_pairs=''
for ((i = 1; i < ${#words[@]}; i += 2)); do
    [[ ${words[i]} == --* ]] || fail "router.conf's command line: '${words[i]}' where a --KEY was expected"
    flag_pairs+="${words[i]#--}=${words[i + 1]:-}"$'\n'
done
file_pairs=$(sed -nE 's/^([a-z0-9-]+) *= *(.*[^ ]) *$/\1=\2/p' "$SRC/conf/router.conf" | sort)
assert_eq "router.conf: the settings of the command line and of the file" "$file_pairs" "$(sort <<<"${flag_pairs%$'\n'}")"
ok "router.conf's OpenWrt command line passes -t and gives the same $(wc -l <<<"$file_pairs") settings as the file"

# ---------------------------------------------------------------------------------------
# docker/Dockerfile, without Docker

[[ -f $DOCKERFILE ]] || fail "no $DOCKERFILE"
if command -v hadolint >/dev/null 2>&1; then
    out=$(hadolint "$DOCKERFILE" 2>&1) || fail "hadolint $DOCKERFILE:
$(_quote "$out")"
    ok "hadolint finds nothing in docker/Dockerfile"
else
    echo "# hadolint is not on PATH (it is not in Debian): the Dockerfile gets the structural checks only"
fi

# The Dockerfile's instructions, continuation lines joined, heredocs left out; stage N's
# lines are prefixed "N ".
instructions=$(python3 - "$DOCKERFILE" <<'EOF'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
out, stage, i, cur = [], -1, 0, ""
while i < len(lines):
    line = lines[i]
    i += 1
    if not cur and (line.strip() == "" or line.lstrip().startswith("#")):
        continue
    cur += line.rstrip()
    if cur.endswith("\\"):
        cur = cur[:-1] + " "
        continue
    m = re.search(r"<<-?(\w+)", cur)
    if m and cur.split()[0].upper() in ("COPY", "RUN"):
        while i < len(lines) and lines[i] != m.group(1):
            i += 1
        i += 1
    if cur.split()[0].upper() == "FROM":
        stage += 1
    out.append("%d %s" % (stage, re.sub(r"\s+", " ", cur.strip())))
    cur = ""
print("\n".join(out))
EOF
)
froms=$(grep -E '^[0-9]+ FROM ' <<<"$instructions")
assert_eq "FROM lines (a build stage and a run stage)" 2 "$(wc -l <<<"$froms")"
assert_match "the build stage" "$(sed -n 1p <<<"$froms")" '^0 FROM debian:12 AS [a-z]+$'
assert_match "the run stage" "$(sed -n 2p <<<"$froms")" '^1 FROM debian:12-slim$'
user=$(sed -n 's/^1 USER //p' <<<"$instructions" | tail -n 1)
[[ -n $user ]] || fail "the run stage sets no USER (it would run as root)"
[[ ${user%%:*} != root && ${user%%:*} != 0 ]] || fail "the run stage's USER is root: $user"
for ins in HEALTHCHECK VOLUME EXPOSE ENTRYPOINT; do
    grep -qE "^1 $ins " <<<"$instructions" || fail "the run stage has no $ins"
done
assert_contains "the configuration is a volume" "$(grep '^1 VOLUME ' <<<"$instructions")" /etc/dnsward
grep -qE "^1 RUN .*useradd .*--uid ${user%%:*} " <<<"$instructions" ||
    fail "USER $user is not a user the run stage creates with useradd --uid"
ok "Dockerfile: two stages, USER $user (non-root, created), HEALTHCHECK, VOLUME /etc/dnsward, EXPOSE"

# packages STAGE: what that stage's apt-get install lines install.
packages() {
    sed -n "s/^$1 RUN .*apt-get install //p" <<<"$instructions" | sed 's/&&.*//' |
        tr ' ' '\n' | grep -vE '^(-.*|)$' | sort -u
}
BUILD_PKGS=$(packages 0)
RUN_PKGS=$(packages 1)
[[ -n $BUILD_PKGS && -n $RUN_PKGS ]] || fail "cannot read the packages of the two stages"
# One apt-cache call (each loads the whole cache): a package it does not know is missing
# from its answer.
known=$(apt-cache show --no-all-versions $BUILD_PKGS $RUN_PKGS 2>/dev/null | sed -n 's/^Package: //p' | sort -u || true)
unknown=$(comm -23 <(printf '%s\n' $BUILD_PKGS $RUN_PKGS | sort -u) <(echo "$known"))
[[ -z $unknown ]] || fail "the Dockerfile installs packages Debian's archive does not have (apt-cache show): $(echo $unknown)"
dev=$(grep -E -- '-dev$' <<<"$RUN_PKGS" || true)
[[ -z $dev ]] || fail "the run stage installs development packages: $dev"
grep -qx ca-certificates <<<"$RUN_PKGS" || fail "the run stage has no ca-certificates (upstreams could not be verified)"
ok "Dockerfile: its $(wc -w <<<"$BUILD_PKGS $RUN_PKGS") packages exist in Debian's archive; none of the run stage's is -dev"

# Every library the daemon links (its DT_NEEDED entries; what those need in turn comes with
# their packages' dependencies) comes from a package of the run stage, or of every Debian
# image (the C library). libsystemd may be linked here and not in the image, which is built
# with DNSWARD_SYSTEMD=OFF; a sanitizer build's run-time libraries are not the image's.
need_tools readelf
needed=$(readelf -d "$DNSWARD" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
[[ -n $needed ]] || fail "readelf -d $DNSWARD lists no needed library"
ldd_out=$(ldd "$DNSWARD")
# Which package ships each library: one dpkg -S for all (each call reads the whole
# database), with each path as ldd gives it, resolved, and with or without /usr (dpkg
# knows a file by the path its package has, which /usr-merge may have changed).
declare -A lib_of=() pkg_of=()
candidates=()
for soname in $needed; do
    lib=$(awk -v n="$soname" '$1 == n && $2 == "=>" {print $3}' <<<"$ldd_out")
    [[ $lib == /* ]] || fail "ldd does not find $soname, which dnsward needs"
    lib_of[$soname]=$lib
    candidates+=("$lib" "$(readlink -f "$lib")" "/usr${lib#/usr}" "${lib#/usr}")
done
while IFS= read -r line; do
    [[ $line == *": /"* ]] || continue
    pkg_of[${line#*: }]=${line%%[:,]*}
done < <(dpkg -S "${candidates[@]}" 2>/dev/null || true)
package_of() { # FILE: the package that ships it
    local f=$1 cand
    for cand in "$f" "$(readlink -f "$f")" "/usr${f#/usr}" "${f#/usr}"; do
        if [[ -n ${pkg_of[$cand]:-} ]]; then
            echo "${pkg_of[$cand]}"
            return 0
        fi
    done
    return 1
}
systemd_off=0
grep -qE '^0 RUN .*-DDNSWARD_SYSTEMD=OFF' <<<"$instructions" && systemd_off=1
nlibs=0
for soname in $needed; do
    lib=${lib_of[$soname]}
    pkg=$(package_of "$lib") || fail "no Debian package ships $lib (dpkg -S)"
    if grep -qxF "$pkg" <<<"$RUN_PKGS" || [[ $pkg == libc6 ]]; then
        nlibs=$((nlibs + 1))
    elif [[ $soname =~ ^lib(a|ub|t|l)san\.so ]]; then
        echo "# $soname ($pkg): a sanitizer's run-time library, not linked by the image's release build"
    elif [[ $pkg == libsystemd0 ]] && ((systemd_off)); then
        echo "# $soname ($pkg): linked by this build, not by the image's (DNSWARD_SYSTEMD=OFF)"
    else
        fail "dnsward links $soname ($lib), from the package $pkg, which the Dockerfile's run stage does not install"
    fi
done
if ((systemd_off)); then
    ! grep -qx libsystemd-dev <<<"$BUILD_PKGS" || fail "the build stage installs libsystemd-dev but builds with DNSWARD_SYSTEMD=OFF"
fi
ok "Dockerfile: the run stage provides all $nlibs libraries dnsward links (ldd, dpkg -S)"

# The configuration the image ships (COPY <<EOF /etc/dnsward/dnsward.conf) passes -t.
IMGCONF=$T/image.conf
sed -n '/^COPY <<EOF \/etc\/dnsward\/dnsward.conf$/,/^EOF$/p' "$DOCKERFILE" | sed '1d;$d' >"$IMGCONF"
[[ -s $IMGCONF ]] || fail "the Dockerfile writes no /etc/dnsward/dnsward.conf (COPY <<EOF)"
expect_check "the image's /etc/dnsward/dnsward.conf" -c "$IMGCONF"
listen=$(sed -nE 's/^listen *= *//p' "$IMGCONF")
assert_match "the image listens on an unprivileged port" "$listen" ':(102[4-9]|10[3-9][0-9]|1[1-9][0-9]{2}|[2-9][0-9]{3}|[1-5][0-9]{4}|6[0-5][0-9]{3})$'
grep -qE "^1 EXPOSE .*\b${listen##*:}/udp\b" <<<"$instructions" || fail "the image listens on ${listen##*:} but does not EXPOSE ${listen##*:}/udp"
ok "the image's configuration passes -t and listens on the exposed unprivileged port ${listen##*:}"

# The health check: its own command, run against a dnsward with the image's configuration
# (listeners and upstream moved to this test's loopback ports), must pass; with nothing
# listening it must fail.
hc_json=$(sed -n 's/^1 HEALTHCHECK .*CMD \(\[.*\]\)$/\1/p' <<<"$instructions")
[[ -n $hc_json ]] || fail "HEALTHCHECK has no exec-form CMD [...]"
hc_port=$(grep -oE '/dev/tcp/127\.0\.0\.1/[0-9]+' <<<"$hc_json" | grep -oE '[0-9]+$' || true)
[[ -n $hc_port ]] || fail "the health check does not open /dev/tcp/127.0.0.1/PORT: $hc_json"
grep -qE "^metrics-listen *= *127\.0\.0\.1:$hc_port\$" "$IMGCONF" ||
    fail "the health check reads port $hc_port, which the image's configuration does not give metrics-listen"
free_port MPORT
free_port DEAD
mapfile -t hc_argv < <(python3 -c 'import json, sys
for a in json.loads(sys.argv[1]): print(a.replace("/127.0.0.1/" + sys.argv[2], "/127.0.0.1/" + sys.argv[3]))' \
    "$hc_json" "$hc_port" "$MPORT")
[[ ${hc_argv[0]} == bash ]] || fail "the health check does not run bash: ${hc_argv[0]}"
start_dnsward -c "$IMGCONF" --metrics-listen "127.0.0.1:$MPORT" -u "tls://127.0.0.1:$DEAD#upstream.test"
wait_until 10 tcp_listening "$MPORT" || fail "dnsward with the image's configuration did not listen on metrics port $MPORT"
rc=0
timeout 5 "${hc_argv[@]}" || rc=$?
assert_eq "the health check's exit status against a running dnsward" 0 "$rc"
stop_dnsward_clean
rc=0
timeout 5 "${hc_argv[@]}" 2>/dev/null || rc=$?
((rc != 0)) || fail "the health check passed with no dnsward running"
ok "the HEALTHCHECK command passes against dnsward's metrics page, and fails without it"
