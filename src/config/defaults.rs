//! The defaults the config takes from the libraries that own them, gathered in one place: each
//! serde default function of the config returns one of these.
//!
//! A library behind a feature that is off cannot lend its constant; then the value below stands
//! in (the section is refused when it is used anyway), and a test with every feature on keeps it
//! equal to the library's.

pub use failover_core::{
    DEFAULT_BATCH_WINDOW, DEFAULT_DAMPING_MAX_CHANGES, DEFAULT_DAMPING_WINDOW,
    DEFAULT_DELIVERY_TIMEOUT, DEFAULT_FAILBACK_AFTER, DEFAULT_FALL, DEFAULT_OBSERVER_TIMEOUT,
    DEFAULT_PROBE_INTERVAL, DEFAULT_PROBE_JITTER, DEFAULT_PROBE_TIMEOUT, DEFAULT_RISE,
};

#[cfg(feature = "dns")]
pub use failover_dns::{
    DEFAULT_ERRORS_PER_SECOND, DEFAULT_IPV4_PREFIX, DEFAULT_IPV6_PREFIX,
    DEFAULT_RESPONSES_PER_SECOND, DEFAULT_SLIP, DEFAULT_STEP_TIMEOUT, DEFAULT_UDP_WORKERS,
};
#[cfg(not(feature = "dns"))]
pub use off::{
    DEFAULT_ERRORS_PER_SECOND, DEFAULT_IPV4_PREFIX, DEFAULT_IPV6_PREFIX,
    DEFAULT_RESPONSES_PER_SECOND, DEFAULT_SLIP, DEFAULT_STEP_TIMEOUT, DEFAULT_UDP_WORKERS,
};

#[cfg(feature = "mysql")]
pub use failover_mysql::{
    DEFAULT_CALL_TIMEOUT as DEFAULT_MYSQL_TIMEOUT, DEFAULT_MAX_LAG as DEFAULT_REPLICATION_MAX_LAG,
    DEFAULT_MAX_PROMOTE_LAG, DEFAULT_PORT as DEFAULT_MYSQL_PORT, DEFAULT_PROMOTE_AFTER_DOWN,
    DEFAULT_RETRY_AFTER,
};
#[cfg(not(feature = "mysql"))]
pub use off::{
    DEFAULT_MAX_PROMOTE_LAG, DEFAULT_MYSQL_PORT, DEFAULT_MYSQL_TIMEOUT, DEFAULT_PROMOTE_AFTER_DOWN,
    DEFAULT_REPLICATION_MAX_LAG, DEFAULT_RETRY_AFTER,
};

#[cfg(feature = "sync")]
pub use failover_sync::live::{
    DEFAULT_COALESCE, DEFAULT_MAX_DELETE_SHARE, DEFAULT_MAX_LAG as DEFAULT_MIRROR_MAX_LAG,
    DEFAULT_RESCAN_INTERVAL,
};
#[cfg(feature = "sync")]
pub use failover_sync::{DEFAULT_KEEP_VERSIONS_FOR, DEFAULT_VERSIONS_MAX_BYTES};
#[cfg(not(feature = "sync"))]
pub use off::{
    DEFAULT_COALESCE, DEFAULT_KEEP_VERSIONS_FOR, DEFAULT_MAX_DELETE_SHARE, DEFAULT_MIRROR_MAX_LAG,
    DEFAULT_RESCAN_INTERVAL, DEFAULT_VERSIONS_MAX_BYTES,
};

/// `[mirror] port`'s default: the daemon's own choice, beside the peer link's usual 8054.
pub const DEFAULT_MIRROR_PORT: u16 = 8055;

/// `[mirror] max_delete`'s default: the library's share, in percent.
pub fn max_delete_percent() -> u32 {
    (DEFAULT_MAX_DELETE_SHARE * 100.0).round() as u32
}

/// Stand-ins for the constants of the libraries whose feature is off (see the module's doc).
#[allow(dead_code)] // Each feature that is on leaves its part unused.
mod off {
    use std::time::Duration;

