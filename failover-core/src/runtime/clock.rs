//! The runtime's clock: [`Moment`]s on tokio's clock, so that paused-clock tests drive the
//! supervisor and the observers.

use std::time::SystemTime;

use crate::model::Moment;

/// Now, as [`Moment::now`] but with the monotonic part from tokio's clock.
pub(crate) fn now() -> Moment {
    Moment {
        mono: tokio::time::Instant::now().into_std(),
        wall: SystemTime::now(),
    }
}
