//! The process's rustls crypto provider, shared by every TLS client and server of the runtime.

/// Makes ring the process's rustls crypto provider (the HTTP client, e-mail and the peer link are
/// built without a default one, so that the project uses one provider everywhere). Idempotent;
/// call it before building any TLS client.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
