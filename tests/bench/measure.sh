# Sourced by run.sh: start the backend and the targets, check what they answer, then
# the interleaved rounds (one bounded load run per round, mode and target, the target
# order rotated every round) with CPU, memory and machine-load accounting per run.

BROKEN=0
declare -A DISABLED=()   # "target/mode" that answered wrongly (peers only)

start_all() {
    local p
    for p in 18081 18089; do port_busy "$p" && die "port $p is already in use (not ours)"; done
    start_comp backend 18080 nginx -e stderr -p "$RESULTS/run/backend/" \
        -c "$BENCH/conf/backend-nginx.conf" -g 'daemon off;'
    wait_body backend http://127.0.0.1:18080/ 10 || die "the backend did not start"
    for t in "${TLIST[@]}"; do
        case $t in
            nginx)
                port_busy 18201 && die "port 18201 is already in use (not ours)"
                start_comp nginx 18101 nginx -e stderr -p "$RESULTS/run/nginx/" \
                    -c "$BENCH/conf/nginx-proxy.conf" -g 'daemon off;' ;;
            haproxy)
                port_busy 18202 && die "port 18202 is already in use (not ours)"
                start_comp haproxy 18102 haproxy -db -f "$BENCH/conf/haproxy.cfg" ;;
            meshgate)
                for p in 18111 18112 18113; do port_busy "$p" && die "port $p is already in use (not ours)"; done
                start_comp meshgate 18110 "$MESHGATE_BIN" "${MESHGATE_ARGS[@]}" ;;
            baseline)
                for p in 18141 18142 18143; do port_busy "$p" && die "port $p is already in use (not ours)"; done
                start_comp baseline 18140 "$BASELINE_BIN" "${BASELINE_ARGS[@]}" ;;
        esac
    done
}

# Every target must answer every mode with the backend's body, byte for byte. h2c is
# checked with nghttp (curl 7.88 reports an error on a server's RST_STREAM(NO_ERROR)
# after a complete response, which nginx sends for POSTs it answered unread).
check_bodies() {
    local t m url body ok
    local grpc=(-d "$RESULTS/run/grpc-message.bin" -H 'content-type: application/grpc' -H 'te: trailers')
    for t in "${TLIST[@]}"; do
        wait_body "${COMP[$t]}" "http://127.0.0.1:${H1PORT[$t]}/" 30 || {
            [ "$t" = meshgate ] && { BROKEN=1; log "meshgate is broken: no correct HTTP/1.1 answer"; return 1; }
            DISABLED[$t/h1]=1; DISABLED[$t/fixed]=1; skip "$t/h1: wrong answer from the peer"; }
        for m in "${MLIST[@]}"; do
            case $m in
                h2c) url="http://127.0.0.1:${H2PORT[$t]}/"
                    body=$(bounded 5 nghttp "$url" 2>&1) ;;
                grpc) url="http://127.0.0.1:${H2PORT[$t]}$GRPC_PATH"
                    body=$(bounded 5 nghttp "${grpc[@]}" "$url" 2>&1) ;;
                *) continue ;;
            esac
            ok=0; [ "$body" = "$EXPECT_BODY" ] && ok=1
            if [ $ok = 0 ]; then
                log "$t answered $m ($url) with: ${body:0:200}"
                if [ "$t" = meshgate ]; then BROKEN=1; return 1; fi
                DISABLED[$t/$m]=1
                skip "$t/$m: wrong answer from the peer"
            fi
        done
    done
    log "every target answers every mode with the backend's body"
}

# `times` output (children user+sys, second line) -> seconds
times_secs() {
    awk 'NR==2 { s=0; for (i=1;i<=2;i++) { split($i, a, "m"); sub(/s$/, "", a[2]); s += a[1]*60 + a[2] } printf "%.3f", s }' "$1"
}

load_cmd() {   # mode target duration latency_log -> CMD array
    local mode=$1 t=$2 d=$3 lat=$4
    case $mode in
        h1) CMD=(wrk -t"$THREADS" -c"$CONNS" -d"${d}s" --latency "http://127.0.0.1:${H1PORT[$t]}/") ;;
        h2c) CMD=(h2load -t1 -c"$H2_CLIENTS" -m"$H2_STREAMS" -D "$d" --log-file "$lat"
            "http://127.0.0.1:${H2PORT[$t]}/") ;;
        grpc) CMD=(h2load -t1 -c"$H2_CLIENTS" -m"$H2_STREAMS" -D "$d" --log-file "$lat"
            -d "$RESULTS/run/grpc-message.bin" -H 'content-type: application/grpc' -H 'te: trailers'
            "http://127.0.0.1:${H2PORT[$t]}$GRPC_PATH") ;;
        fixed) CMD=(h2load --h1 -t1 -c"$RATE_CLIENTS" -m1 --rps $((RATE / RATE_CLIENTS)) -D "$d"
            --log-file "$lat" "http://127.0.0.1:${H1PORT[$t]}/") ;;
    esac
}

