//! Admin passwords (argon2id) and API tokens (random, stored as SHA-256).

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Prefix that makes a leaked token recognisable to secret scanners.
pub const API_TOKEN_PREFIX: &str = "mf_";

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

pub fn hash_password(password: &SecretString) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

pub fn verify_password(password: &SecretString, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// 32 random bytes, URL-safe, with a recognisable prefix.
pub fn new_api_token() -> SecretString {
    SecretString::from(format!("{API_TOKEN_PREFIX}{}", random_urlsafe(32)))
}

pub fn random_urlsafe(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password(&SecretString::from("correct horse")).expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&SecretString::from("correct horse"), &hash));
        assert!(!verify_password(&SecretString::from("wrong"), &hash));
        assert!(!verify_password(&SecretString::from("x"), "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_prefixed() {
        let a = new_api_token();
        let b = new_api_token();
        assert!(a.expose_secret().starts_with(API_TOKEN_PREFIX));
        assert!(a.expose_secret().len() > 40);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(sha256_hex(b"abc").len(), 64);
    }
}
