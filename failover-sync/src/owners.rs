//! Owners and groups: how the mirror keeps them across the two servers ([`Owners`]), the
//! account look-ups it maps names with ([`Accounts`]), and a replica's side of it.
//!
//! **By name, numbers as the fallback (the default).** Between two servers built alike, the
//! owner people mean is `www-data` or `deploy`, whatever number each server gave it; rsync
//! maps by name the same way unless told `--numeric-ids`. A scan records the numeric ids and,
//! with [`Owners::Names`], their names on that server; two sides name the same owner when the
//! names match, or, when either side has no name for its id, when the numbers match. A file is
//! installed with the receiver's id for the sender's name, or the sender's number when the
//! receiver has no account of that name (said once per name).
//!
//! **Conflicts.** An owner change is a change like a mode change: made on one side, it
//! crosses; made on both (different owners, same bytes), no conflict copy is made: the version
//! with the newer mtime wins, and on equal mtimes (a `chown` does not move the mtime) the node
//! whose name sorts first. An owner change on one side and an edit on the other are two
//! versions: the usual conflict rule keeps both.
//!
//! **Only as root.** Only root (precisely: a process with `CAP_CHOWN`) may give a file to
//! another user. A replica that cannot keeps no owners (its files belong to the user it runs
//! as); the engine then keeps owners on neither side that run, so that nothing looks changed
//! forever, and a full run says so once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Owner};

/// How the mirror keeps owners and groups (when both replicas run as root). In a config file:
/// `"names"`, `"numeric"` or `"off"` (serde and [`std::str::FromStr`] read those words).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Owners {
    /// By user and group name, the number when either side has no name for it (rsync's
    /// default). The default: between servers built alike, names are what people mean.
    #[default]
    Names,
    /// By number, whatever the names (rsync's `--numeric-ids`): for servers whose accounts
    /// share numbers but not names, or have no names (containers).
    Numeric,
    /// Not kept: every file belongs to the user the mirror runs as (the behaviour before
    /// owners were kept).
    Off,
}

impl Owners {
    /// Reads `names`, `numeric` or `off` (what a config file says).
    pub fn parse(text: &str) -> Result<Owners, String> {
        match text {
            "names" => Ok(Owners::Names),
            "numeric" => Ok(Owners::Numeric),
            "off" => Ok(Owners::Off),
            other => Err(format!(
                "owners = {other:?}: expected \"names\" (the default), \"numeric\" or \"off\""
            )),
        }
    }

    /// The word [`Owners::parse`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Owners::Names => "names",
            Owners::Numeric => "numeric",
            Owners::Off => "off",
        }
    }
}

impl std::str::FromStr for Owners {
    type Err = String;

    fn from_str(text: &str) -> Result<Owners, String> {
        Owners::parse(text)
    }
}

impl std::fmt::Display for Owners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Account look-ups between ids and names.
pub trait Accounts: Send + Sync {
    /// The name of user `uid`.
    fn user_name(&self, uid: u32) -> Option<String>;
    /// The name of group `gid`.
    fn group_name(&self, gid: u32) -> Option<String>;
    /// The id of the user `name`.
    fn user_id(&self, name: &str) -> Option<u32>;
    /// The id of the group `name`.
    fn group_id(&self, name: &str) -> Option<u32>;
}

/// The system's accounts (the C library's `getpwuid_r` and friends: `/etc/passwd`, LDAP, ...
/// as NSS is set up).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemAccounts;

impl Accounts for SystemAccounts {
    fn user_name(&self, uid: u32) -> Option<String> {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    }

    fn group_name(&self, gid: u32) -> Option<String> {
        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
            .ok()
            .flatten()
            .map(|g| g.name)
    }

    fn user_id(&self, name: &str) -> Option<u32> {
        nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    }

    fn group_id(&self, name: &str) -> Option<u32> {
        nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    }
}

/// Accounts from fixed tables: what a test uses to give two replicas on one machine different
/// numbers for the same names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountTable {
    /// `(uid, name)` of each user.
    pub users: Vec<(u32, String)>,
    /// `(gid, name)` of each group.
    pub groups: Vec<(u32, String)>,
}

impl Accounts for AccountTable {
    fn user_name(&self, uid: u32) -> Option<String> {
        self.users.iter().find(|u| u.0 == uid).map(|u| u.1.clone())
    }

