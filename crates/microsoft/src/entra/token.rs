//! Token responses as Microsoft really sends them: `expires_in` an integer
//! (a string on the v1 endpoint), `scope` as short names, full URIs or
//! empty, `token_type` in any case.

use jiff::{SignedDuration, Timestamp};
use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, RefreshToken, Scope, TokenResponse};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct MicrosoftTokenResponse {
    access_token: AccessToken,
    #[serde(deserialize_with = "oauth2::helpers::deserialize_untagged_enum_case_insensitive")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "seconds")]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    #[serde(rename = "scope", default, deserialize_with = "scope_list")]
    scopes: Option<Vec<Scope>>,
}

impl TokenResponse for MicrosoftTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<std::time::Duration> {
        self.expires_in.map(std::time::Duration::from_secs)
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Int(n)) => Ok(Some(n)),
        Some(Raw::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("expires_in `{s}` is not a number"))),
    }
}

fn scope_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Scope>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| {
        s.split_whitespace()
            .map(|x| Scope::new(x.to_owned()))
            .collect()
    }))
}

/// Tokens from one successful token request, with the expiry as an instant in UTC.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub expires_at: Timestamp,
    /// Absent for client credentials; Microsoft rotates it on every refresh.
    pub refresh_token: Option<SecretString>,
    /// Granted scopes as short names for Graph (`Mail.ReadWrite`), full URIs for
    /// other resources; empty when Microsoft did not say.
    pub scopes: Vec<String>,
}

/// When Microsoft omits `expires_in` (it does not in practice), assume the
/// shortest lifetime it issues.
const DEFAULT_LIFETIME: SignedDuration = SignedDuration::from_secs(60 * 60);

impl TokenSet {
    /// `requested_at` is when the request was sent: expiry counts from then,
    /// so a slow answer errs on the early side.
    pub(crate) fn from_response(
        response: MicrosoftTokenResponse,
        requested_at: Timestamp,
        resource: &str,
    ) -> Result<Self, super::IdentityError> {
        if response.token_type != BasicTokenType::Bearer {
            return Err(super::IdentityError::Protocol(format!(
                "token_type `{:?}` instead of Bearer",
                response.token_type
            )));
        }
        let lifetime = response
            .expires_in
            .and_then(|s| i64::try_from(s).ok())
            .map(SignedDuration::from_secs)
            .unwrap_or(DEFAULT_LIFETIME);
        let expires_at = requested_at
            .checked_add(lifetime)
            .map_err(|e| super::IdentityError::Protocol(format!("expires_in: {e}")))?;
        Ok(Self {
            access_token: SecretString::from(response.access_token.into_secret()),
            expires_at,
            refresh_token: response
                .refresh_token
                .map(|t| SecretString::from(t.into_secret())),
            scopes: response
                .scopes
                .unwrap_or_default()
                .iter()
                .map(|s| short_scope(s, resource))
                .collect(),
        })
    }
}

/// `https://graph.microsoft.com/Mail.ReadWrite` → `Mail.ReadWrite` (and an
/// Exchange Online scope for its resource likewise); other
/// resources' URIs stay whole.
pub fn short_scope(scope: &str, resource: &str) -> String {
    let prefix = format!("{}/", resource.trim_end_matches('/'));
    match scope.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(&prefix) => scope[prefix.len()..].to_owned(),
        _ => scope.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const GRAPH: &str = "https://graph.microsoft.com";

    fn parse(json: &str) -> TokenSet {
        let r: MicrosoftTokenResponse = serde_json::from_str(json).expect("token JSON");
        TokenSet::from_response(r, "2026-03-29T00:30:00Z".parse().expect("ts"), GRAPH)
            .expect("token set")
    }

    #[test]
    fn microsoft_token_shapes_are_accepted() {
        let t = parse(
            r#"{"token_type":"Bearer","scope":"Mail.ReadWrite https://graph.microsoft.com/User.Read https://outlook.office.com/Calendars.Read","expires_in":4475,"ext_expires_in":4475,"access_token":"at","refresh_token":"rt"}"#,
        );
        assert_eq!(t.expires_at.to_string(), "2026-03-29T01:44:35Z");
        assert_eq!(
            t.scopes,
            [
                "Mail.ReadWrite",
                "User.Read",
                "https://outlook.office.com/Calendars.Read"
            ]
        );
        assert_eq!(t.refresh_token.expect("rt").expose_secret(), "rt");
        let t =
            parse(r#"{"token_type":"bearer","scope":"","expires_in":"3599","access_token":"at"}"#);
        assert!(t.scopes.is_empty());
        assert!(t.refresh_token.is_none());
        assert_eq!(t.expires_at.to_string(), "2026-03-29T01:29:59Z");
    }

    #[test]
    fn other_token_types_are_refused() {
        let r: MicrosoftTokenResponse =
            serde_json::from_str(r#"{"token_type":"pop","expires_in":1,"access_token":"at"}"#)
                .expect("json");
        assert!(TokenSet::from_response(r, Timestamp::UNIX_EPOCH, GRAPH).is_err());
    }
}
