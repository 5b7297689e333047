//! Envoy's response flags (`UF`, `UH`, `NR`, ...): why a request ended the way it did,
//! as the `response_flags` label and `%RESPONSE_FLAGS%` print them.

use std::fmt::Write as _;

/// Envoy's response flags as a bit set; `Display` gives the short names joined by `,`,
/// or `-` when none is set.
#[derive(Clone, Copy, Debug, Default, Hash, PartialEq, Eq)]
pub struct ResponseFlags(pub u32);

macro_rules! response_flags {
    ($($name:ident = $bit:expr, $short:literal, $doc:literal;)*) => {
        impl ResponseFlags {
            $(#[doc = $doc] pub const $name: ResponseFlags = ResponseFlags(1 << $bit);)*
            const NAMES: &'static [(u32, &'static str)] = &[$((1 << $bit, $short)),*];
        }
    };
}

response_flags! {
    FAILED_LOCAL_HEALTHCHECK = 0, "LH", "No healthy upstream (local health check).";
    NO_HEALTHY_UPSTREAM = 1, "UH", "No healthy upstream host.";
    UPSTREAM_REQUEST_TIMEOUT = 2, "UT", "Upstream request timeout.";
    LOCAL_RESET = 3, "LR", "Connection local reset.";
    UPSTREAM_REMOTE_RESET = 4, "UR", "Upstream remote reset.";
    UPSTREAM_CONNECTION_FAILURE = 5, "UF", "Upstream connection failure.";
    UPSTREAM_CONNECTION_TERMINATION = 6, "UC", "Upstream connection termination.";
    UPSTREAM_OVERFLOW = 7, "UO", "Upstream overflow (circuit breaking).";
    NO_ROUTE_FOUND = 8, "NR", "No route configured.";
    DELAY_INJECTED = 9, "DI", "Request delayed by fault injection.";
    FAULT_INJECTED = 10, "FI", "Request aborted by fault injection.";
    RATE_LIMITED = 11, "RL", "Rate limited.";
    UNAUTHORIZED_EXTERNAL_SERVICE = 12, "UAEX", "Denied by an external authorization service.";
    RATELIMIT_SERVICE_ERROR = 13, "RLSE", "Rate limit service error.";
    DOWNSTREAM_CONNECTION_TERMINATION = 14, "DC", "Downstream connection termination.";
    UPSTREAM_RETRY_LIMIT_EXCEEDED = 15, "URX", "Upstream retry limit exceeded.";
    STREAM_IDLE_TIMEOUT = 16, "SI", "Stream idle timeout.";
    INVALID_ENVOY_REQUEST_HEADERS = 17, "IH", "Invalid request headers.";
    DOWNSTREAM_PROTOCOL_ERROR = 18, "DPE", "Downstream protocol error.";
    UPSTREAM_MAX_STREAM_DURATION_REACHED = 19, "UMSDR", "Upstream max stream duration reached.";
    RESPONSE_FROM_CACHE_FILTER = 20, "RFCF", "Response served from cache.";
    NO_FILTER_CONFIG_FOUND = 21, "NFCF", "No filter config found.";
    DURATION_TIMEOUT = 22, "DT", "Request or connection exceeded its max duration.";
    UPSTREAM_PROTOCOL_ERROR = 23, "UPE", "Upstream protocol error.";
    NO_CLUSTER_FOUND = 24, "NC", "Upstream cluster not found.";
    OVERLOAD_MANAGER = 25, "OM", "Overload manager terminated the request.";
    DNS_RESOLUTION_FAILURE = 26, "DF", "DNS resolution failed.";
    DOWNSTREAM_REMOTE_RESET = 27, "DR", "Downstream remote reset.";
}

impl ResponseFlags {
    pub const NONE: ResponseFlags = ResponseFlags(0);

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, other: ResponseFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flag for an Envoy short name (`UF`), if known.
    pub fn from_short_name(name: &str) -> Option<ResponseFlags> {
        Self::NAMES
            .iter()
            .find(|(_, short)| *short == name)
            .map(|(bit, _)| ResponseFlags(*bit))
    }
}

impl std::ops::BitOr for ResponseFlags {
    type Output = ResponseFlags;
    fn bitor(self, rhs: ResponseFlags) -> ResponseFlags {
        ResponseFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for ResponseFlags {
    fn bitor_assign(&mut self, rhs: ResponseFlags) {
        self.0 |= rhs.0;
    }
}

impl std::fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (bit, short) in Self::NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_char(',')?;
                }
                f.write_str(short)?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_like_envoy() {
        assert_eq!(ResponseFlags::NONE.to_string(), "-");
        assert_eq!(ResponseFlags::UPSTREAM_CONNECTION_FAILURE.to_string(), "UF");
        let both = ResponseFlags::NO_HEALTHY_UPSTREAM | ResponseFlags::UPSTREAM_REQUEST_TIMEOUT;
        assert_eq!(both.to_string(), "UH,UT");
        assert_eq!(
            ResponseFlags::from_short_name("FI"),
            Some(ResponseFlags::FAULT_INJECTED)
        );
        assert_eq!(ResponseFlags::from_short_name("ZZ"), None);
    }
}
