//! Router owns the compiled snapshot: building it from a ConfigSet and answering
//! "which rule and destination does this request take" without allocating.

pub mod snapshot;

pub use snapshot::*;
