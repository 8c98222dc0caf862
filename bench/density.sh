#!/usr/bin/env bash
# Density: N apps on one `shoal up`, each with its own route and its own component bytes (the C
# hello component with a unique custom section, so every digest differs and every app is
# compiled and loaded on its own). For each N, a fresh node records: apply throughput, time until
# all are Ready, node RSS idle and per app, the first request to cold apps (p50/p99), and steady
# throughput with Zipf-distributed popularity over all apps, and then a Prometheus scrape of the
# node (every app having served: the largest answer). Prints a Markdown table row per N.
#
#   bench/density.sh [N ...]      (default: 100 1000)
#   PERF_OUT=/tmp/zipf bench/density.sh 1000   # also perf-record the node during the Zipf load
#
# Needs a release build (cargo build --release) and wrk (apt-get install wrk).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000)
source "$root/bench/lib.sh"

echo "| apps | apply | all Ready after | RSS idle (node) | RSS per app | open fds | cold first request p50 / p99 | Zipf req/s (p99) | scrape (size) |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  # A fresh node and data dir per size.
  rm -rf "$out/shoal" "$out/apps" && mkdir -p "$out/apps"
  SHOAL_UP_ARGS="${SHOAL_UP_ARGS:-} --metrics 127.0.0.1:0" start_shoal
  pid=${pids[-1]}
  export shoal
  python3 "$root/bench/density.py" prepare "$root/examples/hello-c/hello.wasm" "$out/apps" "$n"
  rss_empty=$(rss_kib "$pid")
  t0=$(date +%s.%N)
  "$shoal" apply -f "$out/apps" >/dev/null
  t1=$(date +%s.%N)
  python3 "$root/bench/density.py" wait-ready "$n"
  t2=$(date +%s.%N)
  rss_idle=$(rss_kib "$pid")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  cold=$(python3 "$root/bench/density.py" cold "$shoal_url" "$n")
  python3 "$root/bench/density.py" zipf-lua "$n" >"$out/zipf.lua"
  perf_pid=
  if [ -n "${PERF_OUT:-}" ]; then
    perf record -q -F 499 -g -p "$pid" -o "$PERF_OUT.$n.data" -- sleep 8 2>/dev/null &
    perf_pid=$!
  fi
  wrk -t2 -c8 -d10s --latency -s "$out/zipf.lua" "$shoal_url" >"$out/zipf.txt"
  [ -z "$perf_pid" ] || wait "$perf_pid" || true
  # The median of 5 scrapes: seconds to the whole answer, and its size.
  scrape=$(for _ in 1 2 3 4 5; do curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "$shoal_metrics"; done |
    sort -n | sed -n 3p)
  PYTHONPATH="$root/bench" python3 - "$n" "$t0" "$t1" "$t2" "$rss_empty" "$rss_idle" "$fds" "$cold" "$out/zipf.txt" "$scrape" <<'PY'
import sys
from wrk_medians import medians
n, t0, t1, t2, empty, idle, fds, cold, zipf, scrape = sys.argv[1:]
scrape_s, scrape_bytes = scrape.split()
n, t0, t1, t2, empty, idle = int(n), float(t0), float(t1), float(t2), int(empty), int(idle)
rps, _, p99 = medians([zipf])
print(f"| {n:,} | {n / (t1 - t0):,.0f} apps/s | {t2 - t0:,.1f} s | {idle / 1024:,.0f} MiB | "
      f"{(idle - empty) / n:,.0f} KiB | {int(fds):,} | {cold} | {rps:,.0f} ({p99:.2f} ms) | "
      f"{float(scrape_s) * 1000:,.0f} ms ({int(scrape_bytes) / 2**20:,.1f} MiB) |")
PY
  kill "$pid" && wait "$pid" 2>/dev/null || true
  pids=()
done
