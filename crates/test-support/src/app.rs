//! The whole service in process: the production wiring
//! (`mailferry::app_state`) on a pre-bound loopback port with a fresh
//! database and a pinned clock, and helpers that read like user actions.

use std::path::Path;
use std::sync::Arc;

use domain::clock::{Clock, ManualClock};
use jiff::Timestamp;
use secrecy::ExposeSecret;
use store::Store;

use crate::{Db, fresh_database, install_crypto, open_store};

pub struct TestApp {
    pub base_url: String,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    /// API token of client `default`.
    pub token: String,
    pub client_id: String,
    pub http: reqwest::Client,
    /// The data directory: master key, SQLite file, document spool.
    pub dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    /// On SQLite, the clock pinned at 2026-03-29T00:30:00Z.
    pub async fn spawn() -> Self {
        Self::spawn_with(Db::Sqlite, "2026-03-29T00:30:00Z".parse().expect("ts")).await
    }

    pub async fn spawn_with(db: Db, now: Timestamp) -> Self {
        Self::spawn_inner(db, now, None, false).await
    }

    /// On SQLite, the clock at the real now (Graph checks subscription
    /// expiries against it), with Graph importers subscribing to change
    /// notifications at the app's `/hooks/graph`.
    pub async fn spawn_with_push() -> Self {
        Self::spawn_inner(Db::Sqlite, Timestamp::now(), None, true).await
    }

    /// An app whose OAuth redirect URI is a central one (`oauth_redirect_url`),
    /// made from the app's own base URL by `make`.
    pub async fn spawn_with_central_redirect(make: fn(&str) -> String) -> Self {
        let now = "2026-03-29T00:30:00Z".parse().expect("ts");
        Self::spawn_inner(Db::Sqlite, now, Some(make), false).await
    }

    async fn spawn_inner(
        db: Db,
        now: Timestamp,
        central_redirect: Option<fn(&str) -> String>,
        push: bool,
    ) -> Self {
        install_crypto();
        let dir = tempfile::tempdir().expect("tempdir");
        let url = fresh_database(db, dir.path()).await;
        let store = open_store(&url, dir.path()).await;
        let clock = Arc::new(ManualClock::new(now));
        let client = store
            .ensure_default_client(now)
            .await
            .expect("default client");
        let (_, token) = store
            .create_api_token(&client.id, "tests", None, now)
            .await
            .expect("token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = mailferry::app_state(
            store.clone(),
            clock.clone(),
            web::WebConfig {
                public_url: base_url.clone(),
                oauth_redirect_url: central_redirect.map(|make| make(&base_url)),
            },
            connector(&store, clock.clone(), dir.path()).with_notifications(
                push.then(|| runtime::push::NotificationUrls::under(&base_url)),
            ),
            scheduler::RunnerConfig::default(),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(web::serve(listener, state, async move {
            let _ = rx.await;
        }));
        Self {
            base_url,
            store,
            clock,
            token: token.expose_secret().to_owned(),
            client_id: client.id,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            dir,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn token_for_new_client(&self, name: &str) -> String {
        let now = self.clock_now();
        let client = self
            .store
            .create_client(name, &[], now)
            .await
            .expect("client");
        let (_, token) = self
            .store
            .create_api_token(&client.id, "tests", None, now)
            .await
            .expect("token");
        token.expose_secret().to_owned()
    }

    pub fn clock_now(&self) -> Timestamp {
        self.clock.now()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn put_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .put(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("PUT")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("DELETE")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.expect("JSON body")
}

/// A delegated Graph importer body as the contract shows it.
pub fn graph_importer_body(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "protocol": "graph_delegated",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "Azure-Secret-Value~0001",
        "tenant_id": "contoso.onmicrosoft.com",
        "mailbox": "invoices@contoso.com",
        "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
        "cloud": "global",
        "attachments": { "allowed_types": ["application/pdf", "image/*"], "include_inline": false }
    })
}

/// The production wiring of mailboxes and sinks over `store`, spooling
/// under `data_dir`.
pub fn connector(store: &Store, clock: Arc<dyn Clock>, data_dir: &Path) -> runtime::Connector {
    runtime::Connector::new(store.clone(), clock, data_dir).expect("HTTP clients")
}

/// The scripts of the build, as `serve` registers them.
pub fn scripts(store: &Store, clock: Arc<dyn Clock>, data_dir: &Path) -> scheduler::ScriptRegistry {
    mailferry::registry(&connector(store, clock, data_dir))
}
