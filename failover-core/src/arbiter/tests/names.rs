//! Names with different policies in one zone: `www` and `@` active-passive, `api` on every live
//! node of a subset.
//!
//! Unit tests only: `arbiter/tests.rs` declares this module, itself under `#[cfg(test)]`.

use super::*;
use crate::arbiter::NamedPolicy;

/// Three nodes; `@` and `www` follow the default (active-passive master, slave); `api` follows
/// `pool`, every live node among slave and spare.
fn three_nodes() -> ClusterSpec {
    let mut spec = spec(AllDown::KeepLast);
    spec.nodes
        .push(NodeSpec::new("spare", ["10.3.0.3".parse().unwrap()]));
    spec.managed
        .push(ManagedName::new("api", 30).with_policy("pool"));
    spec
}

fn pool() -> Vec<NamedPolicy> {
    vec![NamedPolicy::new("pool", Box::new(AllHealthy)).among(names(&["slave", "spare"]))]
}

fn three(spec: ClusterSpec) -> Script {
    Script {
        arbiter: Arbiter::with_policies(spec, auto_30s(), pool()).unwrap(),
        now: Moment::now(),
        actions: Vec::new(),
    }
}

/// One probe round of `http` on the three nodes, then one interval.
fn round3(s: &mut Script, master: bool, slave: bool, spare: bool) -> Vec<Action> {
    let mut actions = s.probe("master", "http", master);
    actions.extend(s.probe("slave", "http", slave));
    actions.extend(s.probe("spare", "http", spare));
    s.advance(INTERVAL);
    actions
}

/// Each managed name's addresses in the last publication.
fn addresses(s: &Script) -> Vec<(String, Vec<String>)> {
    let publication = s
        .actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    publication
        .answers
        .iter()
        .map(|a| {
            (
                a.name.clone(),
                a.addresses.iter().map(ToString::to_string).collect(),
            )
        })
        .collect()
}

fn answers(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    list.iter()
        .map(|(name, addresses)| {
            (
                (*name).to_owned(),
                addresses.iter().map(|a| (*a).to_owned()).collect(),
            )
        })
        .collect()
}

/// The answer events notified, as text.
fn events(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(e)
                if ["failover", "failback", "answer-changed", "all-down"].contains(&e.name()) =>
            {
                Some(e.to_string())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn names_with_their_own_policy_fail_over_and_back_each_by_its_rules() {
    let mut s = three(three_nodes());
    let actions = round3(&mut s, true, true, true);
    assert_eq!(
        published(&actions).len(),
        1,
        "one publication for every name"
    );
    assert_eq!(
        addresses(&s),
        answers(&[
            ("@", &["10.1.0.1"]),
            ("www", &["10.1.0.1"]),
            ("api", &["10.2.0.2", "10.3.0.3"]),
        ])
    );
    assert_eq!(s.arbiter.answer(), names(&["master"]));
    assert_eq!(
        s.arbiter.answer_for("api").unwrap(),
        names(&["slave", "spare"])
    );

    // master dies: `@` and `www` fail over; `api` does not use master and stays.
    let mut moved = Vec::new();
    for _ in 0..3 {
        moved.extend(round3(&mut s, false, true, true));
    }
    assert_eq!(published(&moved).len(), 1);
    assert_eq!(
        addresses(&s),
        answers(&[
            ("@", &["10.2.0.2"]),
            ("www", &["10.2.0.2"]),
            ("api", &["10.2.0.2", "10.3.0.3"]),
        ])
    );
    assert_eq!(
        events(&moved),
        ["failover: answer moved from master (10.1.0.1) to slave (10.2.0.2)"]
    );

    // slave dies too: `api` keeps spare alone; `@` and `www` have no node of their order left
    // but spare is up, so the all-down rule is not theirs yet: active-passive keeps slave.
    let mut moved = Vec::new();
    for _ in 0..3 {
        moved.extend(round3(&mut s, false, false, true));
    }
    assert_eq!(
        addresses(&s),
        answers(&[
            ("@", &["10.2.0.2"]),
            ("www", &["10.2.0.2"]),
            ("api", &["10.3.0.3"]),
        ])
    );
    assert_eq!(
        events(&moved),
        ["failover: answer of api moved from slave, spare (10.2.0.2, 10.3.0.3) to spare (10.3.0.3)"]
    );
    let status = s.arbiter.status();
    assert!(!status.all_down);
    let api = status.names.iter().find(|n| n.name == "api").unwrap();
    assert!(!api.all_down);
    assert_eq!(api.policy, "all-healthy");
    assert_eq!(api.key.as_deref(), Some("pool"));

    // spare dies: every name is all down, each by its rule, `api` under its own subject.
    let mut moved = Vec::new();
    for _ in 0..3 {
        moved.extend(round3(&mut s, false, false, false));
    }
    assert!(published(&moved).is_empty(), "keep-last everywhere");
    assert_eq!(
        events(&moved),
        [
            "every node is down: rule keep-last publishes slave",
            "every node is down: rule keep-last publishes spare for api",
        ]
    );
    let status = s.arbiter.status();
    assert!(status.all_down);
    assert!(status.names.iter().all(|n| n.all_down));

    // Everything comes back: `api` at once, `@` and `www` after failback_after on slave first.
    let mut moved = Vec::new();
    moved.extend(round3(&mut s, true, true, true));
    assert_eq!(
        addresses(&s),
        answers(&[
            ("@", &["10.1.0.1"]),
            ("www", &["10.1.0.1"]),
            ("api", &["10.2.0.2", "10.3.0.3"]),
        ]),
        "out of all-down, the active-passive names take the best node at once"
    );
    let status = s.arbiter.status();
    assert!(!status.all_down);
    assert!(status.names.iter().all(|n| !n.all_down));
}

#[test]
fn an_active_passive_failback_does_not_move_the_other_names() {
    let mut s = three(three_nodes());
    round3(&mut s, true, true, true);
    for _ in 0..3 {
        round3(&mut s, false, true, true);
    }
    let before = s.published().len();
    for _ in 0..20 {
        round3(&mut s, true, true, true);
    }
    assert_eq!(s.published().len(), before + 1, "the failback");
    assert_eq!(
        addresses(&s),
        answers(&[
            ("@", &["10.1.0.1"]),
            ("www", &["10.1.0.1"]),
            ("api", &["10.2.0.2", "10.3.0.3"]),
        ])
    );
    let failbacks: Vec<&Event> = s
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(e) if e.name() == "failback" => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(failbacks.len(), 1);
    assert!(failbacks[0].kind.names().is_empty());
    assert_eq!(failbacks[0].subject(), "answer");
}

#[test]
fn answer_events_of_a_named_policy_are_damped_on_their_own() {
    let mut spec = three_nodes();
    spec.damping.max_changes = 2;
    let mut s = three(spec);
    round3(&mut s, true, true, true);
    // spare flaps: `api` changes again and again; `@` and `www` never move.
    for _ in 0..6 {
        for _ in 0..3 {
            round3(&mut s, true, true, false);
        }
        round3(&mut s, true, true, true);
    }
    let subjects: Vec<String> = s
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(e) if e.name() == "flapping" => Some(e.to_string()),
            _ => None,
        })
        .collect();
    assert!(
        subjects.iter().any(|t| t.contains("answer of api")),
        "{subjects:?}"
    );
    assert_eq!(s.arbiter.answer(), names(&["master"]));
}

