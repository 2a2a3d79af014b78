//! Bounded waits: poll a condition until it holds, fail naming what was awaited after a limit.

use std::time::Duration;

/// How long to wait for a condition and how often to look.
///
/// A `Duration` converts into a `Wait` that looks every 100 ms.
#[derive(Clone, Copy, Debug)]
pub struct Wait {
    limit: Duration,
    every: Duration,
}

impl Wait {
    /// Waits up to `limit`, looking every 100 ms.
    pub const fn up_to(limit: Duration) -> Self {
        Self {
            limit,
            every: Duration::from_millis(100),
        }
    }

    /// Looks every `interval` instead.
    pub const fn every(self, interval: Duration) -> Self {
        Self {
            every: interval,
            ..self
        }
    }

    /// The limit.
    pub const fn limit(&self) -> Duration {
        self.limit
    }
}

impl From<Duration> for Wait {
    fn from(limit: Duration) -> Self {
        Self::up_to(limit)
    }
}

/// Polls `condition` until it holds; panics after the limit with a message naming `what`.
///
/// Time is tokio's, so on a paused clock the limit is virtual time.
pub async fn eventually(wait: impl Into<Wait>, what: &str, mut condition: impl FnMut() -> bool) {
    let wait = wait.into();
    let deadline = tokio::time::Instant::now() + wait.limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {:?}: {what}",
            wait.limit
        );
        tokio::time::sleep(wait.every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn it_returns_once_the_condition_holds() {
        let mut looks = 0;
        eventually(Duration::from_secs(5), "the third look", || {
            looks += 1;
            looks == 3
        })
        .await;
        assert_eq!(looks, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "not within 200ms: the moon to turn blue")]
    async fn it_gives_up_after_its_limit_naming_what_it_waited_for() {
        let wait = Wait::up_to(Duration::from_millis(200)).every(Duration::from_millis(20));
        eventually(wait, "the moon to turn blue", || false).await;
    }
}
