# Sourced by run.sh: the optional measurements. Each writes `key<TAB>value` lines to
# extras.tsv (summarize.py reports them) and skips itself, saying why, when it cannot run.

extra() { printf '%s\t%s\n' "$1" "$2" >>"$RESULTS/extras.tsv"; }
has_target() { [[ " ${TLIST[*]} " == *" $1 "* ]]; }
x_duration() { local d=$DURATION; [ "$SMOKE" = 1 ] && d=3; [ "$d" -lt 3 ] && d=3; echo "$d"; }

# Failed requests while the config is rewritten once a second under wrk load; each
# rewrite changes a response header, so we also see that every reload took effect.
extra_reload() {
    has_target meshgate && command -v wrk >/dev/null || { skip "reload: needs meshgate and wrk"; return; }
    local d k applied=0 cfg="$RESULTS/run/gateway/config.yaml" out="$RESULTS/runs/reload.out" got wpid
    d=$(x_duration)
    log "extra reload: ${d}s of wrk with a config rewrite every second"
    ( bounded $((d + 20)) wrk -t1 -c"$CONNS" -d"${d}s" --latency http://127.0.0.1:18110/ >"$out" 2>&1 ) &
    wpid=$!
    for ((k = 1; k < d; k++)); do
        gateway_yaml "rev-$k" >"$cfg.tmp" && mv "$cfg.tmp" "$cfg"
        sleep 1
        got=$(curl -s --max-time 1 -o /dev/null -w '%header{x-bench-config}' http://127.0.0.1:18110/ 2>/dev/null)
        [ "$got" = "rev-$k" ] && applied=$((applied + 1))
    done
    wait "$wpid"
    gateway_yaml >"$cfg.tmp" && mv "$cfg.tmp" "$cfg"
    local r
    r=$("$PY" "$BENCH/parse_run.py" wrk "$out")
    extra reload_rewrites $((d - 1))
    extra reload_applied "$applied"
    extra reload_requests "$(echo "$r" | cut -f2)"
    extra reload_rps "$(echo "$r" | cut -f1)"
    extra reload_p99_ms "$(echo "$r" | cut -f5)"
    extra reload_errors "$(echo "$r" | cut -f6)"
    log "  reload: $applied/$((d - 1)) rewrites applied, errors=$(echo "$r" | cut -f6) of $(echo "$r" | cut -f2) requests"
    [ "$(echo "$r" | cut -f6)" = 0 ] || BROKEN=1
}

mesh_yaml() {
    cat <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec:
  selector: {app: backend}
  ports:
  - {port: 8080, name: http}
---
apiVersion: v1
kind: Endpoints
metadata: {name: backend, namespace: default}
subsets:
- addresses:
  - ip: 127.0.0.1
  ports:
  - {port: 18122, name: http}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend, namespace: default}
spec:
  host: backend
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: STRICT}
EOF
}

