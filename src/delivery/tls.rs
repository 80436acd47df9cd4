//! TLS for SMTP. Two client configurations, both on the aws-lc-rs provider passed
//! explicitly (never installed process-wide, so mail-auth's second provider
//! can't make rustls panic):
//! - *checked*: the server's certificate must chain to Mozilla's roots (or to
//!   a root the operator adds) and name the host. Used when a route requires
//!   TLS, and whenever a password is sent to a server off this machine (the
//!   relay, a customer's server).
//! - *opportunistic*: any certificate, as MTAs encrypt to MX hosts (RFC 7435):
//!   most MX certificates name another host or are self-signed, and refusing
//!   them would mean sending in clear text instead.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

pub struct TlsConnectors {
    pub checked: TlsConnector,
    pub opportunistic: TlsConnector,
}

impl TlsConnectors {
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> anyhow::Result<TlsConnectors> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for root in extra_roots {
            roots.add(root.clone())?;
        }
        let checked = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let opportunistic = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Ok(TlsConnectors {
            checked: TlsConnector::from(Arc::new(checked)),
            opportunistic: TlsConnector::from(Arc::new(opportunistic)),
        })
    }
}

/// The name to ask for (SNI) and check: a host name or an IP address.
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(host.to_string()).ok()
}

/// Accepts any certificate, but still checks the handshake's signatures, so
/// the session is encrypted to whoever holds the key that was shown.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
