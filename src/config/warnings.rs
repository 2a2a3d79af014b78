//! Warnings: a config that is legal but probably not what the user wants.

use std::time::Duration;

use failover_core::OnPartition;

use super::check::CheckKind;
use super::Config;

impl Config {
    /// Warnings: legal but probably not what the user wants.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for check in &self.checks {
            if let CheckKind::Http(http) = &check.kind {
                if http.danger_accept_invalid_certs == Some(true) {
                    warnings.push(format!("check {:?} accepts any TLS certificate: anyone on the path can answer for the node", check.common.name));
                }
            }
            let (interval, timeout, fall, _) = self.check_timing(check);
            let detection = interval.saturating_mul(fall).saturating_add(timeout);
            if check.common.critical && detection > Duration::from_secs(120) {
                warnings.push(format!(
                    "check {:?} needs {} to detect a failure (interval × fall + timeout)",
                    check.common.name,
                    humantime::format_duration(detection)
                ));
            }
        }
        if let Some(admin) = &self.admin {
            if !admin.listen.ip().is_loopback() {
                warnings.push(format!("[admin] listen {} is not a loopback address: status is readable by anyone who can reach it", admin.listen));
            }
            if admin.plain_off_loopback() {
                warnings.push(format!("[admin] danger_plain_http: the bearer token crosses the network to {} in clear text (anyone on the path can take it and drain nodes): set tls = true", admin.listen));
            }
            if admin.token_file.is_none() {
                warnings.push(
                    "[admin] has no token_file: overrides (drain, force) are refused".to_owned(),
                );
            }
        }
        if self.nodes.len() < 2 {
            warnings.push("one node only: there is nothing to fail over to".to_owned());
        }
        if self.nodes.len() == 2 && self.witness.is_none() {
            warnings.push(match &self.cluster {
                None => "two nodes, each deciding alone: when the link between them breaks, each sees the other down and serves itself (split brain); add [cluster] and a [witness] in a third place".to_owned(),
                Some(_) => format!("two nodes and no witness: when the link between them breaks, on_partition = {} decides ({}); a [witness] in a third place breaks the tie", self.on_partition(), match self.on_partition() {
                    OnPartition::FailOver => "each serves itself",
                    OnPartition::Hold => "nothing changes, even if a node really died",
                }),
            });
        }
        if let (Some(_), Some(witness)) = (&self.cluster, &self.witness) {
            if witness.peer_address.is_none() {
                warnings.push(format!("the [witness] {:?} has no peer_address: it reports to the daemons, but their verdicts never reach it (its status shows them silent)", witness.name));
            }
        }
        for key in &self.zone.keys {
            if !self
                .zone
                .allow_transfer
                .iter()
                .any(|entry| entry.key.as_deref() == Some(key.name.as_str()))
            {
                warnings.push(format!("[[zone.keys]] {:?} is required by no allow_transfer entry: transfers are not signed with it (write {{ from = \"...\", key = {:?} }})", key.name, key.name));
            }
        }
        for record in &self.zone.records {
            if record.ttl > 60 {
                warnings.push(format!("managed name {:?} has ttl {} s: resolvers keep a dead answer that long (10 s is usual)", record.name, record.ttl));
            }
        }
        warnings
    }
}
