//! [`ZoneFileWriter`]: rewrites the managed records of a BIND zone file and reloads the zone.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use failover_core::{ManagedName, Publication, PublishError, PublishReceipt, ZoneWriter};
use hickory_proto::rr::{Name, RData, RecordType};

use super::managed::{absolute, zone_name, Desired, ManagedSet};
use super::steps::{blocking_within, query_soa_serial, within, DEFAULT_STEP_TIMEOUT};
use crate::error::DnsError;
use crate::served::serial_lt;
use crate::zone::Zone;

/// The comment put after every record the writer renders, so that an operator reading the
/// file knows which lines are rewritten on every publish.
const MANAGED_COMMENT: &str = "; managed by failoverd";

/// Settings of a [`ZoneFileWriter`]. Start from [`ZoneFileOptions::new`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ZoneFileOptions {
    /// The zone, as in `named.conf` (`test.ru`).
    pub zone: String,
    /// The zone file BIND loads for it (`/etc/bind/db.test.ru`). It is both the template (static
    /// records and comments kept as written) and the file rewritten on every publish.
    pub path: PathBuf,
    /// The names whose A and AAAA records the writer owns (`@`, `www`).
    pub managed: Vec<ManagedName>,
    /// The program and arguments that make BIND load the new file; default `rndc reload ZONE`.
    pub reload_command: Vec<String>,
    /// Limit of each step: reading and writing the file, the reload command (killed after it),
    /// and waiting for `verify_at` to serve the new serial.
    pub timeout: Duration,
    /// A name server that loads this file (BIND itself, `127.0.0.1:53`): after the reload the
    /// writer asks it for the zone's SOA until it serves the new serial. `rndc reload ZONE` only
    /// queues the load and succeeds even when BIND then rejects the file, so without this a
    /// publish is reported live once the file is written and the command succeeded.
    pub verify_at: Option<SocketAddr>,
}

impl ZoneFileOptions {
    /// Options with the default reload command (`rndc reload ZONE`) and step timeout (10 s).
    pub fn new(zone: &str, path: impl Into<PathBuf>, managed: Vec<ManagedName>) -> Self {
        Self {
            zone: zone.to_owned(),
            path: path.into(),
            managed,
            reload_command: default_reload_command(zone),
            timeout: DEFAULT_STEP_TIMEOUT,
            verify_at: None,
        }
    }
}

/// The default reload command for `zone`: `rndc reload ZONE`.
pub fn default_reload_command(zone: &str) -> Vec<String> {
    vec![
        "rndc".to_owned(),
        "reload".to_owned(),
        zone.trim_end_matches('.').to_owned(),
    ]
}

/// A [`ZoneWriter`] for a zone file that BIND (or NSD, Knot) serves: each publish rewrites the A
/// and AAAA records of the managed names, raises the SOA serial, replaces the file atomically and
/// runs the reload command.
///
/// Rendering is a text substitution: the file on disk is re-read on every publish, the lines of
/// the managed names' A/AAAA records are replaced (the first one in place, the others dropped;
/// a name without any gets its records at the end of the file) and the SOA serial token is
/// rewritten. Every other line, comment and layout is kept, so hand edits of static records
/// made while the daemon runs survive. The result is parsed and checked before it replaces the
/// file.
///
/// The serial is `max(file serial, last serial written) + 1` in RFC 1982 arithmetic, so it never
/// goes back even when a reload failed after BIND read the file. A publication that changes
/// nothing keeps the file (and its serial) and only reloads.
///
/// When the reload command fails or times out, the previous file is put back (BIND keeps serving
/// the zone it had) and the error carries the command's own output.
#[derive(Clone, Debug)]
pub struct ZoneFileWriter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    zone: String,
    origin: Name,
    path: PathBuf,
    managed: ManagedSet,
    reload_command: Vec<String>,
    timeout: Duration,
    verify_at: Option<SocketAddr>,
    /// The last serial written into the file; serialises publishes.
    last_serial: tokio::sync::Mutex<Option<u32>>,
}

/// What a successful file step left behind.
struct Written {
    serial: u32,
    /// The file's content before, to put back if the reload fails; `None` when unchanged.
    previous: Option<Vec<u8>>,
}

