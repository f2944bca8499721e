//! Where an importer's documents go: the filesystem spool (the default),
//! a webhook that receives each document as a multipart POST, or an
//! S3-compatible bucket.

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
    /// Objects `{prefix}{client}/{importer_id}/{document_id}/…` in the
    /// spool's layout, `metadata.json` written last: a document whose
    /// metadata is there is complete.
    S3 {
        bucket: String,
        /// An S3-compatible server (MinIO, Ceph, …); absent for AWS itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        region: String,
        /// Empty, or ends with `/`.
        #[serde(default)]
        prefix: String,
        access_key_id: String,
    },
}

impl SinkSettings {
    /// Where the sink's sealed credential is sent: a stored credential is
    /// kept on update only while this stays the same, so editing a URL
    /// can never hand an old token to a new server.
    pub fn secret_destination(&self) -> Option<String> {
        match self {
            SinkSettings::Spool => None,
            SinkSettings::Webhook { url, .. } => url::Url::parse(url)
                .ok()
                .map(|u| u.origin().ascii_serialization()),
            SinkSettings::S3 {
                endpoint,
                access_key_id,
                ..
            } => Some(format!(
                "s3 {} as {access_key_id}",
                endpoint.as_deref().unwrap_or("aws")
            )),
        }
    }

    /// The write-only field that holds the sink's credential.
    pub fn secret_field(&self) -> Option<&'static str> {
        match self {
            SinkSettings::Spool => None,
            SinkSettings::Webhook { .. } => Some("sink.token"),
            SinkSettings::S3 { .. } => Some("sink.secret_access_key"),
        }
    }
}

/// What an admin submits under `sink`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkInput {
    /// `spool` (default), `webhook` or `s3`.
    pub kind: Option<String>,
    /// Webhook: the URL that receives each document.
    pub url: Option<String>,
    pub timeout_secs: Option<u64>,
    pub attempts: Option<u32>,
    /// Webhook only, write-only: sent as `Authorization: Bearer …`, sealed
    /// at rest like every secret; omit it on update to keep the stored one.
    pub token: Option<String>,
    /// S3: the bucket (it must exist).
    pub bucket: Option<String>,
    /// S3: an S3-compatible server's URL; omit it for AWS.
    pub endpoint: Option<String>,
    /// S3: the bucket's region (S3-compatible servers take any name).
    pub region: Option<String>,
    /// S3: keys start with this (`/` is added when missing).
    pub prefix: Option<String>,
    pub access_key_id: Option<String>,
    /// S3 only, write-only and sealed at rest; omit it on update to keep
    /// the stored one.
    pub secret_access_key: Option<String>,
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
    fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("spool")
    }

    /// The credential change this input asks for (see [`SinkSecretChange`]).
    pub fn secret_change(&self) -> SinkSecretChange {
        let given = match self.kind() {
            "webhook" => self.token.as_deref(),
            "s3" => self.secret_access_key.as_deref(),
            _ => return SinkSecretChange::Clear,
        };
        match given.map(str::trim) {
            Some(t) if !t.is_empty() => SinkSecretChange::Set(t.to_owned()),
            _ => SinkSecretChange::Keep,
        }
    }

    pub fn parse(&self, errors: &mut ValidationErrors) -> Option<SinkSettings> {
        let kind = self.kind();
        let fields = [
            ("sink.url", self.url.is_some(), "webhook"),
            ("sink.timeout_secs", self.timeout_secs.is_some(), "webhook"),
            ("sink.attempts", self.attempts.is_some(), "webhook"),
            ("sink.token", self.token.is_some(), "webhook"),
            ("sink.bucket", self.bucket.is_some(), "s3"),
            ("sink.endpoint", self.endpoint.is_some(), "s3"),
            ("sink.region", self.region.is_some(), "s3"),
            ("sink.prefix", self.prefix.is_some(), "s3"),
            ("sink.access_key_id", self.access_key_id.is_some(), "s3"),
            (
                "sink.secret_access_key",
                self.secret_access_key.is_some(),
                "s3",
            ),
        ];
        if matches!(kind, "spool" | "webhook" | "s3") {
            for (field, present, owner) in fields {
                if present && owner != kind {
                    errors.add(
                        field,
                        format!("applies only to `sink.kind: {owner}`: remove it"),
                    );
                }
            }
        }
        let before = errors.errors.len();
        let settings = match kind {
            "spool" => Some(SinkSettings::Spool),
            "webhook" => self.parse_webhook(errors),
            "s3" => self.parse_s3(errors),
            other => {
                errors.add(
                    "sink.kind",
                    format!("`{other}` is not a sink: use `spool`, `webhook` or `s3`"),
                );
                None
            }
        };
        settings.filter(|_| errors.errors.len() == before)
    }

    fn parse_webhook(&self, errors: &mut ValidationErrors) -> Option<SinkSettings> {
        let url = match self.url.as_deref().map(str::trim) {
            None | Some("") => {
                errors.add(
                    "sink.url",
                    "is required for a webhook: the URL that receives each document",
                );
                None
            }
            Some(raw) => http_url("sink.url", raw, errors).map(|_| raw.to_owned()),
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
        Some(SinkSettings::Webhook {
            url: url?,
            timeout_secs,
            attempts,
        })
    }

    fn parse_s3(&self, errors: &mut ValidationErrors) -> Option<SinkSettings> {
        let bucket = match self.bucket.as_deref().map(str::trim) {
            None | Some("") => {
                errors.add(
                    "sink.bucket",
                    "is required for S3: the bucket that receives the documents",
                );
                None
            }
            Some(b) if !is_bucket_name(b) => {
                errors.add(
                    "sink.bucket",
                    format!("`{b}` is not a bucket name: use 3–63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit"),
                );
                None
            }
            Some(b) => Some(b.to_owned()),
        };
        let endpoint = match self.endpoint.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(raw) => http_url("sink.endpoint", raw, errors).map(|u| {
                if u.query().is_some() || u.path() != "/" {
                    errors.add(
                        "sink.endpoint",
                        format!("`{raw}` has a path or query: give the server only, e.g. https://s3.example.com:9000"),
                    );
                }
                Some(raw.trim_end_matches('/').to_owned())
            }),
        };
        let region = match self.region.as_deref().map(str::trim) {
            None | Some("") => {
                errors.add(
                    "sink.region",
                    "is required for S3: the bucket's region, e.g. eu-central-1 (S3-compatible servers take any name, often us-east-1)",
                );
                None
            }
            Some(r) if r.chars().any(|c| !(c.is_ascii_alphanumeric() || c == '-')) => {
                errors.add(
                    "sink.region",
                    format!(
                        "`{r}` is not a region: use letters, digits and hyphens, e.g. eu-central-1"
                    ),
                );
                None
            }
            Some(r) => Some(r.to_owned()),
        };
        let prefix = match self.prefix.as_deref().map(str::trim).unwrap_or("") {
            "" => Some(String::new()),
            p if p.starts_with('/')
                || p.split('/').any(|s| s == "." || s == "..")
                || p.contains("//")
                || p.chars().any(char::is_control) =>
            {
                errors.add(
                    "sink.prefix",
                    format!("`{p}` cannot start keys: use plain segments like `mailferry/` (no leading `/`, no `..`, no empty segment)"),
                );
                None
            }
            p if p.ends_with('/') => Some(p.to_owned()),
            p => Some(format!("{p}/")),
        };
        let access_key_id = match self.access_key_id.as_deref().map(str::trim) {
            None | Some("") => {
                errors.add(
                    "sink.access_key_id",
                    "is required for S3: the access key's id (its secret goes in sink.secret_access_key)",
                );
                None
            }
            Some(k) if k.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                errors.add("sink.access_key_id", "must not contain spaces");
                None
            }
            Some(k) => Some(k.to_owned()),
        };
        Some(SinkSettings::S3 {
            bucket: bucket?,
            endpoint: endpoint?,
            region: region?,
            prefix: prefix?,
            access_key_id: access_key_id?,
        })
    }
}

