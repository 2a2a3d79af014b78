//! Zone writers that steer another name server: a BIND zone file plus reload, and RFC 2136 updates.
//!
//! Both take the same [`ManagedName`](failover_core::ManagedName)s as
//! [`ServedZone`](crate::ServedZone) and replace the A and AAAA RRsets of each name the
//! publication carries; names it leaves out keep their records.

mod dynamic_update;
mod managed;
mod steps;
mod zone_file;

pub use dynamic_update::{DynamicUpdateOptions, DynamicUpdateWriter};
pub use steps::DEFAULT_STEP_TIMEOUT;
pub use zone_file::{default_reload_command, ZoneFileOptions, ZoneFileWriter};
