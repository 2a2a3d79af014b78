//! Each part of the daemon built from its config section, in one place: the specs and the policy,
//! the checks, the notifiers, the writers, the fence, the mirror, the zone and its server. The
//! daemon ([`crate::daemon`]) only assembles them.

pub mod access;
#[cfg(feature = "dns")]
pub mod arbiter_state;
#[cfg(feature = "dns")]
pub mod check;
#[cfg(feature = "dns")]
pub mod cluster;
#[cfg(feature = "dns")]
mod error;
#[cfg(feature = "dns")]
pub mod identity;
pub mod mirror;
pub mod mysql;
#[cfg(feature = "dns")]
pub mod notifier;
#[cfg(feature = "dns")]
pub mod overrides;
#[cfg(feature = "dns")]
pub mod writer;
#[cfg(feature = "dns")]
pub mod zone;

#[cfg(feature = "dns")]
pub use error::DaemonError;
