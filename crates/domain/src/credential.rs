//! An app's certificate credential, the public half: Microsoft recommends
//! certificates over client secrets. The private key is sealed apart like
//! every secret; this is what may be shown and stored in the settings.

use base64::Engine;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An X.509 certificate uploaded to the app registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertificate {
    pub pem: String,
    /// base64url SHA-256 of the DER: the assertion's `x5t#S256` header and
    /// the thumbprint Azure shows (in hex there).
    pub x5t_s256: String,
    /// Upper-case hex SHA-1 of the DER: the thumbprint the Azure portal
    /// lists under Certificates & secrets.
    pub thumbprint_sha1: String,
    pub subject: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// A certificate's DER as PEM, alone, in 64-column lines.
fn certificate_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The certificate and its public key (a PKCS#1 `RSAPublicKey`), which the
/// private key must match.
#[derive(Debug)]
pub struct ParsedCertificate {
    pub certificate: ClientCertificate,
    pub public_key: Vec<u8>,
}

impl ClientCertificate {
    /// Parses the first certificate of a PEM text; the error says what to paste.
    pub fn parse(pem: &str) -> Result<ParsedCertificate, String> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes()).map_err(|_| {
            "is not a PEM certificate: paste the certificate (the .cer/.pem file uploaded to the app registration) starting with `-----BEGIN CERTIFICATE-----`".to_owned()
        })?;
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "holds a `{}`, not a certificate: the private key goes in client_private_key_pem",
                block.label
            ));
        }
        // Only the certificate is kept (and shown): a key pasted with it
        // must not end up in the settings, which are not sealed.
        if pem.contains("PRIVATE KEY") {
            return Err(
                "holds a private key as well: paste only the certificate here; the key goes in client_private_key_pem (write-only)"
                    .to_owned(),
            );
        }
        let cert = block
            .parse_x509()
            .map_err(|e| format!("is not a valid X.509 certificate ({e})"))?;
        let time = |t: &x509_parser::time::ASN1Time| {
            Timestamp::from_second(t.timestamp()).map_err(|e| format!("has an unusable date ({e})"))
        };
        let validity = cert.validity();
        let certificate = ClientCertificate {
            pem: certificate_pem(&block.contents),
            x5t_s256: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(&block.contents)),
            thumbprint_sha1: upper_hex(&sha1::Sha1::digest(&block.contents)),
            subject: cert.subject().to_string(),
            not_before: time(&validity.not_before)?,
            not_after: time(&validity.not_after)?,
        };
        Ok(ParsedCertificate {
            certificate,
            public_key: cert.public_key().subject_public_key.data.to_vec(),
        })
    }

    /// The SHA-256 thumbprint in upper-case hex.
    pub fn thumbprint_sha256(&self) -> String {
        upper_hex(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&self.x5t_s256)
                .unwrap_or_default(),
        )
    }

    /// A warning when the certificate expires within 30 days or has expired.
    pub fn expiry_warning(&self, now: Timestamp) -> Option<String> {
        let date = self.not_after.strftime("%Y-%m-%d");
        let remaining = self.not_after.duration_since(now);
        if remaining <= jiff::SignedDuration::ZERO {
            Some(format!(
                "the client certificate expired on {date}: Microsoft refuses it; upload a new certificate to the app registration and enter it and its key here"
            ))
        } else if remaining < jiff::SignedDuration::from_hours(24 * 30) {
            let days = remaining.as_secs() / 86_400;
            Some(format!(
                "the client certificate expires on {date} (in {days} days): upload a new one to the app registration and enter it and its key here before then"
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by `openssl req -x509 -newkey rsa:2048 -days 365` on 2026-12-03.
    const PEM: &str = include_str!("../tests/fixtures/client-cert.pem");

    #[test]
    fn a_certificate_gives_its_thumbprints_and_its_expiry() {
        let parsed = ClientCertificate::parse(PEM).expect("a certificate");
        let c = parsed.certificate;
        assert_eq!(c.thumbprint_sha1.len(), 40);
        assert_eq!(c.thumbprint_sha256().len(), 64);
        assert!(c.subject.contains("mailferry fixture"), "{}", c.subject);
        assert!(c.not_after > c.not_before);
        // An RSA public key in PKCS#1: a DER SEQUENCE.
        assert_eq!(parsed.public_key.first(), Some(&0x30));
    }

    #[test]
    fn expiry_warns_within_30_days_and_after() {
        let c = ClientCertificate::parse(PEM).expect("cert").certificate;
        let days = |d: i64| jiff::SignedDuration::from_hours(24 * d);
        assert_eq!(c.expiry_warning(c.not_after - days(31)), None);
        let soon = c.expiry_warning(c.not_after - days(9)).expect("a warning");
        assert!(
            soon.contains("in 9 days") && soon.contains("upload a new one"),
            "{soon}"
        );
        let gone = c.expiry_warning(c.not_after + days(1)).expect("a warning");
        assert!(gone.contains("expired"), "{gone}");
    }

    #[test]
    fn a_key_pasted_with_the_certificate_is_refused_and_only_the_certificate_is_kept() {
        let both = format!("{PEM}-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n");
        let e = ClientCertificate::parse(&both).expect_err("a key is never kept in the settings");
        assert!(e.contains("client_private_key_pem"), "{e}");
        let noisy = format!("Bag Attributes\n    friendlyName: x\n{PEM}");
        let kept = ClientCertificate::parse(&noisy)
            .expect("cert")
            .certificate
            .pem;
        assert!(
            kept.starts_with("-----BEGIN CERTIFICATE-----\n") && !kept.contains("Bag"),
            "{kept}"
        );
        assert_eq!(
            ClientCertificate::parse(&kept)
                .expect("reparses")
                .certificate
                .pem,
            kept
        );
    }

    #[test]
    fn a_key_or_garbage_is_refused_with_what_to_paste() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\n";
        let e = ClientCertificate::parse(key).expect_err("a key is no certificate");
        assert!(e.contains("client_private_key_pem"), "{e}");
        let e = ClientCertificate::parse("hello").expect_err("not PEM");
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
    }
}
