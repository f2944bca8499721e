//! The token-signing key (RS256, like Entra) and its JWKS.
//!
//! The key is a fixed test key compiled into the emulator: it signs tokens that only this
//! emulator accepts, so it is not a secret, and a fixed key keeps tokens verifiable across
//! restarts of a demo.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};

static KEY_PKCS8: &[u8] = include_bytes!("signing_key.pk8");

/// The signing key and its public parts.
pub struct SigningKey {
    pair: RsaKeyPair,
    n: Vec<u8>,
    e: Vec<u8>,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

/// The compiled-in key could not be loaded (a build defect).
#[derive(Debug, thiserror::Error)]
#[error("the built-in signing key is invalid: {0}")]
pub struct KeyError(String);

impl SigningKey {
    pub fn load() -> Result<Self, KeyError> {
        let pair = RsaKeyPair::from_pkcs8(KEY_PKCS8).map_err(|e| KeyError(e.to_string()))?;
        let public: RsaPublicKeyComponents<Vec<u8>> = pair.public_key().into();
        let digest = ring::digest::digest(&ring::digest::SHA256, &public.n);
        let digest = digest.as_ref();
        let kid = URL_SAFE_NO_PAD.encode(digest.get(..15).unwrap_or(digest));
        Ok(SigningKey {
            pair,
            n: public.n,
            e: public.e,
            kid,
        })
    }

    /// Signs `claims` as a compact RS256 JWT.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        // Signing only fails for a too-small output buffer, which is sized above.
        let _ = self.pair.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        );
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Verifies a JWT's signature and returns its claims; `None` if it is not ours.
    pub fn verify(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "RS256" {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        let public = RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        };
        public
            .verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                format!("{h}.{c}").as_bytes(),
                &sig,
            )
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()
    }

    /// The JWKS document served at `/{tenant}/discovery/v2.0/keys`.
    pub fn jwks(&self, issuer: &str) -> Value {
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
            "issuer": issuer,
        }]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let k = SigningKey::load().expect("key");
        let t = k.sign(&json!({"a": 1}));
        assert_eq!(k.verify(&t).expect("valid")["a"], 1);
        let mut bad = t.clone();
        bad.push('x');
        assert!(k.verify(&bad).is_none());
    }
}
