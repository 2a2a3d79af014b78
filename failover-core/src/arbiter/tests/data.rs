//! "May be missing data" names only the checks that say something about data.
//!
//! Unit tests only: `arbiter/tests.rs` declares this module, itself under `#[cfg(test)]`.

use super::*;

#[test]
fn a_failover_names_only_data_checks_as_possibly_missing_data() {
    let mut spec = spec(AllDown::KeepLast);
    spec.checks
        .push(CheckSpec::new("mirror", false).about_data());
    let mut s = Script::new(spec, auto_30s());
    s.round(true, true);
    // On slave, SSH and the mirror are down; neither is critical.
    for _ in 0..3 {
        s.probe("slave", "ssh", false);
        s.probe("slave", "mirror", false);
    }
    let mut moved = Vec::new();
    for _ in 0..3 {
        moved.extend(s.round(false, true));
    }
    let failover = moved
        .iter()
        .find_map(|a| match a {
            Action::Notify(e) if e.name() == "failover" => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    let EventKind::Failover { degraded, .. } = &failover.kind else {
        panic!("{failover:?}")
    };
    let named: Vec<String> = degraded.iter().map(|d| d.check.to_string()).collect();
    assert_eq!(named, ["mirror"], "SSH says nothing about data");
    let text = failover.to_string();
    assert!(
        text.ends_with("it may be missing data: mirror on slave is down (connection refused)"),
        "{text}"
    );
    assert!(!text.contains("ssh"), "{text}");
}

#[test]
fn a_failover_with_only_a_service_check_down_says_nothing_of_data() {
    let mut s = Script::new(spec(AllDown::KeepLast), auto_30s());
    s.round(true, true);
    for _ in 0..3 {
        s.probe("slave", "ssh", false);
    }
    for _ in 0..3 {
        s.round(false, true);
    }
    let failover = s
        .actions
        .iter()
        .find_map(|a| match a {
            Action::Notify(e) if e.name() == "failover" => Some(e.to_string()),
            _ => None,
        })
        .unwrap();
    assert!(!failover.contains("missing data"), "{failover}");
}
