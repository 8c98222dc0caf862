#!/usr/bin/env bash
# What a call from one app to another adds to the caller's latency: in memory
# (http://web.default.shoal.internal, served in the node's process) against the same call
# through the node's own ingress over loopback. One `shoal up` of this build; the caller is the
# caps fixture (tests/fixtures/caps.wasm: /fetch?url=URL makes one GET), the callee the C hello
# example. wrk with one connection, so that latency is the request's and not a queue's; the
# kinds of request alternate, runs times (with the callee's own request from wrk, for scale, and a
# call to an app that does not exist: the caller's own client work, refused before any callee).
# Prints a Markdown table of medians.
#
#   bench/chain.sh [runs] [seconds]
#
# Needs a release build (cargo build --release) and wrk.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
secs=${2:-5}
source "$root/bench/lib.sh"
start_shoal
port=${shoal_url##*:}

cat >"$out/apps.yaml" <<YAML
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
metadata: {name: reused}
spec:
  component: $root/examples/hello-c/hello.wasm
  routes: [{path: /reused}]
  limits: {concurrency: 10000}
  reuse: {maxRequests: 100000}
---
apiVersion: shoal/v1alpha1
kind: App
metadata: {name: caller}
spec:
  component: $root/tests/fixtures/caps.wasm
  routes: [{path: /caller}]
  limits: {concurrency: 10000}
  capabilities:
    outbound: ["http://web.default.shoal.internal", "http://reused.default.shoal.internal", "http://nowhere.default.shoal.internal", "http://127.0.0.1:$port"]
YAML
"$shoal" apply -f "$out/apps.yaml" >/dev/null
"$shoal" wait app web --timeout 120s >/dev/null
"$shoal" wait app reused --timeout 120s >/dev/null
"$shoal" wait app caller --timeout 120s >/dev/null

declare -A path=(
  [callee]="/web/"
  [alone]="/caller/canary/read"
  [nowhere]="/caller/fetch?url=http://nowhere.default.shoal.internal/"
  [memory]="/caller/fetch?url=http://web.default.shoal.internal/web/"
  [loopback]="/caller/fetch?url=http://127.0.0.1:$port/web/"
  [reused]="/caller/fetch?url=http://reused.default.shoal.internal/reused/"
)
for name in callee alone memory loopback reused; do
  body=$(curl -fsS "$shoal_url${path[$name]}")
  case $name in
    callee | alone) ;;
    *) [[ $body == "status 200: Hello from C!"* ]] || { echo "$name: $body" >&2; exit 1; } ;;
  esac
done
for i in $(seq 1 "$runs"); do
  for name in callee alone nowhere memory loopback reused; do
    wrk -t1 -c1 -d"${secs}s" --latency "$shoal_url${path[$name]}" >"$out/$name.$i.txt"
  done
done

PYTHONPATH="$root/bench" python3 - "$out" "$runs" "$secs" <<'PY'
import sys
from wrk_medians import medians
out, runs, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
res = {n: medians([f"{out}/{n}.{i}.txt" for i in range(1, runs + 1)])
       for n in ("callee", "alone", "nowhere", "memory", "loopback", "reused")}
print(f"wrk -t1 -c1 -d{secs}s, {runs} alternating runs, medians:\n")
print("| the caller's request | req/s | p50 | p99 | p50 added by the call |")
print("|---|---|---|---|---|")
labels = {"callee": "(web alone, from wrk: the callee's own request)",
          "alone": "makes no call",
          "nowhere": "calls an app that does not exist (its client work, no callee)",
          "memory": "calls web in memory",
          "loopback": "calls web through the ingress (loopback)",
          "reused": "calls a copy of web with spec.reuse in memory"}
for name in ("callee", "alone", "nowhere", "memory", "loopback", "reused"):
    r = res[name]
    added = "" if name in ("callee", "alone") else f"{(r[1] - res['alone'][1]) * 1000:.0f} µs"
    print(f"| {labels[name]} | {r[0]:,.0f} | {r[1] * 1000:.0f} µs | {r[2] * 1000:.0f} µs | {added} |")
memory = res["memory"][1] - res["alone"][1]
loopback = res["loopback"][1] - res["alone"][1]
print(f"\nThe call through the ingress adds {loopback / memory:.1f}× what the in-memory call adds.")
PY
