#!/usr/bin/env bash
# Side-by-side HTTP benchmark: the same component served by Shoal and by `wasmtime serve` 48.0.8,
# loaded by the same wrk, alternating runs in one go. Prints a Markdown table of medians; then
# Shoal's HTTPS ingress (wrk over TLS, kept-alive connections) beside its plain HTTP, and
# HTTP/2 by h2load (h2c on the plain port, h2 over TLS, HTTP/1.1 for reference).
#
#   bench/http.sh [component.wasm] [runs] [seconds] [connections]
#   SHOAL_SPEC='reuse: {maxRequests: 10000}' bench/http.sh …   # extra spec fields for Shoal's app
#   SHOAL_BEFORE=/path/to/older/shoal bench/http.sh …          # also another build, in the same alternation
#   WASMTIME_ARGS='-Sp3 -Wcomponent-model-async' bench/http.sh examples/hello-py3/hello-py3.wasm
#                                                              # the peer's flags (default: -S cli)
#
# Needs: a release build (cargo build --release), wrk (apt-get install wrk), h2load
# (apt-get install nghttp2-client) and the peer
# (cargo install wasmtime-cli --version 48.0.8 --locked; ~14 min, never in CI).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
component=$(realpath "${1:-$root/examples/hello-c/hello.wasm}")
runs=${2:-5}
secs=${3:-5}
conns=${4:-8}
wasmtime=${WASMTIME:-$(command -v wasmtime || echo "$HOME/.cargo/bin/wasmtime")}
[ -x "$wasmtime" ] || { echo "install the peer: cargo install wasmtime-cli --version 48.0.8 --locked" >&2; exit 1; }
source "$root/bench/lib.sh"
command -v h2load >/dev/null || { echo "install h2load: apt-get install nghttp2-client" >&2; exit 1; }

# Shoal: one node, the component on /, limits high enough not to shed load; HTTPS beside HTTP.
SHOAL_UP_ARGS="${SHOAL_UP_ARGS:-} --https 127.0.0.1:0"
start_shoal
cat >"$out/app.yaml" <<YAML
apiVersion: shoal/v1alpha1
kind: App
metadata: {name: bench}
spec:
  component: $component
  routes: [{path: /}]
  limits: {concurrency: 10000, memory: 64Mi}
  ${SHOAL_SPEC:-}
YAML
"$shoal" apply -f "$out/app.yaml" >/dev/null
"$shoal" wait app bench --timeout 120s >/dev/null
shoal_pid=${pids[-1]}
main_https=$shoal_https

# Another build of Shoal, when asked for: same app, its own data dir and ports.
servers=(wasmtime shoal)
if [ -n "${SHOAL_BEFORE:-}" ]; then
  main_url=$shoal_url
  SHOAL_UP_ARGS=${SHOAL_UP_ARGS% --https 127.0.0.1:0} start_shoal_from "$SHOAL_BEFORE" before
  before_url=$shoal_url
  before_pid=${pids[-1]}
  SHOAL_SERVER=$shoal_api SHOAL_DATA_DIR=$out/before "$SHOAL_BEFORE" apply -f "$out/app.yaml" >/dev/null
  SHOAL_SERVER=$shoal_api SHOAL_DATA_DIR=$out/before "$SHOAL_BEFORE" wait app bench --timeout 120s >/dev/null
  shoal_url=$main_url
  servers=(wasmtime before shoal)
fi

# The peer, on a free port it picks itself.
# shellcheck disable=SC2086 # the flags are words
"$wasmtime" serve ${WASMTIME_ARGS:--S cli} --addr 127.0.0.1:0 "$component" >"$out/wt.out" 2>&1 &
pids+=($!)
until grep -qo 'http://[0-9.:]*' "$out/wt.out" 2>/dev/null; do sleep 0.1; done
wt_url=$(grep -o 'http://[0-9.:]*' "$out/wt.out" | head -1)

ca=$out/shoal/tls/ca.crt
curl -fsS "$shoal_url/" >/dev/null && curl -fsS "$wt_url/" >/dev/null
curl -fsS --cacert "$ca" "$main_https/" >/dev/null

