//! The trust store of TLS to PostgreSQL.

use std::collections::HashMap;

use anyhow::Result;

/// What TLS to PostgreSQL trusts. Spin's native-tls (OpenSSL) reads the
/// runtime process's `SSL_CERT_FILE`, a PEM bundle, in place of the system's
/// bundle file; without it, the system's. The host reads it from the
/// environment it was given, so that each test can have a trust store of its
/// own. (With the file, OpenSSL still reads the system's directory of hashed
/// certificates, which this host leaves out: the file alone is trusted.)
#[derive(Default)]
pub struct TrustStore(Option<Vec<native_tls::Certificate>>);

impl TrustStore {
    pub fn from_environment(environment: &HashMap<String, String>) -> Result<TrustStore> {
        let Some(file) = environment.get("SSL_CERT_FILE") else {
            return Ok(TrustStore::default());
        };
        let pem =
            std::fs::read(file).map_err(|err| anyhow::anyhow!("SSL_CERT_FILE {file}: {err}"))?;
        let certificates = native_tls::Certificate::stack_from_pem(&pem)
            .map_err(|err| anyhow::anyhow!("SSL_CERT_FILE {file}: {err}"))?;
        Ok(TrustStore(Some(certificates)))
    }

    pub fn connector(&self) -> Result<native_tls::TlsConnector, native_tls::Error> {
        let mut builder = native_tls::TlsConnector::builder();
        if let Some(certificates) = &self.0 {
            builder.disable_built_in_roots(true);
            for certificate in certificates {
                builder.add_root_certificate(certificate.clone());
            }
        }
        builder.build()
    }
}
