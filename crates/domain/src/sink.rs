//! Where an importer's documents go: the filesystem spool (the default) or
//! a webhook that receives each document as a multipart POST.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::ValidationErrors;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SinkSettings {
    /// `DATA_DIR/documents/{client}/{importer}/{document}/`.
    #[default]
    Spool,
    /// POST per document with `Idempotency-Key: {document_id}`; a 2xx
    /// stores it, a refusal of the document sends the mail to Error, and
    /// anything else leaves it in the Inbox for the next run.
    Webhook {
        url: String,
        timeout_secs: u64,
        attempts: u32,
    },
}

/// What an admin submits under `sink`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkInput {
    /// `spool` (default) or `webhook`.
    pub kind: Option<String>,
    pub url: Option<String>,
    pub timeout_secs: Option<u64>,
    pub attempts: Option<u32>,
    /// Webhook only, write-only: sent as `Authorization: Bearer …`, sealed
    /// at rest like every secret; omit it on update to keep the stored one.
    pub token: Option<String>,
}

/// What the submitted `sink` says about the sink's own credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSecretChange {
    /// Keep what is stored (nothing, or the earlier token).
    Keep,
    Set(String),
    /// The sink takes no credential: drop a stored one.
    Clear,
}

const DEFAULT_TIMEOUT_SECS: u64 = 30;
const DEFAULT_ATTEMPTS: u32 = 3;

impl SinkInput {
    /// The credential change this input asks for (see [`SinkSecretChange`]).
    pub fn secret_change(&self) -> SinkSecretChange {
        match (
            self.kind.as_deref().unwrap_or("spool"),
            self.token.as_deref(),
        ) {
            ("webhook", Some(t)) if !t.trim().is_empty() => {
                SinkSecretChange::Set(t.trim().to_owned())
            }
            ("webhook", _) => SinkSecretChange::Keep,
            _ => SinkSecretChange::Clear,
        }
    }

    pub fn parse(&self, errors: &mut ValidationErrors) -> Option<SinkSettings> {
        match self.kind.as_deref().unwrap_or("spool") {
            "spool" => {
                for (field, present) in [
                    ("sink.url", self.url.is_some()),
                    ("sink.timeout_secs", self.timeout_secs.is_some()),
                    ("sink.attempts", self.attempts.is_some()),
                    ("sink.token", self.token.is_some()),
                ] {
                    if present {
                        errors.add(field, "applies only to `sink.kind: webhook`: remove it");
                    }
                }
                Some(SinkSettings::Spool)
            }
            "webhook" => {
                let before = errors.errors.len();
                let url = match self.url.as_deref().map(str::trim) {
                    None | Some("") => {
                        errors.add(
                            "sink.url",
                            "is required for a webhook: the URL that receives each document",
                        );
                        None
                    }
                    Some(raw) => {
                        match url::Url::parse(raw) {
                            Ok(u)
                                if !matches!(u.scheme(), "http" | "https")
                                    || u.host().is_none() =>
                            {
                                errors.add("sink.url", format!("`{raw}` is not an http(s) URL"));
                                None
                            }
                            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                                errors.add("sink.url", "must not carry credentials: they would be stored and shown in plain text");
                                None
                            }
                            Ok(u) if u.fragment().is_some() => {
                                errors.add("sink.url", format!("`{raw}` has a fragment (`#…`), which is never sent: remove it"));
                                None
                            }
                            Ok(_) => Some(raw.to_owned()),
                            Err(e) => {
                                errors.add("sink.url", format!("`{raw}` is not a URL: {e}"));
                                None
                            }
                        }
                    }
                };
                let timeout_secs = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
                if !(1..=300).contains(&timeout_secs) {
                    errors.add(
                        "sink.timeout_secs",
                        format!("{timeout_secs} is out of range: use 1–300 seconds"),
                    );
                }
                let attempts = self.attempts.unwrap_or(DEFAULT_ATTEMPTS);
                if !(1..=10).contains(&attempts) {
                    errors.add(
                        "sink.attempts",
                        format!("{attempts} is out of range: use 1–10"),
                    );
                }
                (errors.errors.len() == before).then(|| SinkSettings::Webhook {
                    url: url.unwrap_or_default(),
                    timeout_secs,
                    attempts,
                })
            }
            other => {
                errors.add(
                    "sink.kind",
                    format!("`{other}` is not a sink: use `spool` or `webhook`"),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<SinkSettings, ValidationErrors> {
        let input: SinkInput = serde_json::from_value(json).expect("input");
        let mut errors = ValidationErrors::default();
        let parsed = input.parse(&mut errors);
        match parsed {
            Some(s) if errors.is_empty() => Ok(s),
            _ => Err(errors),
        }
    }

    #[test]
    fn spool_is_the_default_and_webhooks_get_defaults() {
        assert_eq!(
            parse(serde_json::json!({})).expect("valid"),
            SinkSettings::Spool
        );
        assert_eq!(
            parse(serde_json::json!({"kind": "webhook", "url": "https://dms.example.com/in"}))
                .expect("valid"),
            SinkSettings::Webhook {
                url: "https://dms.example.com/in".into(),
                timeout_secs: 30,
                attempts: 3
            }
        );
    }

    #[test]
    fn bad_webhooks_name_each_field() {
        let errors = parse(serde_json::json!({"kind": "webhook", "url": "https://u:p@dms.example.com", "timeout_secs": 0, "attempts": 99}))
            .expect_err("invalid");
        for field in ["sink.url", "sink.timeout_secs", "sink.attempts"] {
            assert!(errors.mentions(field), "{field}: {errors}");
        }
        assert!(
            parse(serde_json::json!({"kind": "webhook"}))
                .expect_err("no url")
                .mentions("sink.url")
        );
        assert!(
            parse(serde_json::json!({"kind": "ftp"}))
                .expect_err("kind")
                .mentions("sink.kind")
        );
        assert!(
            parse(serde_json::json!({"url": "https://x.example"}))
                .expect_err("spool with url")
                .mentions("sink.url")
        );
    }
}
