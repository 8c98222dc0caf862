#!/usr/bin/env bash
# Noisy neighbour: a victim app's latency alone, and while an aggressor app burns its whole CPU
# budget on every request, on one `shoal up`, alternating in one run. Prints a Markdown table.
#
#   bench/noisy.sh [runs=3] [seconds=5]
#
# Needs a release build (cargo build --release) and wrk (apt-get install wrk).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
secs=${2:-5}
shoal=$root/target/release/shoal
[ -x "$shoal" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk" >&2; exit 1; }

out=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT

"$shoal" up --api 127.0.0.1:0 --http 127.0.0.1:0 --data-dir "$out/shoal" >"$out/shoal.out" 2>"$out/shoal.err" &
pids+=($!)
until grep -q 'ingress:' "$out/shoal.out" 2>/dev/null; do sleep 0.1; done
export SHOAL_SERVER=$(awk '/API:/ {print $2}' "$out/shoal.out") SHOAL_DATA_DIR=$out/shoal
url=$(awk '/ingress:/ {print $2}' "$out/shoal.out")
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
  # Every aggressor request spins until its 100 ms CPU budget runs out (then 500).
  wrk -t1 -c4 -d"$((secs + 2))s" "$url/aggressor/loop" >"$out/aggr.$i.txt" &
  apid=$!
  until grep -q 'exceeded its CPU limit' "$out/shoal.err"; do sleep 0.05; done
  victim noisy
  wait "$apid"
done

python3 - "$out" "$runs" "$secs" <<'PY'
import re, statistics, sys
out, runs, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
res = {}
for name in ("alone", "noisy"):
    rps, p50, p99 = [], [], []
    for i in range(1, runs + 1):
        t = open(f"{out}/{name}.{i}.txt").read()
        rps.append(float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)))
        p50.append(ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", t).groups()))
        p99.append(ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", t).groups()))
    res[name] = (statistics.median(rps), statistics.median(p50), statistics.median(p99))
aggr = [float(re.search(r"Requests/sec:\s+([\d.]+)", open(f"{out}/aggr.{i}.txt").read()).group(1)) for i in range(1, runs + 1)]
print(f"victim: C hello, wrk -t1 -c4 -d{secs}s; aggressor: 4 connections, each request burning its 100 ms CPU budget; {runs} alternating runs, medians\n")
print("| victim | req/s | p50 | p99 |")
print("|---|---|---|---|")
print(f"| alone | {res['alone'][0]:,.0f} | {res['alone'][1]:.2f} ms | {res['alone'][2]:.2f} ms |")
print(f"| beside the aggressor | {res['noisy'][0]:,.0f} | {res['noisy'][1]:.2f} ms | {res['noisy'][2]:.2f} ms |")
a, n = res["alone"], res["noisy"]
print(f"| **noisy ÷ alone** | {n[0]/a[0]:.2f}× | {n[1]/a[1]:.2f}× | **{n[2]/a[2]:.2f}×** |")
print(f"\naggressor: {statistics.median(aggr):.0f} req/s (each a 500 after 100 ms of CPU)")
PY
