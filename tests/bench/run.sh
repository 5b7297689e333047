#!/usr/bin/env bash
# Reverse-proxy benchmark on loopback: `meshgate gateway` against nginx (proxy_pass,
# upstream keep-alive) and HAProxy (http-reuse always), all in front of one fixed
# nginx backend answering a 32-byte JSON body. See tests/bench/README.md.
#
#   tests/bench/run.sh                 # 3 rounds x 8 s per target and mode, plus extras
#   SMOKE=1 tests/bench/run.sh         # ~1 s per run, debug build, no install (CI)
#
# Knobs (environment):
#   ROUNDS=3 DURATION=8 (s per run) WARMUP=2 (s per target and mode, not measured)
#   TARGETS="direct nginx haproxy meshgate"   MODES="h1 h2c grpc fixed"
#   CONNS=32 THREADS=1 (wrk)   H2_CLIENTS=8 H2_STREAMS=4 (h2load: 32 streams in flight)
#   RATE=1000 RATE_CLIENTS=10 (fixed-rate mode, HTTP/1.1 via h2load --rps)
#   EXTRAS="reload sidecar conns wasm route"   (any subset; "" for none)
#   PROFILE=release (cargo profile) or MESHGATE_BIN=/path/to/meshgate (no build)
#   BASELINE_BIN=/path/to/other/meshgate   adds target "baseline": the same gateway
#       config served by another build, measured in the same interleaved rounds
#   WORKERS=  (meshgate --workers; default: its own default, one per core)
#   INSTALL=1 (apt-get the tools when missing)   RESULTS=tests/bench/results/<stamp>
#   QUIET_MAX_BUSY=25 QUIET_WAIT=0 (s to wait for other tenants' load to calm down)
# Every load run is bounded by its own duration and by `timeout`; every process this
# script starts is stopped by PID on exit. Traffic never leaves 127.0.0.1.
set -uo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH/../.." && pwd)"
# shellcheck source=lib.sh
. "$BENCH/lib.sh"

SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
    ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-1} WARMUP=${WARMUP:-0} PROFILE=${PROFILE:-dev}
    INSTALL=${INSTALL:-0} EXTRAS=${EXTRAS-"reload sidecar conns wasm"} CONN_COUNT=${CONN_COUNT:-200}
fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
BASELINE_BIN=${BASELINE_BIN:-}
TARGETS=${TARGETS:-"direct nginx haproxy meshgate${BASELINE_BIN:+ baseline}"}
MODES=${MODES:-"h1 h2c grpc fixed"}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
H2_CLIENTS=${H2_CLIENTS:-8}
H2_STREAMS=${H2_STREAMS:-4}
RATE=${RATE:-1000}
RATE_CLIENTS=${RATE_CLIENTS:-10}
EXTRAS=${EXTRAS-"reload sidecar conns wasm route"}
CONN_COUNT=${CONN_COUNT:-1000}
PROFILE=${PROFILE:-release}
WORKERS=${WORKERS:-}
INSTALL=${INSTALL:-1}
QUIET_MAX_BUSY=${QUIET_MAX_BUSY:-25}
QUIET_WAIT=${QUIET_WAIT:-0}
RESULTS=${RESULTS:-"$BENCH/results/$(date +%Y%m%d-%H%M%S)"}
PY=$(command -v python3 || echo /usr/bin/python3)
EXPECT_BODY='{"value":423.15,"unit":"Kelvin"}'
GRPC_PATH=/bench.Temperature/Get
CLK_TCK=$(getconf CLK_TCK)
for v in ROUNDS DURATION WARMUP CONNS RATE RATE_CLIENTS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
[ "$RATE" -ge "$RATE_CLIENTS" ] || die "RATE must be at least RATE_CLIENTS"

declare -A H1PORT=([direct]=18080 [nginx]=18101 [haproxy]=18102 [meshgate]=18110 [baseline]=18140)
declare -A H2PORT=([direct]=18081 [nginx]=18201 [haproxy]=18202 [meshgate]=18110 [baseline]=18140)
declare -A COMP=([direct]=backend [nginx]=nginx [haproxy]=haproxy [meshgate]=meshgate [baseline]=baseline)

SAMPLER_PID=""
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_comp "${STARTED[$i]}"; done
    [ ${#STARTED[@]} -gt 0 ] && log "stopped: ${STARTED[*]}"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$RESULTS" "$RESULTS/run" "$BENCH/results"
exec 9>"$BENCH/results/.lock"
flock -n 9 || die "another tests/bench/run.sh is running"
SKIPPED=()   # what could not run, and why (goes into the summary)
skip() { SKIPPED+=("$*"); log "SKIP: $*"; }

# ------------------------------------------------------------------ tools ---
. "$BENCH/setup.sh"
ensure_tools
build_meshgate || die "cannot build meshgate"
write_configs

{
    echo "date: $(date -Is)"
    echo "host: $(uname -srm)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
    echo "mem: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "nginx: $(nginx -v 2>&1 | sed 's/.*version: //')"
    echo "haproxy: $(haproxy -v 2>/dev/null | head -1 | awk '{print $3}')"
    echo "wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    echo "h2load: $(h2load --version 2>/dev/null | head -1 | awk '{print $NF}')"
    echo "meshgate: $MESHGATE_BIN (profile $PROFILE, commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet 2>/dev/null || echo +dirty))"
    echo "meshgate_args: ${MESHGATE_ARGS[*]}"
    [ -n "$BASELINE_BIN" ] && echo "baseline: $BASELINE_BIN"
    echo "params: rounds=$ROUNDS duration=${DURATION}s warmup=${WARMUP}s wrk=-t$THREADS/-c$CONNS h2load=-c$H2_CLIENTS/-m$H2_STREAMS fixed=${RATE}rps/$RATE_CLIENTS conns"
    echo "smoke: $SMOKE"
    echo "loadavg_before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/env.txt"

waited=0
while :; do
    busy=$(machine_busy_pct); waited=$((waited + 2))
    [ "$busy" -le "$QUIET_MAX_BUSY" ] && break
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
        log "WARNING: the machine is ${busy}% busy before the benchmark (other processes): numbers will be noisy"
        break
    fi
    sleep 3; waited=$((waited + 3))
done
echo "machine_busy_before_pct: $busy" >>"$RESULTS/env.txt"
log "results -> $RESULTS (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"

# ------------------------------------------------------------------ start ---
. "$BENCH/measure.sh"
start_all
check_bodies || exit 1

# ---------------------------------------------------------------- measure ---
run_rounds
collect_memory
# shellcheck source=extras.sh
. "$BENCH/extras.sh"
for x in $EXTRAS; do
    case $x in
        reload) extra_reload ;;
        sidecar) extra_sidecar ;;
        conns) extra_conns ;;
        wasm) extra_wasm ;;
        route) extra_route ;;
        *) log "unknown extra '$x'" ;;
    esac
done
echo "loadavg_after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/env.txt"
for s in "${SKIPPED[@]}"; do echo "skipped: $s"; done >>"$RESULTS/env.txt"

"$PY" "$BENCH/summarize.py" "$RESULTS" | tee "$RESULTS/summary.txt"
if [ "$BROKEN" != 0 ]; then
    log "FAILED: meshgate answered with wrong bodies or errors (see above)"
    exit 1
fi
