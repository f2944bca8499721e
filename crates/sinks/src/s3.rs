//! The S3 sink: a document becomes objects in an S3-compatible bucket,
//! keyed as the spool lays out folders:
//! `{prefix}{client}/{importer_id}/{document_id}/message.eml`,
//! `…/attachments/{name}` and `…/metadata.json`.
//!
//! S3 has no folders to rename into place, so completeness is marked by
//! order: the message and attachments are written first and `metadata.json`
//! last, each PUT acknowledged only once the server has stored it durably.
//! A document whose `metadata.json` exists is complete; one without it is
//! absent, and the next attempt writes it again (same keys, same bytes).
//! Purging deletes `metadata.json` first, so a purge cut short leaves an
//! absent document, never a half one that looks whole.

use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use secrecy::{ExposeSecret, SecretString};

use crate::document::{Document, MESSAGE_FILE, METADATA_FILE};
use crate::{DocumentSink, SinkError, SinkFuture, Stored};

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// An S3-compatible server; `None` for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// Empty, or ends with `/`.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// For one request, upload included.
    pub timeout: Duration,
}

#[derive(Debug)]
pub struct S3Sink {
    config: S3Config,
    store: AmazonS3,
}

impl S3Sink {
    pub fn new(config: S3Config) -> Result<Self, SinkError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key.expose_secret())
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(config.timeout)
                    .with_connect_timeout(config.timeout.min(Duration::from_secs(10))),
            )
            // A few quick tries inside one store; a longer outage leaves
            // the mail in the Inbox for the next run instead.
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: config.timeout,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|e| {
            SinkError::misconfigured(format!(
                "the S3 sink's settings are not usable ({e}): correct sink.bucket, sink.endpoint and sink.region"
            ))
        })?;
        Ok(Self { config, store })
    }

    /// `{prefix}{client}/{importer_id}/{document_id}/`, the document's
    /// "folder"; every part must be one plain key segment.
    fn document_prefix(
        &self,
        client: &str,
        importer_id: &str,
        document_id: &str,
    ) -> Result<String, SinkError> {
        for (what, segment) in [
            ("client", client),
            ("importer id", importer_id),
            ("document id", document_id),
        ] {
            if segment.is_empty() || segment.contains(['/', '\\']) || segment.starts_with('.') {
                return Err(SinkError::unstorable(format!(
                    "the {what} `{segment}` cannot name an S3 key segment"
                )));
            }
        }
        Ok(format!(
            "{}{client}/{importer_id}/{document_id}/",
            self.config.prefix
        ))
    }

    /// What the documents table records: `s3://{bucket}/{document prefix}`.
    fn location_of(&self, document_prefix: &str) -> String {
        format!("s3://{}/{document_prefix}", self.config.bucket)
    }

    /// The document prefix a `location` names, if it is one of this
    /// sink's (its bucket, under its prefix); anything else is refused, so a
    /// purge can never delete outside the importer's documents.
    fn prefix_of<'l>(&self, location: &'l str) -> Result<&'l str, SinkError> {
        let key = location
            .strip_prefix("s3://")
            .and_then(|rest| rest.strip_prefix(self.config.bucket.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|key| {
                key.starts_with(self.config.prefix.as_str())
                    && key.ends_with('/')
                    && key.len() > self.config.prefix.len() + 1
                    && !key.split('/').any(|s| s == "..")
            });
        key.ok_or_else(|| {
            SinkError::unstorable(format!(
                "{location} is not a document of the bucket `{}` under `{}`: the importer's S3 settings changed since it was stored",
                self.config.bucket, self.config.prefix
            ))
        })
    }

    fn error(&self, action: &str, key: &str, e: object_store::Error) -> SinkError {
        let what = format!("could not {action} s3://{}/{key}: {e}", self.config.bucket);
        match e {
            object_store::Error::Unauthenticated { .. }
            | object_store::Error::PermissionDenied { .. } => SinkError::misconfigured(format!(
                "{what}; check sink.access_key_id and sink.secret_access_key, and that the key may write to the bucket"
            )),
            // A PUT answered 404 means the bucket itself is missing.
            object_store::Error::NotFound { .. } => SinkError::misconfigured(format!(
                "{what}; check that the bucket `{}` exists (sink.bucket, sink.endpoint)",
                self.config.bucket
            )),
            _ => SinkError::transient(format!(
                "{what}; the mail stays in the Inbox and the next run tries again"
            )),
        }
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError> {
        self.store
            .put(&object_path(key)?, PutPayload::from(bytes.to_vec()))
            .await
            .map(|_| ())
            .map_err(|e| self.error("write", key, e))
    }

    async fn exists(&self, key: &str) -> Result<bool, SinkError> {
        match self.store.head(&object_path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error("look up", key, e)),
        }
    }

    async fn store_document(&self, doc: &Document) -> Result<Stored, SinkError> {
        let m = &doc.metadata;
        let base = self.document_prefix(&m.client, &m.importer_id, &m.document_id)?;
        let location = self.location_of(&base);
        let metadata_key = format!("{base}{METADATA_FILE}");
        if self.exists(&metadata_key).await? {
            return Ok(Stored {
                location,
                already_present: true,
            });
        }
        self.put(&format!("{base}{MESSAGE_FILE}"), &doc.message)
            .await?;
        for (meta, bytes) in m.attachments.iter().zip(&doc.files) {
            self.put(&format!("{base}{}", meta.file), bytes).await?;
        }
        self.put(&metadata_key, &doc.metadata_json()).await?;
        Ok(Stored {
            location,
            already_present: false,
        })
    }
}

/// The object `key` names, as it is: keys mirror the spool's file names
/// byte for byte (`Path::from` would percent-encode `März.pdf`).
fn object_path(key: &str) -> Result<Path, SinkError> {
    Path::parse(key).map_err(|e| SinkError::unstorable(format!("`{key}` cannot be an S3 key: {e}")))
}

impl DocumentSink for S3Sink {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn store<'a>(&'a self, doc: &'a Document) -> SinkFuture<'a, Stored> {
        Box::pin(self.store_document(doc))
    }

    fn read<'a>(&'a self, location: &'a str, file: &'a str) -> SinkFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let base = self.prefix_of(location)?;
            let plain = !file.is_empty()
                && file
                    .split('/')
                    .all(|s| !s.is_empty() && s != "." && s != "..");
            if !plain {
                return Ok(None);
            }
            let key = format!("{base}{file}");
            let got = match self.store.get(&object_path(&key)?).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.error("read", &key, e)),
            };
            let bytes = got.bytes().await.map_err(|e| self.error("read", &key, e))?;
            Ok(Some(bytes.to_vec()))
        })
    }

    fn remove<'a>(&'a self, location: &'a str) -> SinkFuture<'a, ()> {
        Box::pin(async move {
            let base = self.prefix_of(location)?;
            let metadata_key = format!("{base}{METADATA_FILE}");
            match self.store.delete(&object_path(&metadata_key)?).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error("delete", &metadata_key, e)),
            }
            let objects: Vec<_> = self
                .store
                .list(Some(&object_path(base)?))
                .try_collect()
                .await
                .map_err(|e| self.error("list", base, e))?;
            for object in objects {
                match self.store.delete(&object.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.error("delete", object.location.as_ref(), e)),
                }
            }
            Ok(())
        })
    }
}
