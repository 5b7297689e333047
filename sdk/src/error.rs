//! The SDK's error: any `std::error::Error` (or a message) converts into it with `?`.

use std::fmt;

/// An error a plugin callback returns. The SDK logs it with the plugin's name and then
/// answers 500 or lets the request through, per [`crate::OnError`].
pub struct Error {
    message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(message: impl fmt::Display) -> Error {
        Error {
            message: message.to_string(),
        }
    }

    /// A host call failed with `status` while doing `what`.
    pub(crate) fn host(what: &str, status: proxy_wasm::types::Status) -> Error {
        Error::new(format_args!("{what}: host answered {status:?}"))
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with what was being done.
    pub fn context(self, what: impl fmt::Display) -> Error {
        Error::new(format_args!("{what}: {}", self.message))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// Like anyhow: `Error` is not itself `std::error::Error`, so this blanket conversion
// does not collide with `From<T> for T`.
impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Error {
        Error::new(e)
    }
}

/// Returns early with an [`Error`] built from a format string: `bail!("no key {k}")`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::new(::core::format_args!($($arg)*)))
    };
}
