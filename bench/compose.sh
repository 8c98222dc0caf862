#!/usr/bin/env bash
# What one typed call between composed components costs, beside one call between apps in
# memory. One `shoal up` of this build:
# - composed: examples/compose-c (app.c imports shoal:examples/greet, library.c exports it,
#   composed by spec.dependencies); /compose/nocall/NAME answers without calling the library,
#   /compose/NAME?n=N calls greet N times (so a call's cost shows above the request's noise);
# - chained: the caps fixture calling the C hello app at http://web.default.shoal.internal (as
#   bench/chain.sh), against the same fixture making no call.
# wrk with one connection (latency, not queueing), the kinds alternating, runs times. Prints
# a Markdown table of medians and the cost per call.
#
#   bench/compose.sh [runs] [seconds]
#
# Needs a release build (cargo build --release) and wrk.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
secs=${2:-5}
source "$root/bench/lib.sh"
start_shoal

cat >"$out/apps.yaml" <<YAML
apiVersion: shoal/v1alpha1
kind: App
metadata: {name: composed}
spec:
  component: $root/examples/compose-c/app.wasm
  routes: [{path: /compose}]
  limits: {concurrency: 10000}
  dependencies:
    "shoal:examples/greet@0.1.0": {component: $root/examples/compose-c/library.wasm}
---
apiVersion: shoal/v1alpha1
kind: App
metadata: {name: web}
spec:
  component: $root/examples/hello-c/hello.wasm
  routes: [{path: /web}]
  limits: {concurrency: 10000}
---
apiVersion: shoal/v1alpha1
kind: App
metadata: {name: caller}
spec:
  component: $root/tests/fixtures/caps.wasm
  routes: [{path: /caller}]
  limits: {concurrency: 10000}
  capabilities:
    outbound: ["http://web.default.shoal.internal"]
YAML
"$shoal" apply -f "$out/apps.yaml" >/dev/null 2>&1
for app in composed web caller; do "$shoal" wait app "$app" --timeout 120s >/dev/null; done

declare -A path=(
  [nocall]="/compose/nocall/Ada"
  [call1]="/compose/Ada"
  [call1000]="/compose/Ada?n=1000"
  [alone]="/caller/canary/read"
  [chained]="/caller/fetch?url=http://web.default.shoal.internal/web/"
)
kinds=(nocall call1 call1000 alone chained)
[[ $(curl -fsS "$shoal_url${path[call1000]}") == "the library said: Hello, Ada, from a library!" ]] || { echo "composed app answers wrong" >&2; exit 1; }
[[ $(curl -fsS "$shoal_url${path[chained]}") == "status 200: Hello from C!"* ]] || { echo "chained call fails" >&2; exit 1; }
for i in $(seq 1 "$runs"); do
  for name in "${kinds[@]}"; do
    wrk -t1 -c1 -d"${secs}s" --latency "$shoal_url${path[$name]}" >"$out/$name.$i.txt"
  done
done

PYTHONPATH="$root/bench" python3 - "$out" "$runs" "$secs" <<'PY'
import sys
from wrk_medians import medians
out, runs, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kinds = ("nocall", "call1", "call1000", "alone", "chained")
res = {n: medians([f"{out}/{n}.{i}.txt" for i in range(1, runs + 1)]) for n in kinds}
labels = {"nocall": "composed app, no call", "call1": "composed app, 1 typed call",
          "call1000": "composed app, 1,000 typed calls", "alone": "caps fixture, no call",
          "chained": "caps fixture, 1 in-memory call to an app"}
print(f"wrk -t1 -c1 -d{secs}s, {runs} alternating runs, medians:\n")
print("| request | req/s | p50 | p99 |")
print("|---|---|---|---|")
for n in kinds:
    r = res[n]
    print(f"| {labels[n]} | {r[0]:,.0f} | {r[1] * 1000:.0f} µs | {r[2] * 1000:.0f} µs |")
typed = (res["call1000"][1] - res["nocall"][1]) * 1000 / 1000
chained = (res["chained"][1] - res["alone"][1]) * 1000
print(f"\nOne typed call costs {typed:.2f} µs (p50 of 1,000 calls minus none, per call); "
      f"one call to an app in memory adds {chained:.0f} µs: {chained / typed:,.0f}× more.")
PY
