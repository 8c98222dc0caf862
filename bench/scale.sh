#!/usr/bin/env bash
# Scale to zero: the first request to an idle app (activation) beside a warm request to it, for
# the C and Python hello apps, and what an idle app gives back; beside the nearest peer, a
# `wasmtime serve` process started for the request (from precompiled code).
#
#   bench/scale.sh [cycles]
#
# Needs: a release build (cargo build --release), and the peer (cargo install wasmtime-cli
# --version 48.0.8 --locked) for its line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cycles=${1:-30}
wasmtime=${WASMTIME:-$(command -v wasmtime || echo "$HOME/.cargo/bin/wasmtime")}
source "$root/bench/lib.sh"

start_shoal
for app in "hello-c examples/hello-c/hello.wasm /c" "hello-py examples/hello-py/hello-py.wasm /py"; do
  set -- $app
  cat >"$out/$1.yaml" <<YAML
apiVersion: shoal/v1alpha1
kind: App
metadata: {name: $1}
spec:
  component: $root/$2
  routes: [{path: $3}]
  scale: {idleAfter: 1s}
YAML
  "$shoal" apply -f "$out/$1.yaml" >/dev/null
  "$shoal" wait app "$1" --timeout 300s >/dev/null
done

# Measure a node that did not compile anything (compilation leaves heap behind): restart it on
# the same data dir, where it loads both apps from the compile cache.
kill "${pids[0]}" && wait "${pids[0]}" || true
start_shoal
for app in hello-c hello-py; do "$shoal" wait app "$app" --timeout 300s >/dev/null; done

python3 "$root/bench/activation.py" "$SHOAL_SERVER" "$(cat "$SHOAL_DATA_DIR/token")" "$shoal_url" "${pids[-1]}" "$cycles" \
  hello-c=/c hello-py=/py

if [ -x "$wasmtime" ]; then
  "$wasmtime" compile "$root/examples/hello-c/hello.wasm" -o "$out/hello.cwasm"
  python3 - "$wasmtime" "$out/hello.cwasm" "$cycles" <<'PY'
import socket, statistics, subprocess, sys, time, http.client
wasmtime, cwasm, cycles = sys.argv[1], sys.argv[2], int(sys.argv[3])
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
times = []
for _ in range(cycles):
    port = free_port()
    start = time.perf_counter()
    p = subprocess.Popen([wasmtime, "serve", "--allow-precompiled", "-S", "cli", "--addr", f"127.0.0.1:{port}", cwasm],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/"); r = c.getresponse(); r.read(); c.close()
            if r.status == 200:
                break
        except OSError:
            time.sleep(0.0005)
    times.append((time.perf_counter() - start) * 1000)
    p.kill(); p.wait()
times.sort()
print(f"| wasmtime serve, process started for the request (hello-c, precompiled) | {statistics.median(times):.2f} | {times[int(len(times) * 0.99) - 1]:.2f} |")
PY
fi
