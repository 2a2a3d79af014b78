//! NOTIFY (RFC 1996): tells the secondaries that the zone changed, until they acknowledge it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use crate::error::DnsError;
use crate::exchange::{random_id, Exchange, ExchangeError, Step};
use crate::served::ServedZone;
use crate::xfr::apex_soa;

/// Longest wait for one acknowledgement; the wait doubles from `first_timeout` up to this.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Where and how NOTIFY messages are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecondariesConfig {
    /// The secondaries to send NOTIFY to (`192.0.2.53:53`). Empty: no NOTIFY at all.
    pub addresses: Vec<SocketAddr>,
    /// The local address to send from, when the secondaries only accept NOTIFY from one of
    /// several addresses of this host; by default the kernel picks by route.
    pub source: Option<IpAddr>,
    /// How long to wait for the first acknowledgement; each retry waits twice as long (at most 30 s).
    pub first_timeout: Duration,
    /// Sends of one serial to one secondary before giving up on it (a newer serial starts over).
    pub attempts: u32,
}

impl SecondariesConfig {
    /// Sends NOTIFY to `addresses`, waiting 1 s for the first acknowledgement, 5 sends per serial
    /// (1 + 2 + 4 + 8 + 16 s: a secondary away for half a minute still hears of the change).
    pub fn new(addresses: Vec<SocketAddr>) -> Self {
        Self {
            addresses,
            source: None,
            first_timeout: Duration::from_secs(1),
            attempts: 5,
        }
    }

    /// Sets the local address NOTIFY is sent from.
    pub fn with_source(mut self, source: IpAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// Sets the wait for the first acknowledgement.
    pub fn with_first_timeout(mut self, first_timeout: Duration) -> Self {
        self.first_timeout = first_timeout;
        self
    }

    /// Sets the sends per serial and secondary.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }
}

impl Default for SecondariesConfig {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// Sends NOTIFY for a [`ServedZone`] to its secondaries: at start, then on every serial change.
///
/// One task per secondary, owned by this value: [`shutdown`](Self::shutdown) stops them, and so
/// does dropping it. Each sends the current serial over UDP and resends with backoff until the
/// secondary acknowledges (a NOTIFY response with the same ID), at most
/// [`attempts`](SecondariesConfig::attempts) times; a newer serial replaces an unacknowledged one at
/// once. Failures are logged, never fatal: the secondaries' refresh timer is the fallback.
#[derive(Debug)]
pub struct Secondaries {
    tasks: JoinSet<()>,
}

impl Secondaries {
    /// Starts sending NOTIFY; must be called from inside a tokio runtime.
    pub fn start(zone: &ServedZone, config: &SecondariesConfig) -> Result<Self, DnsError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DnsError::NoRuntime)?;
        if config.attempts == 0 || config.first_timeout.is_zero() {
            return Err(DnsError::Config(
                "notify attempts and first_timeout must be above zero".to_owned(),
            ));
        }
        let origin = Name::from_ascii(zone.origin())
            .map_err(|error| DnsError::Config(format!("zone name: {error}")))?;
        let mut tasks = JoinSet::new();
        for &secondary in &config.addresses {
            let target = Secondary {
                zone: zone.clone(),
                origin: origin.clone(),
                address: secondary,
                source: config.source,
                first_timeout: config.first_timeout,
                attempts: config.attempts,
            };
            tasks.spawn_on(target.run(zone.watch_serial()), &runtime);
        }
        Ok(Self { tasks })
    }

    /// Stops every task and waits until they have finished.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

/// One secondary and how to send it NOTIFY.
struct Secondary {
    zone: ServedZone,
    origin: Name,
    address: SocketAddr,
    source: Option<IpAddr>,
    first_timeout: Duration,
    attempts: u32,
}

impl Secondary {
    /// Announces the current serial, then each new one, until the zone is gone or the task is aborted.
    async fn run(self, mut serials: watch::Receiver<u32>) {
        let mut serial = *serials.borrow_and_update();
        loop {
            let superseded = tokio::select! {
                () = self.announce_until_acknowledged(serial) => false,
                changed = serials.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    true
                }
            };
            if !superseded && serials.changed().await.is_err() {
                return;
            }
            serial = *serials.borrow_and_update();
        }
    }

    async fn announce_until_acknowledged(&self, serial: u32) {
        let mut wait = self.first_timeout;
        for attempt in 1..=self.attempts {
            let deadline = Instant::now() + wait;
            match self.attempt(serial, deadline).await {
                Ok(ResponseCode::NoError) => {
                    tracing::debug!(secondary = %self.address, zone = %self.origin, serial, attempt,
                        "notify acknowledged");
                    return;
                }
                Ok(rcode) => {
                    // Resending will not change its mind: its configuration must change.
                    tracing::warn!(secondary = %self.address, zone = %self.origin, serial, %rcode,
                        "secondary rejected the notify: allow notify from this server there");
                    return;
                }
                Err(reason) => {
                    tracing::debug!(secondary = %self.address, zone = %self.origin, serial, attempt,
                        %reason, "notify not acknowledged");
                }
            }
            sleep_until(deadline).await;
            wait = (wait * 2).min(MAX_WAIT);
        }
        tracing::warn!(secondary = %self.address, zone = %self.origin, serial,
            attempts = self.attempts,
            "secondary never acknowledged the notify; it will see the change at its next refresh");
    }

    /// Sends one NOTIFY and waits until `deadline` for its acknowledgement.
    async fn attempt(&self, serial: u32, deadline: Instant) -> Result<ResponseCode, String> {
        let message = self.message(random_id(), serial)?;
        let response = Exchange::new(self.address, &message)
            .source(self.source)
            .udp(deadline)
            .await
            .map_err(|error| match error {
                ExchangeError::Io { step, source, .. } => match step {
                    Step::Bind(local) => format!("cannot bind {local}: {source}"),
                    Step::Connect => format!("cannot reach: {source}"),
                    Step::Send => format!("send failed: {source}"),
                    Step::Receive => format!("receive failed: {source}"),
                },
                ExchangeError::Timeout(_) => "no answer in time".to_owned(),
                other => other.to_string(),
            })?;
        Ok(response.message.response_code)
    }

    /// The NOTIFY message: AA, the zone's SOA as question, and the current SOA as a hint.
    fn message(&self, id: u16, serial: u32) -> Result<Vec<u8>, String> {
        let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
        message.metadata.authoritative = true;
        message.add_query(Query::query(self.origin.clone(), RecordType::SOA));
        let snapshot = self.zone.snapshot();
        // Only when it is the serial being announced: a newer one will be announced by itself.
        if snapshot.serial == serial {
            if let Some(soa) = apex_soa(&snapshot.data) {
                message.add_answer(soa.clone());
            }
        }
        message
            .to_vec()
            .map_err(|error| format!("cannot encode the notify: {error}"))
    }
}
