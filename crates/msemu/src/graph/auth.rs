//! Bearer-token validation and Graph's permission rules for mailboxes.

use axum::http::{HeaderMap, StatusCode, header};
use jiff::Timestamp;
use serde_json::Value;

use super::error::GraphError;
use crate::entra::GRAPH_APP_ID;
use crate::entra::keys::SigningKey;
use crate::state::UserMailbox;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A user through an app, with delegated scopes.
    Delegated {
        client_id: String,
        tenant_id: String,
        user_id: String,
        scopes: Vec<String>,
    },
    /// An app on its own, with application roles.
    App {
        client_id: String,
        tenant_id: String,
        roles: Vec<String>,
    },
}

impl Principal {
    pub fn client_id(&self) -> &str {
        match self {
            Principal::Delegated { client_id, .. } | Principal::App { client_id, .. } => client_id,
        }
    }

    pub fn tenant_id(&self) -> &str {
        match self {
            Principal::Delegated { tenant_id, .. } | Principal::App { tenant_id, .. } => tenant_id,
        }
    }
}

fn unauthorized(base: &str, message: &str) -> GraphError {
    let mut e = GraphError::new(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    );
    e.www_authenticate = Some(format!(
        "Bearer realm=\"\", authorization_uri=\"{base}/common/oauth2/authorize\", \
         client_id=\"{GRAPH_APP_ID}\""
    ));
    e
}

/// Validates the bearer token: our signature, Graph audience, and expiry by the emulator clock.
pub fn authenticate(
    keys: &SigningKey,
    headers: &HeaderMap,
    now: Timestamp,
    base: &str,
) -> Result<Principal, GraphError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized(base, "Access token is empty."))?;
    if token.split('.').count() != 3 {
        return Err(unauthorized(
            base,
            "CompactToken parsing failed with error code: 80049217",
        ));
    }
    let claims = keys
        .verify(token)
        .ok_or_else(|| unauthorized(base, "Access token validation failure."))?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    if text("aud") != Some(GRAPH_APP_ID) {
        return Err(unauthorized(
            base,
            "Access token validation failure. Invalid audience.",
        ));
    }
    let t = now.as_second();
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    if t >= exp || t + 300 < nbf {
        return Err(unauthorized(
            base,
            "Access token has expired or is not yet valid.",
        ));
    }
    let s = |k: &str| text(k).unwrap_or_default().to_string();
    if text("idtyp") == Some("app") {
        let roles = match claims.get("roles") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        };
        Ok(Principal::App {
            client_id: s("appid"),
            tenant_id: s("tid"),
            roles,
        })
    } else {
        Ok(Principal::Delegated {
            client_id: s("appid"),
            tenant_id: s("tid"),
            user_id: s("oid"),
            scopes: s("scp").split(' ').map(str::to_string).collect(),
        })
    }
}

fn any_of(have: &[String], wanted: &[&str]) -> bool {
    have.iter()
        .any(|h| wanted.iter().any(|w| h.eq_ignore_ascii_case(w)))
}

/// Whether the principal may read (or, with `write`, change) mail in `mailbox`.
/// Delegated access to another user's or a shared mailbox needs a `.Shared` scope AND
/// Exchange full-access rights; app access needs the application role.
pub fn check_mail_access(
    p: &Principal,
    mailbox: &UserMailbox,
    write: bool,
) -> Result<(), GraphError> {
    if p.tenant_id() != mailbox.tenant_id {
        return Err(GraphError::access_denied());
    }
    let ok = match p {
        Principal::App { roles, .. } => {
            if write {
                any_of(roles, &["Mail.ReadWrite"])
            } else {
                any_of(roles, &["Mail.Read", "Mail.ReadWrite"])
            }
        }
        Principal::Delegated {
            user_id, scopes, ..
        } => {
            if *user_id == mailbox.id {
                if write {
                    any_of(scopes, &["Mail.ReadWrite", "Mail.ReadWrite.Shared"])
                } else {
                    any_of(
                        scopes,
                        &[
                            "Mail.Read",
                            "Mail.ReadWrite",
                            "Mail.Read.Shared",
                            "Mail.ReadWrite.Shared",
                        ],
                    )
                }
            } else {
                let scoped = if write {
                    any_of(scopes, &["Mail.ReadWrite.Shared"])
                } else {
                    any_of(scopes, &["Mail.Read.Shared", "Mail.ReadWrite.Shared"])
                };
                scoped && mailbox.full_access.contains(user_id)
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(GraphError::access_denied())
    }
}
