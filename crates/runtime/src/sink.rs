//! An importer's sink: the one place that turns `sink` settings into a
//! [`DocumentSink`]. Another sink is one more arm here and a new file in
//! the `sinks` crate.

use std::sync::Arc;
use std::time::Duration;

use domain::sink::SinkSettings;
use secrecy::SecretString;
use sinks::{
    DocumentSink, FilesystemSpool, S3Config, S3Sink, SinkError, WebhookConfig, WebhookSink,
};
use store::importers::ImporterRecord;

use crate::{ConnectError, Connector};

impl Connector {
    /// The sink `record` names, with its own sealed credential; the spool
    /// lives under `data_dir/documents`.
    pub async fn sink(
        &self,
        record: &ImporterRecord,
    ) -> Result<Arc<dyn DocumentSink>, ConnectError> {
        match &record.settings.sink {
            SinkSettings::Spool => Ok(Arc::new(self.spool())),
            SinkSettings::Webhook {
                url,
                timeout_secs,
                attempts,
            } => {
                let url = url::Url::parse(url).map_err(|e| {
                    ConnectError::Sink(SinkError::unstorable(format!(
                        "the webhook URL `{url}` is not valid ({e}): correct sink.url on the importer"
                    )))
                })?;
                let mut config = WebhookConfig::new(url);
                config.timeout = Duration::from_secs(*timeout_secs);
                config.attempts = *attempts;
                config.token = self
                    .store
                    .sink_secret(&record.client_id, &record.id)
                    .await?;
                let sink = WebhookSink::new(config).map_err(ConnectError::Sink)?;
                Ok(Arc::new(sink))
            }
            SinkSettings::S3 { .. } => Ok(Arc::new(self.s3_sink(record).await?)),
        }
    }

    async fn s3_sink(&self, record: &ImporterRecord) -> Result<S3Sink, ConnectError> {
        let SinkSettings::S3 {
            bucket,
            endpoint,
            region,
            prefix,
            access_key_id,
        } = &record.settings.sink
        else {
            return Err(ConnectError::Sink(SinkError::misconfigured(
                "the importer's sink is not S3 any more: run again",
            )));
        };
        let secret: SecretString = self
            .store
            .sink_secret(&record.client_id, &record.id)
            .await?
            .ok_or_else(|| {
                ConnectError::Sink(SinkError::misconfigured(
                    "no S3 secret is stored: enter sink.secret_access_key on the importer",
                ))
            })?;
        let config = S3Config {
            bucket: bucket.clone(),
            endpoint: endpoint.clone(),
            region: region.clone(),
            prefix: prefix.clone(),
            access_key_id: access_key_id.clone(),
            secret_access_key: secret,
            timeout: Duration::from_secs(120),
        };
        S3Sink::new(config).map_err(ConnectError::Sink)
    }

    /// The sink that keeps the documents recorded with the sink kind
    /// `kind` (the documents table's `sink`) for the importer
    /// `importer_id`, for reading and deleting them; `None` for a sink that
    /// hands documents on and keeps nothing (the webhook).
    pub async fn keeping_sink(
        &self,
        client_id: &str,
        importer_id: &str,
        kind: &str,
    ) -> Result<Option<Arc<dyn DocumentSink>>, String> {
        let spool = self.spool();
        match kind {
            k if k == spool.kind() => Ok(Some(Arc::new(spool))),
            "webhook" => Ok(None),
            "s3" => {
                let record = self
                    .store
                    .importer(client_id, importer_id)
                    .await
                    .map_err(|e| format!("the database failed: {e}"))?
                    .ok_or_else(|| {
                        "its importer was deleted, and with it the S3 credentials: delete its objects in the bucket by hand".to_owned()
                    })?;
                if !matches!(record.settings.sink, SinkSettings::S3 { .. }) {
                    return Err(format!(
                        "its importer `{}` no longer writes to S3, so mailferry has no credentials for its bucket: delete its objects by hand",
                        record.settings.name
                    ));
                }
                let sink = self.s3_sink(&record).await.map_err(|e| e.to_string())?;
                Ok(Some(Arc::new(sink)))
            }
            other => Err(format!(
                "its sink `{other}` is unknown to this build of mailferry"
            )),
        }
    }

    fn spool(&self) -> FilesystemSpool {
        FilesystemSpool::new(&self.data_dir)
    }
}