url_of() { case $1 in wasmtime) echo "$wt_url" ;; before) echo "$before_url" ;; shoal) echo "$shoal_url" ;; tls) echo "$main_https" ;; esac; }
h2_of() { case $1 in h1) echo "--h1 $shoal_url/" ;; h2c) echo "$shoal_url/" ;; h2) echo "$main_https/" ;; esac; }
for i in $(seq 1 "$runs"); do
  for name in "${servers[@]}" tls; do
    wrk -t2 -c"$conns" -d"${secs}s" --latency "$(url_of "$name")/" >"$out/$name.$i.txt"
  done
  for proto in h1 h2c h2; do
    # shellcheck disable=SC2046 # the flags and URL are words
    h2load -t2 -c"$conns" -m1 -D"$secs" $(h2_of "$proto") >"$out/$proto.$i.txt"
  done
done
rss() { echo "$(($(rss_kib "$1") / 1024)) MiB"; }
rss_line="RSS after the runs: wasmtime serve $(rss "${pids[-1]}"), Shoal $(rss "$shoal_pid")"
[ -n "${SHOAL_BEFORE:-}" ] && rss_line="$rss_line, Shoal before $(rss "$before_pid")"

PYTHONPATH="$root/bench" python3 - "$out" "$runs" "$(basename "$component")" "$conns" "$secs" "${servers[@]}" <<'PY'
import os, re, sys
from wrk_medians import medians, h2load_medians
out, runs, comp, conns, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
servers = sys.argv[6:]
res = {}
for name in servers:
    files = [f"{out}/{name}.{i}.txt" for i in range(1, runs + 1)]
    for i, f in enumerate(files, 1):
        errs = re.search(r"Non-2xx or 3xx responses: (\d+)", open(f).read())
        if errs:
            print(f"warning: {name} run {i}: {errs.group(1)} non-2xx responses", file=sys.stderr)
    res[name] = medians(files)
print(f"{comp}, wrk -t2 -c{conns} -d{secs}s, {runs} alternating runs, medians:\n")
print(f"(`wasmtime serve {os.environ.get('WASMTIME_ARGS') or '-S cli'}`; Shoal: {os.environ.get('SHOAL_SPEC') or 'defaults'})\n")
print("| server | req/s | p50 | p99 |")
print("|---|---|---|---|")
labels = {"wasmtime": "`wasmtime serve` 48.0.8", "before": "Shoal (before)", "shoal": "Shoal"}
for name in servers:
    r = res[name]
    print(f"| {labels[name]} | {r[0]:,.0f} | {r[1]:.2f} ms | {r[2]:.2f} ms |")
w = res["wasmtime"]
for name in servers[1:]:
    s = res[name]
    print(f"| **{labels[name]} ÷ wasmtime** | **{s[0]/w[0]:.2f}×** | {s[1]/w[1]:.2f}× | {s[2]/w[2]:.2f}× |")
plain, tls = res["shoal"], medians([f"{out}/tls.{i}.txt" for i in range(1, runs + 1)])
print(f"\nShoal's HTTPS ingress, same wrk (TLS 1.3, kept-alive connections):\n")
print("| Shoal | req/s | p50 | p99 |")
print("|---|---|---|---|")
print(f"| plain HTTP/1.1 | {plain[0]:,.0f} | {plain[1]:.2f} ms | {plain[2]:.2f} ms |")
print(f"| HTTPS, HTTP/1.1 | {tls[0]:,.0f} | {tls[1]:.2f} ms | {tls[2]:.2f} ms |")
print(f"| **TLS cost** | **{1 - tls[0]/plain[0]:.1%}** | | |")
print(f"\nh2load -t2 -c{conns} -m1 -D{secs}, medians:\n")
print("| Shoal | req/s | mean |")
print("|---|---|---|")
names = {"h1": "HTTP/1.1, plain", "h2c": "HTTP/2, plain (h2c)", "h2": "HTTP/2 over TLS"}
for proto in ("h1", "h2c", "h2"):
    r = h2load_medians([f"{out}/{proto}.{i}.txt" for i in range(1, runs + 1)])
    print(f"| {names[proto]} | {r[0]:,.0f} | {r[1]:.2f} ms |")
PY
echo "$rss_line"
