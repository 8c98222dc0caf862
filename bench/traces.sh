#!/usr/bin/env bash
# The cost of tracing every request: two `shoal up` of this build side by side, one without
# `--otlp-endpoint` and one exporting every span to a local OTLP/HTTP receiver
# (tests/fixtures/otlp_receiver.py --count: decodes each batch with opentelemetry-proto and
# counts its spans), loaded by the same wrk in alternating runs. Prints a Markdown table of
# medians and the spans the receiver took.
#
#   bench/traces.sh [component.wasm] [runs] [seconds] [connections]
#
# Needs a release build (cargo build --release), wrk, and target/test-venv (scripts/test
# makes it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
component=$(realpath "${1:-$root/examples/hello-c/hello.wasm}")
runs=${2:-5}
secs=${3:-5}
conns=${4:-8}
source "$root/bench/lib.sh"
python=$root/target/test-venv/bin/python
[ -x "$python" ] || { echo "make target/test-venv first (scripts/test does)" >&2; exit 1; }

"$python" "$root/tests/fixtures/otlp_receiver.py" --count >"$out/otlp.out" &
otlp_pid=$!
until grep -q '^listening' "$out/otlp.out" 2>/dev/null; do sleep 0.1; done
otlp_url=http://127.0.0.1:$(awk '/^listening/ {print $2}' "$out/otlp.out")

cat >"$out/app.yaml" <<YAML
apiVersion: shoal/v1alpha1
kind: App
metadata: {name: bench}
spec:
  component: $component
  routes: [{path: /}]
  limits: {concurrency: 10000, memory: 64Mi}
YAML
declare -A url
for name in off traced; do
  args=
  [ "$name" = traced ] && args="--otlp-endpoint $otlp_url"
  SHOAL_UP_ARGS=$args start_shoal_from "$shoal" "$name"
  SHOAL_SERVER=$shoal_api SHOAL_DATA_DIR=$out/$name "$shoal" apply -f "$out/app.yaml" >/dev/null
  SHOAL_SERVER=$shoal_api SHOAL_DATA_DIR=$out/$name "$shoal" wait app bench --timeout 120s >/dev/null
  url[$name]=$shoal_url
  curl -fsS "$shoal_url/" >/dev/null
done
for i in $(seq 1 "$runs"); do
  for name in off traced; do
    wrk -t2 -c"$conns" -d"${secs}s" --latency "${url[$name]}/" >"$out/$name.$i.txt"
  done
done
requests=$(cat "$out"/traced.*.txt | awk '/requests in/ {n += $1} END {print n}')
kill "$otlp_pid" && wait "$otlp_pid" 2>/dev/null || true
spans=$(awk '/^spans/ {print $2}' "$out/otlp.out")

PYTHONPATH="$root/bench" python3 - "$out" "$runs" "$(basename "$component")" "$conns" "$secs" "$requests" "${spans:-0}" <<'PY'
import sys
from wrk_medians import medians
out, runs, comp, conns, secs, requests, spans = sys.argv[1:]
runs = int(runs)
res = {n: medians([f"{out}/{n}.{i}.txt" for i in range(1, runs + 1)]) for n in ("off", "traced")}
print(f"{comp}, wrk -t2 -c{conns} -d{secs}s, {runs} alternating runs, medians:\n")
print("| Shoal | req/s | p50 | p99 |")
print("|---|---|---|---|")
for name, label in (("off", "tracing off (default)"), ("traced", "every request traced, exported")):
    r = res[name]
    print(f"| {label} | {r[0]:,.0f} | {r[1]:.2f} ms | {r[2]:.2f} ms |")
print(f"| **tracing cost** | **{1 - res['traced'][0] / res['off'][0]:.1%}** | | |")
print(f"\nThe receiver took {int(spans):,} spans for {int(requests):,} traced requests"
      f" ({int(spans) / max(int(requests), 1):.2f} per request; one server, instantiate and"
      " handler span each, plus the warm-up request's).")
PY
