//! A certificate authority made for one test, and a server certificate it
//! issues for the loopback address: PostgreSQL serves it, and the runtime
//! trusts the authority through its trust store (`SSL_CERT_FILE`).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};

pub struct TestCa {
    certificate: Certificate,
    key: KeyPair,
    /// The authority's certificate, PEM, as a trust store file.
    pub file: PathBuf,
}

impl TestCa {
    /// A new authority, its certificate written to `dir/ca.pem`.
    pub fn new(dir: &Path) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Coworking Analytics test CA");
        let key = KeyPair::generate().expect("a CA key");
        let certificate = params.self_signed(&key).expect("the CA certificate");
        std::fs::create_dir_all(dir).expect("create the CA's directory");
        let file = dir.join("ca.pem");
        std::fs::write(&file, certificate.pem()).expect("write the CA certificate");
        TestCa {
            certificate,
            key,
            file,
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1`, with its key: PEM.
    pub fn server_certificate(&self) -> (String, String) {
        let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("server parameters");
        let key = KeyPair::generate().expect("a server key");
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .expect("the server certificate");
        (certificate.pem(), key.serialize_pem())
    }
}