# Client -> sidecar (outbound, plain) -> mTLS -> sidecar (inbound) -> backend, at a
# fixed rate, paired with the same rate straight to the backend.
extra_sidecar() {
    command -v h2load >/dev/null || { skip "sidecar: needs h2load"; return; }
    local dir="$RESULTS/run/mesh" authority=backend.default.svc.cluster.local:8080 p
    for p in 18122 18123 18124 18125 18126 18131 18132 18134 18135 18136; do
        port_busy "$p" && { skip "sidecar: port $p is in use"; return; }
    done
    mkdir -p "$dir"
    "$MESHGATE_BIN" ca init "$dir/ca" >"$RESULTS/ca.log" 2>&1 || { skip "sidecar: meshgate ca init failed"; BROKEN=1; return; }
    mesh_yaml >"$dir/mesh.yaml"
    local common=(--namespace default --config "$dir/mesh.yaml" --ca "$dir/ca" --access-log-format off)
    start_comp sidecar-server 18122 "$MESHGATE_BIN" sidecar --workload backend --service-account backend \
        --app-port 18080 --service-port 8080 --inbound 127.0.0.1:18122 --outbound 127.0.0.1:18123 \
        --admin 127.0.0.1:18124 --health 127.0.0.1:18125 --metrics 127.0.0.1:18126 "${common[@]}"
    start_comp sidecar-client 18131 "$MESHGATE_BIN" sidecar --workload client --service-account client \
        --app-port 18137 --inbound 127.0.0.1:18132 --outbound 127.0.0.1:18131 \
        --admin 127.0.0.1:18134 --health 127.0.0.1:18135 --metrics 127.0.0.1:18136 "${common[@]}"
    wait_body sidecar-client http://127.0.0.1:18131/ 30 exact -H "Host: $authority" || {
        log "the sidecar pair does not carry requests"; BROKEN=1; return; }
    log "extra sidecar: pair up (mTLS between them); idle memory, then ${RATE} rps"
    sleep 1
    local cs=${ROOTPID[sidecar-client]} ss=${ROOTPID[sidecar-server]}
    extra sidecar_rate "$RATE"
    extra sidecar_client_idle_rss_kb "$(status_kb "$cs" VmRSS)"
    extra sidecar_server_idle_rss_kb "$(status_kb "$ss" VmRSS)"
    local d r t out lat line c0 c1 s0 s1 rounds=$ROUNDS
    d=$(x_duration)
    printf 'round\ttarget\trps\trequests\tp50_ms\tp90_ms\tp99_ms\terrors\tcpu_s\tmax_rss_client_kb\tmax_rss_server_kb\n' >"$RESULTS/sidecar.tsv"
    for ((r = 1; r <= rounds; r++)); do
        for t in direct pair; do
            out="$RESULTS/runs/sidecar-r$r-$t.out"; lat="$out.lat"
            local url=http://127.0.0.1:18080/ hdr=()
            [ $t = pair ] && { url=http://127.0.0.1:18131/; hdr=(-H ":authority: $authority"); }
            c0=$(cpu_ticks "$cs"); s0=$(cpu_ticks "$ss")
            mem_sampler "$cs" "$out.cmem" & local m1=$!
            mem_sampler "$ss" "$out.smem" & local m2=$!
            bounded $((d + 20)) h2load --h1 -t1 -c"$RATE_CLIENTS" -m1 --rps $((RATE / RATE_CLIENTS)) -D "$d" \
                --log-file "$lat" "${hdr[@]}" "$url" >"$out" 2>&1
            kill "$m1" "$m2" 2>/dev/null; wait "$m1" "$m2" 2>/dev/null
            c1=$(cpu_ticks "$cs"); s1=$(cpu_ticks "$ss")
            line=$("$PY" "$BENCH/parse_run.py" h2load "$out" "$lat"); rm -f "$lat"
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$line" \
                "$(awk -v a=$((c1 - c0 + s1 - s0)) -v h="$CLK_TCK" 'BEGIN { printf "%.3f", a / h }')" \
                "$(sort -n "$out.cmem" | tail -1 | cut -d' ' -f1)" "$(sort -n "$out.smem" | tail -1 | cut -d' ' -f1)" \
                >>"$RESULTS/sidecar.tsv"
            rm -f "$out.cmem" "$out.smem"
            log "  sidecar r$r $t: $(echo "$line" | awk -F'\t' '{printf "rps=%s p50=%sms p90=%sms p99=%sms errors=%s", $1, $3, $4, $5, $6}')"
        done
    done
    extra sidecar_client_hwm_kb "$(status_kb "$cs" VmHWM)"
    extra sidecar_server_hwm_kb "$(status_kb "$ss" VmHWM)"
    stop_comp sidecar-client; stop_comp sidecar-server
}

# Memory per idle HTTP/1.1 downstream connection: RSS before and after N keep-alive
# connections that each made one request.
extra_conns() {
    has_target meshgate || { skip "conns: needs meshgate"; return; }
    local pid=${ROOTPID[meshgate]} n=$CONN_COUNT before after
    log "extra conns: $n idle keep-alive connections to meshgate"
    sleep 1
    before=$(status_kb "$pid" VmRSS)
    "$PY" "$BENCH/idle_conns.py" 127.0.0.1 18110 "$n" 30 "$RESULTS/run/conns.ready" >"$RESULTS/runs/conns.out" 2>&1 &
    local cpid=$! i
    for ((i = 0; i < 300; i++)); do [ -e "$RESULTS/run/conns.ready" ] && break; sleep 0.1; done
    sleep 1
    after=$(status_kb "$pid" VmRSS)
    kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
    extra conns_count "$(head -1 "$RESULTS/run/conns.ready" 2>/dev/null || echo 0)"
    extra conns_rss_before_kb "$before"
    extra conns_rss_after_kb "$after"
    log "  conns: RSS ${before} kB -> ${after} kB"
}

