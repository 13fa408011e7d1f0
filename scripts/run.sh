#!/usr/bin/env bash
# run.sh: set up, build, and run dnsward in the foreground with the default configuration
# (conf/dnsward.conf), listening on an unprivileged port so that no root is needed.
#   scripts/run.sh [extra dnsward flags...]        e.g. scripts/run.sh -v
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
echo "dnsward: try  dig @127.0.0.1 -p 5300 example.com   (Ctrl-C stops it)" >&2
exec build/dnsward -c conf/dnsward.conf -l 127.0.0.1:5300 -l '[::1]:5300' "$@"
