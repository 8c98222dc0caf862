#!/usr/bin/env bash
# What a pre-initialised snapshot (spec.init) buys: the table example (examples/init-c: a 2 MB
# index of the primes below ten million) with spec.init, the same component without it (each
# request, a fresh instance, builds the index first), and the C hello example (an app with no
# init work at all), on one `shoal up` of this build.
#
# - deploy: apply to Ready, for a new app each run (the component's compiled code is already
#   loaded after the first run; with spec.init, the snapshot is already cached after the first
#   run too, so the first run is reported apart);
# - first request: the first request the new app answers (curl's total time);
# - steady state: wrk -t2 -c8, the kinds alternating, runs times.
#
#   bench/init.sh [runs] [seconds]
#
# Needs a release build (cargo build --release) and wrk. Prints Markdown tables of medians.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
secs=${2:-5}
source "$root/bench/lib.sh"
start_shoal

table=$root/examples/init-c/table.wasm
hello=$root/examples/hello-c/hello.wasm
declare -A component=([snapshot]=$table [lazy]=$table [hello]=$hello)
declare -A extra=([snapshot]="  init: {function: wizer-initialize}" [lazy]="" [hello]="")
kinds=(snapshot lazy hello)

# Applies app NAME of KIND and prints "deploy_seconds first_request_seconds".
deploy() {
  local kind=$1 name=$2 t0 t1
  t0=$(date +%s.%N)
  "$shoal" apply -f - >/dev/null <<YAML
apiVersion: shoal/v1alpha1
kind: App
metadata: {name: $name}
spec:
  component: ${component[$kind]}
  routes: [{path: /$name}]
  limits: {concurrency: 10000}
${extra[$kind]}
YAML
  "$shoal" wait app "$name" --timeout 300s >/dev/null
  t1=$(date +%s.%N)
  local first
  first=$(curl -fsS -o "$out/$name.body" -w '%{time_total}' "$shoal_url/$name/9999991")
  grep -q "9999991 is prime\|Hello from C" "$out/$name.body" || { cat "$out/$name.body" >&2; exit 1; }
  echo "$(awk "BEGIN {print $t1 - $t0}") $first"
}

for i in $(seq 0 "$runs"); do
  for kind in "${kinds[@]}"; do
    deploy "$kind" "$kind-$i" >"$out/deploy.$kind.$i"
  done
done
for i in $(seq 1 "$runs"); do
  for kind in "${kinds[@]}"; do
    wrk -t2 -c8 -d"${secs}s" --latency "$shoal_url/$kind-0/9999991" >"$out/wrk.$kind.$i.txt"
  done
done

PYTHONPATH="$root/bench" python3 - "$out" "$runs" "$secs" <<'PY'
import statistics, sys
from wrk_medians import medians
out, runs, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kinds = ("snapshot", "lazy", "hello")
labels = {"snapshot": "table with spec.init", "lazy": "table without spec.init",
          "hello": "C hello (no init work)"}
def deploys(kind, runs_):
    return [tuple(map(float, open(f"{out}/deploy.{kind}.{i}").read().split())) for i in runs_]
print(f"Deploy and first request (run 0 alone: the first of the node; then the median of {runs}):\n")
print("| app | deploy, first | first request, first | deploy | first request |")
print("|---|---|---|---|---|")
for k in kinds:
    d0, f0 = deploys(k, [0])[0]
    rest = deploys(k, range(1, runs + 1))
    d = statistics.median(x for x, _ in rest)
    f = statistics.median(y for _, y in rest)
    print(f"| {labels[k]} | {d0 * 1000:.0f} ms | {f0 * 1000:.2f} ms | {d * 1000:.0f} ms | {f * 1000:.2f} ms |")
print(f"\nwrk -t2 -c8 -d{secs}s, {runs} alternating runs, medians:\n")
print("| app | req/s | p50 | p99 |")
print("|---|---|---|---|")
res = {k: medians([f"{out}/wrk.{k}.{i}.txt" for i in range(1, runs + 1)]) for k in kinds}
for k in kinds:
    r = res[k]
    print(f"| {labels[k]} | {r[0]:,.0f} | {r[1]:.2f} ms | {r[2]:.2f} ms |")
s, h = res["snapshot"][0], res["hello"][0]
print(f"\nA request of the snapshotted table costs {h / s:.2f}× one of hello (req/s ratio).")
PY
