//! The proxy-wasm ABI's numeric vocabulary (status, action, buffer, map and stream codes)
//! and version detection from a module's exports.

/// `proxy_*` host call results, as the SDKs decode them.
pub mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const BAD_ARGUMENT: i32 = 2;
    pub const INVALID_MEMORY_ACCESS: i32 = 6;
    pub const EMPTY: i32 = 7;
    pub const CAS_MISMATCH: i32 = 8;
    pub const INTERNAL_FAILURE: i32 = 10;
}

/// What a stream callback asks of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

impl Action {
    pub fn from_guest(v: i32) -> Action {
        // Any non-zero value stops iteration, as in Envoy (1 = StopIteration, 2..4 the
        // buffered variants of ABI 0.1.0).
        if v == 0 {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

pub mod buffer {
    pub const REQUEST_BODY: i32 = 0;
    pub const RESPONSE_BODY: i32 = 1;
    pub const HTTP_CALL_RESPONSE_BODY: i32 = 4;
    pub const VM_CONFIGURATION: i32 = 6;
    pub const PLUGIN_CONFIGURATION: i32 = 7;
}

pub mod map {
    pub const REQUEST_HEADERS: i32 = 0;
    pub const REQUEST_TRAILERS: i32 = 1;
    pub const RESPONSE_HEADERS: i32 = 2;
    pub const RESPONSE_TRAILERS: i32 = 3;
    pub const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
    pub const HTTP_CALL_RESPONSE_TRAILERS: i32 = 7;
}

pub mod stream_type {
    pub const HTTP_REQUEST: i32 = 0;
    pub const HTTP_RESPONSE: i32 = 1;
}

/// WASI errno values the hand-written preview1 functions return.
pub mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const NOSYS: i32 = 52;
}

/// The ABI a module was built against, from its `proxy_abi_version_*` export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiVersion {
    V0_1_0,
    /// 0.2.0 and 0.2.1 differ only in calls the host answers the same way.
    V0_2,
}

impl AbiVersion {
    /// `None` when the module exports no known `proxy_abi_version_*` function.
    pub fn detect<'a>(exports: impl IntoIterator<Item = &'a str>) -> Option<AbiVersion> {
        let mut found = None;
        for name in exports {
            match name {
                "proxy_abi_version_0_2_1" | "proxy_abi_version_0_2_0" => {
                    return Some(AbiVersion::V0_2)
                }
                "proxy_abi_version_0_1_0" => found = Some(AbiVersion::V0_1_0),
                _ => {}
            }
        }
        found
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn detects_versions_and_prefers_newest() {
        assert_eq!(
            AbiVersion::detect(["memory", "proxy_abi_version_0_2_1"]),
            Some(AbiVersion::V0_2)
        );
        assert_eq!(
            AbiVersion::detect(["proxy_abi_version_0_2_0"]),
            Some(AbiVersion::V0_2)
        );
        assert_eq!(
            AbiVersion::detect(["proxy_abi_version_0_1_0"]),
            Some(AbiVersion::V0_1_0)
        );
        assert_eq!(
            AbiVersion::detect(["proxy_abi_version_0_1_0", "proxy_abi_version_0_2_1"]),
            Some(AbiVersion::V0_2)
        );
        assert_eq!(AbiVersion::detect(["memory", "_start"]), None);
    }
}
