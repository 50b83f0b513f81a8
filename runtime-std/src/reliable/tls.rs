//! CoAP over TLS (`coaps+tcp`, RFC 8323 §8.2, §9): rustls's sans-IO connection on top of
//! the runtime's TCP stream, so that TLS stays runtime-generic like the rest.
//!
//! TLS 1.3 and 1.2 (RFC 8323 §9.1 requires at least 1.2), ALPN "coap" (§8.2: the
//! Application-Layer Protocol Negotiation ID registered for CoAP over TLS), certificates
//! in PEM files: the server's chain and key, the CAs a client trusts.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::io::Transport;

/// The ALPN protocol ID of CoAP over TLS (RFC 8323 §8.2).
pub const ALPN: &[u8] = b"coap";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(path: &Path, what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}: {e}", path.display()),
    )
}

fn certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, "cannot read certificates", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, "bad certificate", e))?;
    if certs.is_empty() {
        return Err(pem_error(
            path,
            "no certificate",
            "no PEM CERTIFICATE block",
        ));
    }
    Ok(certs)
}

/// The server side of TLS: its certificate chain and private key.
#[derive(Clone, Debug)]
pub struct TlsServerConfig(pub(crate) Arc<rustls::ServerConfig>);

impl TlsServerConfig {
    /// Reads the certificate chain (PEM, leaf first) and the private key (PEM: PKCS#8,
    /// PKCS#1 or SEC1) of the server. Bad files are reported with their path.
    pub fn from_pem_files(cert: &Path, key: &Path) -> io::Result<TlsServerConfig> {
        let chain = certificates(cert)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| pem_error(key, "cannot read the private key", e))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| pem_error(cert, "certificate and key do not fit", e))?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(TlsServerConfig(Arc::new(config)))
    }
}

impl From<Arc<rustls::ServerConfig>> for TlsServerConfig {
    /// A rustls configuration of the application's own (client certificates, ...).
    fn from(c: Arc<rustls::ServerConfig>) -> Self {
        TlsServerConfig(c)
    }
}

/// The client side of TLS: the CAs it trusts for `coaps+tcp://` servers.
#[derive(Clone, Debug)]
pub struct TlsClientConfig(pub(crate) Arc<rustls::ClientConfig>);

impl TlsClientConfig {
    /// Trusts the CA certificates of a PEM file (and nothing else).
    pub fn with_ca_file(ca: &Path) -> io::Result<TlsClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in certificates(ca)? {
            roots
                .add(c)
                .map_err(|e| pem_error(ca, "unusable CA certificate", e))?;
        }
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(TlsClientConfig(Arc::new(config)))
    }
}

impl From<Arc<rustls::ClientConfig>> for TlsClientConfig {
    /// A rustls configuration of the application's own (client certificates, ...).
    fn from(c: Arc<rustls::ClientConfig>) -> Self {
        TlsClientConfig(c)
    }
}

/// The name a `coaps+tcp://` URI's host is verified as (and sent as SNI when a name).
pub(crate) fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))
}

/// TLS over another transport.
pub(crate) struct Tls {
    inner: Box<dyn Transport>,
    conn: rustls::Connection,
    /// TLS records written by rustls, not yet taken by the stream.
    out: Vec<u8>,
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))
}

impl Tls {
    /// The client side, verifying the server as `name`.
    pub(crate) fn client(
        inner: Box<dyn Transport>,
        config: &TlsClientConfig,
        name: ServerName<'static>,
    ) -> io::Result<Tls> {
        let conn = rustls::ClientConnection::new(config.0.clone(), name).map_err(tls_error)?;
        Ok(Tls {
            inner,
            conn: conn.into(),
            out: Vec::new(),
        })
    }

    /// The server side.
    pub(crate) fn server(inner: Box<dyn Transport>, config: &TlsServerConfig) -> io::Result<Tls> {
        let conn = rustls::ServerConnection::new(config.0.clone()).map_err(tls_error)?;
        Ok(Tls {
            inner,
            conn: conn.into(),
            out: Vec::new(),
        })
    }

    /// Moves rustls's records to the stream as far as it takes them.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.out)?;
        }
        while !self.out.is_empty() {
            let n = std::task::ready!(self.inner.poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl Transport for Tls {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed the TCP stream without close_notify.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(0)),
                Err(e) => return Poll::Ready(Err(e)),
            }
            // Handshake messages (and buffered application data) go out meanwhile; a
            // full stream does not stop the reading.
            if let Poll::Ready(Err(e)) = self.poll_flush(cx) {
                return Poll::Ready(Err(e));
            }
            let mut records = [0u8; 4096];
            let n = std::task::ready!(self.inner.poll_read(cx, &mut records))?;
            if n == 0 {
                return Poll::Ready(Ok(0));
            }
            let mut taken = &records[..n];
            while !taken.is_empty() {
                self.conn.read_tls(&mut taken)?;
                if let Err(e) = self.conn.process_new_packets() {
                    // The alert rustls queued goes out if it can.
                    let _ = self.poll_flush(cx);
                    return Poll::Ready(Err(tls_error(e)));
                }
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // Backpressure: records not yet taken by the stream come first.
        if !self.out.is_empty() {
            std::task::ready!(self.poll_flush(cx))?;
        }
        let n = self.conn.writer().write(buf)?;
        match self.poll_flush(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // Taken by rustls; what the stream did not take yet goes with the next poll.
            _ => Poll::Ready(Ok(n)),
        }
    }
}
