//! A node's identity on the peer link: its certificate and key, and the fingerprint its peers pin.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use super::error::PeerError;

/// The SHA-256 of a node's certificate, as pinned in its peers' configs: `sha256:` and 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(certificate: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, certificate);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = PeerError;

    fn from_str(text: &str) -> Result<Self, PeerError> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() != 64 {
            return Err(PeerError::Fingerprint(text.to_owned()));
        }
        let mut bytes = [0u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = hex
                .get(index * 2..index * 2 + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| PeerError::Fingerprint(text.to_owned()))?;
        }
        Ok(Self(bytes))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A node's own certificate and key.
pub struct Identity {
    pub(super) certificate: CertificateDer<'static>,
    /// The certificates that follow it in its file (a CA's intermediates), sent by HTTPS
    /// listeners; the peer link pins the certificate alone.
    pub(super) chain: Vec<CertificateDer<'static>>,
    pub(super) key: PrivateKeyDer<'static>,
    fingerprint: Fingerprint,
    /// The PEM text of a freshly generated identity, for [`Identity::write`].
    pem: Option<(String, String)>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A new self-signed certificate (ECDSA P-256) for the node `name`.
    pub fn generate(name: &str) -> Result<Self, PeerError> {
        let key_error = |e: rcgen::Error| PeerError::Key {
            path: PathBuf::from(name),
            reason: format!("cannot generate a key: {e}"),
        };
        let certified = rcgen::generate_simple_self_signed(vec![format!("{name}.failover-peer")])
            .map_err(key_error)?;
        let certificate = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        Ok(Self {
            fingerprint: Fingerprint::of(&certificate),
            certificate,
            chain: Vec::new(),
            key,
            pem: Some((certified.cert.pem(), certified.signing_key.serialize_pem())),
        })
    }

    /// Writes a generated identity as `node.crt` and `node.key` (mode 0600) in PEM into `dir`;
    /// refuses to overwrite.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), PeerError> {
        use std::io::Write;
        let Some((certificate_pem, key_pem)) = &self.pem else {
            return Err(PeerError::Key {
                path: dir.to_owned(),
                reason: "only a generated identity can be written".to_owned(),
            });
        };
        let certificate_path = dir.join("node.crt");
        let key_path = dir.join("node.key");
        for path in [&certificate_path, &key_path] {
            if path.exists() {
                return Err(PeerError::Key {
                    path: path.clone(),
                    reason: "exists already; remove it first if you mean to replace this node's key (its peers must then pin the new fingerprint)".to_owned(),
                });
            }
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |e: std::io::Error| PeerError::Key {
                path,
                reason: e.to_string(),
            }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::write(&certificate_path, certificate_pem).map_err(io(&certificate_path))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&key_path).map_err(io(&key_path))?;
        file.write_all(key_pem.as_bytes()).map_err(io(&key_path))?;
        Ok((certificate_path, key_path))
    }

    /// Loads a certificate and key written by [`write`](Identity::write) (or any PEM pair; the
    /// certificate file may go on with its chain, as a CA issues it).
    pub fn load(certificate: &Path, key: &Path) -> Result<Self, PeerError> {
        let mut chain = Self::load_certificates(certificate)?;
        let certificate = chain.remove(0);
        let key = PrivateKeyDer::from_pem_file(key).map_err(pem_error(key))?;
        Ok(Self {
            fingerprint: Fingerprint::of(&certificate),
            certificate,
            chain,
            key,
            pem: None,
        })
    }

    /// The certificates of a PEM file, at least one; the first is the one a fingerprint pins.
    pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PeerError> {
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(pem_error(path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem_error(path))?;
        if certificates.is_empty() {
            return Err(PeerError::Key {
                path: path.to_owned(),
                reason: "no certificate in the file (make one with failoverd keygen)".to_owned(),
            });
        }
        Ok(certificates)
    }

    /// What peers pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

/// A PEM file that cannot be read, with the fix.
fn pem_error(path: &Path) -> impl FnOnce(rustls::pki_types::pem::Error) -> PeerError {
    let path = path.to_owned();
    move |e| PeerError::Key {
        path,
        reason: format!("{e} (make one with failoverd keygen)"),
    }
}
