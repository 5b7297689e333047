//! Generates the gRPC code and file descriptor set from proto/temperature.proto with a
//! vendored protoc, so building needs no system protobuf compiler.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Build scripts run as their own process: setting PROTOC here affects only this build.
    env::set_var("PROTOC", protoc);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_build::configure()
        .file_descriptor_set_path(out_dir.join("temperature_descriptor.bin"))
        .compile_protos(&["proto/temperature.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/temperature.proto");
    Ok(())
}
