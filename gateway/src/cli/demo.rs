//! `meshgate demo`: the temperature demo on one machine, no Kubernetes. The gateway on
//! :8080 routes to temperature-api, which calls temperature-service over gRPC; each app
//! has a sidecar, and every hop between proxies is mutual TLS with mesh identities.
//!
//! The apps run in this process; the three proxies run as child processes of this same
//! executable, exactly as `meshgate gateway` / `meshgate sidecar` would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::process::{Child, Command};

use super::runtime::{runtime, shutdown_signal};
use crate::mesh::{init_ca, CaInitOptions};

const GATEWAY_YAML: &str = include_str!("../../../deploy/demo/config/gateway.yaml");
const MESH_YAML: &str = include_str!("../../../deploy/demo/config/mesh.yaml");
const SERVICES_YAML: &str = include_str!("../../../deploy/demo/config/services.yaml");

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The gateway's port (Gateway port 80 is served here).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Added to every other port the demo opens (sidecars, apps, admin, metrics), so
    /// several demos or test runs can share one machine.
    #[arg(long = "port-offset", default_value_t = 0)]
    pub port_offset: u16,
    /// Where the demo writes its mesh CA and config (default: a fresh temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Every port of the demo, in one place.
#[derive(Debug, Clone, Copy)]
pub struct DemoPorts {
    pub gateway: u16,
    pub gateway_admin: u16,
    pub gateway_health: u16,
    pub gateway_metrics: u16,
    pub api_app: u16,
    pub api_inbound: u16,
    pub api_outbound: u16,
    pub api_admin: u16,
    pub api_health: u16,
    pub api_metrics: u16,
    pub service_app: u16,
    pub service_inbound: u16,
    pub service_outbound: u16,
    pub service_admin: u16,
    pub service_health: u16,
    pub service_metrics: u16,
}

