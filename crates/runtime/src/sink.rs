//! An importer's sink: the one place that turns `sink` settings into a
//! [`DocumentSink`]. Another sink is one more arm here and a new file in
//! the `sinks` crate.

use std::sync::Arc;
use std::time::Duration;

use domain::sink::SinkSettings;
use sinks::{DocumentSink, FilesystemSpool, SinkError, WebhookConfig, WebhookSink};
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
        }
    }

    /// The sink that keeps the documents recorded with the sink kind
    /// `kind` (the documents table's `sink`), for deleting them; `None` for
    /// a sink that hands documents on and keeps nothing (the webhook).
    pub fn keeping_sink(&self, kind: &str) -> Result<Option<Arc<dyn DocumentSink>>, String> {
        let spool = self.spool();
        match kind {
            k if k == spool.kind() => Ok(Some(Arc::new(spool))),
            "webhook" => Ok(None),
            other => Err(format!(
                "its sink `{other}` is unknown to this build of mailferry"
            )),
        }
    }

    fn spool(&self) -> FilesystemSpool {
        FilesystemSpool::new(&self.data_dir)
    }
}