impl ZoneFileWriter {
    /// Checks the options: the zone file must parse as the zone, the managed names must be
    /// manageable in it, the reload command must not be empty.
    pub fn new(options: ZoneFileOptions) -> Result<Self, DnsError> {
        let writer = format!("zone file {}", options.path.display());
        let origin = zone_name(&writer, &options.zone)?;
        let zone = Zone::from_file_for(&options.path, &origin.to_ascii())?;
        if zone.origin != origin {
            return Err(DnsError::WriterConfig {
                writer,
                reason: format!(
                    "the file's $ORIGIN is {} but the zone is {origin}; they must match",
                    zone.origin
                ),
            });
        }
        let managed = ManagedSet::new(&origin, &options.managed, Some(&zone))?;
        if options.reload_command.first().is_none_or(String::is_empty) {
            return Err(DnsError::WriterConfig {
                writer,
                reason: "the reload command is empty (expected e.g. [\"rndc\", \"reload\", \"test.ru\"])"
                    .to_owned(),
            });
        }
        if options.timeout.is_zero() {
            return Err(DnsError::WriterConfig {
                writer,
                reason: "the timeout must be more than zero".to_owned(),
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                zone: origin.to_ascii().trim_end_matches('.').to_owned(),
                origin,
                path: options.path,
                managed,
                reload_command: options.reload_command,
                timeout: options.timeout,
                verify_at: options.verify_at,
                last_serial: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// Makes `publication` live; returns the SOA serial now in the file.
    pub async fn publish_zone(&self, publication: &Publication) -> Result<u32, DnsError> {
        let inner = &self.inner;
        let desired = inner.managed.desired(publication)?;
        let mut last_serial = inner.last_serial.lock().await;
        let step_error = |reason: String| DnsError::ZoneFileWrite {
            path: inner.path.clone(),
            reason,
        };

        let job_inner = Arc::clone(inner);
        let last = *last_serial;
        let written = blocking_within(inner.timeout, "writing the zone file", move || {
            write_rendered(&job_inner, &desired, last)
        })
        .await
        .map_err(|reason| {
            step_error(format!(
                "{reason}; the file may still be replaced when the write completes"
            ))
        })??;
        // Counted even if the reload fails: BIND may have read the file anyway.
        *last_serial = Some(written.serial);

        let outcome = match self.reload().await {
            Ok(()) => self.verify(written.serial).await,
            Err(reason) => Err(reason),
        };
        let Err(mut reason) = outcome else {
            return Ok(written.serial);
        };
        match written.previous {
            Some(previous) => {
                let path = inner.path.clone();
                let restored =
                    blocking_within(inner.timeout, "restoring the zone file", move || {
                        replace_file(&path, &previous, |_| Ok(()))
                    })
                    .await;
                match restored {
                    Ok(Ok(())) => reason.push_str(
                        "; the previous zone file was put back, BIND keeps serving the zone it had",
                    ),
                    Ok(Err(error)) => reason.push_str(&format!(
                        "; and putting the previous zone file back failed too: {error}"
                    )),
                    Err(error) => reason.push_str(&format!(
                        "; and putting the previous zone file back failed too: {error}"
                    )),
                }
            }
            None => reason.push_str("; the zone file was already up to date and is unchanged"),
        }
        Err(DnsError::Reload {
            zone: inner.zone.clone(),
            reason,
        })
    }

    /// Waits until `verify_at` (if set) serves `serial` or a later one.
    async fn verify(&self, serial: u32) -> Result<(), String> {
        let Some(server) = self.inner.verify_at else {
            return Ok(());
        };
        let origin = &self.inner.origin;
        let limit = self.inner.timeout;
        let mut last = String::from("no answer yet");
        let waited = tokio::time::timeout(limit, async {
            loop {
                let per_query = Duration::from_secs(1).min(limit);
                match query_soa_serial(server, origin, per_query).await {
                    Ok(seen) if !serial_lt(seen, serial) => return,
                    Ok(seen) => last = format!("it still serves serial {seen}"),
                    Err(error) => last = error,
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        match waited {
            Ok(()) => Ok(()),
            Err(_) => Err(format!(
                "{server} did not serve serial {serial} within {limit:?} after the reload ({last}); \
                 the name server did not load the new file: see its log, or run \
                 `named-checkzone {} {}`",
                self.inner.zone,
                self.inner.path.display()
            )),
        }
    }

    /// Runs the reload command under the timeout; `Err` carries its exit status and output.
    async fn reload(&self) -> Result<(), String> {
        let inner = &self.inner;
        let shown = inner.reload_command.join(" ");
        let (program, args) = match inner.reload_command.split_first() {
            Some(split) => split,
            None => return Err("the reload command is empty".to_owned()),
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let what = format!("running `{shown}` (it was killed)");
        let output = within(inner.timeout, &what, async {
            command.output().await.map_err(|error| {
                format!("cannot run `{shown}`: {error}{}", run_hint(program, &error))
            })
        })
        .await?;
        if output.status.success() {
            return Ok(());
        }
        let mut said: Vec<String> = Vec::new();
        for stream in [&output.stderr, &output.stdout] {
            let text = String::from_utf8_lossy(stream);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if !text.is_empty() {
                said.push(text);
            }
        }
        let said = if said.is_empty() {
            "no output".to_owned()
        } else {
            said.join(" / ")
        };
        Err(format!(
            "`{shown}` failed ({}): {said} (check that named is running and that the command \
             reaches it: rndc's server, port and key in rndc.conf or -s/-p/-k)",
            output.status
        ))
    }
}

#[async_trait]
impl ZoneWriter for ZoneFileWriter {
    fn describe(&self) -> String {
        format!("zone file {}", self.inner.path.display())
    }

    async fn publish(&self, publication: &Publication) -> Result<PublishReceipt, PublishError> {
        let serial = self
            .publish_zone(publication)
            .await
            .map_err(PublishError::new)?;
        Ok(PublishReceipt {
            serial: Some(serial),
        })
    }
}

fn run_hint(program: &str, error: &std::io::Error) -> &'static str {
    match (error.kind(), program) {
        (std::io::ErrorKind::NotFound, "rndc") => {
            " (install BIND's tools: apt-get install bind9-utils, or set the reload command)"
        }
        (std::io::ErrorKind::NotFound, _) => " (no such program; give its full path)",
        _ => "",
    }
}

/// Reads the file, renders the publication into it and replaces it (unless nothing changes).
fn write_rendered(
    inner: &Inner,
    desired: &[Desired],
    last: Option<u32>,
) -> Result<Written, DnsError> {
    let path = &inner.path;
    let read_error = |source| DnsError::ZoneRead {
        path: path.clone(),
        source,
    };
    let previous = fs::read(path).map_err(read_error)?;
    let text = String::from_utf8(previous.clone()).map_err(|_| DnsError::ZoneFileWrite {
        path: path.clone(),
        reason: "the file is not UTF-8 text".to_owned(),
    })?;
    // The file as it is now must be a valid zone: it is the template.
    let current = Zone::from_file_for(path, &inner.origin.to_ascii())?;
    let unchanged = render(&text, &inner.origin, desired, current.serial)?;
    if unchanged == text {
        return Ok(Written {
            serial: current.serial,
            previous: None,
        });
    }
    let base = match last {
        Some(last) if serial_lt(current.serial, last) => last,
        _ => current.serial,
    };
    let serial = base.wrapping_add(1);
    let rendered = render(&text, &inner.origin, desired, serial)?;
    replace_file(path, rendered.as_bytes(), |temp| {
        check_rendered(temp, &inner.origin, desired, serial)
    })?;
    Ok(Written {
        serial,
        previous: Some(previous),
    })
}

/// Parses the rendered file as BIND would load it and checks that it says what was published.
fn check_rendered(
    temp: &Path,
    origin: &Name,
    desired: &[Desired],
    serial: u32,
) -> Result<(), DnsError> {
    let zone = Zone::from_file_for(temp, &origin.to_ascii())?;
    let invalid = |reason: String| DnsError::ZoneInvalid {
        file: temp.display().to_string(),
        reason,
    };
    if zone.serial != serial {
        return Err(invalid(format!(
            "the rendered SOA serial is {} instead of {serial} (is the SOA in an $INCLUDE file?)",
            zone.serial
        )));
    }
    for want in desired {
        let mut have: Vec<IpAddr> = zone
            .nodes
            .get(&want.name)
            .into_iter()
            .flat_map(|node| {
                [RecordType::A, RecordType::AAAA]
                    .into_iter()
                    .flat_map(|rtype| node.get(rtype).unwrap_or_default())
            })
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            })
            .collect();
        let mut wanted = want.addresses.clone();
        have.sort();
        have.dedup();
        wanted.sort();
        wanted.dedup();
        if have != wanted {
            return Err(invalid(format!(
                "after rendering, {} has the addresses {have:?} instead of {wanted:?} \
                 (are its records in an $INCLUDE file? keep managed names in the zone file itself)",
                want.name
            )));
        }
    }
    Ok(())
}

/// Replaces `path` crash-safely with `content`: a temp file in the same directory with the
/// original's mode and owner, fsync, `check` on the temp file, rename, fsync of the directory.
fn replace_file(
    path: &Path,
    content: &[u8],
    check: impl FnOnce(&Path) -> Result<(), DnsError>,
) -> Result<(), DnsError> {
    use std::os::unix::fs::MetadataExt;

    let error = |what: &str, error: std::io::Error| DnsError::ZoneFileWrite {
        path: path.to_path_buf(),
        reason: format!("cannot {what}: {error}"),
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.failoverd-tmp"));
    let original = fs::metadata(path).ok();
    let result = (|| {
        let mut file = fs::File::create(&temp)
            .map_err(|e| error(&format!("create the temp file {}", temp.display()), e))?;
        if let Some(original) = &original {
            file.set_permissions(original.permissions())
                .map_err(|e| error("copy the file's permissions", e))?;
            // Keeps BIND's ownership (e.g. bind:bind); only root may give a file away, and a
            // daemon that is not root writes as the file's owner anyway.
            if let Err(e) =
                std::os::unix::fs::fchown(&file, Some(original.uid()), Some(original.gid()))
            {
                tracing::debug!(path = %temp.display(), "cannot copy the zone file's owner: {e}");
            }
        }
        file.write_all(content)
            .and_then(|()| file.sync_all())
            .map_err(|e| error("write the temp file", e))?;
        drop(file);
        check(&temp)?;
        fs::rename(&temp, path).map_err(|e| error("rename the temp file into place", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
        return result;
    }
    if let Some(dir) = path.parent() {
        // Makes the rename durable; some file systems refuse fsync on a directory, which is fine.
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// One entry of a zone file: a line, or several lines joined by parentheses.
#[derive(Debug)]
struct Entry {
    /// Byte range in the text, including the ending newline.
    span: Range<usize>,
    /// Byte ranges of the entry's tokens (no parentheses, no comments).
    tokens: Vec<Range<usize>>,
    /// The entry starts with a blank: it has no owner of its own (the previous one applies).
    inherits_owner: bool,
}

/// Splits master-file text into entries and tokens (RFC 1035 section 5.1 syntax).
fn entries(text: &str) -> Vec<Entry> {
    let bytes = text.as_bytes();
    let mut entries = Vec::new();
    let mut start = 0;
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut position = 0;
    let finish = |start: usize, end: usize, tokens: Vec<Range<usize>>, entries: &mut Vec<Entry>| {
        entries.push(Entry {
            span: start..end,
            tokens,
            inherits_owner: matches!(bytes.get(start), Some(b' ' | b'\t')),
        });
    };
    while position < bytes.len() {
        match bytes[position] {
            b'\n' => {
                position += 1;
                if depth == 0 {
                    finish(start, position, std::mem::take(&mut tokens), &mut entries);
                    start = position;
                }
            }
            b';' => {
                while position < bytes.len() && bytes[position] != b'\n' {
                    position += 1;
                }
            }
            b'(' => {
                depth += 1;
                position += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                position += 1;
            }
            b' ' | b'\t' | b'\r' => position += 1,
            _ => {
                let token_start = position;
                let mut in_quote = false;
                while position < bytes.len() {
                    match bytes[position] {
                        b'\\' => position += 1,
                        b'"' => in_quote = !in_quote,
                        b'\n' if !in_quote => break,
                        b' ' | b'\t' | b'\r' | b'(' | b')' | b';' if !in_quote => break,
                        _ => {}
                    }
                    position += 1;
                }
                let end = position.min(bytes.len());
                tokens.push(token_start..end);
            }
        }
    }
    if start < bytes.len() {
        finish(start, bytes.len(), tokens, &mut entries);
    }
    entries
}

/// Renders the zone file text with the desired A/AAAA records of the managed names and the SOA
/// serial set to `serial`; everything else is copied as written.
fn render(
    text: &str,
    zone_origin: &Name,
    desired: &[Desired],
    serial: u32,
) -> Result<String, DnsError> {
    let mut rendering = Rendering {
        text,
        zone_origin,
        desired,
        serial,
        out: String::with_capacity(text.len() + 256),
        origin: zone_origin.clone(),
        owner: None,
        emitted_owner: None,
        placed: vec![false; desired.len()],
    };
    for entry in entries(text) {
        rendering.entry(&entry);
    }
    Ok(rendering.finish())
}

/// One pass of [`render`] over the entries of a zone file.
struct Rendering<'a> {
    text: &'a str,
    zone_origin: &'a Name,
    desired: &'a [Desired],
    serial: u32,
    out: String,
    /// The `$ORIGIN` in effect.
    origin: Name,
    /// The owner each input entry has, and the owner the output would give a blank-led entry.
    owner: Option<Name>,
    emitted_owner: Option<Name>,
    /// Which desired names have had their records written.
    placed: Vec<bool>,
}

impl<'a> Rendering<'a> {
    fn token(&self, range: &Range<usize>) -> &'a str {
        &self.text[range.clone()]
    }

    /// Copies, rewrites or drops one entry.
    fn entry(&mut self, entry: &Entry) {
        let whole = &self.text[entry.span.clone()];
        let Some(first) = entry.tokens.first() else {
            self.out.push_str(whole);
            return;
        };
        let first = self.token(first);
        if first.starts_with('$') {
            self.directive(entry, first);
            self.out.push_str(whole);
            return;
        }
        let (entry_owner, mut index) = if entry.inherits_owner {
            (self.owner.clone(), 0)
        } else {
            (absolute(&self.origin, first), 1)
        };
        self.owner.clone_from(&entry_owner);
        // Up to two of TTL and class, in either order, before the type.
        for _ in 0..2 {
            match entry.tokens.get(index).map(|t| self.token(t)) {
                Some(t) if is_class(t) || t.starts_with(|c: char| c.is_ascii_digit()) => index += 1,
                _ => break,
            }
        }
        let rtype = entry
            .tokens
            .get(index)
            .map(|t| self.token(t))
            .unwrap_or_default();
        let is_address = rtype.eq_ignore_ascii_case("A") || rtype.eq_ignore_ascii_case("AAAA");
        let managed = entry_owner
            .as_ref()
            .and_then(|name| self.desired.iter().position(|d| d.name == *name));
        if let (true, Some(which)) = (is_address, managed) {
            if !self.placed[which] {
                self.placed[which] = true;
                render_records(&mut self.out, &self.desired[which], &self.origin);
                self.emitted_owner = Some(self.desired[which].name.clone());
            }
            return;
        }
        if entry.inherits_owner && entry_owner.is_some() && self.emitted_owner != entry_owner {
            // A dropped line gave this one its owner: name it explicitly.
            if let Some(name) = &entry_owner {
                self.out.push_str(&relative_text(name, &self.origin));
            }
        }
        if !entry.inherits_owner {
            self.emitted_owner.clone_from(&entry_owner);
        }
        let serial_token = entry.tokens.get(index + 3);
        match serial_token {
            Some(range)
                if rtype.eq_ignore_ascii_case("SOA")
                    && entry_owner.as_ref() == Some(self.zone_origin) =>
            {
                self.out.push_str(&self.text[entry.span.start..range.start]);
                self.out.push_str(&self.serial.to_string());
                self.out.push_str(&self.text[range.end..entry.span.end]);
            }
            _ => self.out.push_str(whole),
        }
    }

    /// Follows `$ORIGIN`; after `$INCLUDE` the owner is unknown.
    fn directive(&mut self, entry: &Entry, first: &str) {
        if first.eq_ignore_ascii_case("$ORIGIN") {
            if let Some(new_origin) = entry
                .tokens
                .get(1)
                .and_then(|t| absolute(&self.origin, self.token(t)))
            {
                self.origin = new_origin;
            }
        } else if first.eq_ignore_ascii_case("$INCLUDE") {
            // The included file's records may set another owner for what follows.
            self.owner = None;
            self.emitted_owner = None;
        }
    }

    /// The text, with the records of the managed names the file had none of at its end.
    fn finish(mut self) -> String {
        let missing: Vec<&Desired> = self
            .desired
            .iter()
            .zip(&self.placed)
            .filter(|(_, placed)| !**placed)
            .map(|(d, _)| d)
            .collect();
        if !missing.is_empty() {
            if !self.out.is_empty() && !self.out.ends_with('\n') {
                self.out.push('\n');
            }
            for want in missing {
                render_records(&mut self.out, want, &self.origin);
            }
        }
        self.out
    }
}

fn is_class(token: &str) -> bool {
    ["IN", "CH", "CS", "HS"]
        .iter()
        .any(|class| token.eq_ignore_ascii_case(class))
}

/// The records of one managed name, one line each, A before AAAA.
fn render_records(out: &mut String, want: &Desired, origin: &Name) {
    let owner = relative_text(&want.name, origin);
    let (v4, v6): (Vec<&IpAddr>, Vec<&IpAddr>) = want.addresses.iter().partition(|a| a.is_ipv4());
    for address in v4.into_iter().chain(v6) {
        let rtype = if address.is_ipv4() { "A" } else { "AAAA" };
        out.push_str(&format!(
            "{owner}\t{}\tIN\t{rtype}\t{address}\t{MANAGED_COMMENT}\n",
            want.ttl
        ));
    }
}

/// `name` as written under `origin`: `@`, a relative name, or fully qualified with a dot.
fn relative_text(name: &Name, origin: &Name) -> String {
    if name == origin {
        return "@".to_owned();
    }
    let (name_text, origin_text) = (name.to_ascii(), origin.to_ascii());
    match name_text.strip_suffix(&origin_text) {
        Some(relative) if origin.zone_of(name) => relative.trim_end_matches('.').to_owned(),
        _ => name_text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    const ZONE: &str = "\
; test.ru, edited by hand
$ORIGIN test.ru.
$TTL 10
@   IN SOA ns1.test.ru. admin.test.ru. (
        2024010101 ; serial, bump on edit
        3600 600 86400 10 )
    IN NS  ns1
    IN A   10.1.0.1   ; the master
    IN MX  10 mail
www IN A   10.1.0.1
www IN AAAA 2001:db8::1
    IN TXT \"v=spf1 -all\"
mail 300 IN A 10.0.0.25 ; static
ns1 IN A 10.0.0.53
";

    fn origin() -> Name {
        Name::from_ascii("test.ru.").unwrap()
    }

    fn want(name: &str, ttl: u32, addresses: &[&str]) -> Desired {
        Desired {
            name: super::absolute(&origin(), name).unwrap(),
            ttl,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn parsed(text: &str) -> Zone {
        Zone::parse("rendered", text).unwrap()
    }

    fn addresses(zone: &Zone, name: &str) -> Vec<String> {
        let node = &zone.nodes[&super::absolute(&origin(), name).unwrap()];
        [RecordType::A, RecordType::AAAA]
            .into_iter()
            .flat_map(|t| node.get(t).unwrap_or_default())
            .map(|r| r.data.to_string())
            .collect()
    }

    #[test]
    fn replaces_managed_addresses_and_keeps_the_rest() {
        let desired = [
            want("@", 10, &["10.2.0.1"]),
            want("www", 10, &["10.2.0.1", "2001:db8::2"]),
        ];
        let out = render(ZONE, &origin(), &desired, 2024010102).unwrap();
        let zone = parsed(&out);
        assert_eq!(zone.serial, 2024010102);
        assert_eq!(addresses(&zone, "@"), ["10.2.0.1"]);
        assert_eq!(addresses(&zone, "www"), ["10.2.0.1", "2001:db8::2"]);
        assert_eq!(addresses(&zone, "mail"), ["10.0.0.25"]);
        // Static records at the managed names, even on lines that inherit the owner, stay.
        let apex = &zone.nodes[&origin()];
        assert!(apex.get(RecordType::MX).is_some() && apex.get(RecordType::NS).is_some());
        let www = &zone.nodes[&Name::from_ascii("www.test.ru.").unwrap()];
        assert!(www.get(RecordType::TXT).is_some());
        // Comments and layout of the other lines are kept byte for byte.
        for line in [
            "; test.ru, edited by hand\n",
            "        2024010102 ; serial, bump on edit\n",
            "    IN MX  10 mail\n",
            "mail 300 IN A 10.0.0.25 ; static\n",
        ] {
            assert!(out.contains(line), "{line:?} missing in:\n{out}");
        }
        assert!(
            out.contains("www\t10\tIN\tAAAA\t2001:db8::2\t; managed by failoverd\n"),
            "{out}"
        );
        assert!(
            !out.contains("the master"),
            "the replaced line is gone:\n{out}"
        );
    }

    #[test]
    fn a_dropped_line_hands_its_owner_on() {
        // The AAAA line is dropped (www gets only an A); the TXT line after it inherits www.
        let text = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns1 admin 7 1 1 1 1\n@ IN NS ns1\nwww IN A 10.1.0.1\nns1 IN A 10.0.0.53\nwww IN AAAA ::1\n  IN TXT \"x\"\n";
        let out = render(text, &origin(), &[want("www", 60, &["10.3.0.1"])], 8).unwrap();
        let zone = parsed(&out);
        assert_eq!(addresses(&zone, "www"), ["10.3.0.1"]);
        assert_eq!(addresses(&zone, "ns1"), ["10.0.0.53"]);
        let www = &zone.nodes[&Name::from_ascii("www.test.ru.").unwrap()];
        assert!(www.get(RecordType::TXT).is_some(), "{out}");
    }

    #[test]
    fn a_name_without_addresses_gets_them_at_the_end() {
        let text = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns1 admin 7 1 1 1 1\n@ IN NS ns1\nns1 IN A 10.0.0.53\n$ORIGIN sub.test.ru.\nx IN A 10.0.0.9";
        let out = render(text, &origin(), &[want("shop", 10, &["2001:db8::5"])], 8).unwrap();
        assert!(out.ends_with("x IN A 10.0.0.9\nshop.test.ru.\t10\tIN\tAAAA\t2001:db8::5\t; managed by failoverd\n"), "{out}");
        // (Zone takes the last $ORIGIN as the zone's; BIND takes the zone's name.)
        let flat = out.replace("$ORIGIN sub.test.ru.\nx IN", "x.sub IN");
        assert_eq!(addresses(&parsed(&flat), "shop"), ["2001:db8::5"]);
    }

    #[test]
    fn names_not_in_the_publication_are_left_alone() {
        let out = render(ZONE, &origin(), &[want("www", 10, &["10.2.0.1"])], 5).unwrap();
        let zone = parsed(&out);
        assert_eq!(addresses(&zone, "@"), ["10.1.0.1"]);
        assert_eq!(addresses(&zone, "www"), ["10.2.0.1"]);
    }

    #[test]
    fn rendering_the_same_answer_twice_is_stable() {
        let desired = [want("www", 10, &["10.2.0.1"])];
        let once = render(ZONE, &origin(), &desired, 9).unwrap();
        assert_eq!(render(&once, &origin(), &desired, 9).unwrap(), once);
    }

    #[test]
    fn relative_names_are_written_under_the_current_origin() {
        let sub = Name::from_ascii("a.b.test.ru.").unwrap();
        assert_eq!(relative_text(&sub, &origin()), "a.b");
        assert_eq!(relative_text(&origin(), &origin()), "@");
        assert_eq!(relative_text(&origin(), &sub), "test.ru.");
    }

    fn writer(dir: &Path, text: &str, reload: &[&str]) -> ZoneFileWriter {
        let path = dir.join("db.test.ru");
        fs::write(&path, text).unwrap();
        let mut options = ZoneFileOptions::new(
            "test.ru",
            &path,
            vec![ManagedName::new("@", 10), ManagedName::new("www", 10)],
        );
        options.reload_command = reload.iter().map(|s| (*s).to_owned()).collect();
        ZoneFileWriter::new(options).unwrap()
    }

    fn publication(address: &str) -> Publication {
        Publication {
            nodes: vec![],
            answers: vec![failover_core::ManagedAnswer {
                name: "www".into(),
                ttl: 10,
                addresses: vec![address.parse().unwrap()],
            }],
        }
    }

    #[tokio::test]
    async fn the_serial_only_grows_and_an_unchanged_answer_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(dir.path(), ZONE, &["true"]);
        let path = dir.path().join("db.test.ru");
        assert_eq!(
            writer.publish_zone(&publication("10.2.0.1")).await.unwrap(),
            2024010102
        );
        assert_eq!(
            writer.publish_zone(&publication("10.2.0.1")).await.unwrap(),
            2024010102
        );
        // Someone lowers the serial by hand: the next one still goes past the last written.
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("2024010102", "5");
        fs::write(&path, text).unwrap();
        assert_eq!(
            writer.publish_zone(&publication("10.1.0.1")).await.unwrap(),
            2024010103
        );
        // Someone raises it by hand: the next one goes past theirs.
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("2024010103", "2025000000");
        fs::write(&path, text).unwrap();
        assert_eq!(
            writer.publish_zone(&publication("10.2.0.1")).await.unwrap(),
            2025000001
        );
        // RFC 1982: a file at u32::MAX goes on to 0, which counts as later.
        let dir = tempfile::tempdir().unwrap();
        let wrapping = self::writer(
            dir.path(),
            &ZONE.replace("2024010101", "4294967295"),
            &["true"],
        );
        assert_eq!(
            wrapping
                .publish_zone(&publication("10.2.0.1"))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            wrapping
                .publish_zone(&publication("10.1.0.1"))
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn a_failed_reload_puts_the_previous_file_back() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(
            dir.path(),
            ZONE,
            &[
                "sh",
                "-c",
                "echo 'rndc: connect failed: 127.0.0.1#1: connection refused' >&2; exit 1",
            ],
        );
        let error = writer
            .publish_zone(&publication("10.2.0.1"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("reload of zone test.ru failed: "),
            "{error}"
        );
        assert!(
            error.contains("rndc: connect failed: 127.0.0.1#1: connection refused"),
            "{error}"
        );
        assert!(error.contains("previous zone file was put back"), "{error}");
        assert_eq!(
            fs::read_to_string(dir.path().join("db.test.ru")).unwrap(),
            ZONE
        );
        assert!(!dir.path().join(".db.test.ru.failoverd-tmp").exists());
    }

    #[tokio::test]
    async fn a_hanging_reload_is_killed_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.test.ru");
        fs::write(&path, ZONE).unwrap();
        let mut options = ZoneFileOptions::new("test.ru", &path, vec![ManagedName::new("www", 10)]);
        options.reload_command = vec!["sleep".into(), "30".into()];
        options.timeout = Duration::from_millis(300);
        let writer = ZoneFileWriter::new(options).unwrap();
        let error = writer
            .publish_zone(&publication("10.2.0.1"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("timed out after 300ms while running `sleep 30`"),
            "{error}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), ZONE);
    }

    #[test]
    fn construction_errors_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.test.ru");
        fs::write(
            &path,
            ZONE.replace(
                "www IN A   10.1.0.1\nwww IN AAAA 2001:db8::1\n    IN TXT \"v=spf1 -all\"\n",
                "www IN CNAME mail\n",
            ),
        )
        .unwrap();
        let error = ZoneFileWriter::new(ZoneFileOptions::new(
            "test.ru",
            &path,
            vec![ManagedName::new("www", 10)],
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("has a CNAME in the zone file"), "{error}");
        let error = ZoneFileWriter::new(ZoneFileOptions::new(
            "other.org",
            &path,
            vec![ManagedName::new("www", 10)],
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("other.org"), "{error}");
        let mut options = ZoneFileOptions::new("test.ru", &path, vec![ManagedName::new("@", 10)]);
        options.reload_command.clear();
        let error = ZoneFileWriter::new(options).unwrap_err().to_string();
        assert!(error.contains("reload command is empty"), "{error}");
    }
}
