#!/usr/bin/env bash
# Spin's host APIs per request: the Spin Python examples (Spin's Python SDK: spin-sdk 3.4.1,
# WASI 0.2; spin-sdk 5.0.0, WASI 0.3) and the Spin JavaScript example served by Shoal, beside
# the plain-WASI examples of the same languages and WASI versions on the same node, loaded by
# the same wrk in alternating runs. Its peer would be `wasmtime serve`, but a component built by Spin's
# SDKs does not link there (it imports fermyon:spin/* and Spin's wasi:keyvalue and wasi:config
# drafts), so the baselines are the plain Python components (examples/hello-py, hello-py3).
#
#   bench/spin.sh [runs] [seconds] [connections]
#
# Paths: hello-py `/py` (no host API); spin-py `/spin-py/headers` (no host API: the same
# bigger component, so the gap to `/py` is the component, not Spin), `/spin-py/` (one
# variables.get), `/spin-py/count` (key-value get + set, each write committed to disk) and
# `/spin-py/sql/default` (SQLite: open, create-if-missing, insert, count; one commit); then the
# same for WASI 0.3: hello-py3 `/py3`, spin-py3 `/spin-py3/`, `/spin-py3/count`,
# `/spin-py3/sql/default` (Spin's async interfaces); and JavaScript: hello-js `/js`
# (componentize-js), spin-js `/spin-js/headers`, `/spin-js/`, `/spin-js/count` (Spin's build tools).
# Needs: a release build and wrk.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
secs=${2:-5}
conns=${3:-8}
source "$root/bench/lib.sh"

start_shoal
"$shoal" apply -f "$root/examples/hello-py/app.yaml" -f "$root/examples/spin-py" \
  -f "$root/examples/hello-py3/app.yaml" -f "$root/examples/spin-py3" \
  -f "$root/examples/hello-js/app.yaml" -f "$root/examples/spin-js" >/dev/null 2>&1
for app in hello-py spin-py hello-py3 spin-py3 hello-js spin-js; do
  "$shoal" wait app "$app" --timeout 300s >/dev/null
done
shoal_pid=${pids[-1]}

paths=(/py /spin-py/headers /spin-py/ /spin-py/count /spin-py/sql/default
  /py3 /spin-py3/ /spin-py3/count /spin-py3/sql/default
  /js /spin-js/headers /spin-js/ /spin-js/count)
for p in "${paths[@]}"; do curl -fsS "$shoal_url$p" >/dev/null; done
for i in $(seq 1 "$runs"); do
  for j in "${!paths[@]}"; do
    wrk -t2 -c"$conns" -d"${secs}s" --latency "$shoal_url${paths[$j]}" >"$out/$j.$i.txt"
  done
done

PYTHONPATH="$root/bench" python3 - "$out" "$runs" "$conns" "$secs" "${paths[@]}" <<'PY'
import re, sys
from wrk_medians import medians
out, runs, conns, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
paths = sys.argv[5:]
labels = {"/py": "plain WASI Python (hello-py)", "/spin-py/headers": "Spin Python, no host API",
          "/spin-py/": "Spin Python, one variables.get",
          "/spin-py/count": "Spin Python, key-value get + set",
          "/spin-py/sql/default": "Spin Python, SQLite create + insert + count",
          "/py3": "plain WASI 0.3 Python (hello-py3)",
          "/spin-py3/": "Spin 4 Python, one variables.get",
          "/spin-py3/count": "Spin 4 Python, key-value get + set",
          "/spin-py3/sql/default": "Spin 4 Python, SQLite create + insert + count",
          "/js": "plain WASI JavaScript (hello-js)",
          "/spin-js/headers": "Spin JavaScript, no host API",
          "/spin-js/": "Spin JavaScript, one variables.get",
          "/spin-js/count": "Spin JavaScript, key-value get + set"}
res = []
for j, p in enumerate(paths):
    files = [f"{out}/{j}.{i}.txt" for i in range(1, runs + 1)]
    for i, f in enumerate(files, 1):
        errs = re.search(r"Non-2xx or 3xx responses: (\d+)", open(f).read())
        if errs:
            print(f"warning: {p} run {i}: {errs.group(1)} non-2xx responses", file=sys.stderr)
    res.append(medians(files))
print(f"Shoal, wrk -t2 -c{conns} -d{secs}s, {runs} alternating runs, medians:\n")
print("| app, path | req/s | p50 | p99 | time per request vs the row above it |")
print("|---|---|---|---|---|")
for j, (p, r) in enumerate(zip(paths, res)):
    # Two cores saturated: the extra time per request is the difference of 2 s / rate.
    extra = "" if p in ("/py", "/py3", "/js") else f"{(2 / r[0] - 2 / res[j - 1][0]) * 1e3:+.2f} ms"
    print(f"| {labels[p]} `{p}` | {r[0]:,.0f} | {r[1]:.2f} ms | {r[2]:.2f} ms | {extra} |")
PY
echo "RSS after the runs: Shoal $(($(rss_kib "$shoal_pid") / 1024)) MiB"
