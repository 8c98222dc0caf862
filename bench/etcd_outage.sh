#!/usr/bin/env bash
# etcd stopped for 60 s under a cluster serving an app on two nodes: every request keeps being
# answered, writes fail with a clear error, and after etcd returns an update rolls out without
# restarting anything. Prints the counts and the lines that show it.
#
#   bench/etcd_outage.sh [seconds]        # default 60
#
# Needs: a build (cargo build --release, or debug) and etcd (apt-get install etcd-server).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
S=$root/target/release/shoal
[ -x "$S" ] || S=$root/target/debug/shoal
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client=$(free_port) peer=$(free_port)
start_etcd() {
  etcd --data-dir "$dir/etcd" --name o \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "o=http://127.0.0.1:$peer" >>"$dir/etcd.log" 2>&1 &
  etcd_pid=$!
  pids+=("$etcd_pid")
}
wait_for() { until grep -q "$2" "$1" 2>/dev/null; do sleep 0.1; done; awk -v k="$2" '$1 == k {print $2}' "$1"; }
start_etcd
"$S" server --store "etcd://127.0.0.1:$client" --api 127.0.0.1:0 --data-dir "$dir/s" >"$dir/s.out" 2>/dev/null &
pids+=($!)
api=$(wait_for "$dir/s.out" API:)
hosts=()
for n in n1 n2; do
  SHOAL_SERVER=$api SHOAL_CA=$dir/s/tls/ca.crt SHOAL_JOIN_TOKEN=$(cat "$dir/s/join-token") "$S" node --name $n --http 127.0.0.1:0 \
    --data-dir "$dir/$n" >"$dir/$n.out" 2>/dev/null &
  pids+=($!)
  hosts+=("$(wait_for "$dir/$n.out" ingress:)")
done
export SHOAL_SERVER=$api SHOAL_DATA_DIR=$dir/s
app() { printf 'apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {name: hello}\nspec:\n  component: %s\n  routes: [{path: /hello}]\n  placement: {replicas: all}\n' "$1"; }
until [ "$("$S" get nodes | grep -c ' Ready ')" = 2 ]; do sleep 0.2; done
app "$root/examples/hello-c/hello.wasm" | "$S" apply -f - >/dev/null
"$S" wait app hello >/dev/null
kill -9 "$etcd_pid"
wait "$etcd_pid" 2>/dev/null || true
ok=0 bad=0 end=$((SECONDS + secs))
while [ $SECONDS -lt $end ]; do
  for h in "${hosts[@]}"; do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$h/hello")" = 200 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
  done
  sleep 0.2
done
echo "etcd down for ${secs}s: $ok requests answered 200, $bad not"
echo "an apply meanwhile: $(app "$root/tests/fixtures/hello-v2.wasm" | "$S" apply -f - 2>&1 || true)"
start_etcd
back=$SECONDS
until app "$root/tests/fixtures/hello-v2.wasm" | "$S" apply -f - 2>/dev/null; do sleep 0.2; done
echo "etcd restarted; the update was accepted after $((SECONDS - back))s"
"$S" rollout status app hello --timeout 60s
for h in "${hosts[@]}"; do echo "$h: $(curl -s "$h/hello")"; done
