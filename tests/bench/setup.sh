# Sourced by run.sh: the tools (installed from Debian when missing and allowed), the
# meshgate binary, and the generated gateway config.

# Drops targets and modes whose tools are missing; installs them first when INSTALL=1.
ensure_tools() {
    local missing=() b
    for b in nginx haproxy wrk h2load nghttp curl ss timeout; do
        command -v "$b" >/dev/null || missing+=("$b")
    done
    if [ ${#missing[@]} -gt 0 ] && [ "$INSTALL" = 1 ] && command -v apt-get >/dev/null; then
        local pkgs=()
        for b in "${missing[@]}"; do
            case $b in
                h2load | nghttp) pkgs+=(nghttp2-client) ;;
                ss) pkgs+=(iproute2) ;;
                timeout) pkgs+=(coreutils) ;;
                *) pkgs+=("$b") ;;
            esac
        done
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo -n"
        log "installing ${pkgs[*]} (apt-get)"
        if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${pkgs[@]}" >"$RESULTS/apt.log" 2>&1; then
            $sudo apt-get update >>"$RESULTS/apt.log" 2>&1
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${pkgs[@]}" >>"$RESULTS/apt.log" 2>&1 ||
                log "WARNING: apt-get install failed (see $RESULTS/apt.log)"
        fi
        missing=()
        for b in nginx haproxy wrk h2load nghttp curl ss timeout; do
            command -v "$b" >/dev/null || missing+=("$b")
        done
    fi
    for b in curl ss timeout; do
        command -v "$b" >/dev/null || die "missing $b"
    done
    if ! command -v nginx >/dev/null; then
        # No backend, nothing to measure: not a failure of meshgate.
        skip "everything: nginx (the backend) is not installed (apt-get install nginx, or INSTALL=1)"
        [ "$SMOKE" = 1 ] && exit 0
        die "nginx is required"
    fi
    local t keep=()
    for t in $TARGETS; do
        [ -n "${COMP[$t]:-}" ] || die "unknown target '$t' (direct nginx haproxy meshgate baseline)"
        if [ "$t" = baseline ]; then
            [ -x "$BASELINE_BIN" ] || die "target baseline needs BASELINE_BIN (an executable meshgate)"
            cp "$BASELINE_BIN" "$RESULTS/run/meshgate-baseline" && BASELINE_BIN="$RESULTS/run/meshgate-baseline"
        fi
        if [ "$t" = haproxy ] && ! command -v haproxy >/dev/null; then
            skip "target haproxy: haproxy is not installed"; continue
        fi
        keep+=("$t")
    done
    TLIST=("${keep[@]}")
    local m mkeep=()
    for m in $MODES; do
        case $m in
            h1) command -v wrk >/dev/null || { skip "mode h1: wrk is not installed"; continue; } ;;
            h2c | grpc | fixed) command -v h2load >/dev/null && command -v nghttp >/dev/null || { skip "mode $m: h2load (nghttp2-client) is not installed"; continue; } ;;
            *) die "unknown mode '$m' (h1 h2c grpc fixed)" ;;
        esac
        mkeep+=("$m")
    done
    MLIST=("${mkeep[@]}")
}

# Builds meshgate with cargo unless MESHGATE_BIN names a binary.
build_meshgate() {
    if [ -n "${MESHGATE_BIN:-}" ]; then
        [ -x "$MESHGATE_BIN" ] || { log "MESHGATE_BIN=$MESHGATE_BIN is not executable"; return 1; }
        PROFILE=prebuilt
        cp "$MESHGATE_BIN" "$RESULTS/run/meshgate" && MESHGATE_BIN="$RESULTS/run/meshgate"
        return
    fi
    local dir
    dir=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])') || return 1
    log "building meshgate (cargo build --profile $PROFILE -p meshgate)"
    (cd "$REPO" && cargo build --profile "$PROFILE" -p meshgate --bin meshgate) >"$RESULTS/build.log" 2>&1 || {
        tail -20 "$RESULTS/build.log" >&2; return 1; }
    local built
    case $PROFILE in
        dev | test) built="$dir/debug/meshgate" ;;
        *) built="$dir/$PROFILE/meshgate" ;;
    esac
    # A private copy: a shared target directory may be rebuilt by others mid-run.
    cp "$built" "$RESULTS/run/meshgate" || return 1
    MESHGATE_BIN="$RESULTS/run/meshgate"
}

# The gateway's config: one Gateway on port 80 for any host, a ServiceEntry per
# backend port (HTTP/1.1 on :18080, gRPC over h2c on :18081) and a VirtualService
# sending gRPC paths to the second and everything else to the first. `$1` is a
# revision stamped into a response header (the reload test changes it).
gateway_yaml() {
    cat <<EOF
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: default}
spec:
  hosts: [backend.bench.local]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {number: 18080, name: http, protocol: HTTP}
  - {number: 18081, name: grpc, protocol: GRPC}
  endpoints:
  - address: 127.0.0.1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bench]
  http:
  - name: grpc
    match:
    - uri: {prefix: /bench.Temperature/}
    route:
    - destination: {host: backend.bench.local, port: {number: 18081}}
  - name: http
EOF
    if [ -n "${1:-}" ]; then
        printf '    headers:\n      response:\n        set: {x-bench-config: "%s"}\n' "$1"
    fi
    cat <<EOF
    route:
    - destination: {host: backend.bench.local, port: {number: 18080}}
EOF
}

write_configs() {
    mkdir -p "$RESULTS/run/gateway" "$RESULTS/run/backend/tmp" "$RESULTS/run/nginx/tmp"
    gateway_yaml >"$RESULTS/run/gateway/config.yaml"
    # A gRPC message: 1-byte flag, 4-byte big-endian length, then 32 bytes.
    printf '\x00\x00\x00\x00\x20%s' "$EXPECT_BODY" >"$RESULTS/run/grpc-message.bin"
    MESHGATE_ARGS=(gateway --config "$RESULTS/run/gateway/config.yaml" --bind 127.0.0.1
        --port-map 80=18110 --admin 127.0.0.1:18111 --health 127.0.0.1:18112
        --metrics 127.0.0.1:18113 --access-log-format off --reload-interval 200ms)
    [ -n "$WORKERS" ] && MESHGATE_ARGS+=(--workers "$WORKERS")
    BASELINE_ARGS=("${MESHGATE_ARGS[@]}")
    local i
    for i in "${!BASELINE_ARGS[@]}"; do
        case ${BASELINE_ARGS[$i]} in
            80=18110) BASELINE_ARGS[$i]=80=18140 ;;
            127.0.0.1:1811[123]) BASELINE_ARGS[$i]=127.0.0.1:1814${BASELINE_ARGS[$i]: -1} ;;
        esac
    done
}
