# Helpers for run.sh: processes we start (and stop by PID), their CPU and memory
# from /proc, machine load, and readiness checks. Sourced, not executed.

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# PID and all its descendants (nginx master + workers).
tree_pids() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { par[$1] = $2 }
        END {
            if (!(root in par)) exit
            keep[root] = 1; changed = 1
            while (changed) { changed = 0
                for (p in par) if (!(p in keep) && (par[p] in keep)) { keep[p] = 1; changed = 1 } }
            for (p in keep) print p
        }'
}

# utime+stime (clock ticks) over a PID tree; the kernel sums every thread.
cpu_ticks() {
    local total=0 p s
    for p in $(tree_pids "$1"); do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=${s##*) }                     # drop "pid (comm) ": comm may contain spaces
        # shellcheck disable=SC2086
        set -- $s                       # $12 = utime, $13 = stime
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# Sum of a /proc/PID/status field (kB) over the tree: VmHWM, VmRSS.
status_kb() {
    local total=0 p v
    for p in $(tree_pids "$1"); do
        v=$(awk -v k="$2:" '$1==k {print $2}' "/proc/$p/status" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# Proportional set size (kB) over the tree: shared pages split, counted once overall.
pss_kb() {
    local total=0 p v
    for p in $(tree_pids "$1"); do
        v=$(awk '$1=="Pss:" {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# Every 0.5 s until killed: "rss_kb pss_kb" of a PID tree.
mem_sampler() {
    while :; do
        printf '%s %s\n' "$(status_kb "$1" VmRSS)" "$(pss_kb "$1")" >>"$2"
        sleep 0.5
    done
}

# System-wide "idle+iowait total steal" ticks from /proc/stat.
sys_cpu() { awk '$1=="cpu" { t=0; for (i=2;i<=9;i++) t+=$i; print $5+$6, t, $9; exit }' /proc/stat; }

machine_busy_pct() {   # whole-machine non-idle % over 2 s
    local i0 s0 i1 s1
    read -r i0 s0 _ < <(sys_cpu); sleep 2; read -r i1 s1 _ < <(sys_cpu)
    awk -v a="$i0" -v b="$i1" -v c="$s0" -v d="$s1" 'BEGIN { printf "%.0f", (d > c) ? 100 - 100 * (b - a) / (d - c) : 0 }'
}

# Connections the backend ever accepted (nginx stub_status).
be_accepts() { curl -s --max-time 1 "http://127.0.0.1:18089/__stub_status" | awk 'NR==3 {print $1}'; }

port_busy() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

declare -A ROOTPID=()   # component -> PID we started
STARTED=()              # components in start order

start_comp() {   # name port cmd...
    local name=$1 port=$2; shift 2
    port_busy "$port" && die "port $port is already in use (not ours); refusing to benchmark it"
    "$@" >>"$RESULTS/$name.log" 2>&1 &
    ROOTPID[$name]=$!
    STARTED+=("$name")
    log "started $name (pid ${ROOTPID[$name]}) on 127.0.0.1:$port"
}

stop_comp() {
    local name=$1 pid=${ROOTPID[$1]:-} pids p i alive
    [ -n "$pid" ] || return 0
    pids=$(tree_pids "$pid")
    [ -n "$pids" ] || { unset "ROOTPID[$name]"; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 80; i++)); do
        alive=0
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in $pids; do
        kill -0 "$p" 2>/dev/null && { log "force-stopping $name pid $p"; kill -KILL "$p" 2>/dev/null; }
    done
    wait "$pid" 2>/dev/null
    unset "ROOTPID[$name]"
}

# Waits until `curl URL` answers with the expected body (or any body when $4 = any).
wait_body() {   # name url timeout_s [any] [curl args...]
    local name=$1 url=$2 t=$3 mode=${4:-exact} i body pid
    shift 4 2>/dev/null || shift $#
    for ((i = 0; i < t * 10; i++)); do
        pid=${ROOTPID[$name]:-}
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited; last lines of $RESULTS/$name.log:"; tail -5 "$RESULTS/$name.log" >&2
            return 1
        fi
        if body=$(curl -sS --max-time 1 "$@" "$url" 2>/dev/null); then
            if [ "$mode" = any ] || [ "$body" = "$EXPECT_BODY" ]; then return 0; fi
            log "$name answered $url with an unexpected body: ${body:0:160}"
            return 1
        fi
        sleep 0.1
    done
    log "$name did not answer $url within ${t}s"
    return 1
}

# A bounded load-generator run: `timeout` guards the tool's own -d/-D.
bounded() {   # seconds cmd...
    local s=$1; shift
    timeout -k 5 "$s" "$@"
}