    fn group_name(&self, gid: u32) -> Option<String> {
        self.groups.iter().find(|g| g.0 == gid).map(|g| g.1.clone())
    }

    fn user_id(&self, name: &str) -> Option<u32> {
        self.users.iter().find(|u| u.1 == name).map(|u| u.0)
    }

    fn group_id(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|g| g.1 == name).map(|g| g.0)
    }
}

/// Whether this process may give files to other users: it has `CAP_CHOWN` in its effective
/// set (root has it, unless a container or a systemd unit dropped it; a service user can be
/// given it). Read from `/proc/self/status`; without `/proc`, whether it runs as root.
pub fn can_keep_owners() -> bool {
    const CAP_CHOWN: u64 = 1 << 0;
    let effective = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
            u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
        });
    match effective {
        Some(caps) => caps & CAP_CHOWN != 0,
        None => nix::unistd::geteuid().is_root(),
    }
}

/// A replica's side: the mode of the current conversation, the look-ups (cached for the
/// conversation: an account added between runs is seen by the next one).
pub(crate) struct OwnerMap {
    mode: Owners,
    accounts: Arc<dyn Accounts>,
    user_names: HashMap<u32, Option<Arc<str>>>,
    group_names: HashMap<u32, Option<Arc<str>>>,
    user_ids: HashMap<String, Option<u32>>,
    group_ids: HashMap<String, Option<u32>>,
    /// Names already reported as unknown here (said once each).
    unknown: BTreeSet<String>,
}

impl OwnerMap {
    /// Keeps no owners until a conversation asks for them.
    pub(crate) fn new(accounts: Arc<dyn Accounts>) -> Self {
        OwnerMap {
            mode: Owners::Off,
            accounts,
            user_names: HashMap::new(),
            group_names: HashMap::new(),
            user_ids: HashMap::new(),
            group_ids: HashMap::new(),
            unknown: BTreeSet::new(),
        }
    }

    /// Starts a conversation in `mode`, with fresh caches.
    pub(crate) fn start(&mut self, mode: Owners) {
        self.mode = mode;
        self.user_names.clear();
        self.group_names.clear();
        self.user_ids.clear();
        self.group_ids.clear();
    }

    /// Replaces the look-ups.
    pub(crate) fn set_accounts(&mut self, accounts: Arc<dyn Accounts>) {
        self.accounts = accounts;
        self.start(self.mode);
    }

    /// Makes a scanned entry (numeric owner from `stat`) what the other side is shown: no
    /// owner when owners are not kept, the names added when they are kept by name.
    pub(crate) fn present(&mut self, entry: &mut Entry) {
        match self.mode {
            Owners::Off => entry.owner = None,
            Owners::Numeric => {
                if let Some(owner) = &mut entry.owner {
                    owner.user = None;
                    owner.group = None;
                }
            }
            Owners::Names => {
                if let Some(owner) = &mut entry.owner {
                    let accounts = &self.accounts;
                    owner.user = self
                        .user_names
                        .entry(owner.uid)
                        .or_insert_with(|| accounts.user_name(owner.uid).map(Arc::from))
                        .clone();
                    owner.group = self
                        .group_names
                        .entry(owner.gid)
                        .or_insert_with(|| accounts.group_name(owner.gid).map(Arc::from))
                        .clone();
                }
            }
        }
    }

    /// The local `(uid, gid)` to give a path that must have `owner` (as the other side named
    /// it); `None` when owners are not kept (or not known).
    pub(crate) fn resolve(&mut self, owner: Option<&Owner>) -> Option<(u32, u32)> {
        let owner = owner?;
        match self.mode {
            Owners::Off => None,
            Owners::Numeric => Some((owner.uid, owner.gid)),
            Owners::Names => {
                let accounts = self.accounts.clone();
                let uid = match &owner.user {
                    Some(name) => {
                        let found = *self
                            .user_ids
                            .entry(name.to_string())
                            .or_insert_with(|| accounts.user_id(name));
                        found.unwrap_or_else(|| self.unknown_name("user", name, owner.uid))
                    }
                    None => owner.uid,
                };
                let gid = match &owner.group {
                    Some(name) => {
                        let found = *self
                            .group_ids
                            .entry(name.to_string())
                            .or_insert_with(|| accounts.group_id(name));
                        found.unwrap_or_else(|| self.unknown_name("group", name, owner.gid))
                    }
                    None => owner.gid,
                };
                Some((uid, gid))
            }
        }
    }

