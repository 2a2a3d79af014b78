//! A small reader of the OpenMetrics text `/metrics` serves, and the Prometheus naming rules
//! the tests hold it to.

use std::collections::BTreeMap;

/// One family's metadata: `# TYPE`, `# UNIT`, `# HELP`.
#[derive(Debug, Default)]
pub struct Family {
    pub kind: String,
    pub unit: Option<String>,
    pub help: Option<String>,
}

/// One sample line: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// `name{a="1",b="2"}`, labels sorted: a key to compare two scrapes.
    pub fn key(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

/// A whole scrape.
#[derive(Debug, Default)]
pub struct Scrape {
    pub families: BTreeMap<String, Family>,
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Reads `text`; panics (with the line) on anything that is not OpenMetrics text.
    pub fn parse(text: &str) -> Self {
        let mut scrape = Scrape::default();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            if line == "# EOF" {
                assert!(lines.peek().is_none(), "text after # EOF:\n{text}");
                return scrape;
            }
            if let Some(meta) = line.strip_prefix("# ") {
                let mut parts = meta.splitn(3, ' ');
                let (what, name, rest) = (
                    parts.next().unwrap(),
                    parts.next().unwrap_or_else(|| panic!("bad line {line:?}")),
                    parts.next().unwrap_or_default().to_owned(),
                );
                let family = scrape.families.entry(name.to_owned()).or_default();
                match what {
                    "TYPE" => family.kind = rest,
                    "UNIT" => family.unit = Some(rest),
                    "HELP" => family.help = Some(rest),
                    other => panic!("unknown metadata {other:?} in {line:?}"),
                }
                continue;
            }
            scrape.samples.push(parse_sample(line));
        }
        panic!("no # EOF at the end:\n{text}");
    }

    /// The samples named `name` (a sample's full name, e.g. `failover_events_total`).
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the one sample `name` with `labels` (each `(key, value)` must match).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.named(name)
            .find(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    /// The family a sample belongs to, with its type: `failover_events_total` → `failover_events`.
    pub fn family_of(&self, sample: &str) -> Option<(&str, &Family)> {
        self.families
            .iter()
            .filter(|(name, _)| {
                sample == name.as_str()
                    || ["_total", "_bucket", "_sum", "_count", "_info", "_created"]
                        .iter()
                        .any(|suffix| sample.strip_suffix(suffix) == Some(name.as_str()))
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(name, family)| (name.as_str(), family))
    }

    /// Every sample's key of a counter or histogram (what must only grow), with its value.
    pub fn monotonic(&self) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .filter(|s| {
                self.family_of(&s.name)
                    .is_some_and(|(_, f)| f.kind == "counter" || f.kind == "histogram")
            })
            .map(|s| (s.key(), s.value))
            .collect()
    }

    /// Holds every family and sample to the Prometheus naming guide; panics naming the first
    /// that breaks it.
    pub fn check_naming(&self, prefix: &str) {
        for (name, family) in &self.families {
            assert!(
                name.starts_with(&format!("{prefix}_"))
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}: not {prefix}_ and snake case"
            );
            assert!(family.help.is_some(), "{name} has no HELP");
            if let Some(unit) = &family.unit {
                assert!(
                    name.ends_with(&format!("_{unit}")),
                    "{name}: its unit {unit} is not its suffix"
                );
            }
            for unit_word in ["seconds", "bytes"] {
                if name.ends_with(&format!("_{unit_word}")) {
                    assert_eq!(family.unit.as_deref(), Some(unit_word), "{name}: no UNIT");
                }
            }
            for bad in ["_milliseconds", "_ms", "_kb", "_mb", "_minutes"] {
                assert!(!name.contains(bad), "{name}: not a base unit");
            }
            match family.kind.as_str() {
                "counter" | "histogram" | "info" => {
                    assert!(!name.ends_with("_total"), "{name}: _total in a family name")
                }
                "gauge" => assert!(!name.ends_with("_total"), "{name}: a gauge named _total"),
                other => panic!("{name}: unexpected type {other:?}"),
            }
        }
        for sample in &self.samples {
            let (family_name, family) = self
                .family_of(&sample.name)
                .unwrap_or_else(|| panic!("{}: no # TYPE for it", sample.name));
            let suffix = &sample.name[family_name.len()..];
            let allowed: &[&str] = match family.kind.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            assert!(
                allowed.contains(&suffix),
                "{}: a {} sample must end in one of {allowed:?}",
                sample.name,
                family.kind
            );
            if family.kind == "counter" || family.kind == "histogram" {
                assert!(sample.value >= 0.0, "{}: negative", sample.key());
            }
        }
    }

    /// Every histogram series has buckets up to `+Inf`, cumulative, and `+Inf` equals `_count`.
    pub fn check_histograms(&self) {
        for (name, family) in &self.families {
            if family.kind != "histogram" {
                continue;
            }
            let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
            for bucket in self.named(&format!("{name}_bucket")) {
                let mut labels = bucket.labels.clone();
                let le = labels.remove("le").expect("a bucket without le");
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                let key = Sample {
                    name: name.clone(),
                    labels,
                    value: 0.0,
                }
                .key();
                series.entry(key).or_default().push((bound, bucket.value));
            }
            for (key, mut buckets) in series {
                assert!(buckets.len() > 1, "{key}: one bucket only");
                buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                assert!(
                    buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                    "{key}: buckets not cumulative: {buckets:?}"
                );
                let (last_bound, last_count) = *buckets.last().unwrap();
                assert_eq!(last_bound, f64::INFINITY, "{key}: no +Inf bucket");
                let count = self
                    .samples
                    .iter()
                    .find(|s| {
                        s.name == format!("{name}_count")
                            && Sample {
                                name: name.clone(),
                                labels: s.labels.clone(),
                                value: 0.0,
                            }
                            .key()
                                == key
                    })
                    .unwrap_or_else(|| panic!("{key}: no _count"));
                assert_eq!(count.value, last_count, "{key}: +Inf bucket is not _count");
            }
        }
    }
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("bad sample {line:?}"));
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value in {line:?}"));
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("bad labels in {line:?}"));
            let labels = inner
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("bad label in {line:?}"));
                    (key.to_owned(), value.trim_end_matches('"').to_owned())
                })
                .collect();
            (name, labels)
        }
        None => (series, BTreeMap::new()),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}
