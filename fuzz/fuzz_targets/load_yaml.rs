//! Any bytes, read as a YAML file, must load and analyze without panicking: a config
//! file is user input, and a bad one gets messages, never a crash.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use meshgate::config::load::{load_str, Loaded};
use meshgate::config::validate::analyze;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut loaded = Loaded::default();
    load_str(&text, Path::new("fuzz.yaml"), &mut loaded);
    let _ = analyze(&loaded.config);
});
