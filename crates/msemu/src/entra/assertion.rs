//! Certificate credentials: a client assertion (a JWT the app signs with
//! its certificate's key) checked the way Microsoft's "certificate
//! credentials" page describes: the key found by the header's `x5t#S256`
//! (or the older SHA-1 `x5t`), `PS256` or `RS256`, `aud` the token
//! endpoint, `iss` = `sub` = the client id, `now` within `[nbf, exp)`, and
//! the certificate within its own validity.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::AadError;
use crate::state::{App, AppCertificate, StateError};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl AppCertificate {
    /// A certificate as uploaded to the app registration (PEM).
    pub fn from_pem(pem: &str) -> Result<Self, StateError> {
        let bad = |why: String| StateError::Certificate(why);
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes())
            .map_err(|e| bad(format!("not PEM: {e}")))?;
        let cert = block
            .parse_x509()
            .map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
        let time = |t: &x509_parser::time::ASN1Time| {
            Timestamp::from_second(t.timestamp()).map_err(|e| bad(e.to_string()))
        };
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &block.contents);
        Ok(Self {
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(&block.contents)),
            x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            sha1_hex: sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            not_before: time(&cert.validity().not_before)?,
            not_after: time(&cert.validity().not_after)?,
        })
    }
}

fn invalid_client(code: u32, message: String) -> AadError {
    AadError::new("invalid_client", code, message)
}

const DOCS: &str = "Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .";

/// Checks `jwt` for `app`; `audiences` are the token endpoint URLs it may name.
pub fn verify(app: &App, jwt: &str, audiences: &[String], now: Timestamp) -> Result<(), AadError> {
    let malformed = || {
        invalid_client(
            50027,
            "Invalid JWT token. The client assertion is not a signed JWT.".to_owned(),
        )
    };
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let json = |part: &str| -> Result<Value, AadError> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed())?;
        serde_json::from_slice(&bytes).map_err(|_| malformed())
    };
    let (header, claims) = (json(h)?, json(c)?);
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| malformed())?;
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);

    let by_s256 = field(&header, "x5t#S256");
    let by_sha1 = field(&header, "x5t");
    if by_s256.is_none() && by_sha1.is_none() {
        return Err(invalid_client(
            50027,
            "Invalid JWT token. No certificate thumbprint specified in token header.".to_owned(),
        ));
    }
    // Thumbprints are compared as digests: msal pads its base64url `x5t`
    // with `=`, which Entra accepts.
    let digest = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')).ok())
    };
    let (s256, sha1) = (digest(&by_s256), digest(&by_sha1));
    let cert = app.certificates.iter().find(|k| {
        let known = |t: &str| URL_SAFE_NO_PAD.decode(t).ok();
        (s256.is_some() && s256 == known(&k.x5t_s256)) || (sha1.is_some() && sha1 == known(&k.x5t))
    });
    let thumbprint = by_sha1.or(by_s256).unwrap_or_default();
    let Some(cert) = cert else {
        return Err(invalid_client(
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'. {DOCS}]",
                app.client_id
            ),
        ));
    };
    let algorithm: &dyn ring::signature::VerificationAlgorithm = match field(&header, "alg")
        .as_deref()
    {
        Some("PS256") => &RSA_PSS_2048_8192_SHA256,
        Some("RS256") => &RSA_PKCS1_2048_8192_SHA256,
        other => {
            return Err(invalid_client(
                5002738,
                format!(
                    "Invalid JWT token. '{}' is not a supported signature algorithm. Supported signing algorithms are: 'RS256, PS256'",
                    other.unwrap_or("none")
                ),
            ));
        }
    };
    let signed = format!("{h}.{c}");
    if UnparsedPublicKey::new(algorithm, &cert.public_key)
        .verify(signed.as_bytes(), &signature)
        .is_err()
    {
        return Err(invalid_client(
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - Key was found, but use of the key to verify the signature failed., Thumbprint of key used by client: '{}', Found key 'Start={}, End={}'. {DOCS}]",
                cert.sha1_hex, cert.not_before, cert.not_after
            ),
        ));
    }
    if now < cert.not_before || now >= cert.not_after {
        return Err(invalid_client(
            7000274,
            format!(
                "The certificate used to sign the client assertion is not within its validity period: valid from {} to {}, current time {now}. Upload a new certificate to app '{}'.",
                cert.not_before, cert.not_after, app.client_id
            ),
        ));
    }
    match claims.get("aud") {
        Some(Value::String(aud)) if audiences.iter().any(|a| a == aud) => {}
        Some(Value::Array(list)) if list.len() > 1 => {
            return Err(invalid_client(
                5002741,
                format!(
                    "Number of audience values in the provided client credential exceed maximum allowed. {} audience values provided, maximum allowed is 1.",
                    list.len()
                ),
            ));
        }
        _ => {
            return Err(invalid_client(
                700023,
                format!("Client assertion audience claim does not match Realm issuer. {DOCS}"),
            ));
        }
    }
    let (iss, sub) = (field(&claims, "iss"), field(&claims, "sub"));
    if iss != sub {
        return Err(invalid_client(
            50048,
            "Subject must match the issuer claim in the client assertion.".to_owned(),
        ));
    }
    if iss.as_deref() != Some(app.client_id.as_str()) {
        return Err(invalid_client(
            700021,
            format!(
                "Client assertion application identifier doesn't match 'client_id' parameter. {DOCS}"
            ),
        ));
    }
    // A NumericDate may have a fraction (msal sends `time.time()`).
    #[expect(
        clippy::cast_possible_truncation,
        reason = "seconds since 1970 fit an i64"
    )]
    let second = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_f64)
            .map(|f| f.floor() as i64)
    };
    let nbf = second("nbf").unwrap_or(0);
    let exp = second("exp");
    let at = |s: i64| Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH);
    let now_s = now.as_second();
    if exp.is_none_or(|e| now_s >= e) || now_s < nbf {
        return Err(invalid_client(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, assertion valid from {}, expiry time of assertion {}. {DOCS}",
                at(nbf),
                exp.map(at)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "(none)".to_owned())
            ),
        ));
    }
    Ok(())
}
