# Shared by the bench scripts: a scratch dir cleaned up on exit, and a release `shoal up` in it.
# Source after setting `root`; then call start_shoal.

shoal=$root/target/release/shoal
[ -x "$shoal" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk" >&2; exit 1; }

out=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT

# Resident memory of process $1, in KiB.
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# Starts `shoal up` from binary $1 (plus any flags in $SHOAL_UP_ARGS) on free ports with its
# data in $out/$2 (log in $out/$2.err); sets `shoal_api`, `shoal_url` (the ingress),
# `shoal_https` and `shoal_metrics` (where it serves Prometheus metrics), as it printed them.
start_shoal_from() {
  # shellcheck disable=SC2086 # SHOAL_UP_ARGS: extra flags, word-split on purpose
  "$1" up --api 127.0.0.1:0 --http 127.0.0.1:0 --data-dir "$out/$2" ${SHOAL_UP_ARGS:-} >"$out/$2.out" 2>"$out/$2.err" &
  pids+=($!)
  until grep -q 'data:' "$out/$2.out" 2>/dev/null; do sleep 0.1; done
  shoal_api=$(awk '/API:/ {print $2}' "$out/$2.out")
  shoal_url=$(awk '/ingress:/ {print $2}' "$out/$2.out")
  shoal_https=$(awk '$1 == "https:" {print $2}' "$out/$2.out")
  shoal_metrics=$(awk '$1 == "metrics:" {print $2}' "$out/$2.out")
}

# Starts this build's `shoal up` in $out/shoal and exports SHOAL_SERVER and SHOAL_DATA_DIR for
# the CLI; `shoal_url` is its ingress.
start_shoal() {
  start_shoal_from "$shoal" shoal
  export SHOAL_SERVER=$shoal_api SHOAL_DATA_DIR=$out/shoal
}
