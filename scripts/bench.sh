#!/usr/bin/env bash
# bench.sh: measure dnsward with dnsperf against the same job done by its peers.
#
#   scripts/bench.sh [-s miss|hit|memory|server] [-l SECONDS] [-r ROUNDS] [-q OUTSTANDING] [-n NAMES]
#
# Starts, all on 127.0.0.1: an Unbound upstream serving DoT and DoH from local data (a
# test CA made here), dnsward in front of it twice (forwarding over DoT, and over DoH),
# and, when installed, the same job done by Unbound as a caching DoT forwarder, by
# stubby (DoT, no cache) and by dnsdist forwarding over DoH. Scenarios:
#   miss    (default) a new name every query: every query is forwarded upstream
#   hit     1,000 names, asked once to fill the cache, then over and over
#   memory  NAMES (default 100,000) new names, each asked once; the table shows each
#           target's resident memory before and after, and the growth
#   server  dnsward as a DoT and a DoH server answering from its cache, beside dnsdist
#           doing the same (when installed): DoT with dnsperf -m dot over 1,000 cached
#           names; DoH with h2load, one connection, 100 streams, GET ?dns= of one cached
#           name (as a browser does), and dnsperf -m doh (POST); each ratio is against
#           dnsdist in the same mode
# For miss and hit each round runs every target once, in turn; the table shows medians
# and each target's rate as a ratio of dnsward's. Builds build/dnsward if needed. Stops
# only what it started. DNSWARD_BIN names another binary to measure (a Release build).
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=miss secs=5 rounds=3 outstanding=200 nnames=100000
while getopts "s:l:r:q:n:" o; do
    case $o in
    s) scenario=$OPTARG ;;
    l) secs=$OPTARG ;;
    r) rounds=$OPTARG ;;
    q) outstanding=$OPTARG ;;
    n) nnames=$OPTARG ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
    esac
done
[[ $scenario =~ ^(miss|hit|memory|server)$ ]] || { sed -n '2,15p' "$0"; exit 2; }
for t in dnsperf unbound openssl; do
    command -v $t >/dev/null || { echo "bench: $t is missing (scripts/setup.sh installs it)" >&2; exit 2; }
done
[[ -x ${DNSWARD_BIN:-build/dnsward} ]] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build -j "$(nproc)" >/dev/null; }

dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

UP_DOT=27853 UP_DOH=27443 DNSWARD=27053 UNBOUND_FWD=27054 STUBBY=27055 DNSWARD_DOH=27056
DNSDIST_DOH=27057 UP_UDP=27058 SRV_DW_DOT=27854 SRV_DW_DOH=27444 SRV_DD_DOT=27855 SRV_DD_DOH=27445

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca.key" \
    -out "$dir/ca.pem" -days 30 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/up.key" \
    -out "$dir/up.csr" -subj "/CN=upstream.test" 2>/dev/null
printf "subjectAltName=DNS:upstream.test,IP:127.0.0.1\n" >"$dir/ext.cnf"
openssl x509 -req -in "$dir/up.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/up.pem" -days 30 -extfile "$dir/ext.cnf" 2>/dev/null

common="  do-daemonize: no
  username: \"\"
  chroot: \"\"
  directory: \"$dir\"
  pidfile: \"\"
  use-syslog: no
  verbosity: 0
  num-threads: 1
  access-control: 127.0.0.0/8 allow"
cat >"$dir/upstream.conf" <<EOF
server:
  interface: 127.0.0.1@$UP_DOT
  interface: 127.0.0.1@$UP_DOH
  interface: 127.0.0.1@$UP_UDP
  tls-port: $UP_DOT
  https-port: $UP_DOH
  http-max-streams: 1000
  tls-service-key: "$dir/up.key"
  tls-service-pem: "$dir/up.pem"
$common
  module-config: "iterator"
  incoming-num-tcp: 1000
  local-zone: "bench.test." redirect
  local-data: "bench.test. 300 IN A 192.0.2.1"
