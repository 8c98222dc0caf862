#!/usr/bin/env bash
# Noisy neighbour: a victim app's latency alone, while an aggressor app burns its whole CPU
# budget on every request on the same `shoal up`, and, for scale, beside a CPU spinner outside
# Shoal at the lowest priority (nice 19, like Shoal's busy lane): what any co-located CPU work
# costs the victim on this machine. Alternating in one run; prints a Markdown table.
#
#   bench/noisy.sh [runs=5] [seconds=5]
#
# Needs a release build (cargo build --release) and wrk (apt-get install wrk).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
secs=${2:-5}
source "$root/bench/lib.sh"
start_shoal
url=$shoal_url
cat >"$out/apps.yaml" <<YAML
apiVersion: shoal/v1alpha1
kind: App
metadata: {name: victim}
spec:
  component: $root/examples/hello-c/hello.wasm
  routes: [{path: /victim}]
  limits: {concurrency: 10000}
---
apiVersion: shoal/v1alpha1
kind: App
metadata: {name: aggressor}
spec:
  component: $root/tests/fixtures/misbehave.wasm
  routes: [{path: /aggressor}]
  limits: {cpu: 100ms, concurrency: 10000}
YAML
"$shoal" apply -f "$out/apps.yaml" >/dev/null
"$shoal" wait app victim >/dev/null && "$shoal" wait app aggressor >/dev/null

victim() { wrk -t1 -c4 -d"${secs}s" --latency "$url/victim" >"$out/$1.$i.txt"; }
for i in $(seq 1 "$runs"); do
  victim alone
  nice -n 19 sh -c 'while :; do :; done' &
  spinner=$!
  victim spinner
  kill "$spinner"
  # Every aggressor request spins until its 100 ms CPU budget runs out (then 500).
  wrk -t1 -c4 -d"$((secs + 2))s" "$url/aggressor/loop" >"$out/aggr.$i.txt" &
  apid=$!
  until grep -q 'exceeded its CPU limit' "$out/shoal.err"; do sleep 0.05; done
  victim noisy
  wait "$apid"
done

PYTHONPATH="$root/bench" python3 - "$out" "$runs" "$secs" <<'PY'
import statistics, sys
from wrk_medians import medians, rate
out, runs, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = ("alone", "spinner", "noisy")
res = {name: medians([f"{out}/{name}.{i}.txt" for i in range(1, runs + 1)]) for name in names}
aggr = [rate(f"{out}/aggr.{i}.txt") for i in range(1, runs + 1)]
print(f"victim: C hello, wrk -t1 -c4 -d{secs}s; aggressor: 4 connections, each request burning its 100 ms CPU budget; {runs} alternating runs, medians\n")
print("| victim | req/s | p50 | p99 |")
print("|---|---|---|---|")
print(f"| alone | {res['alone'][0]:,.0f} | {res['alone'][1]:.2f} ms | {res['alone'][2]:.2f} ms |")
print(f"| beside a nice-19 spinner outside Shoal | {res['spinner'][0]:,.0f} | {res['spinner'][1]:.2f} ms | {res['spinner'][2]:.2f} ms |")
print(f"| beside the aggressor | {res['noisy'][0]:,.0f} | {res['noisy'][1]:.2f} ms | {res['noisy'][2]:.2f} ms |")
a, f, n = res["alone"], res["spinner"], res["noisy"]
print(f"| spinner ÷ alone | {f[0]/a[0]:.2f}× | {f[1]/a[1]:.2f}× | {f[2]/a[2]:.2f}× |")
print(f"| **aggressor ÷ alone** | {n[0]/a[0]:.2f}× | {n[1]/a[1]:.2f}× | **{n[2]/a[2]:.2f}×** |")
def per_run(name):
    ratios = [medians([f"{out}/{name}.{i}.txt"])[2] / medians([f"{out}/alone.{i}.txt"])[2] for i in range(1, runs + 1)]
    return ", ".join(f"{r:.2f}×" for r in ratios)
print(f"\nper-run p99 ÷ alone: spinner {per_run('spinner')}; aggressor {per_run('noisy')}")
print(f"\naggressor: {statistics.median(aggr):.0f} req/s (each a 500 after 100 ms of CPU)")
PY