# The criterion route-lookup bench (10 / 1,000 / 10,000 VirtualServices, compile of
# 10,000). Builds the bench in the bench profile: minutes on a small machine.
extra_route() {
    command -v cargo >/dev/null || { skip "route: needs cargo"; return; }
    log "extra route: cargo bench --bench route_lookup (builds the bench first)"
    (cd "$REPO" && bounded 2400 cargo bench -p meshgate --bench route_lookup -- \
        --warm-up-time 1 --measurement-time 3) >"$RESULTS/route.txt" 2>&1 ||
        { skip "route: cargo bench failed (see route.txt)"; return; }
    grep -E 'VirtualServices' "$RESULTS/route.txt" | sed 's/^ *//' >&2
}

# The cost of a header-adding wasm plugin (plugins/add-headers, built here for
# wasm32-wasip1): a second gateway with the same config plus the WasmPlugin, measured
# with wrk in interleaved rounds against the one without. Reports req/s with/without
# and CPU-µs per request of each.
wasm_yaml() {   # wasm file
    gateway_yaml
    cat <<EOF
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: add-headers, namespace: istio-system}   # the gateway workload's namespace
spec:
  selector:
    matchLabels: {istio: ingressgateway}
  url: file://$1
  pluginConfig:
    request:
      set: {x-env: bench}
    response:
      set: {x-plugin: add-headers}
EOF
}

extra_wasm() {
    has_target meshgate && command -v wrk >/dev/null && command -v cargo >/dev/null ||
        { skip "wasm: needs meshgate, wrk and cargo"; return; }
    local p
    for p in 18150 18151 18152 18153; do port_busy "$p" && { skip "wasm: port $p is in use"; return; }; done
    local tdir=${CARGO_TARGET_DIR:-$REPO/plugins/target}
    local wasm="$tdir/wasm32-wasip1/release/add_headers.wasm" dir="$RESULTS/run/wasm"
    log "extra wasm: building plugins/add-headers for wasm32-wasip1"
    (cd "$REPO" && bounded 900 cargo build -q --release --target wasm32-wasip1 \
        --manifest-path plugins/Cargo.toml -p add-headers) >"$RESULTS/wasm-build.log" 2>&1 ||
        { skip "wasm: the plugin did not build (see wasm-build.log)"; return; }
    [ -f "$wasm" ] || { skip "wasm: no $wasm after the build"; return; }
    mkdir -p "$dir"
    wasm_yaml "$wasm" >"$dir/config.yaml"
    start_comp meshgate-wasm 18150 "$MESHGATE_BIN" gateway --config "$dir/config.yaml" --bind 127.0.0.1 \
        --port-map 80=18150 --admin 127.0.0.1:18151 --health 127.0.0.1:18152 --metrics 127.0.0.1:18153 \
        --access-log-format off
    wait_body meshgate-wasm http://127.0.0.1:18150/ 30 || { log "the gateway with the plugin does not answer"; BROKEN=1; return; }
    local got
    got=$(curl -s --max-time 2 -o /dev/null -w '%header{x-plugin}' http://127.0.0.1:18150/)
    [ "$got" = add-headers ] || { log "the plugin did not run (x-plugin: '$got')"; BROKEN=1; stop_comp meshgate-wasm; return; }
    local d r t out line pid c0 c1 port comp
    d=$(x_duration)
    printf 'round\ttarget\trps\trequests\tp99_ms\terrors\tcpu_s\n' >"$RESULTS/wasm.tsv"
    for ((r = 1; r <= ROUNDS; r++)); do
        for t in without with; do
            port=18110; comp=meshgate
            [ $t = with ] && { port=18150; comp=meshgate-wasm; }
            pid=${ROOTPID[$comp]}; out="$RESULTS/runs/wasm-r$r-$t.out"
            c0=$(cpu_ticks "$pid")
            bounded $((d + 20)) wrk -t1 -c"$CONNS" -d"${d}s" --latency "http://127.0.0.1:$port/" >"$out" 2>&1
            c1=$(cpu_ticks "$pid")
            line=$("$PY" "$BENCH/parse_run.py" wrk "$out")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$(echo "$line" | cut -f1)" "$(echo "$line" | cut -f2)" \
                "$(echo "$line" | cut -f5)" "$(echo "$line" | cut -f6)" \
                "$(awk -v a=$((c1 - c0)) -v h="$CLK_TCK" 'BEGIN { printf "%.3f", a / h }')" >>"$RESULTS/wasm.tsv"
            log "  wasm r$r $t plugin: rps=$(echo "$line" | cut -f1) errors=$(echo "$line" | cut -f6)"
        done
    done
    stop_comp meshgate-wasm
}
