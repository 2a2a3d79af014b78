//! The `dns` health check: asks the node's name server a question and checks the response.

use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use failover_core::{FailureClass, HealthCheck, Outcome, Target};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::answer::Transport;
use crate::client::{protocol, query};
use crate::error::DnsError;

/// Response codes by the names people write (`dig` prints the same).
const RCODE_NAMES: [(&str, u16); 11] = [
    ("NOERROR", 0),
    ("FORMERR", 1),
    ("SERVFAIL", 2),
    ("NXDOMAIN", 3),
    ("NOTIMP", 4),
    ("REFUSED", 5),
    ("YXDOMAIN", 6),
    ("YXRRSET", 7),
    ("NXRRSET", 8),
    ("NOTAUTH", 9),
    ("NOTZONE", 10),
];

/// Answer values listed in an outcome before "and N more".
const SHOWN_VALUES: usize = 4;

/// What a `dns` check asks and expects, as written in a config; [`DnsCheck::new`] validates it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsCheckOptions {
    /// The name asked for (`test.ru`, `www.test.ru`); always taken as fully qualified.
    pub name: String,
    /// The record type asked for (`SOA`, `A`, `AAAA`, `NS`, `MX`, `TXT`, ...), any case.
    pub record_type: String,
    /// The port the node's name server listens on.
    pub port: u16,
    /// UDP (a truncated answer is asked again over TCP) or TCP only.
    pub transport: Transport,
    /// The response code that means healthy (`NOERROR`, `NXDOMAIN`, ...), any case.
    pub expect_rcode: String,
    /// A value the answer section must hold: an address (compared as an address with A and
    /// AAAA records) or the record's data as a zone file writes it (`ns1.test.ru.`,
    /// `10 mail.test.ru.`, TXT text without quotes), compared ignoring case and a trailing dot.
    pub expect_answer: Option<String>,
}

impl DnsCheckOptions {
    /// Asks for the SOA of `name` over UDP on port 53; NOERROR is healthy, any answer will do.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            record_type: "SOA".to_owned(),
            port: 53,
            transport: Transport::Udp,
            expect_rcode: "NOERROR".to_owned(),
            expect_answer: None,
        }
    }

    /// Sets the record type asked for.
    pub fn with_record_type(mut self, record_type: impl Into<String>) -> Self {
        self.record_type = record_type.into();
        self
    }

    /// Sets the port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the transport.
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Sets the response code that means healthy.
    pub fn with_expect_rcode(mut self, expect_rcode: impl Into<String>) -> Self {
        self.expect_rcode = expect_rcode.into();
        self
    }

    /// Sets a value the answer must hold.
    pub fn with_expect_answer(mut self, expect_answer: impl Into<String>) -> Self {
        self.expect_answer = Some(expect_answer.into());
        self
    }
}

/// Healthy when the node's name server answers the configured question with the expected
/// response code (and, if configured, the expected value among the answers).
///
/// Unreachable when nothing listens (connection refused, ICMP port unreachable), Timeout when
/// nothing answers in the target's timeout, Unhealthy with what came back otherwise.
#[derive(Clone, Debug)]
pub struct DnsCheck {
    name: Name,
    record_type: RecordType,
    port: u16,
    transport: Transport,
    expect_rcode: ResponseCode,
    expect_answer: Option<Expected>,
}

/// A value the answer must hold.
#[derive(Clone, Debug)]
enum Expected {
    Address(IpAddr),
    /// Lowercase, without a trailing dot.
    Text(String),
}

impl DnsCheck {
    /// Validates `options`; errors name the option and what is expected.
    pub fn new(options: DnsCheckOptions) -> Result<Self, DnsError> {
        let mut name =
            Name::from_ascii(options.name.trim()).map_err(|error| DnsError::CheckConfig {
                key: "name",
                reason: format!("{:?} is not a domain name: {error}", options.name),
            })?;
        name.set_fqdn(true);
        let record_type = options
            .record_type
            .trim()
            .to_ascii_uppercase()
            .parse::<RecordType>()
            .ok()
            .filter(|rtype| {
                !matches!(
                    rtype,
                    RecordType::AXFR | RecordType::IXFR | RecordType::ANY | RecordType::OPT
                )
            })
            .ok_or_else(|| DnsError::CheckConfig {
                key: "record_type",
                reason: format!(
                    "{:?} is not a record type to probe (expected e.g. SOA, A, AAAA, NS, MX, TXT, CNAME)",
                    options.record_type
                ),
            })?;
        let expect_rcode =
            parse_rcode(&options.expect_rcode).ok_or_else(|| DnsError::CheckConfig {
                key: "expect_rcode",
                reason: format!(
                    "{:?} is not a response code (expected one of: {})",
                    options.expect_rcode,
                    RCODE_NAMES.map(|(name, _)| name).join(", ")
                ),
            })?;
        if options.port == 0 {
            return Err(DnsError::CheckConfig {
                key: "port",
                reason: "port 0 cannot be probed (the default is 53)".to_owned(),
            });
        }
        let expect_answer = match options.expect_answer.as_deref().map(str::trim) {
            None => None,
            Some("") => {
                return Err(DnsError::CheckConfig {
                    key: "expect_answer",
                    reason: "is empty (leave it out to accept any answer)".to_owned(),
                })
            }
            Some(text) => Some(match text.parse::<IpAddr>() {
                Ok(address) => Expected::Address(address),
                Err(_) => Expected::Text(normalize(text)),
            }),
        };
        Ok(Self {
            name,
            record_type,
            port: options.port,
            transport: options.transport,
            expect_rcode,
            expect_answer,
        })
    }
}

