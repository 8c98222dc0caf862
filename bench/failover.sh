#!/usr/bin/env bash
# Failover on loopback: etcd, a server and three nodes; the node holding the C hello app is
# killed under load. Prints detection, re-placement and serving-again times and failed requests.
#
#   bench/failover.sh [runs] [replicas]
#
# Needs: a release build (cargo build --release) and etcd (apt-get install etcd-server).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/target/release/shoal" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v etcd >/dev/null || { echo "install etcd: apt-get install etcd-server" >&2; exit 1; }
python3 "$root/bench/failover.py" "$root/target/release/shoal" "${1:-5}" "${2:-1}"