# One measured run; appends a row to raw.tsv.
run_one() {   # round mode target
    local r=$1 mode=$2 t=$3 out lat pid bpid c0 c1 b0 b1 a0 a1 i0 s0 st0 i1 s1 st1 samp line
    out="$RESULTS/runs/r$r-$mode-$t.out"; lat="$out.lat"; samp="$out.mem"
    pid=${ROOTPID[${COMP[$t]}]}; bpid=${ROOTPID[backend]}
    load_cmd "$mode" "$t" "$DURATION" "$lat"
    a0=$(be_accepts); c0=$(cpu_ticks "$pid"); b0=$(cpu_ticks "$bpid"); read -r i0 s0 st0 < <(sys_cpu)
    mem_sampler "$pid" "$samp" & SAMPLER_PID=$!
    ( bounded $((DURATION + 20)) "${CMD[@]}" >"$out" 2>&1; times >"$out.times" )
    kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; SAMPLER_PID=""
    read -r i1 s1 st1 < <(sys_cpu); c1=$(cpu_ticks "$pid"); b1=$(cpu_ticks "$bpid"); a1=$(be_accepts)
    if [ "$mode" = h1 ]; then
        line=$("$PY" "$BENCH/parse_run.py" wrk "$out")
    else
        line=$("$PY" "$BENCH/parse_run.py" h2load "$out" "$lat")
    fi
    rm -f "$lat"
    local cpu bcpu gcpu
    cpu=$(awk -v a="$c0" -v b="$c1" -v h="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / h }')
    bcpu=$(awk -v a="$b0" -v b="$b1" -v h="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / h }')
    gcpu=$(times_secs "$out.times")
    # Busy CPU that was neither the target, the backend nor the load generator.
    local machine
    machine=$(awk -v i0="$i0" -v i1="$i1" -v s0="$s0" -v s1="$s1" -v t0="$st0" -v t1="$st1" -v h="$CLK_TCK" \
        -v c="$cpu" -v b="$bcpu" -v g="$gcpu" -v d="$t" 'BEGIN {
            tot = (s1 - s0) / h; idle = (i1 - i0) / h; steal = (t1 - t0) / h
            busy = tot - idle - steal; ours = c + g + (d == "direct" ? 0 : b); o = busy - ours
            printf "%.1f\t%.2f\t%.2f", (tot > 0 ? 100 * idle / tot : 0), (o < 0 ? 0 : o), steal }')
    local mrss mpss
    read -r mrss mpss < <(sort -n -k1,1 "$samp" 2>/dev/null | tail -1)
    rm -f "$samp"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$mode" "$t" "$line" "$cpu" "$bcpu" "$gcpu" \
        "$machine" "$((${a1:-0} - ${a0:-0} - 1))" "${mrss:-0}" "${mpss:-0}" >>"$RESULTS/raw.tsv"
    log "  r$r $(printf '%-5s %-8s' "$mode" "$t") $(echo "$line" | awk -F'\t' '{printf "rps=%-9s p50=%sms p99=%sms errors=%s", $1, $3, $5, $6}') cpu=${cpu}s"
}

run_rounds() {
    local r i n t m order
    mkdir -p "$RESULTS/runs"
    printf 'round\tmode\ttarget\trps\trequests\tp50_ms\tp90_ms\tp99_ms\terrors\tcpu_s\tbackend_cpu_s\tgen_cpu_s\tidle_pct\tother_cpu_s\tsteal_s\tbackend_conns\tmax_rss_kb\tmax_pss_kb\n' >"$RESULTS/raw.tsv"
    if [ "$WARMUP" -gt 0 ]; then
        log "warm-up: ${WARMUP}s per target and mode (not measured)"
        for t in "${TLIST[@]}"; do
            for m in "${MLIST[@]}"; do
                [ -n "${DISABLED[$t/$m]:-}" ] && continue
                load_cmd "$m" "$t" "$WARMUP" /dev/null
                bounded $((WARMUP + 20)) "${CMD[@]}" >/dev/null 2>&1
            done
        done
    fi
    n=${#TLIST[@]}
    for ((r = 1; r <= ROUNDS; r++)); do
        log "round $r/$ROUNDS"
        order=()
        for ((i = 0; i < n; i++)); do order+=("${TLIST[$(((i + r - 1) % n))]}"); done
        for m in "${MLIST[@]}"; do
            for t in "${order[@]}"; do
                [ -n "${DISABLED[$t/$m]:-}" ] && continue
                run_one "$r" "$m" "$t"
            done
        done
    done
    # A gateway that fails requests under plain load is broken, not slow.
    if awk -F'\t' 'NR > 1 && $3 == "meshgate" && $9 > 0 { bad = 1 } END { exit !bad }' "$RESULTS/raw.tsv"; then
        log "meshgate answered some requests with errors (see raw.tsv, runs/)"
        BROKEN=1
    fi
}

# Lifetime peak RSS (VmHWM summed over the process tree) and memory now.
collect_memory() {
    local t pid
    printf 'target\tvmhwm_kb\tvmrss_kb\tpss_kb\tnprocs\n' >"$RESULTS/mem.tsv"
    for t in "${TLIST[@]}"; do
        pid=${ROOTPID[${COMP[$t]}]}
        printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$(status_kb "$pid" VmHWM)" "$(status_kb "$pid" VmRSS)" \
            "$(pss_kb "$pid")" "$(tree_pids "$pid" | wc -l)" >>"$RESULTS/mem.tsv"
    done
}
