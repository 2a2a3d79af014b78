//! The zone model: a zone file's records, validated, and the authoritative lookup over them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

use crate::error::DnsError;

/// A hash map with foldhash, the hasher used everywhere in this crate.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// How many CNAME records an answer holds at most: a longer chain is answered up to there, as
/// Knot does (a resolver follows the rest itself); a chain that loops stops earlier, at the first
/// name already in the answer.
const MAX_CNAME_HOPS: usize = 5;

/// A parsed and validated zone: its origin, its SOA and its records, as loaded from a zone file.
///
/// This is the static part of what [`ServedZone`](crate::ServedZone) serves.
#[derive(Clone, Debug)]
pub struct Zone {
    pub(crate) origin: Name,
    /// Records by lowercased owner name, without empty non-terminals.
    pub(crate) nodes: FastMap<Name, Node>,
    pub(crate) serial: u32,
    pub(crate) source: String,
}

/// The records at one owner name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Node {
    /// RRsets sorted by type code; each record carries the owner name.
    pub(crate) rrsets: Vec<(RecordType, Vec<Record>)>,
    /// True for a delegation point (NS below the apex).
    pub(crate) cut: bool,
}

impl Node {
    pub(crate) fn get(&self, rtype: RecordType) -> Option<&[Record]> {
        self.rrsets
            .iter()
            .find(|(t, _)| *t == rtype)
            .map(|(_, records)| records.as_slice())
    }

    pub(crate) fn set(&mut self, rtype: RecordType, records: Vec<Record>) {
        self.rrsets.retain(|(t, _)| *t != rtype);
        if !records.is_empty() {
            self.rrsets.push((rtype, records));
            self.rrsets.sort_by_key(|(t, _)| u16::from(*t));
        }
    }
}

impl Zone {
    /// Why addresses may not be published at `name`, a name of this zone: it is at or below a
    /// delegation, or the zone file gives it a CNAME. `None` when they may.
    pub(crate) fn address_conflict(&self, name: &Name) -> Option<String> {
        for labels in label_count(&self.origin) + 1..=label_count(name) {
            let ancestor = name.trim_to(labels);
            if self.nodes.get(&ancestor).is_some_and(|node| node.cut) {
                return Some(format!("{name} is at or below the delegation {ancestor}"));
            }
        }
        if self
            .nodes
            .get(name)
            .is_some_and(|node| node.get(RecordType::CNAME).is_some())
        {
            return Some(format!(
                "{name} has a CNAME in the zone file; remove it to publish addresses there"
            ));
        }
        None
    }

