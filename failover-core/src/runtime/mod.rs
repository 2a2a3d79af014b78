//! The runtime (feature `runtime`): the supervisor that drives the arbiter on tokio, the
//! observers and the peer link they talk over, the built-in probes and notifiers.
//!
//! Everything here may do I/O and read clocks; nothing in the pure modules beside it may import
//! from here.

pub(crate) mod clock;
pub(crate) mod crypto;
// For the fuzz targets in `fuzz/` only: not an API.
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod notifiers;
pub(crate) mod observers;
pub mod peer;
pub mod probe;
pub(crate) mod supervisor;