    /// Stands in for `failover_dns::DEFAULT_STEP_TIMEOUT`.
    pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);
    /// Stands in for `failover_dns::DEFAULT_UDP_WORKERS`.
    pub const DEFAULT_UDP_WORKERS: usize = 1;
    /// Stands in for `failover_dns::DEFAULT_RESPONSES_PER_SECOND`.
    pub const DEFAULT_RESPONSES_PER_SECOND: u32 = 100;
    /// Stands in for `failover_dns::DEFAULT_ERRORS_PER_SECOND`.
    pub const DEFAULT_ERRORS_PER_SECOND: u32 = 20;
    /// Stands in for `failover_dns::DEFAULT_SLIP`.
    pub const DEFAULT_SLIP: u32 = 2;
    /// Stands in for `failover_dns::DEFAULT_IPV4_PREFIX`.
    pub const DEFAULT_IPV4_PREFIX: u8 = 24;
    /// Stands in for `failover_dns::DEFAULT_IPV6_PREFIX`.
    pub const DEFAULT_IPV6_PREFIX: u8 = 56;
    /// Stands in for `failover_mysql::DEFAULT_PORT`.
    pub const DEFAULT_MYSQL_PORT: u16 = 3306;
    /// Stands in for `failover_mysql::DEFAULT_CALL_TIMEOUT`.
    pub const DEFAULT_MYSQL_TIMEOUT: Duration = Duration::from_secs(5);
    /// Stands in for `failover_mysql::DEFAULT_MAX_LAG`.
    pub const DEFAULT_REPLICATION_MAX_LAG: Duration = Duration::from_secs(30);
    /// Stands in for `failover_mysql::DEFAULT_MAX_PROMOTE_LAG`.
    pub const DEFAULT_MAX_PROMOTE_LAG: Duration = Duration::from_secs(10);
    /// Stands in for `failover_mysql::DEFAULT_PROMOTE_AFTER_DOWN`.
    pub const DEFAULT_PROMOTE_AFTER_DOWN: Duration = Duration::from_secs(300);
    /// Stands in for `failover_mysql::DEFAULT_RETRY_AFTER`.
    pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
    /// Stands in for `failover_sync::live::DEFAULT_COALESCE`.
    pub const DEFAULT_COALESCE: Duration = Duration::from_millis(100);
    /// Stands in for `failover_sync::live::DEFAULT_RESCAN_INTERVAL`.
    pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(3600);
    /// Stands in for `failover_sync::live::DEFAULT_MAX_DELETE_SHARE`.
    pub const DEFAULT_MAX_DELETE_SHARE: f64 = 0.5;
    /// Stands in for `failover_sync::live::DEFAULT_MAX_LAG`.
    pub const DEFAULT_MIRROR_MAX_LAG: Duration = Duration::from_secs(60);
    /// Stands in for `failover_sync::DEFAULT_KEEP_VERSIONS_FOR`.
    pub const DEFAULT_KEEP_VERSIONS_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Stands in for `failover_sync::DEFAULT_VERSIONS_MAX_BYTES`.
    pub const DEFAULT_VERSIONS_MAX_BYTES: u64 = 1 << 30;
}

#[cfg(all(test, feature = "dns", feature = "mysql", feature = "sync"))]
mod tests {
    use super::*;

    #[test]
    fn the_stand_ins_equal_the_libraries_defaults() {
        assert_eq!(off::DEFAULT_STEP_TIMEOUT, DEFAULT_STEP_TIMEOUT);
        assert_eq!(off::DEFAULT_UDP_WORKERS, DEFAULT_UDP_WORKERS);
        assert_eq!(
            off::DEFAULT_RESPONSES_PER_SECOND,
            DEFAULT_RESPONSES_PER_SECOND
        );
        assert_eq!(off::DEFAULT_ERRORS_PER_SECOND, DEFAULT_ERRORS_PER_SECOND);
        assert_eq!(off::DEFAULT_SLIP, DEFAULT_SLIP);
        assert_eq!(off::DEFAULT_IPV4_PREFIX, DEFAULT_IPV4_PREFIX);
        assert_eq!(off::DEFAULT_IPV6_PREFIX, DEFAULT_IPV6_PREFIX);
        assert_eq!(off::DEFAULT_MYSQL_PORT, DEFAULT_MYSQL_PORT);
        assert_eq!(off::DEFAULT_MYSQL_TIMEOUT, DEFAULT_MYSQL_TIMEOUT);
        assert_eq!(
            off::DEFAULT_REPLICATION_MAX_LAG,
            DEFAULT_REPLICATION_MAX_LAG
        );
        assert_eq!(off::DEFAULT_MAX_PROMOTE_LAG, DEFAULT_MAX_PROMOTE_LAG);
        assert_eq!(off::DEFAULT_PROMOTE_AFTER_DOWN, DEFAULT_PROMOTE_AFTER_DOWN);
        assert_eq!(off::DEFAULT_RETRY_AFTER, DEFAULT_RETRY_AFTER);
        assert_eq!(off::DEFAULT_COALESCE, DEFAULT_COALESCE);
        assert_eq!(off::DEFAULT_RESCAN_INTERVAL, DEFAULT_RESCAN_INTERVAL);
        assert_eq!(off::DEFAULT_MAX_DELETE_SHARE, DEFAULT_MAX_DELETE_SHARE);
        assert_eq!(off::DEFAULT_MIRROR_MAX_LAG, DEFAULT_MIRROR_MAX_LAG);
        assert_eq!(off::DEFAULT_KEEP_VERSIONS_FOR, DEFAULT_KEEP_VERSIONS_FOR);
        assert_eq!(off::DEFAULT_VERSIONS_MAX_BYTES, DEFAULT_VERSIONS_MAX_BYTES);
    }
}
