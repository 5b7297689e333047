//! `meshgate plugin new`: a plugin crate that builds and passes its tests as generated,
//! pinned to the dependency versions this meshgate was built with (its Cargo.lock), so
//! it resolves offline from the local cargo cache.

use std::path::{Path, PathBuf};

/// The workspace lockfile this binary was built with.
const LOCKFILE: &str = include_str!("../../../../Cargo.lock");

const CARGO_TOML: &str = include_str!("template/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("template/lib.rs.tmpl");
const TEST_RS: &str = include_str!("template/test.rs.tmpl");
const README: &str = include_str!("template/README.md.tmpl");
const WASMPLUGIN: &str = include_str!("template/wasmplugin.yaml.tmpl");
const GITIGNORE: &str = include_str!("template/gitignore.tmpl");

/// Where this build of meshgate found `meshgate-sdk` (the repository's `sdk/`).
pub fn default_sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("sdk")
}

/// A name usable as a crate, a file and a Kubernetes resource name.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a usable plugin name: use lowercase letters, digits and '-', \
             starting with a letter (it names the crate and the WasmPlugin)"
        ))
    }
}

/// `rate-guard` → `RateGuard`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// Writes the crate into `parent/name` and returns its path. Refuses to write into a
/// folder that already has files.
pub fn new_plugin(name: &str, parent: &Path, sdk: &Path) -> Result<PathBuf, String> {
    validate_name(name)?;
    let sdk = sdk.canonicalize().map_err(|e| {
        format!(
            "meshgate-sdk not found at {} ({e}): pass --sdk with the path of a meshgate \
             checkout's sdk/ folder",
            sdk.display()
        )
    })?;
    if !sdk.join("Cargo.toml").is_file() || !sdk.join("testing").join("Cargo.toml").is_file() {
        return Err(format!(
            "{} does not look like meshgate's sdk/ folder (no Cargo.toml and testing/Cargo.toml)",
            sdk.display()
        ));
    }
    let dir = parent.join(name);
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .next()
            .is_some()
    {
        return Err(format!("{} already exists and is not empty", dir.display()));
    }
    let krate = name.replace('-', "_");
    let abs_dir = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
    let wasm = abs_dir
        .join("target/wasm32-wasip1/release")
        .join(format!("{krate}.wasm"));
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &krate)
            .replace("{{type}}", &type_name(name))
            .replace("{{sdk}}", &sdk.to_string_lossy())
            .replace("{{wasm}}", &wasm.to_string_lossy())
    };
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("Cargo.lock", LOCKFILE.to_string()),
        ("src/lib.rs", fill(LIB_RS)),
        ("tests/plugin.rs", fill(TEST_RS)),
        ("README.md", fill(README)),
        ("wasmplugin.yaml", fill(WASMPLUGIN)),
        (".gitignore", GITIGNORE.to_string()),
    ];
    for (path, content) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_crates_and_kubernetes() {
        assert!(validate_name("unit-guard2").is_ok());
        for bad in ["", "Unit", "2fa", "a_b", "a-", "a b", &"x".repeat(64)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(type_name("unit-guard2"), "UnitGuard2");
    }

    #[test]
    fn templates_are_filled_and_existing_folders_kept() {
        let tmp = std::env::temp_dir().join(format!("meshgate-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let dir = new_plugin("rate-guard", &tmp, &default_sdk_dir()).unwrap();
        for f in [
            "Cargo.toml",
            "Cargo.lock",
            "src/lib.rs",
            "tests/plugin.rs",
            "README.md",
            "wasmplugin.yaml",
        ] {
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            assert!(!text.contains("{{"), "{f} has an unfilled placeholder");
        }
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("meshgate_sdk::plugin!(RateGuard);"));
        let err = new_plugin("rate-guard", &tmp, &default_sdk_dir()).unwrap_err();
        assert!(err.contains("already exists"), "{err}");
        let err = new_plugin("other", &tmp, &tmp.join("nowhere")).unwrap_err();
        assert!(err.contains("--sdk"), "{err}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