    /// Loads a zone from an RFC 1035 zone file that sets its own `$ORIGIN`.
    ///
    /// Errors name the file, the line and what was expected.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DnsError> {
        Self::load(path, None)
    }

    /// Loads a zone file for the zone `origin` (`test.ru`), as BIND does with the zone's name
    /// from `named.conf`: names in a file without `$ORIGIN` are relative to it. A `$ORIGIN` in
    /// the file still applies from where it stands.
    pub fn from_file_for(path: impl AsRef<Path>, origin: &str) -> Result<Self, DnsError> {
        let origin = Name::from_ascii(origin).map_err(|e| DnsError::ZoneInvalid {
            file: path.as_ref().display().to_string(),
            reason: format!("zone name {origin:?} is not a domain name: {e}"),
        })?;
        Self::load(path, Some(origin))
    }

    fn load(path: impl AsRef<Path>, origin: Option<Name>) -> Result<Self, DnsError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|source| DnsError::ZoneRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_with_path(
            &path.display().to_string(),
            &text,
            Some(path.to_path_buf()),
            origin,
        )
    }

    /// Parses zone file text; `source` names it in error messages. `$INCLUDE` must be absolute.
    pub fn parse(source: &str, text: &str) -> Result<Self, DnsError> {
        Self::parse_with_path(source, text, None, None)
    }

    fn parse_with_path(
        source: &str,
        text: &str,
        path: Option<PathBuf>,
        origin: Option<Name>,
    ) -> Result<Self, DnsError> {
        let (origin, rrsets) = match Parser::new(text, path.clone(), origin).parse() {
            Ok(parsed) => parsed,
            Err(error) => return Err(locate_syntax_error(source, text, path, &error.to_string())),
        };
        let invalid = |reason: String| DnsError::ZoneInvalid {
            file: source.to_owned(),
            reason,
        };
        let origin = origin.to_lowercase();
        let mut nodes: FastMap<Name, Node> = FastMap::default();
        let mut soa_serial = None;
        for (key, rrset) in rrsets {
            let owner = Name::from(key.name).to_lowercase();
            if !origin.zone_of(&owner) {
                return Err(invalid(format!(
                    "record {owner} {} is outside the zone {origin} (every owner name must end in the origin)",
                    key.record_type
                )));
            }
            if key.record_type == RecordType::SOA {
                if owner != origin {
                    return Err(invalid(format!(
                        "SOA record at {owner}, but the zone's only SOA must be at the apex {origin}"
                    )));
                }
                if let Some(RData::SOA(soa)) =
                    rrset.records_without_rrsigs().next().map(|r| &r.data)
                {
                    soa_serial = Some(soa.serial);
                }
            }
            for record in rrset.records_without_rrsigs() {
                if let Err(error) = reads_back(record) {
                    return Err(invalid(format!(
                        "record {owner} {} cannot be read back from the wire ({error}): \
                         secondaries and resolvers would refuse it (a CAA tag is letters and \
                         digits only; a TXT record needs at least one string)",
                        key.record_type
                    )));
                }
            }
            let records = rrset.records_without_rrsigs().cloned().collect();
            nodes
                .entry(owner)
                .or_default()
                .set(key.record_type, records);
        }
        let serial = soa_serial.ok_or_else(|| {
            invalid(format!(
                "no SOA record at the apex {origin} (expected exactly one, e.g. \
                 `@ IN SOA ns1.{origin} hostmaster.{origin} 1 3600 600 86400 300`)"
            ))
        })?;
        for (owner, node) in &mut nodes {
            if node.get(RecordType::CNAME).is_some() && node.rrsets.len() > 1 {
                return Err(invalid(format!(
                    "{owner} has a CNAME and other records; a name with a CNAME can have no other data"
                )));
            }
            node.cut = *owner != origin && node.get(RecordType::NS).is_some();
        }
        Ok(Self {
            origin,
            nodes,
            serial,
            source: source.to_owned(),
        })
    }

    /// The zone's origin, fully qualified and lowercase (`test.ru.`).
    pub fn origin(&self) -> String {
        self.origin.to_ascii()
    }

    /// Where the zone came from (the file path, or the name given to [`Zone::parse`]).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The SOA serial written in the zone file.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Resolves a name relative to the origin (`@`, `www`, or fully qualified with a trailing dot).
    pub(crate) fn absolute(&self, relative: &str) -> Option<Name> {
        let name = if relative == "@" {
            self.origin.clone()
        } else {
            Name::parse(relative, Some(&self.origin)).ok()?
        };
        Some(name.to_lowercase())
    }
}

