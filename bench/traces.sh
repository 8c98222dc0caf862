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
# CPU seconds process $1 has used so far (user and system).
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

declare -A url pid cpu
for name in off traced; do
  args=
  [ "$name" = traced ] && args="--otlp-endpoint $otlp_url"
  SHOAL_UP_ARGS=$args start_shoal_from "$shoal" "$name"
  SHOAL_SERVER=$shoal_api SHOAL_DATA_DIR=$out/$name "$shoal" apply -f "$out/app.yaml" >/dev/null
  SHOAL_SERVER=$shoal_api SHOAL_DATA_DIR=$out/$name "$shoal" wait app bench --timeout 120s >/dev/null
  url[$name]=$shoal_url
  pid[$name]=${pids[-1]}
  curl -fsS "$shoal_url/" >/dev/null
done
for p in off traced; do cpu[$p]=$(cpu_secs "${pid[$p]}"); done
cpu[otlp]=$(cpu_secs "$otlp_pid")
for i in $(seq 1 "$runs"); do
  for name in off traced; do
    wrk -t2 -c"$conns" -d"${secs}s" --latency "${url[$name]}/" >"$out/$name.$i.txt"
  done
done
# CPU each process spent under load: Shoal's own per request, and the receiver's.
for p in off traced; do
  cpu[$p]=$(awk -v a="$(cpu_secs "${pid[$p]}")" -v b="${cpu[$p]}" 'BEGIN {print a - b}')
done
cpu[otlp]=$(awk -v a="$(cpu_secs "$otlp_pid")" -v b="${cpu[otlp]}" 'BEGIN {print a - b}')
requests_off=$(cat "$out"/off.*.txt | awk '/requests in/ {n += $1} END {print n}')
requests=$(cat "$out"/traced.*.txt | awk '/requests in/ {n += $1} END {print n}')
kill "$otlp_pid" && wait "$otlp_pid" 2>/dev/null || true
spans=$(awk '/^spans/ {print $2}' "$out/otlp.out")

PYTHONPATH="$root/bench" python3 - "$out" "$runs" "$(basename "$component")" "$conns" "$secs" "$requests" "${spans:-0}" \
  "$requests_off" "${cpu[off]}" "${cpu[traced]}" "${cpu[otlp]}" <<'PY'
import sys
from wrk_medians import medians
out, runs, comp, conns, secs, requests, spans, requests_off, cpu_off, cpu_traced, cpu_otlp = sys.argv[1:]
requests, requests_off = int(requests), int(requests_off)
us = lambda cpu, n: float(cpu) * 1e6 / max(n, 1)
runs = int(runs)
res = {n: medians([f"{out}/{n}.{i}.txt" for i in range(1, runs + 1)]) for n in ("off", "traced")}
print(f"{comp}, wrk -t2 -c{conns} -d{secs}s, {runs} alternating runs, medians:\n")
print("| Shoal | req/s | p50 | p99 | Shoal's CPU per request |")
print("|---|---|---|---|---|")
rows = (("off", "tracing off (default)", cpu_off, requests_off),
        ("traced", "every request traced, exported", cpu_traced, requests))
for name, label, cpu, n in rows:
    r = res[name]
    print(f"| {label} | {r[0]:,.0f} | {r[1]:.2f} ms | {r[2]:.2f} ms | {us(cpu, n):.1f} µs |")
cost = 1 - res['traced'][0] / res['off'][0]
cpu_cost = us(cpu_traced, requests) / us(cpu_off, requests_off) - 1
print(f"| **tracing cost** | **{cost:.1%}** | | | **+{cpu_cost:.1%}** |")
print(f"\nThe receiver took {int(spans):,} spans for {requests:,} traced requests"
      f" ({int(spans) / max(requests, 1):.2f} per request; one server, instantiate and"
      " handler span each, plus the warm-up request's), and spent"
      f" {us(cpu_otlp, requests):.1f} µs of CPU per traced request decoding them, on the same cores.")
PY
