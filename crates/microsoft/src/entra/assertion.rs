//! Certificate credentials: instead of a client secret, the app proves
//! itself with a short-lived JWT signed by its certificate's private key
//! (Microsoft's "client assertion"): `PS256`, the certificate's SHA-256
//! thumbprint as `x5t#S256`, `aud` the token endpoint, `iss` = `sub` =
//! the app's client id.

use base64::Engine;
use domain::credential::ClientCertificate;
use jiff::Timestamp;
use ring::rand::SystemRandom;
use ring::signature::{KeyPair, RSA_PSS_SHA256, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Microsoft asks for a short life: 5–10 minutes.
const LIFETIME_SECS: i64 = 600;

/// Signs client assertions for one certificate.
pub struct AssertionSigner {
    key: RsaKeyPair,
    x5t_s256: String,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("x5t_s256", &self.x5t_s256)
            .finish_non_exhaustive()
    }
}

impl AssertionSigner {
    /// The signer for `certificate` with `key_pem`; the error says what to
    /// fix (it is about the field `client_private_key_pem`).
    pub fn new(certificate: &ClientCertificate, key_pem: &str) -> Result<Self, String> {
        let der = PrivateKeyDer::from_pem_slice(key_pem.trim().as_bytes()).map_err(|_| {
            "is not a PEM private key: paste the key starting with `-----BEGIN PRIVATE KEY-----` (or `-----BEGIN RSA PRIVATE KEY-----`), unencrypted".to_owned()
        })?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => {
                return Err(
                    "is not an RSA key: Microsoft's certificate credentials need an RSA key (2048 bits or more)"
                        .to_owned(),
                );
            }
        }
        .map_err(|e| format!("is not a usable RSA key ({e}); RSA keys of 2048 to 8192 bits are accepted"))?;
        let parsed = ClientCertificate::parse(&certificate.pem)
            .map_err(|m| format!("cannot be checked: the certificate {m}"))?;
        if key.public_key().as_ref() != parsed.public_key.as_slice() {
            return Err(
                "does not belong to client_certificate_pem: give the private key of that certificate"
                    .to_owned(),
            );
        }
        Ok(Self {
            key,
            x5t_s256: certificate.x5t_s256.clone(),
        })
    }

    /// A fresh assertion for `audience` (the token endpoint's URL).
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: Timestamp,
    ) -> Result<String, ring::error::Unspecified> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = serde_json::json!({ "alg": "PS256", "typ": "JWT", "x5t#S256": self.x5t_s256 });
        let iat = now.as_second();
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": iat,
            "iat": iat,
            "exp": iat + LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key.sign(
            &RSA_PSS_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )?;
        Ok(format!("{signing_input}.{}", b64.encode(signature)))
    }
}
