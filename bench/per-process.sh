#!/usr/bin/env bash
# The one-process-per-app model (SpinKube, runwasi): K `wasmtime serve` processes of the C hello
# component, each answering one request, then their memory per app: RSS, and PSS (shared pages
# such as the binary's text counted once across the K processes). Compare with `density.sh`'s
# RSS per app of Shoal.
#
#   bench/per-process.sh [K=50]
#
# Needs the peer: cargo install wasmtime-cli --version 48.0.8 --locked (~14 min, never in CI).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
k=${1:-50}
wasmtime=${WASMTIME:-$(command -v wasmtime || echo "$HOME/.cargo/bin/wasmtime")}
[ -x "$wasmtime" ] || { echo "install the peer: cargo install wasmtime-cli --version 48.0.8 --locked" >&2; exit 1; }
out=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT

for i in $(seq 1 "$k"); do
  "$wasmtime" serve --addr 127.0.0.1:0 "$root/examples/hello-c/hello.wasm" >"$out/$i.out" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$k"); do
  until grep -q 'Serving HTTP on' "$out/$i.out" 2>/dev/null; do sleep 0.05; done
  url=$(grep -o 'http://[0-9.:]*' "$out/$i.out" | head -1)
  curl -sf "$url/" >/dev/null
done
python3 - "$k" "${pids[@]}" <<'PY'
import sys
k, pids = int(sys.argv[1]), sys.argv[2:]
def field(path, name):
    for line in open(path):
        if line.startswith(name + ":"):
            return int(line.split()[1])
rss = [field(f"/proc/{p}/status", "VmRSS") for p in pids]
pss = [field(f"/proc/{p}/smaps_rollup", "Pss") for p in pids]
print(f"| {k} × wasmtime serve | RSS per app {sum(rss) / k / 1024:.1f} MiB | PSS per app {sum(pss) / k / 1024:.1f} MiB | total RSS {sum(rss) / 1024:,.0f} MiB |")
PY
