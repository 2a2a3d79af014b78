//! The page at `/`: the status for people, in a browser.

use std::fmt::Write as _;

use failover_core::{Health, StatusReport};

use super::{answer_text, check_state, last_error, node_state, since, AdminState};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page at `/`: readable in a browser, refreshing itself every 2 seconds.
pub fn render_html(state: &AdminState, report: &StatusReport) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>failover: {zone}</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;margin:.5em 0 1.5em}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}} .up{{background:#dfd}} .down{{background:#fdd}}
.unknown{{background:#eee}} code{{font-size:.9em}}
</style></head><body><h1>failover: zone {zone}</h1>
<p>serial <b id="serial">{serial}</b> &middot; policy {policy} &middot; answer <b id="answer">{answer}</b>{all_down}</p>
"#,
        zone = escape(&state.zone_name),
        serial = (state.serial)(),
        policy = escape(&report.cluster.policy),
        answer = escape(&answer_text(report)),
        all_down = if report.cluster.all_down {
            " &middot; <b>every node is down</b>"
        } else {
            ""
        },
    );
    for node in &report.cluster.nodes {
        let class = match node.health {
            Health::Up if !node.drained => "up",
            Health::Down => "down",
            _ => "unknown",
        };
        let _ = write!(
            page,
            r#"<h2 class="{class}" id="node-{name}">node {name}: {state}</h2><p>publishes {addresses}; since {since}</p>
<table><tr><th>check</th><th>state</th><th>failures in a row</th><th>last result</th><th>changed</th></tr>"#,
            name = escape(node.node.as_str()),
            state = escape(&node_state(node)),
            addresses = escape(
                &node
                    .publish
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            since = since(node.since),
        );
        for check in &node.checks {
            let class = match check.forced.unwrap_or(check.health) {
                Health::Up => "up",
                Health::Down => "down",
                Health::Unknown => "unknown",
            };
            let _ = write!(
                page,
                r#"<tr class="{class}"><td>{name}{critical}</td><td>{state}</td><td>{fails}</td><td><code>{last}</code></td><td>{changed}</td></tr>"#,
                name = escape(check.check.as_str()),
                critical = if check.critical { " (critical)" } else { "" },
                state = escape(&check_state(check)),
                fails = check.consecutive_failures,
                last = escape(&last_error(check)),
                changed = since(check.changed_at),
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("<h2>recent events</h2><ul>\n");
    for event in report.recent_events.iter().rev().take(20) {
        let _ = writeln!(
            page,
            "<li>{} {}</li>",
            since(Some(event.at)),
            escape(&event.to_string())
        );
    }
    page.push_str("</ul></body></html>\n");
    page
}