impl DemoPorts {
    pub fn new(gateway: u16, offset: u16) -> DemoPorts {
        let o = |p: u16| p.saturating_add(offset);
        DemoPorts {
            gateway,
            gateway_admin: o(15000),
            gateway_health: o(15021),
            gateway_metrics: o(15090),
            api_app: o(3000),
            api_inbound: o(15106),
            api_outbound: o(15101),
            api_admin: o(15100),
            api_health: o(15121),
            api_metrics: o(15190),
            service_app: o(8081),
            service_inbound: o(15206),
            service_outbound: o(15201),
            service_admin: o(15200),
            service_health: o(15221),
            service_metrics: o(15290),
        }
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    runtime(Some(2))?.block_on(demo(args))
}

/// Writes the CA and the config the proxies read; returns the config folder.
pub fn prepare(dir: &Path, ports: &DemoPorts) -> anyhow::Result<PathBuf> {
    let ca = dir.join("ca");
    if !ca.join(crate::mesh::ROOT_CERT_FILE).exists() {
        init_ca(&ca, &CaInitOptions::default())?;
    }
    let config = dir.join("config");
    std::fs::create_dir_all(&config)?;
    std::fs::write(config.join("gateway.yaml"), GATEWAY_YAML)?;
    std::fs::write(config.join("mesh.yaml"), MESH_YAML)?;
    // The Endpoints name where each sidecar's inbound port is on this machine.
    let services = SERVICES_YAML
        .replace("port: 15106", &format!("port: {}", ports.api_inbound))
        .replace("port: 15206", &format!("port: {}", ports.service_inbound));
    std::fs::write(config.join("services.yaml"), services)?;
    Ok(config)
}

async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let ports = DemoPorts::new(args.port, args.port_offset);
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("meshgate-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    prepare(&dir, &ports)?;

    // The apps, in this process.
    let (stop_apps, stopped) = tokio::sync::watch::channel(false);
    let service_listener =
        crate::proxy::listener::bind(local(ports.service_app), "temperature-service port").await?;
    let mut rx = stopped.clone();
    let service = tokio::spawn(temperature_service::serve(service_listener, async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    let api_listener =
        crate::proxy::listener::bind(local(ports.api_app), "temperature-api port").await?;
    let api_config = temperature_api::ApiConfig::new(
        format!("http://127.0.0.1:{}", ports.api_outbound).parse()?,
    )
    .with_authority("temperature-service.default.svc.cluster.local:8080".parse()?);
    let mut rx = stopped.clone();
    let api = tokio::spawn(temperature_api::serve(
        api_listener,
        api_config,
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ));

    // The proxies, as child processes of this executable.
    let exe = std::env::current_exe()?;
    let mut children: Vec<(&'static str, Child)> = Vec::new();
    for (name, args) in proxy_commands(&ports, &dir) {
        children.push((name, spawn(&exe, &args)?));
    }

    let ready = wait_ready(
        &[
            ports.gateway,
            ports.api_inbound,
            ports.api_outbound,
            ports.service_inbound,
        ],
        Duration::from_secs(30),
    )
    .await;
    if ready {
        print_banner(&ports, &dir);
    } else {
        eprintln!("meshgate demo: not every proxy came up within 30 s; see the messages above");
    }

    let code = tokio::select! {
        _ = shutdown_signal() => ExitCode::SUCCESS,
        (name, status) = first_exit(&mut children) => {
            eprintln!("meshgate demo: {name} exited ({status}); stopping the demo");
            ExitCode::FAILURE
        }
    };
    eprintln!("meshgate demo: stopping");
    for (_, child) in &mut children {
        terminate(child);
    }
    for (name, child) in &mut children {
        if tokio::time::timeout(Duration::from_secs(8), child.wait())
            .await
            .is_err()
        {
            eprintln!("meshgate demo: {name} did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
    let _ = stop_apps.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = service.await;
        let _ = api.await;
    })
    .await;
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(code)
}

/// The `meshgate` command lines of the demo's three proxies.
pub fn proxy_commands(ports: &DemoPorts, dir: &Path) -> Vec<(&'static str, Vec<String>)> {
    let cfg = dir.join("config").display().to_string();
    let ca = dir.join("ca").display().to_string();
    let a = |n: u16| local(n).to_string();
    let gateway = [
        "gateway",
        "--config",
        &cfg,
        "--bind",
        "127.0.0.1",
        "--port-map",
        &format!("80={}", ports.gateway),
        "--ca",
        &ca,
        "--admin",
        &a(ports.gateway_admin),
        "--health",
        &a(ports.gateway_health),
        "--metrics",
        &a(ports.gateway_metrics),
    ]
    .map(String::from)
    .to_vec();
    let sidecar = |name: &str,
                   app: u16,
                   svc: u16,
                   inbound: u16,
                   outbound: u16,
                   admin: u16,
                   health: u16,
                   metrics: u16| {
        [
            "sidecar",
            "--workload",
            name,
            "--namespace",
            "default",
            "--service-account",
            name,
            "--app-port",
            &app.to_string(),
            "--service-port",
            &svc.to_string(),
            "--config",
            &cfg,
            "--ca",
            &ca,
            "--inbound",
            &a(inbound),
            "--outbound",
            &a(outbound),
            "--admin",
            &a(admin),
            "--health",
            &a(health),
            "--metrics",
            &a(metrics),
            "--label",
            &format!("app={name}"),
            "--label",
            "version=v1",
        ]
        .map(String::from)
        .to_vec()
    };
    let p = ports;
    vec![
        ("gateway", gateway),
        (
            "temperature-api sidecar",
            sidecar(
                "temperature-api",
                p.api_app,
                3000,
                p.api_inbound,
                p.api_outbound,
                p.api_admin,
                p.api_health,
                p.api_metrics,
            ),
        ),
        (
            "temperature-service sidecar",
            sidecar(
                "temperature-service",
                p.service_app,
                8080,
                p.service_inbound,
                p.service_outbound,
                p.service_admin,
                p.service_health,
                p.service_metrics,
            ),
        ),
    ]
}

fn spawn(exe: &Path, args: &[String]) -> anyhow::Result<Child> {
    Ok(Command::new(exe).args(args).kill_on_drop(true).spawn()?)
}

/// SIGTERM: the proxies drain in-flight requests and exit 0.
fn terminate(child: &Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

async fn first_exit(children: &mut [(&'static str, Child)]) -> (&'static str, String) {
    loop {
        for (name, child) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return (*name, status.to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_ready(ports: &[u16], limit: Duration) -> bool {
    let start = Instant::now();
    for &port in ports {
        loop {
            if tokio::net::TcpStream::connect(local(port)).await.is_ok() {
                break;
            }
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    true
}

fn print_banner(p: &DemoPorts, dir: &Path) {
    println!(
        "\nmeshgate demo is running (config and mesh CA in {dir})\n\n\
         \x20 gateway                istio-system/istio-ingressgateway  http://127.0.0.1:{gw}  (Gateway port 80)\n\
         \x20 temperature-api        app 127.0.0.1:{api}   sidecar inbound (mTLS) {ai}, outbound {ao}\n\
         \x20 temperature-service    app 127.0.0.1:{svc}   sidecar inbound (mTLS) {si}, outbound {so}\n\n\
         Try:\n  curl \"http://localhost:{gw}/?from=Celsius&to=Kelvin&temperature=150\"\n\n\
         Metrics (Prometheus):\n\
         \x20 gateway              http://127.0.0.1:{gm}/stats/prometheus\n\
         \x20 temperature-api      http://127.0.0.1:{am}/stats/prometheus\n\
         \x20 temperature-service  http://127.0.0.1:{sm}/stats/prometheus\n\
         Admin: http://127.0.0.1:{ga}/config_dump  http://127.0.0.1:{ga}/clusters\n\n\
         Ctrl-C stops everything.\n",
        dir = dir.display(),
        gw = p.gateway,
        api = p.api_app,
        ai = p.api_inbound,
        ao = p.api_outbound,
        svc = p.service_app,
        si = p.service_inbound,
        so = p.service_outbound,
        gm = p.gateway_metrics,
        am = p.api_metrics,
        sm = p.service_metrics,
        ga = p.gateway_admin,
    );
}
