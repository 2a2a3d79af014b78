//! The MariaDB servers of `failover-testkit` seen through failover-mysql's types: the test
//! accounts as credentials, a server as an endpoint and as a member of the pair.
#![allow(dead_code)] // test helpers; not every test uses every one

use failover_mysql::{Credentials, Endpoint, PairMember};
pub use failover_testkit::mariadb::{pair, Mariadb, ADMIN, MONITOR, REPLICATION};

pub fn admin() -> Credentials {
    Credentials::new(ADMIN.0, ADMIN.1)
}

pub fn monitor() -> Credentials {
    Credentials::new(MONITOR.0, MONITOR.1)
}

pub fn replication() -> Credentials {
    Credentials::new(REPLICATION.0, REPLICATION.1)
}

/// A test server as failover-mysql addresses it.
pub trait AsMember {
    /// Its address and port.
    fn endpoint(&self) -> Endpoint;
    /// It, named, as a member of the pair.
    fn member(&self) -> PairMember;
}

impl AsMember for Mariadb {
    fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.address, self.port)
    }

    fn member(&self) -> PairMember {
        PairMember::new(&self.name, self.endpoint())
    }
}
