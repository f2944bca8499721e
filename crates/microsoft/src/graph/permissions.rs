//! What an access token says it may do. Graph tokens are JWTs whose payload
//! lists delegated scopes (`scp`) or application roles (`roles`). Microsoft
//! calls them opaque to clients, so this is only used to explain a failure
//! or name a missing permission, never to decide access.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenPermissions {
    /// Delegated scopes, e.g. `Mail.ReadWrite`.
    pub scopes: Vec<String>,
    /// Application roles, e.g. `Mail.ReadWrite`.
    pub roles: Vec<String>,
    /// The signed-in account (`upn` or `preferred_username`), for delegated tokens.
    pub account: Option<String>,
    /// Expiry (`exp`, seconds since the epoch).
    pub expires_at: Option<i64>,
}

impl TokenPermissions {
    pub fn app_only(&self) -> bool {
        self.scopes.is_empty() && !self.roles.is_empty()
    }

    /// Whether a scope or role of that name is present, ignoring case.
    pub fn has(&self, permission: &str) -> bool {
        self.scopes
            .iter()
            .chain(&self.roles)
            .any(|p| p.eq_ignore_ascii_case(permission))
    }
}

/// Reads the permissions from a JWT access token; `None` if it is not one.
pub fn token_permissions(token: &SecretString) -> Option<TokenPermissions> {
    let payload = token.expose_secret().split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let scopes = claims
        .get("scp")
        .and_then(Value::as_str)
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let roles = claims
        .get("roles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let account = claims
        .get("upn")
        .and_then(Value::as_str)
        .or_else(|| claims.get("preferred_username").and_then(Value::as_str))
        .map(str::to_owned);
    Some(TokenPermissions {
        scopes,
        roles,
        account,
        expires_at: claims.get("exp").and_then(Value::as_i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> SecretString {
        SecretString::from(format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload)
        ))
    }

    #[test]
    fn delegated_and_app_tokens_are_read() {
        let d = token_permissions(&jwt(
            r#"{"scp":"Mail.ReadWrite User.Read","upn":"alice@contoso.example","exp":5}"#,
        ))
        .expect("jwt");
        assert!(d.has("mail.readwrite") && !d.app_only());
        assert_eq!(d.account.as_deref(), Some("alice@contoso.example"));
        assert_eq!(d.expires_at, Some(5));
        let a = token_permissions(&jwt(r#"{"roles":["Mail.ReadWrite"]}"#)).expect("jwt");
        assert!(a.app_only() && a.has("Mail.ReadWrite"));
        assert_eq!(token_permissions(&SecretString::from("opaque-token")), None);
    }
}
