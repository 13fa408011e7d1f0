#!/usr/bin/env bash
# bench.sh: measure dnsward with dnsperf against the same job done by its peers.
#
#   scripts/bench.sh [-s miss|hit|memory] [-l SECONDS] [-r ROUNDS] [-q OUTSTANDING] [-n NAMES]
#
# Starts, all on 127.0.0.1: an Unbound upstream serving DoT and DoH from local data (a
# test CA made here), dnsward in front of it twice (forwarding over DoT, and over DoH),
# and, when installed, the same job done by Unbound as a caching DoT forwarder, by
# stubby (DoT, no cache) and by dnsdist forwarding over DoH. Scenarios:
#   miss    (default) a new name every query: every query is forwarded upstream
#   hit     1,000 names, asked once to fill the cache, then over and over
#   memory  NAMES (default 100,000) new names, each asked once; the table shows each
#           target's resident memory before and after, and the growth
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
[[ $scenario =~ ^(miss|hit|memory)$ ]] || { sed -n '2,15p' "$0"; exit 2; }
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
DNSDIST_DOH=27057

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
