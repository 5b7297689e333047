//! `meshgate plugin`: the plugin author's commands: `new` scaffolds a crate, `build`
//! makes the .wasm and its WasmPlugin, `check` says whether this host can run a module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::wasm::authoring;

#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate (meshgate-sdk, a harness test, README, WasmPlugin YAML).
    New {
        /// Crate and WasmPlugin name: lowercase letters, digits and '-'.
        name: String,
        /// Folder to create it in (default: the current one).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// meshgate's sdk/ folder (default: the one this meshgate was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin crate for wasm32-wasip1 (release) and print its sha256 and a WasmPlugin.
    Build {
        /// The crate (or workspace) folder, or its Cargo.toml.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// List a module's imports and exports against this host; non-zero exit when
    /// something would not work.
    Check {
        /// The .wasm file.
        file: PathBuf,
    },
}

pub fn run(args: PluginArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PluginCommand::New { name, dir, sdk } => {
            let sdk = sdk.unwrap_or_else(authoring::default_sdk_dir);
            let created = authoring::new_plugin(&name, &dir, &sdk).map_err(anyhow::Error::msg)?;
            println!("created {}", created.display());
            println!("\nnext:");
            println!("  cd {}", created.display());
            println!("  cargo test                 # builds the .wasm and runs it in Meshgate's wasm engine");
            println!(
                "  meshgate plugin build .    # release build, sha256 and a WasmPlugin to apply"
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Build { path } => {
            let built = authoring::build_plugins(&path).map_err(anyhow::Error::msg)?;
            let mut all_ok = true;
            for plugin in &built {
                println!("built {}", plugin.wasm.display());
                println!("sha256 {}", plugin.sha256);
                let bytes = std::fs::read(&plugin.wasm)?;
                let report = authoring::check_module(&bytes).map_err(anyhow::Error::msg)?;
                for p in &report.problems {
                    all_ok = false;
                    println!("problem: {p}");
                }
                println!("\n---\n{}", authoring::wasmplugin_yaml(plugin));
            }
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PluginCommand::Check { file } => {
            let bytes =
                std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let report = authoring::check_module(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!("{}\n{report}", file.display());
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