/// Finds the entry of the zone file that makes the parser fail, by parsing ever longer prefixes
/// (hickory's parse errors carry no position). Costs a few parses, only on the error path.
fn locate_syntax_error(source: &str, text: &str, path: Option<PathBuf>, reason: &str) -> DnsError {
    let entries = entry_starts(text);
    // A stand-in origin, so that a prefix does not fail merely for lacking its `$ORIGIN` line.
    let stand_in = Name::from_ascii("origin.invalid.").ok();
    let fails = |end: usize| {
        Parser::new(&text[..end], path.clone(), stand_in.clone())
            .parse()
            .is_err()
    };
    // entry_end(i): the byte offset where entry i ends (where entry i + 1 starts).
    let entry_end = |i: usize| entries.get(i + 1).map_or(text.len(), |&(offset, _)| offset);
    // Smallest i such that the prefix ending with entry i fails; prefixes fail monotonically
    // because the parser reads sequentially.
    let (mut low, mut high) = (0, entries.len());
    while low < high {
        let mid = (low + high) / 2;
        if fails(entry_end(mid)) {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    match entries.get(low) {
        Some(&(offset, line)) if !fails(0) => {
            let entry = &text[offset..entry_end(low)];
            let first_line = entry.lines().next().unwrap_or("").trim();
            let mut shown: String = first_line.chars().take(80).collect();
            if shown.len() < first_line.len() {
                shown.push('…');
            }
            DnsError::ZoneSyntax {
                file: source.to_owned(),
                line,
                text: shown,
                reason: reason.to_owned(),
            }
        }
        _ => DnsError::ZoneInvalid {
            file: source.to_owned(),
            reason: reason.to_owned(),
        },
    }
}

/// Where each entry (a line, or several lines joined by parentheses) starts: (byte offset, 1-based line).
fn entry_starts(text: &str) -> Vec<(usize, usize)> {
    let mut starts = vec![(0, 1)];
    let (mut line, mut depth) = (1, 0usize);
    let (mut in_quote, mut in_comment, mut escaped) = (false, false, false);
    for (offset, byte) in text.bytes().enumerate() {
        if byte == b'\n' {
            line += 1;
            in_comment = false;
            escaped = false;
            if depth == 0 && !in_quote && offset + 1 < text.len() {
                starts.push((offset + 1, line));
            }
            continue;
        }
        if in_comment {
            continue;
        }
        if escaped {
            escaped = false;
            continue;
        }
        match byte {
            b'\\' => escaped = true,
            b'"' => in_quote = !in_quote,
            b';' if !in_quote => in_comment = true,
            b'(' if !in_quote => depth += 1,
            b')' if !in_quote => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    starts
}

/// A zone ready to answer from: the zone's nodes with the managed answers applied, the empty
/// non-terminals filled in, and the current SOA.
#[derive(Clone, Debug)]
pub(crate) struct ZoneData {
    pub(crate) origin: Name,
    origin_labels: usize,
    pub(crate) nodes: FastMap<Name, Node>,
    /// The SOA as put in the authority section of negative answers (negative-caching TTL).
    pub(crate) negative_soa: Record,
    pub(crate) has_wildcards: bool,
    pub(crate) has_delegations: bool,
}

impl ZoneData {
    /// Builds the answerable zone from nodes without empty non-terminals, with `serial` in the SOA.
    pub(crate) fn new(origin: Name, mut nodes: FastMap<Name, Node>, serial: u32) -> Self {
        let origin_labels = label_count(&origin);
        let mut negative_soa = None;
        if let Some(apex) = nodes.get_mut(&origin) {
            if let Some((_, soa_set)) = apex.rrsets.iter_mut().find(|(t, _)| *t == RecordType::SOA)
            {
                for record in soa_set.iter_mut() {
                    if let RData::SOA(soa) = &mut record.data {
                        soa.serial = serial;
                        let minimum = soa.minimum;
                        let mut negative = record.clone();
                        negative.ttl = record.ttl.min(minimum);
                        negative.name = origin.clone();
                        negative_soa = Some(negative);
                    }
                }
            }
        }
        let names: Vec<Name> = nodes.keys().cloned().collect();
        for name in &names {
            for labels in origin_labels + 1..label_count(name) {
                nodes.entry(name.trim_to(labels)).or_default();
            }
        }
        let has_wildcards = nodes.keys().any(Name::is_wildcard);
        let has_delegations = nodes.values().any(|node| node.cut);
        Self {
            origin,
            origin_labels,
            nodes,
            // Zone::parse guarantees an apex SOA; the placeholder is never served by a valid zone.
            negative_soa: negative_soa.unwrap_or_else(|| {
                Record::from_rdata(Name::root(), 0, RData::Update0(RecordType::SOA))
            }),
            has_wildcards,
            has_delegations,
        }
    }

    /// Fills `response` (already carrying the question) with the authoritative answer.
    pub(crate) fn resolve(&self, qname: &Name, qtype: RecordType, response: &mut Message) {
        if !self.origin.zone_of(qname) {
            response.metadata.response_code = ResponseCode::Refused;
            return;
        }
        response.metadata.authoritative = true;
        let mut name = qname.clone();
        for hop in 0..MAX_CNAME_HOPS {
            match self.step(&name, qtype, response, hop == 0) {
                // A chain that loops back stops at the first name already answered for, as
                // BIND, NSD and Knot do: its CNAME is in the answer once, never repeated.
                Some(target)
                    if self.origin.zone_of(&target)
                        && !response.answers.iter().any(|r| r.name == target) =>
                {
                    name = target
                }
                _ => return,
            }
        }
    }

    /// One lookup step; returns the CNAME target to follow, if any.
    fn step(
        &self,
        name: &Name,
        qtype: RecordType,
        response: &mut Message,
        first: bool,
    ) -> Option<Name> {
        if let Some(cut) = self.find_cut(name, qtype) {
            if first {
                response.metadata.authoritative = false;
            }
            if let Some(ns) = self
                .nodes
                .get(&cut)
                .and_then(|node| node.get(RecordType::NS))
            {
                response.authorities.extend(ns.iter().cloned());
                self.add_glue(ns, response);
            }
            return None;
        }
        let node = match self.nodes.get(name) {
            Some(node) => node,
            None => match self.wildcard_source(name) {
                Some(node) => node,
                None => {
                    response.metadata.response_code = ResponseCode::NXDomain;
                    response.authorities.push(self.negative_soa.clone());
                    return None;
                }
            },
        };
        let owned = |records: &[Record]| -> Vec<Record> {
            records
                .iter()
                .map(|record| {
                    let mut record = record.clone();
                    record.name = name.clone();
                    record
                })
                .collect()
        };
        if qtype == RecordType::ANY {
            // RFC 8482: one RRset is a complete answer to ANY.
            match node.rrsets.first() {
                Some((_, records)) => {
                    response.answers.extend(owned(records));
                    self.add_glue(records, response);
                }
                None => response.authorities.push(self.negative_soa.clone()),
            }
            return None;
        }
        if qtype != RecordType::CNAME {
            if let Some(cname) = node.get(RecordType::CNAME) {
                response.answers.extend(owned(cname));
                return cname.iter().find_map(|record| match &record.data {
                    RData::CNAME(target) => Some(target.0.clone()),
                    _ => None,
                });
            }
        }
        match node.get(qtype) {
            Some(records) => {
                response.answers.extend(owned(records));
                self.add_glue(records, response);
            }
            None => response.authorities.push(self.negative_soa.clone()),
        }
        None
    }

    /// The delegation point at or above `name` (below the apex), if any. A DS query at the cut
    /// itself is answered by this (parent) side.
    fn find_cut(&self, name: &Name, qtype: RecordType) -> Option<Name> {
        if !self.has_delegations {
            return None;
        }
        let labels = label_count(name);
        (self.origin_labels + 1..=labels)
            .map(|count| (count, name.trim_to(count)))
            .find(|(count, ancestor)| {
                self.nodes.get(ancestor).is_some_and(|node| node.cut)
                    && !(*count == labels && qtype == RecordType::DS)
            })
            .map(|(_, ancestor)| ancestor)
    }

    /// RFC 4592: the `*` child of the closest encloser, when `name` does not exist.
    fn wildcard_source(&self, name: &Name) -> Option<&Node> {
        if !self.has_wildcards {
            return None;
        }
        let closest_encloser = (self.origin_labels..label_count(name))
            .rev()
            .map(|count| name.trim_to(count))
            .find(|ancestor| self.nodes.contains_key(ancestor))?;
        let source = closest_encloser.prepend_label("*").ok()?;
        self.nodes.get(&source)
    }

    /// Additional-section processing: in-zone A/AAAA of the names an NS, MX or SRV set points to
    /// (RFC 1035 section 3.3, RFC 2782).
    fn add_glue(&self, records: &[Record], response: &mut Message) {
        for record in records {
            let target = match &record.data {
                RData::NS(ns) => &ns.0,
                RData::MX(mx) => &mx.exchange,
                RData::SRV(srv) => &srv.target,
                _ => continue,
            };
            if !self.origin.zone_of(target) {
                continue;
            }
            let Some(node) = self.nodes.get(target) else {
                continue;
            };
            for rtype in [RecordType::A, RecordType::AAAA] {
                for glue in node.get(rtype).unwrap_or_default() {
                    if !response.additionals.contains(glue) {
                        response.additionals.push(glue.clone());
                    }
                }
            }
        }
    }
}

/// The number of labels of a name, counting a leading `*` (unlike `Name::num_labels`).
pub(crate) fn label_count(name: &Name) -> usize {
    name.iter().count()
}

/// Whether `record` decodes from the wire form it is served in, inside a response as a
/// secondary or a resolver reads it: hickory-proto's zone file parser takes some data its wire
/// decoder refuses (a CAA tag with a `*` in it, a TXT record without a string).
fn reads_back(record: &Record) -> Result<(), String> {
    let mut message = Message::response(0, OpCode::Query);
    message.add_answer(record.clone());
    let wire = message.to_vec().map_err(|e| e.to_string())?;
    Message::from_vec(&wire)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    const ZONE: &str = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.master.my.com. admin.my.com. ( 2 10 10 10 10 )\n  IN NS ns.master.my.com.\n@ IN A 10.1.0.1\nwww IN A 10.1.0.1\n";

    #[test]
    fn a_file_without_origin_takes_the_zone_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.test.ru");
        std::fs::write(&path, ZONE.replace("$ORIGIN test.ru.\n", "")).unwrap();
        let zone = Zone::from_file_for(&path, "test.ru").unwrap();
        assert_eq!(zone.origin(), "test.ru.");
        assert!(zone
            .nodes
            .contains_key(&Name::from_ascii("www.test.ru.").unwrap()));
        assert!(
            Zone::from_file(&path).is_err(),
            "no origin at all is an error"
        );
    }

    #[test]
    fn loads_the_bench_zone() {
        let zone = Zone::parse("zone.db", ZONE).unwrap();
        assert_eq!(zone.origin(), "test.ru.");
        assert_eq!(zone.serial(), 2);
        assert!(zone
            .nodes
            .contains_key(&Name::from_ascii("www.test.ru.").unwrap()));
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let text = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns. admin. ( 2 10\n 10 10 10 )\nwww IN A 10.1.0\nmail IN A 10.0.0.2\n";
        let error = Zone::parse("db.test", text).unwrap_err().to_string();
        assert!(error.starts_with("zone file db.test line 5: "), "{error}");
        assert!(error.contains("www IN A 10.1.0"), "{error}");
    }

    #[test]
    fn requires_an_apex_soa() {
        let error = Zone::parse("db", "$ORIGIN test.ru.\n$TTL 10\nwww IN A 10.0.0.1\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no SOA record at the apex test.ru."),
            "{error}"
        );
        let error = Zone::parse(
            "db",
            "$ORIGIN test.ru.\n$TTL 10\nsub IN SOA ns. admin. 1 1 1 1 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("must be at the apex"), "{error}");
    }

    #[test]
    fn rejects_records_outside_the_zone() {
        let error = Zone::parse(
            "db",
            "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns. admin. 1 1 1 1 1\nwww.other.org. IN A 10.0.0.1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("outside the zone test.ru."), "{error}");
    }

    #[test]
    fn a_record_whose_wire_form_does_not_read_back_is_refused() {
        // Found by the zone_file fuzz target: a CAA tag of `*ssue` parsed, then every transfer
        // of the zone carried a record no secondary could decode.
        let text = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns. admin. 1 1 1 1 1\n\
                    @ IN CAA 0 issue \"letsencrypt.org\"\n";
        Zone::parse("db", text).unwrap();
        let error = Zone::parse("db", &text.replace("issue", "*ssue"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("record test.ru. CAA cannot be read back from the wire"),
            "{error}"
        );
        // Also found by it: a TXT record whose strings were all commented out went out with
        // no data, which no reader takes in a response.
        let error = Zone::parse("db", &text.replace("CAA 0 issue", "TXT ;"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("record test.ru. TXT cannot be read back from the wire"),
            "{error}"
        );
    }

    fn resolve(text: &str, qname: &str) -> Message {
        let zone = Zone::parse("loops", text).unwrap();
        let data = ZoneData::new(zone.origin.clone(), zone.nodes.clone(), zone.serial);
        let mut response = Message::response(1, hickory_proto::op::OpCode::Query);
        data.resolve(
            &Name::from_ascii(qname).unwrap(),
            RecordType::A,
            &mut response,
        );
        response
    }

    fn answer_owners(response: &Message) -> Vec<String> {
        response
            .answers
            .iter()
            .map(|record| record.name.to_ascii())
            .collect()
    }

    #[test]
    fn a_cname_loop_stops_at_the_first_name_already_answered() {
        let text = format!("{ZONE}a IN CNAME b\nb IN CNAME a\nself IN CNAME self\nin IN CNAME a\n");
        let two = resolve(&text, "a.test.ru.");
        assert_eq!(answer_owners(&two), ["a.test.ru.", "b.test.ru."]);
        assert_eq!(two.response_code, ResponseCode::NoError);
        assert!(
            two.authorities.is_empty(),
            "no SOA: the loop is not a no-data answer"
        );
        let entering = resolve(&text, "in.test.ru.");
        assert_eq!(
            answer_owners(&entering),
            ["in.test.ru.", "a.test.ru.", "b.test.ru."]
        );
        let own = resolve(&text, "SELF.test.ru.");
        assert_eq!(own.answers.len(), 1, "a self-loop answers its CNAME once");
    }

    #[test]
    fn a_long_cname_chain_is_followed_to_the_hop_limit_without_repeats() {
        let mut text = ZONE.to_owned();
        for hop in 0..20 {
            text.push_str(&format!("c{hop} IN CNAME c{}\n", hop + 1));
        }
        text.push_str("c20 IN A 10.0.0.20\n");
        let response = resolve(&text, "c0.test.ru.");
        let owners = answer_owners(&response);
        assert_eq!(owners.len(), MAX_CNAME_HOPS);
        let expected: Vec<String> = (0..MAX_CNAME_HOPS)
            .map(|hop| format!("c{hop}.test.ru."))
            .collect();
        assert_eq!(owners, expected);
        let short = resolve(&text, "c16.test.ru.");
        assert_eq!(short.answers.len(), 5, "four CNAMEs, then the A record");
        assert_eq!(short.answers[4].record_type(), RecordType::A);
    }

    #[test]
    fn entries_join_parenthesised_lines() {
        let starts = entry_starts("a\nb ( 1 ; c (\n 2 )\nd \"(\"\ne\n");
        let lines: Vec<usize> = starts.iter().map(|&(_, line)| line).collect();
        assert_eq!(lines, vec![1, 2, 4, 5]);
    }
}
