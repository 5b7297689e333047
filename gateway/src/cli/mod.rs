//! The command line: parses arguments and starts the role asked for (gateway, sidecar, analyze, route, demo, ca, plugin).

use std::process::ExitCode;

pub fn main() -> ExitCode {
    eprintln!("meshgate: not implemented yet");
    ExitCode::FAILURE
}