#[async_trait]
impl HealthCheck for DnsCheck {
    fn kind(&self) -> &'static str {
        "dns"
    }

    async fn probe(&self, target: &Target) -> Outcome {
        let server = SocketAddr::new(target.address, self.port);
        let response = match query(
            server,
            &self.name,
            self.record_type,
            self.transport,
            target.timeout,
        )
        .await
        {
            Ok(response) => response,
            Err(error) => {
                let class = match error {
                    DnsError::QueryTimeout { .. } => FailureClass::Timeout,
                    DnsError::QueryIo { .. } => FailureClass::Unreachable,
                    _ => FailureClass::Unhealthy,
                };
                return Outcome::failed(class, error.to_string());
            }
        };
        let question = format!(
            "{server} ({}) answered {} {}",
            protocol(self.transport),
            self.name,
            self.record_type
        );
        let rcode = response.response_code;
        if rcode != self.expect_rcode {
            return Outcome::failed(
                FailureClass::Unhealthy,
                format!(
                    "{question} with {}, expected {}",
                    rcode_name(rcode),
                    rcode_name(self.expect_rcode)
                ),
            );
        }
        let values = describe_answers(&response);
        if let Some(expected) = &self.expect_answer {
            if !response
                .answers
                .iter()
                .any(|record| expected.matches(record))
            {
                return Outcome::failed(
                    FailureClass::Unhealthy,
                    format!(
                        "{question} with {} {values}, expected an answer holding {}",
                        rcode_name(rcode),
                        expected
                    ),
                );
            }
        }
        Outcome::healthy(format!("{question} with {} {values}", rcode_name(rcode)))
    }
}

impl Expected {
    fn matches(&self, record: &Record) -> bool {
        match (self, &record.data) {
            (Expected::Address(want), RData::A(a)) => *want == IpAddr::V4(a.0),
            (Expected::Address(want), RData::AAAA(aaaa)) => *want == IpAddr::V6(aaaa.0),
            (Expected::Address(_), _) => false,
            (Expected::Text(want), data) => *want == normalize(&data.to_string()),
        }
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Address(address) => write!(f, "{address}"),
            Expected::Text(text) => write!(f, "{text:?}"),
        }
    }
}

fn normalize(text: &str) -> String {
    text.trim().trim_end_matches('.').to_lowercase()
}

fn parse_rcode(text: &str) -> Option<ResponseCode> {
    let text = text.trim();
    RCODE_NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|&(_, code)| <ResponseCode as From<u16>>::from(code))
}

/// `NOERROR`, `SERVFAIL`, ... as `dig` writes them.
fn rcode_name(rcode: ResponseCode) -> String {
    let code = u16::from(rcode);
    RCODE_NAMES
        .iter()
        .find(|&&(_, known)| known == code)
        .map_or_else(|| format!("RCODE{code}"), |(name, _)| (*name).to_owned())
}

/// `[A 10.0.0.1, A 10.0.0.2]`, shortened; `[no answer records]` when empty.
fn describe_answers(response: &Message) -> String {
    if response.answers.is_empty() {
        return "[no answer records]".to_owned();
    }
    let mut shown: Vec<String> = response
        .answers
        .iter()
        .take(SHOWN_VALUES)
        .map(|record| format!("{} {}", record.record_type(), record.data))
        .collect();
    if response.answers.len() > SHOWN_VALUES {
        shown.push(format!(
            "and {} more",
            response.answers.len() - SHOWN_VALUES
        ));
    }
    format!("[{}]", shown.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    fn error(options: DnsCheckOptions) -> String {
        DnsCheck::new(options).unwrap_err().to_string()
    }

    #[test]
    fn options_are_validated_with_the_key_named() {
        let base = || DnsCheckOptions::new("test.ru");
        assert!(DnsCheck::new(
            base()
                .with_record_type("aaaa")
                .with_expect_rcode("nxdomain")
        )
        .is_ok());
        let bad_type = error(base().with_record_type("AAA"));
        assert!(
            bad_type.starts_with("dns check record_type: \"AAA\""),
            "{bad_type}"
        );
        assert!(error(base().with_record_type("AXFR")).contains("record_type"));
        let bad_rcode = error(base().with_expect_rcode("OK"));
        assert!(
            bad_rcode.contains("expect_rcode") && bad_rcode.contains("NOERROR, FORMERR"),
            "{bad_rcode}"
        );
        assert!(error(base().with_port(0)).contains("port"));
        assert!(error(base().with_expect_answer(" ")).contains("expect_answer"));
        assert!(error(DnsCheckOptions::new("a..b")).contains("dns check name"));
    }

    #[test]
    fn expected_values_match_addresses_and_zone_file_text() {
        let record = |text: &str, rtype: RecordType| {
            let data = RData::try_from_str(rtype, text).unwrap();
            Record::from_rdata(Name::from_ascii("test.ru.").unwrap(), 10, data)
        };
        let address = Expected::Address("10.0.0.1".parse().unwrap());
        assert!(address.matches(&record("10.0.0.1", RecordType::A)));
        assert!(!address.matches(&record("10.0.0.2", RecordType::A)));
        let ns = Expected::Text(normalize("NS1.test.ru"));
        assert!(ns.matches(&record("ns1.test.ru.", RecordType::NS)));
        let mx = Expected::Text(normalize("10 mail.test.ru."));
        assert!(mx.matches(&record("10 mail.test.ru.", RecordType::MX)));
        let txt = Expected::Text(normalize("v=spf1 -all"));
        assert!(txt.matches(&record("\"v=spf1 -all\"", RecordType::TXT)));
    }

    #[test]
    fn rcodes_are_named_as_dig_names_them() {
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::from_low(15)), "RCODE15");
        assert_eq!(parse_rcode(" servfail "), Some(ResponseCode::ServFail));
    }
}
