#!/usr/bin/env bash
# Instructions per proxied HTTP/1.1 request, counted by valgrind's callgrind: unlike
# req/s or CPU time this does not move with other load on the machine, so it tracks a
# change to the request path across commits.
#
#   tests/bench/callgrind.sh [MESHGATE_BIN] [REQUESTS]     (default: the release build, 10000)
#
# Starts the benchmark's nginx backend and `meshgate gateway` (its config from run.sh)
# under callgrind with instrumentation off, warms the upstream pool with 2,000 requests,
# counts the next REQUESTS (h2load --h1 -c8), and prints instructions per request and the
# functions with the most instructions. Loopback only; everything started is stopped.
set -uo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH/../.." && pwd)"
. "$BENCH/lib.sh"
BIN=${1:-"$REPO/target/release/meshgate"}
N=${2:-10000}
RESULTS="$BENCH/results/callgrind-$(date +%Y%m%d-%H%M%S)"
EXPECT_BODY='{"value":423.15,"unit":"Kelvin"}'
for b in valgrind callgrind_control callgrind_annotate nginx h2load curl; do
    command -v "$b" >/dev/null || die "missing $b"
done
[ -x "$BIN" ] || die "no meshgate binary at $BIN (cargo build --release -p meshgate)"
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -gt 0 ] || die "REQUESTS must be a positive number"
mkdir -p "$RESULTS/run/backend/tmp" "$BENCH/results"
exec 9>"$BENCH/results/.lock"
flock -n 9 || die "another benchmark is running"

cleanup() {
    local i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_comp "${STARTED[$i]}"; done
}
trap cleanup EXIT

WORKERS=
. "$BENCH/setup.sh"
gateway_yaml >"$RESULTS/config.yaml"
start_comp backend 18080 nginx -e stderr -p "$RESULTS/run/backend/" \
    -c "$BENCH/conf/backend-nginx.conf" -g 'daemon off;'
wait_body backend http://127.0.0.1:18080/ 10 || die "the backend did not start"
start_comp meshgate 18190 valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$RESULTS/callgrind.out.%p" \
    "$BIN" gateway --config "$RESULTS/config.yaml" --bind 127.0.0.1 --port-map 80=18190 \
    --admin 127.0.0.1:18191 --health 127.0.0.1:18192 --metrics 127.0.0.1:18193 \
    --access-log-format off
wait_body meshgate http://127.0.0.1:18190/ 60 || die "meshgate did not answer under valgrind"
pid=${ROOTPID[meshgate]}
bounded 120 h2load --h1 -n 2000 -c 8 http://127.0.0.1:18190/ >/dev/null
callgrind_control -i on "$pid" >/dev/null 2>&1 && callgrind_control -z "$pid" >/dev/null 2>&1
bounded 600 h2load --h1 -n "$N" -c 8 http://127.0.0.1:18190/ >"$RESULTS/h2load.out" 2>&1
callgrind_control -d "$pid" >/dev/null 2>&1
callgrind_control -i off "$pid" >/dev/null 2>&1
grep -q "^status codes: $N 2xx" "$RESULTS/h2load.out" || { cat "$RESULTS/h2load.out" >&2; die "not every request succeeded"; }
dump=$(ls "$RESULTS"/callgrind.out.*.1 2>/dev/null | head -1)
[ -n "$dump" ] || die "callgrind wrote no dump"
callgrind_annotate "$dump" >"$RESULTS/annotate.txt" 2>/dev/null
total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }' "$RESULTS/annotate.txt")
echo "instructions per request: $((total / N)) ($total over $N requests; $BIN)"
echo "top functions (self):"
sed -n '/file:function/,$p' "$RESULTS/annotate.txt" | sed -n '3,22p' | sed 's/ \[.*//'
echo "full profile: callgrind_annotate --inclusive=yes $dump"
