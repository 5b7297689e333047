//! Reading a plugin's module from its WasmPlugin `url` and checking its `sha256`.

use std::sync::Arc;

/// Reads `url` (`file:///abs/path` or a plain path) and verifies `sha256` (hex) when
/// given. Remote schemes fail with an error that says what to do instead.
pub fn fetch_module(url: &str, sha256: Option<&str>) -> Result<Arc<[u8]>, String> {
    let path = if let Some(rest) = url.strip_prefix("file://") {
        rest
    } else if url.contains("://") {
        let scheme = url.split("://").next().unwrap_or_default();
        return Err(format!(
            "url {url:?}: {scheme}:// modules are not fetched by this proxy; download the \
             module and set url to file:///path/to/plugin.wasm"
        ));
    } else if url.is_empty() {
        return Err("url is empty: set it to file:///path/to/plugin.wasm".into());
    } else {
        url
    };
    let bytes = std::fs::read(path).map_err(|e| format!("url {url:?}: cannot read {path}: {e}"))?;
    if let Some(expected) = sha256.map(str::trim).filter(|s| !s.is_empty()) {
        let actual = sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(format!(
                "url {url:?}: sha256 mismatch: the file has {actual}, the WasmPlugin expects {expected}"
            ));
        }
    }
    Ok(bytes.into())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_file_urls_and_checks_sha256() {
        let dir = std::env::temp_dir().join(format!("meshgate-fetch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.wasm");
        std::fs::write(&file, b"\0asm").unwrap();
        let url = format!("file://{}", file.display());
        let good = sha256_hex(b"\0asm");
        assert_eq!(&*fetch_module(&url, Some(&good)).unwrap(), b"\0asm");
        assert_eq!(
            &*fetch_module(file.to_str().unwrap(), None).unwrap(),
            b"\0asm"
        );
        let err = fetch_module(&url, Some(&"0".repeat(64))).unwrap_err();
        assert!(err.contains("sha256 mismatch"), "{err}");
        let err = fetch_module("https://example.invalid/p.wasm", None).unwrap_err();
        assert!(err.contains("file://"), "{err}");
        let err =
            fetch_module(&format!("file://{}/missing.wasm", dir.display()), None).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
