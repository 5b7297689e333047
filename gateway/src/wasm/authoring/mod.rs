//! Plugin authoring tools behind `meshgate plugin`: scaffold a plugin crate, build it
//! for wasm32-wasip1 with its sha256 and WasmPlugin, and check a module against what
//! this host provides.

mod build;
mod check;
mod scaffold;

pub use build::{build_plugins, wasmplugin_yaml, BuiltPlugin};
pub use check::{check_module, Export, Import, ModuleReport};
pub use scaffold::{default_sdk_dir, new_plugin, validate_name};