EOF
cat >"$dir/fwd.conf" <<EOF
server:
  interface: 127.0.0.1@$UNBOUND_FWD
$common
  do-not-query-localhost: no
  module-config: "iterator"
  msg-cache-size: 256m
  rrset-cache-size: 256m
  tls-cert-bundle: "$dir/ca.pem"
  local-zone: "test." nodefault
forward-zone:
  name: "."
  forward-tls-upstream: yes
  forward-addr: 127.0.0.1@$UP_DOT#upstream.test
EOF
cat >"$dir/stubby.yml" <<EOF
resolution_type: GETDNS_RESOLUTION_STUB
dns_transport_list: [GETDNS_TRANSPORT_TLS]
tls_authentication: GETDNS_AUTHENTICATION_REQUIRED
tls_query_padding_blocksize: 128
idle_timeout: 10000
tls_ca_file: "$dir/ca.pem"
listen_addresses: [127.0.0.1@$STUBBY]
upstream_recursive_servers:
  - address_data: 127.0.0.1
    tls_port: $UP_DOT
    tls_auth_name: "upstream.test"
EOF

cat >"$dir/dnsdist-doh.conf" <<EOF
setLocal("127.0.0.1:$DNSDIST_DOH")
setSecurityPollSuffix("")
newServer({address="127.0.0.1:$UP_DOH", tls="openssl", subjectName="upstream.test", caStore="$dir/ca.pem", validateCertificates=true, dohPath="/dns-query", checkName="bench.test."})
getPool(""):setCache(newPacketCache(100000, {maxTTL=86400, minTTL=0}))
EOF
cat >"$dir/dnsdist-server.conf" <<EOF
setLocal("127.0.0.1:0")
setSecurityPollSuffix("")
addTLSLocal("127.0.0.1:$SRV_DD_DOT", "$dir/up.pem", "$dir/up.key")
addDOHLocal("127.0.0.1:$SRV_DD_DOH", "$dir/up.pem", "$dir/up.key", "/dns-query")
newServer({address="127.0.0.1:$UP_UDP", checkName="bench.test."})
getPool(""):setCache(newPacketCache(100000, {maxTTL=86400, minTTL=0}))
EOF

# h1.bench.test A, ID 0, RD, base64url without padding (RFC 8484 section 6)
H2_QUERY=AAABAAABAAAAAAAAAmgxBWJlbmNoBHRlc3QAAAEAAQ

# One measurement: MODE (dot, doh, h2) against PORT; prints "qps lost-%".
server_measure() {
    local mode=$1 port=$2 out
    if [[ $mode == h2 ]]; then
        out=$(h2load -D "$secs" -c 1 -m 100 -t 1 -H 'accept: application/dns-message' \
            "https://127.0.0.1:$port/dns-query?dns=$H2_QUERY" 2>&1 || true)
        awk '/^finished in/ { gsub(/,/, "", $4); q = $4 }
             /^requests:/ { t = $2; ok = $8 }
             END { printf "%s %.2f\n", q + 0, (t > 0) ? 100 * (t - ok) / t : 100 }' <<<"$out"
        return
    fi
    local a=(-s 127.0.0.1 -p "$port" -m "$mode" -q "$outstanding" -d "$dir/names" -l "$secs")
    [[ $mode == doh ]] && a+=(-O doh-method=POST -O "doh-uri=https://127.0.0.1:$port/dns-query")
    out=$(dnsperf "${a[@]}" 2>&1 || true)
    awk '/Queries per second:/ { q = $4 } /Queries lost:/ { gsub(/[()%]/, "", $4); l = $4 }
         END { printf "%s %s\n", q + 0, (l == "") ? 100 : l }' <<<"$out"
}