#[test]
fn a_restart_keeps_each_names_answer() {
    let mut s = three(three_nodes());
    round3(&mut s, true, true, true);
    for _ in 0..3 {
        round3(&mut s, true, false, true);
    }
    let state = s.arbiter.snapshot(s.now);
    let mut arbiter = Arbiter::with_policies(three_nodes(), auto_30s(), pool()).unwrap();
    arbiter.restore(&state, s.now).unwrap();
    assert_eq!(arbiter.answer(), names(&["master"]));
    assert_eq!(arbiter.answer_for("api").unwrap(), names(&["spare"]));
    assert_eq!(arbiter.publication(), s.arbiter.publication());
}

#[test]
fn policies_that_do_not_fit_the_names_are_refused() {
    let err = Arbiter::with_policies(three_nodes(), auto_30s(), Vec::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "managed name \"api\" names policy \"pool\", which is not defined (policies: )"
    );
    let twice = vec![
        NamedPolicy::new("pool", Box::new(AllHealthy)),
        NamedPolicy::new("pool", Box::new(AllHealthy)),
    ];
    let err = Arbiter::with_policies(three_nodes(), auto_30s(), twice).unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate policy name \"pool\": names must be unique"
    );
    let unknown =
        vec![NamedPolicy::new("pool", Box::new(AllHealthy)).among(names(&["slave", "spair"]))];
    let err = Arbiter::with_policies(three_nodes(), auto_30s(), unknown).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown node \"spair\" (nodes: master, slave, spare)"
    );
}

#[test]
fn a_named_policy_may_have_its_own_all_down_rule() {
    let pool = vec![NamedPolicy::new("pool", Box::new(AllHealthy))
        .among(names(&["slave", "spare"]))
        .all_down(AllDown::ServeAll)];
    let mut s = Script {
        arbiter: Arbiter::with_policies(three_nodes(), auto_30s(), pool).unwrap(),
        now: Moment::now(),
        actions: Vec::new(),
    };
    round3(&mut s, true, true, true);
    for _ in 0..3 {
        round3(&mut s, true, false, false);
    }
    assert_eq!(
        addresses(&s),
        answers(&[
            ("@", &["10.1.0.1"]),
            ("www", &["10.1.0.1"]),
            ("api", &["10.2.0.2", "10.3.0.3"]),
        ]),
        "serve-all for api, while @ and www stay on master under keep-last"
    );
    assert!(events(&s.actions)
        .contains(&"every node is down: rule serve-all publishes slave, spare for api".to_owned()));
}

#[test]
fn when_every_name_has_its_own_policy_the_default_one_decides_nothing() {
    let mut spec = three_nodes();
    spec.managed = vec![ManagedName::new("api", 30).with_policy("pool")];
    let mut s = Script {
        arbiter: Arbiter::with_policies(spec, auto_30s(), pool()).unwrap(),
        now: Moment::now(),
        actions: Vec::new(),
    };
    round3(&mut s, true, true, true);
    for _ in 0..3 {
        round3(&mut s, false, true, true);
    }
    assert_eq!(
        addresses(&s),
        answers(&[("api", &["10.2.0.2", "10.3.0.3"])])
    );
    assert!(s.arbiter.answer().is_empty());
    assert_eq!(
        events(&s.actions),
        ["answer of api changed from nothing to slave, spare (10.2.0.2, 10.3.0.3)"],
        "no failover of an answer no name publishes"
    );
}
