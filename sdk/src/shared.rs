//! Data shared by every instance of the plugin in the proxy (all streams, all
//! threads): counters and read-modify-write updates with compare-and-swap retry.
//!
//! Each instance has its own memory, so plain statics are per-instance. Shared data
//! lives in the host, scoped by the WasmPlugin's VM; updates use the host's CAS so two
//! instances never lose each other's writes.

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::{Error, Result};

/// How many times an update is retried when another instance wrote in between.
pub const MAX_CAS_RETRIES: usize = 32;

/// The current value and its CAS token (`None` when the key was never set).
pub fn get(key: &str) -> Result<(Option<Vec<u8>>, Option<u32>)> {
    hostcalls::get_shared_data(key).map_err(|s| Error::host("get shared data", s))
}

/// Sets `key` unconditionally.
pub fn set(key: &str, value: &[u8]) -> Result<()> {
    hostcalls::set_shared_data(key, Some(value), None)
        .map_err(|s| Error::host("set shared data", s))
}

/// Read-modify-write of `key`: `f` gets the current bytes (`None` if unset) and returns
/// the new value plus anything to hand back. Retried on CAS conflicts, so `f` must be
/// free of side effects. Returns `f`'s second value from the attempt that won.
pub fn update<T>(key: &str, mut f: impl FnMut(Option<&[u8]>) -> Result<(Vec<u8>, T)>) -> Result<T> {
    for _ in 0..MAX_CAS_RETRIES {
        let (current, cas) = get(key)?;
        let (next, out) = f(current.as_deref())?;
        // A never-set key has no CAS: the first writer sets it with cas 0 (no check).
        match hostcalls::set_shared_data(key, Some(&next), cas) {
            Ok(()) => return Ok(out),
            Err(Status::CasMismatch) => continue,
            Err(s) => return Err(Error::host("set shared data", s)),
        }
    }
    Err(Error::new(format_args!(
        "shared data {key:?}: still conflicting after {MAX_CAS_RETRIES} attempts"
    )))
}

/// Adds `delta` to the counter at `key` (8-byte little-endian, starting at 0) and
/// returns the new value.
pub fn increment(key: &str, delta: i64) -> Result<i64> {
    update(key, |current| {
        let now = decode_i64(current).saturating_add(delta);
        Ok((now.to_le_bytes().to_vec(), now))
    })
}

/// The counter at `key` (0 when unset or not a counter).
pub fn counter(key: &str) -> Result<i64> {
    Ok(decode_i64(get(key)?.0.as_deref()))
}

pub(crate) fn decode_i64(bytes: Option<&[u8]>) -> i64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, i64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn counters_decode_leniently() {
        assert_eq!(super::decode_i64(None), 0);
        assert_eq!(super::decode_i64(Some(&[1, 2])), 0);
        assert_eq!(super::decode_i64(Some(&(-5i64).to_le_bytes())), -5);
    }
}