server_bench() {
    command -v h2load >/dev/null || { echo "bench: h2load is missing (scripts/setup.sh installs it)" >&2; exit 2; }
    unbound -d -c "$dir/upstream.conf" >"$dir/upstream.log" 2>&1 &
    pids+=($!)
    "${DNSWARD_BIN:-build/dnsward}" -l 127.0.0.1:$DNSWARD -u "tls://127.0.0.1:$UP_DOT#upstream.test" \
        --ca-file "$dir/ca.pem" --cert "$dir/up.pem" --key "$dir/up.key" \
        --dot-listen 127.0.0.1:$SRV_DW_DOT --doh-listen 127.0.0.1:$SRV_DW_DOH >"$dir/dnsward.log" 2>&1 &
    pids+=($!)
    local have_dnsdist=0
    if command -v dnsdist >/dev/null; then
        dnsdist --supervised --disable-syslog -C "$dir/dnsdist-server.conf" >"$dir/dnsdist.log" 2>&1 &
        pids+=($!)
        have_dnsdist=1
    fi
    sleep 2
    for i in $(seq 1 1000); do echo "h$i.bench.test A"; done >"$dir/names"
    # Fill both caches.
    local port
    for port in $SRV_DW_DOT $SRV_DD_DOT; do
        dnsperf -s 127.0.0.1 -p "$port" -m dot -d "$dir/names" -n 1 >/dev/null 2>&1 || true
    done
    # Each pair in turn, round after round, so a drift of the machine's speed hits both.
    local rows=("dot $SRV_DD_DOT $SRV_DW_DOT" "h2 $SRV_DD_DOH $SRV_DW_DOH" "doh $SRV_DD_DOH $SRV_DW_DOH")
    : >"$dir/results"
    local r row mode dd dw
    for r in $(seq 1 "$rounds"); do
        for row in "${rows[@]}"; do
            read -r mode dd dw <<<"$row"
            ((have_dnsdist)) && echo "$mode dnsdist $(server_measure "$mode" "$dd")" >>"$dir/results"
            echo "$mode dnsward $(server_measure "$mode" "$dw")" >>"$dir/results"
        done
    done
    printf "%-6s %-8s %12s %8s %8s\n" mode target qps ratio lost-%
    awk '{ k = $1 " " $2; q[k] = q[k] " " $3; x[k] = x[k] " " $4; if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
        function median(s,   a, k, i, j, t) {
            k = split(s, a, " ")
            for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
            return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        END {
            for (i = 0; i < n; i++) { split(order[i], m, " "); if (m[2] == "dnsdist") ref[m[1]] = median(q[order[i]]) }
            for (i = 0; i < n; i++) {
                split(order[i], m, " "); v = median(q[order[i]])
                printf "%-6s %-8s %12.0f %8s %8s\n", m[1], m[2], v, (ref[m[1]] > 0) ? sprintf("%.2f", v / ref[m[1]]) : "-", median(x[order[i]])
            }
        }' "$dir/results"
    echo "scenario=server seconds=$secs rounds=$rounds outstanding=$outstanding (dot, doh: dnsperf, 1 connection; h2: h2load -c 1 -m 100)"
}

if [[ $scenario == server ]]; then
    server_bench
    exit 0
fi

start() { # name command...
    local name=$1
    shift
    "$@" >"$dir/$name.log" 2>&1 &
    pids+=($!)
}
start upstream unbound -d -c "$dir/upstream.conf"
sleep 1
# A budget that holds every name of the memory scenario, as the peers' caches do.
start dnsward "${DNSWARD_BIN:-build/dnsward}" -l 127.0.0.1:$DNSWARD -u "tls://127.0.0.1:$UP_DOT#upstream.test" \
    --ca-file "$dir/ca.pem" --cache-size 256M
targets=("dnsward 127.0.0.1 $DNSWARD ${pids[-1]}")
if [[ $scenario != memory ]]; then
    start dnsward-doh "${DNSWARD_BIN:-build/dnsward}" -l 127.0.0.1:$DNSWARD_DOH \
        -u "https://127.0.0.1:$UP_DOH/dns-query#upstream.test" --ca-file "$dir/ca.pem" --cache-size 256M
    targets+=("dnsward-doh 127.0.0.1 $DNSWARD_DOH ${pids[-1]}")
fi
start unbound-fwd unbound -d -c "$dir/fwd.conf"
targets+=("unbound-fwd 127.0.0.1 $UNBOUND_FWD ${pids[-1]}")
if command -v stubby >/dev/null && [[ $scenario != memory ]]; then
    start stubby stubby -C "$dir/stubby.yml"
    targets+=("stubby 127.0.0.1 $STUBBY ${pids[-1]}")
fi
if command -v dnsdist >/dev/null && [[ $scenario != memory ]]; then
    start dnsdist-doh dnsdist --supervised --disable-syslog -C "$dir/dnsdist-doh.conf"
    targets+=("dnsdist-doh 127.0.0.1 $DNSDIST_DOH ${pids[-1]}")
fi
sleep 2

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

if [[ $scenario == memory ]]; then
    awk -v n="$nnames" -v seed=$RANDOM 'BEGIN { srand(seed);
        for (i = 0; i < n; i++) printf "mem%d-%d.bench.test A\n", i, int(rand() * 1e9) }' >"$dir/names"
    printf "%-12s %10s %10s %10s %10s\n" target names rss-MB-before rss-MB-after growth-MB
    for t in "${targets[@]}"; do
        read -r name host port pid <<<"$t"
        before=$(rss_kb "$pid")
        out=$(dnsperf -s "$host" -p "$port" -d "$dir/names" -n 1 -q "$outstanding" 2>&1 || true)
        sleep 1
        after=$(rss_kb "$pid")
        done=$(awk '/Queries completed:/ { print $3 }' <<<"$out")
        awk -v n="$name" -v q="${done:-0}" -v b="$before" -v a="$after" 'BEGIN {
            printf "%-12s %10d %10.1f %10.1f %10.1f\n", n, q, b / 1024, a / 1024, (a - b) / 1024 }'
    done
    echo "scenario=memory names=$nnames outstanding=$outstanding"
    exit 0
