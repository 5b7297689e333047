//! Router owns the compiled snapshot: building it from a ConfigSet and answering
//! "which rule and destination does this request take" without allocating.

pub mod actions;
pub mod compile;
pub mod explain;
pub mod lookup;
pub mod matching;
pub mod snapshot;

pub use actions::pick_weighted;
pub use compile::{compile, Compiled};
pub use matching::{Caller, Mismatch};
pub use snapshot::*;
