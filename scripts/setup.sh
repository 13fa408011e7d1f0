#!/usr/bin/env bash
# setup.sh: install the Debian packages dnsward needs to build, run and be tested.
# Installs only what is missing; safe to run again. Nothing else is downloaded.
set -euo pipefail

packages=(
    # build
    gcc make cmake pkg-config libc6-dev
    libssl-dev libev-dev libinih-dev libnghttp2-dev libcmocka-dev node-llhttp libsystemd-dev
    # run: the system trust store for verifying upstream certificates
    ca-certificates
    # tests: a real upstream and real clients
    unbound openssl bind9-dnsutils knot-dnsutils dnsperf curl nghttp2-client python3 python3-h2
    iproute2 procps
    # tests of the service: unit checks, the metrics page, the manual pages
    systemd prometheus mandoc man-db binutils
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=()
((EUID == 0)) || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