fi

if [[ $scenario == hit ]]; then
    for i in $(seq 1 1000); do echo "h$i.bench.test A"; done >"$dir/names"
    for t in "${targets[@]}"; do
        read -r name host port _ <<<"$t"
        dnsperf -s "$host" -p "$port" -d "$dir/names" -n 1 >/dev/null 2>&1 || true
    done
else
    awk -v n=$((400000 * rounds * ${#targets[@]})) -v seed=$RANDOM 'BEGIN { srand(seed);
        for (i = 0; i < n; i++) printf "m%d-%d.bench.test A\n", i, int(rand() * 1e9) }' >"$dir/names"
fi

: >"$dir/results"
for r in $(seq 1 "$rounds"); do
    for i in "${!targets[@]}"; do
        read -r name host port _ <<<"${targets[$i]}"
        out=$(dnsperf -s "$host" -p "$port" -d "$dir/names" -l "$secs" -q "$outstanding" 2>&1 || true)
        qps=$(awk '/Queries per second:/ { print $4 }' <<<"$out")
        lost=$(awk '/Queries lost:/ { gsub(/[()%]/, "", $4); print $4 }' <<<"$out")
        echo "$i ${qps:-0} ${lost:-100}" >>"$dir/results"
    done
done

printf "%-12s %12s %8s %8s\n" target qps ratio lost-%
awk '{ q[$1] = q[$1] " " $2; x[$1] = x[$1] " " $3; n = ($1 + 1 > n) ? $1 + 1 : n }
    function median(s,   a, k, i, j, t) {
        k = split(s, a, " ")
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    END { for (i = 0; i < n; i++) print i, median(q[i]), median(x[i]) }' "$dir/results" |
    while read -r i qps lost; do
        [[ $i == 0 ]] && ref=$qps
        read -r name _ <<<"${targets[$i]}"
        printf "%-12s %12.0f %8.2f %8s\n" "$name" "$qps" "$(awk -v a="$qps" -v b="$ref" 'BEGIN { print (b > 0) ? a / b : 0 }')" "$lost"
    done
echo "scenario=$scenario seconds=$secs rounds=$rounds outstanding=$outstanding"
