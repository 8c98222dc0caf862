#!/usr/bin/env bash
# From a registry to serving: `shoal apply` of an App whose component is `oci://…` on a real
# registry on loopback (Debian's docker-registry), until its first 200, beside the apply of the
# same bytes as a local file. Each round makes a new variant of the C example (a custom
# section appended: other bytes, same behaviour), so "cold" is a first pull and a first
# compile, as is "local, new"; "warm" applies the same reference again as another App (only
# the tag is resolved: the servers hold the blob, and the compiled code is cached), as "local,
# again" uploads nothing.
#
#   bench/oci.sh [rounds]
#
# Needs: a release build, docker-registry, python3. Times are wall clock from the start of
# `shoal apply` to the first 200 (polled every 5 ms).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-7}
source "$root/bench/lib.sh"
command -v docker-registry >/dev/null || { echo "install docker-registry: apt-get install docker-registry" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
registry=127.0.0.1:$port
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
  "$out/registry" "$registry" >"$out/registry.yml"
docker-registry serve "$out/registry.yml" >"$out/registry.log" 2>&1 &
pids+=($!)
until curl -fs "http://$registry/v2/" >/dev/null; do sleep 0.05; done
start_shoal

# A variant of the C example: a custom section named shoal-bench holding $1.
variant() {
  python3 - "$root/examples/hello-c/hello.wasm" "$2" "$1" <<'PY'
import sys
src, dst, tag = sys.argv[1], sys.argv[2], sys.argv[3].encode()
def leb(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out
name = b"shoal-bench"
body = leb(len(name)) + name + tag
open(dst, "wb").write(open(src, "rb").read() + b"\0" + leb(len(body)) + body)
PY
}

# Milliseconds from applying App $1 with component $2 to its first 200.
time_apply() {
  local start end
  start=$(date +%s%N)
  printf 'apiVersion: shoal/v1alpha1\nkind: App\nmetadata:\n  name: %s\nspec:\n  component: %s\n  routes:\n    - path: /%s\n' "$1" "$2" "$1" |
    "$shoal" apply -f - >/dev/null
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$shoal_url/$1")" = 200 ]; do sleep 0.005; done
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}

: >"$out/times"
for i in $(seq 1 "$rounds"); do
  variant "local-$i" "$out/local-$i.wasm"
  variant "oci-$i" "$out/oci-$i.wasm"
  "$shoal" push "$out/oci-$i.wasm" "oci://$registry/bench/hello:$i" >/dev/null
  echo "local-new $(time_apply "local-$i" "$out/local-$i.wasm")" >>"$out/times"
  echo "local-again $(time_apply "local-again-$i" "$out/local-$i.wasm")" >>"$out/times"
  echo "oci-cold $(time_apply "oci-$i" "oci://$registry/bench/hello:$i")" >>"$out/times"
  echo "oci-warm $(time_apply "oci-again-$i" "oci://$registry/bench/hello:$i")" >>"$out/times"
done

python3 - "$out/times" "$rounds" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    rows.setdefault(k, []).append(int(v))
labels = {"local-new": "local file, new bytes (upload + compile)",
          "local-again": "local file, same bytes again (no upload; compiled code cached)",
          "oci-cold": "oci:// tag, first pull (manifest + blob + compile)",
          "oci-warm": "oci:// tag again (manifest only; blob held, code cached)"}
print(f"apply → first 200, C example, {sys.argv[2]} rounds, median (min–max):\n")
print("| component | ms |")
print("|---|---|")
for k in ["local-new", "local-again", "oci-cold", "oci-warm"]:
    v = rows[k]
    print(f"| {labels[k]} | {statistics.median(v):.0f} ({min(v)}–{max(v)}) |")
PY