/// `raw` as an http(s) URL that may be stored and shown: no credentials in
/// it, no fragment that would never be sent.
pub(crate) fn http_url(field: &str, raw: &str, errors: &mut ValidationErrors) -> Option<url::Url> {
    match url::Url::parse(raw) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") || u.host().is_none() => {
            errors.add(field, format!("`{raw}` is not an http(s) URL"));
            None
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            errors.add(
                field,
                "must not carry credentials: they would be stored and shown in plain text",
            );
            None
        }
        Ok(u) if u.fragment().is_some() => {
            errors.add(
                field,
                format!("`{raw}` has a fragment (`#…`), which is never sent: remove it"),
            );
            None
        }
        Ok(u) => Some(u),
        Err(e) => {
            errors.add(field, format!("`{raw}` is not a URL: {e}"));
            None
        }
    }
}

/// S3's bucket naming rules (the subset every S3-compatible server takes).
fn is_bucket_name(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..")
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

    #[test]
    fn s3_sinks_parse_and_name_each_bad_field() {
        assert_eq!(
            parse(serde_json::json!({"kind": "s3", "bucket": "invoices", "region": "eu-central-1",
                "endpoint": "http://127.0.0.1:9000/", "prefix": "mailferry", "access_key_id": "AKIA1",
                "secret_access_key": "s"}))
            .expect("valid"),
            SinkSettings::S3 {
                bucket: "invoices".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: "eu-central-1".into(),
                prefix: "mailferry/".into(),
                access_key_id: "AKIA1".into(),
            }
        );
        let errors = parse(
            serde_json::json!({"kind": "s3", "bucket": "Bad_Bucket", "region": "eu central",
            "endpoint": "ftp://x", "prefix": "/abs", "url": "https://x.example"}),
        )
        .expect_err("invalid");
        for field in [
            "sink.bucket",
            "sink.region",
            "sink.endpoint",
            "sink.prefix",
            "sink.access_key_id",
            "sink.url",
        ] {
            assert!(errors.mentions(field), "{field}: {errors}");
        }
        assert!(
            parse(
                serde_json::json!({"kind": "webhook", "url": "https://x.example", "bucket": "b"})
            )
            .expect_err("bucket on a webhook")
            .mentions("sink.bucket")
        );
    }

    #[test]
    fn the_secret_follows_the_kind() {
        let input = |v| serde_json::from_value::<SinkInput>(v).expect("input");
        assert_eq!(
            input(serde_json::json!({"kind": "s3", "secret_access_key": " k "})).secret_change(),
            SinkSecretChange::Set("k".into())
        );
        assert_eq!(
            input(serde_json::json!({"kind": "s3"})).secret_change(),
            SinkSecretChange::Keep
        );
        assert_eq!(
            input(serde_json::json!({})).secret_change(),
            SinkSecretChange::Clear
        );
    }
}
