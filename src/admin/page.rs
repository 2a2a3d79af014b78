//! The page at `/`: the status for people, in a browser: per node and check a heartbeat bar of
//! the last hour, a latency chart and the uptime, then the answer changes and the events. One
//! self-contained document (inline CSS and SVG, no script, nothing fetched from elsewhere) that
//! fits a phone's 375 px.

use std::fmt::Write as _;
use std::time::SystemTime;

use failover_core::{CheckStatus, Health, NodeStatus, StatusReport};

use super::history::{CheckHistory, HistoryView, Minute, MINUTES_SHOWN};
use super::{answer_text, check_state, last_error, node_state, since, AdminState};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:64em;padding:.8em;color:#222;overflow-wrap:anywhere}\
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;padding:.2em .4em;border-radius:4px}\
.up{background:#dfd}.down{background:#fdd}.unknown{background:#eee}\
.check{border:1px solid #ccc;border-radius:6px;padding:.5em .7em;margin:.6em 0}\
.check header{display:flex;flex-wrap:wrap;gap:.3em .8em;align-items:baseline}\
.badge{padding:0 .4em;border-radius:3px}.uptime{font-variant-numeric:tabular-nums}\
.detail{margin:.3em 0;font-size:.9em;color:#444}code{font-size:.9em;word-break:break-all}\
.beats{display:grid;grid-template-columns:repeat(60,1fr);gap:1px;height:1.6em;margin:.4em 0 0}\
.beat{border-radius:1px;min-width:0}.beat.up{background:#2e9e44}.beat.down{background:#d33}\
.beat.partial{background:#e9a23b}.beat.no-data{background:#ddd}\
.axis{display:flex;justify-content:space-between;font-size:.75em;color:#666}\
svg.latency{display:block;width:100%;height:4.5em;margin-bottom:.2em}\
svg .bar{fill:#2b6cb0}svg .max{fill:none;stroke:#e07b39;stroke-width:1.5}svg .grid{stroke:#ccc}\
ol,ul{padding-left:1.2em}";

/// The page at `/`: readable in a browser, refreshing itself every 2 seconds.
pub fn render_html(state: &AdminState, report: &StatusReport) -> String {
    let now = SystemTime::now();
    let view = state.history.view(now);
    let mut page = String::new();
    let _ = write!(
        page,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>failover: {zone}</title><style>{STYLE}</style></head><body><h1>failover: zone {zone}</h1>
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
        node_section(&mut page, node, &view, now);
    }
    answer_changes(&mut page, report, &view);
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

fn health_class(health: Health) -> &'static str {
    match health {
        Health::Up => "up",
        Health::Down => "down",
        Health::Unknown => "unknown",
    }
}

/// A node's heading and a card per check.
fn node_section(page: &mut String, node: &NodeStatus, view: &HistoryView, now: SystemTime) {
    let class = match node.health {
        Health::Up if node.drained => "unknown",
        health => health_class(health),
    };
    let _ = writeln!(
        page,
        r#"<section id="node-{name}"><h2 class="{class}">node {name}: {state}</h2><p>publishes {addresses}; since {since}</p>"#,
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
        let history = view.check(node.node.as_str(), check.check.as_str());
        check_card(page, node, check, history, now);
    }
    page.push_str("</section>\n");
}

/// One check: its state and uptimes, the heartbeat bar and the latency chart of the last hour.
fn check_card(
    page: &mut String,
    node: &NodeStatus,
    check: &CheckStatus,
    history: Option<&CheckHistory>,
    now: SystemTime,
) {
    let cells = history.map_or_else(Vec::new, |h| h.last_hour(now));
    let _ = write!(
        page,
        r#"<article class="check" data-node="{node}" data-check="{name}"><header><b>{name}</b>{critical}<span class="badge {class}">{state}</span>{up_1h}{up_24h}</header>
<p class="detail">failures in a row {fails} &middot; changed {changed} &middot; <code>{last}</code></p>
"#,
        node = escape(node.node.as_str()),
        name = escape(check.check.as_str()),
        critical = if check.critical { " (critical)" } else { "" },
        class = health_class(check.forced.unwrap_or(check.health)),
        state = escape(&check_state(check)),
        up_1h = uptime_span("1h", history.and_then(|h| h.uptime_1h)),
        up_24h = uptime_span("24h", history.and_then(|h| h.uptime_24h)),
        fails = check.consecutive_failures,
        changed = since(check.changed_at),
        last = escape(&last_error(check)),
    );
    heartbeat_bar(page, &cells, now);
    latency_chart(page, check.check.as_str(), node.node.as_str(), &cells);
    page.push_str("</article>\n");
}

fn uptime_span(window: &str, uptime: Option<f64>) -> String {
    match uptime {
        Some(share) => format!(
            r#"<span class="uptime" data-window="{window}" data-value="{share:.6}">{} % over {window}</span>"#,
            percent(share)
        ),
        None => {
            format!(r#"<span class="uptime" data-window="{window}">no probe over {window}</span>"#)
        }
    }
}

/// A share as a percentage that never rounds a failure away: 99.996 % shows as 99.99 %.
fn percent(share: f64) -> String {
    if share >= 1.0 {
        "100".to_owned()
    } else {
        format!("{:.2}", (share * 10_000.0).floor() / 100.0)
    }
}

/// `14:05 UTC`.
fn clock(minute: u32) -> String {
    let of_day = minute % (24 * 60);
    format!("{:02}:{:02} UTC", of_day / 60, of_day % 60)
}

/// Sixty cells, a minute each, oldest first: up, down, partial or no data, with a tooltip.
fn heartbeat_bar(page: &mut String, cells: &[Minute], now: SystemTime) {
    page.push_str(r#"<div class="beats" role="img" aria-label="the last hour, a cell a minute">"#);
    for cell in cells {
        let state = cell.state();
        let _ = write!(
            page,
            r#"<span class="beat {state}" data-state="{state}" data-ok="{ok}" data-failed="{failed}" title="{at}: {text}"></span>"#,
            state = state.name(),
            ok = cell.ok,
            failed = cell.failed,
            at = clock(cell.minute),
            text = match (cell.ok, cell.failed) {
                (0, 0) => "no probe".to_owned(),
                (ok, failed) => format!("{ok} passed, {failed} failed"),
            },
        );
    }
    let _ = writeln!(
        page,
        r#"</div><div class="axis"><span>{}</span><span>now ({})</span></div>"#,
        cells.first().map_or_else(String::new, |c| clock(c.minute)),
        humantime::format_rfc3339_seconds(now)
    );
}

/// The smallest of 1, 2, 5 × 10ⁿ ms at or above `max` (at least 1 ms).
fn scale_ms(max: f64) -> f64 {
    let mut step = 1.0;
    loop {
        for factor in [1.0, 2.0, 5.0] {
            if step * factor >= max || step > 1e9 {
                return step * factor;
            }
        }
        step *= 10.0;
    }
}

const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 100.0;

/// Mean (bars) and longest (line) probe per minute over the last hour, as an inline SVG
/// stretched to the card's width: bars and lines stretch well, text and circles would not, so
/// the labels are HTML above it.
fn latency_chart(page: &mut String, check: &str, node: &str, cells: &[Minute]) {
    let max = cells
        .iter()
        .filter_map(Minute::latency_max_ms)
        .fold(0.0, f64::max);
    let scale = scale_ms(max);
    let slot = CHART_WIDTH / f64::from(MINUTES_SHOWN);
    // At least one unit high, so that a sub-millisecond probe still shows.
    let height = |ms: f64| ((ms / scale).min(1.0) * (CHART_HEIGHT - 2.0)).max(1.0);
    let timed = cells.iter().filter(|c| c.timed > 0).count();
    let _ = write!(
        page,
        r#"<div class="axis"><span>{label}</span><span>{scale} ms</span></div><svg class="latency" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" preserveAspectRatio="none" role="img" data-scale-ms="{scale}"><title>latency of {check} on {node} over the last hour: mean (bars) and longest (line) probe per minute</title><line class="grid" x1="0" y1="{CHART_HEIGHT}" x2="{CHART_WIDTH}" y2="{CHART_HEIGHT}" vector-effect="non-scaling-stroke"/><line class="grid" x1="0" y1="1" x2="{CHART_WIDTH}" y2="1" vector-effect="non-scaling-stroke"/>"#,
        label = if timed == 0 {
            "latency: no timed probe in the last hour"
        } else {
            "latency a minute: mean (bars), longest (line)"
        },
        check = escape(check),
        node = escape(node),
    );
    for (i, cell) in cells.iter().enumerate() {
        let (Some(mean), Some(longest)) = (cell.latency_mean_ms(), cell.latency_max_ms()) else {
            continue;
        };
        let h = height(mean);
        let _ = write!(
            page,
            r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{}: mean {mean:.2} ms, longest {longest:.2} ms, {} probes</title></rect>"#,
            i as f64 * slot + slot * 0.15,
            CHART_HEIGHT - h,
            slot * 0.7,
            clock(cell.minute),
            cell.timed
        );
    }
    let mut path = String::new();
    let mut drawing = false;
    for (i, cell) in cells.iter().enumerate() {
        match cell.latency_max_ms() {
            Some(ms) => {
                let _ = write!(
                    path,
                    "{}{:.1} {:.1}",
                    if drawing { " L" } else { " M" },
                    (i as f64 + 0.5) * slot,
                    CHART_HEIGHT - height(ms)
                );
                drawing = true;
            }
            None => drawing = false,
        }
    }
    let _ = writeln!(
        page,
        r#"<path class="max" d="{}" vector-effect="non-scaling-stroke"/></svg>"#,
        path.trim()
    );
}

/// The answer changes, newest first, each address with the node that publishes it.
fn answer_changes(page: &mut String, report: &StatusReport, view: &HistoryView) {
    page.push_str(r#"<h2>answer changes</h2><ol id="answer-changes" reversed>"#);
    let node_of = |address: &str| {
        report
            .cluster
            .nodes
            .iter()
            .find(|n| n.publish.iter().any(|a| a.to_string() == address))
            .map(|n| n.node.as_str().to_owned())
    };
    for change in view.answer_changes.iter().rev() {
        let answers = change
            .answers
            .iter()
            .map(|a| {
                let addresses = a
                    .addresses
                    .iter()
                    .map(|address| match node_of(address) {
                        Some(node) => format!("{address} ({node})"),
                        None => address.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{}: {addresses}", a.name)
            })
            .collect::<Vec<_>>()
            .join("; ");
        let at = humantime::format_rfc3339_seconds(change.at);
        let _ = write!(
            page,
            r#"<li class="answer-change"><time datetime="{at}">{at}</time> {}</li>"#,
            escape(&answers)
        );
    }
    if view.answer_changes.is_empty() {
        page.push_str("<li>none in the last day</li>");
    }
    page.push_str("</ol>\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::admin::history::History;

    #[test]
    fn the_scale_is_a_round_number_at_or_above_the_longest_probe() {
        assert_eq!(scale_ms(0.0), 1.0);
        assert_eq!(scale_ms(0.3), 1.0);
        assert_eq!(scale_ms(1.5), 2.0);
        assert_eq!(scale_ms(3.0), 5.0);
        assert_eq!(scale_ms(180.0), 200.0);
        assert_eq!(scale_ms(5000.0), 5000.0);
    }

    #[test]
    fn a_failure_is_never_rounded_to_a_hundred_percent() {
        assert_eq!(percent(1.0), "100");
        assert_eq!(percent(0.99996), "99.99");
        assert_eq!(percent(0.5), "50.00");
    }

    #[test]
    fn the_bar_has_sixty_cells_and_the_chart_a_point_per_timed_minute() {
        let history = History::new();
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 60 * 60);
        let minute = |m: u64, s: u64| start + Duration::from_secs(m * 60 + s);
        for m in 0..10 {
            let took = Some(Duration::from_millis(1 + m));
            history.record_probe("a\"<b>", "http", m != 4, took, minute(m, 1));
        }
        history.record_probe("a\"<b>", "http", false, None, minute(11, 0));
        let took = Some(Duration::from_micros(400));
        history.record_probe("a\"<b>", "http", true, took, minute(12, 0));
        let now = minute(13, 0);
        let view = history.view(now);
        let cells = view.check("a\"<b>", "http").unwrap().last_hour(now);
        let mut bar = String::new();
        heartbeat_bar(&mut bar, &cells, now);
        assert_eq!(bar.matches(r#"class="beat "#).count(), 60);
        assert_eq!(bar.matches(r#"data-state="up""#).count(), 10);
        assert_eq!(bar.matches(r#"data-state="down""#).count(), 2);
        assert_eq!(bar.matches(r#"data-state="no-data""#).count(), 48);
        assert!(bar.contains(r#"data-ok="0" data-failed="1" title="#));
        let mut chart = String::new();
        latency_chart(&mut chart, "http", "a\"<b>", &cells);
        assert_eq!(chart.matches("<rect class=\"bar\"").count(), 11);
        assert!(chart.contains(r#"data-scale-ms="10""#), "{chart}");
        assert!(chart.contains("on a&quot;&lt;b&gt; over"), "{chart}");
        assert!(!chart.contains("a\"<b>"));
        // Minute 11 has no timed probe: the line breaks there (a move per run of points).
        let line = chart.split(r#"<path class="max" d=""#).nth(1).unwrap();
        let line = line.split('"').next().unwrap();
        assert_eq!(line.matches('M').count(), 2, "{line}");
    }
}
