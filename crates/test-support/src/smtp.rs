//! A real SMTP server on loopback for alert tests: Python's `aiosmtpd`
//! (from the test virtualenv, `MAILFERRY_TEST_PYTHON`; `python/smtp_server.py`)
//! that requires STARTTLS, with a certificate from a CA made here, and a
//! login, and writes each message it accepts into a Maildir the test reads.
//! Stopped (by its PID) when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpServer {
    pub port: u16,
    /// The CA that signed the server's certificate (PEM): what a client trusts.
    pub ca_pem: String,
    pub user: String,
    pub password: String,
    maildir: tempfile::TempDir,
    child: Child,
}

impl SmtpServer {
    /// Fails (never skips) without a Python that has aiosmtpd.
    pub fn start() -> Self {
        let python = std::env::var("MAILFERRY_TEST_PYTHON").expect(
            "MAILFERRY_TEST_PYTHON is not set: run the tests with scripts/test.sh (its virtualenv has aiosmtpd)",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let maildir = tempfile::tempdir().expect("maildir");
        let (ca_pem, cert_pem, key_pem) = certificates();
        let cert = maildir.path().join("server.pem");
        let key = maildir.path().join("server.key");
        std::fs::write(&cert, cert_pem).expect("write certificate");
        std::fs::write(&key, key_pem).expect("write key");
        let user = "mailferry-alerts".to_owned();
        let password = format!("smtp-{}", uuid::Uuid::new_v4().simple());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/smtp_server.py");
        let child = Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .arg(maildir.path().join("mail"))
            .args([&cert, &key])
            .args([&user, &password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd (pip install aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            ca_pem,
            user,
            password,
            maildir,
            child,
        }
    }

    /// The raw messages received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let new: PathBuf = self.maildir.path().join("mail").join("new");
        let mut files: Vec<_> = std::fs::read_dir(&new)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1 it signed: (CA PEM,
/// certificate PEM, key PEM).
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key")).expect("CA");
    let mut leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("certificate");
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}