    /// The number to use for a name this server has no account of (said once per name).
    fn unknown_name(&mut self, what: &str, name: &str, id: u32) -> u32 {
        if self.unknown.insert(format!("{what} {name}")) {
            tracing::warn!(
                "mirror: no {what} named {name:?} on this server; its files get the other \
                 side's number {id} (create the {what} here to keep them by name)"
            );
        }
        id
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::entry::{Kind, StatKey};

    fn table(users: &[(u32, &str)], groups: &[(u32, &str)]) -> Arc<dyn Accounts> {
        Arc::new(AccountTable {
            users: users.iter().map(|(i, n)| (*i, (*n).to_owned())).collect(),
            groups: groups.iter().map(|(i, n)| (*i, (*n).to_owned())).collect(),
        })
    }

    fn owned(uid: u32, gid: u32) -> Entry {
        Entry {
            kind: Kind::Dir,
            mode: 0o755,
            owner: Some(Box::new(Owner::numeric(uid, gid))),
            mtime_ns: 0,
            stat: StatKey::default(),
            xattrs: None,
        }
    }

    #[test]
    fn names_map_to_the_receivers_numbers() {
        // `deploy` is 1001 on A and 2002 on B; group `web` is 33 on A and 44 on B.
        let mut a = OwnerMap::new(table(&[(1001, "deploy")], &[(33, "web")]));
        let mut b = OwnerMap::new(table(&[(2002, "deploy")], &[(44, "web")]));
        a.start(Owners::Names);
        b.start(Owners::Names);
        let (mut on_a, mut on_b) = (owned(1001, 33), owned(2002, 44));
        a.present(&mut on_a);
        b.present(&mut on_b);
        assert_eq!(
            on_a.owner.as_deref().unwrap().user.as_deref(),
            Some("deploy")
        );
        assert!(on_a.same_content(&on_b), "same names, different numbers");
        assert_eq!(b.resolve(on_a.owner.as_deref()), Some((2002, 44)));
        assert_eq!(a.resolve(on_b.owner.as_deref()), Some((1001, 33)));
        // A chown on A to another owner is a difference.
        let mut chowned = owned(0, 33);
        a.present(&mut chowned);
        assert!(!chowned.same_content(&on_b));
    }

    #[test]
    fn a_name_unknown_here_falls_back_to_the_number() {
        let mut a = OwnerMap::new(table(&[(1001, "deploy")], &[]));
        let mut b = OwnerMap::new(table(&[], &[]));
        a.start(Owners::Names);
        b.start(Owners::Names);
        let mut on_a = owned(1001, 4242);
        a.present(&mut on_a);
        assert_eq!(b.resolve(on_a.owner.as_deref()), Some((1001, 4242)));
        // Installed so, B's scan finds 1001 without a name: the same owner, no churn.
        let mut on_b = owned(1001, 4242);
        b.present(&mut on_b);
        assert!(on_a.same_content(&on_b));
    }

    #[test]
    fn numeric_and_off() {
        let mut a = OwnerMap::new(table(&[(1001, "deploy")], &[]));
        let mut b = OwnerMap::new(table(&[(2002, "deploy")], &[]));
        a.start(Owners::Numeric);
        b.start(Owners::Numeric);
        let (mut on_a, mut on_b) = (owned(1001, 1), owned(2002, 1));
        a.present(&mut on_a);
        b.present(&mut on_b);
        assert!(!on_a.same_content(&on_b), "numbers differ");
        assert_eq!(b.resolve(on_a.owner.as_deref()), Some((1001, 1)));
        a.start(Owners::Off);
        let mut off = owned(1001, 1);
        a.present(&mut off);
        assert_eq!(off.owner, None);
        assert_eq!(a.resolve(on_a.owner.as_deref()), None);
        assert!(off.same_content(&on_b), "an unknown owner agrees with any");
        assert_eq!(Owners::parse("numeric"), Ok(Owners::Numeric));
        assert!(Owners::parse("by-name").is_err());
    }
}
