//! `purge-documents`: old documents of one client go, through their sink;
//! nothing outside the spool is ever deleted; parameters are checked first.

use std::sync::Arc;

use domain::clock::{Clock, ManualClock};
use jiff::{SignedDuration, Timestamp};
use runtime::{Connector, PurgeDocuments};
use scheduler::params;
use scheduler::{Runner, RunnerConfig, ScriptRegistry, StartError};
use serde_json::{Map, Value, json};
use store::Store;
use store::executions::{ExecutionStatus, TriggerKind};
use test_support::{Db, fresh_store};

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

struct Env {
    store: Store,
    clock: Arc<ManualClock>,
    client_id: String,
    dir: tempfile::TempDir,
}

impl Env {
    async fn new(now: &str) -> Self {
        let (store, dir) = fresh_store(Db::Sqlite).await;
        let now = t(now);
        let client = store.create_client("acme", &[], now).await.expect("client");
        Self {
            store,
            clock: Arc::new(ManualClock::new(now)),
            client_id: client.id,
            dir,
        }
    }

    fn purge(&self) -> PurgeDocuments {
        let clock: Arc<dyn Clock> = self.clock.clone();
        PurgeDocuments::new(
            Connector::new(self.store.clone(), clock, self.dir.path()).expect("connector"),
        )
    }

    fn runner(&self, owner: &str) -> Runner {
        let mut registry = ScriptRegistry::default();
        registry.register(Arc::new(self.purge()));
        let config = RunnerConfig {
            lease_ttl: SignedDuration::from_hours(24 * 30),
            ..RunnerConfig::default()
        };
        let clock: Arc<dyn Clock> = self.clock.clone();
        Runner::with_owner(
            self.store.clone(),
            clock,
            registry,
            config,
            owner.to_owned(),
        )
    }
}

#[tokio::test]
async fn command_line_parameters_are_typed_by_the_script() {
    let purge = Env::new("2026-06-30T12:00:00Z").await.purge();
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let typed = params::from_pairs(&purge, &pairs(&[("retention_days", "30")])).expect("ok");
    assert_eq!(typed["retention_days"], json!(30));
    let err = params::from_pairs(&purge, &pairs(&[("retention_days", "a month")]))
        .expect_err("not a number");
    assert_eq!(
        err.to_string(),
        "params.retention_days: `a month` is not an integer"
    );
    let err = params::from_pairs(&purge, &pairs(&[("importer_id", "x")])).expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "params.importer_id: `purge-documents` has no parameter `importer_id`: it takes retention_days; \
         params.retention_days: is required: keep documents this many days (1–36500); older ones are deleted"
    );
}

#[tokio::test]
async fn integer_parameters_outside_their_bounds_are_refused_before_any_run() {
    let purge = Env::new("2026-06-30T12:00:00Z").await.purge();
    for bad in [0, -1, 36_501] {
        let err = params::check(
            &purge,
            json!({ "retention_days": bad }).as_object().expect("map"),
        )
        .expect_err("out of range");
        assert!(err.mentions("params.retention_days"), "{err}");
        assert!(
            err.to_string().contains("out of range: use 1–36500"),
            "{err}"
        );
    }
    params::check(
        &purge,
        json!({ "retention_days": 1 }).as_object().expect("map"),
    )
    .expect("in range");
    params::check(
        &purge,
        json!({ "retention_days": 36_500 })
            .as_object()
            .expect("map"),
    )
    .expect("in range");
}

async fn add_document(
    env: &Env,
    client_id: &str,
    id: &str,
    imported_at: &str,
) -> std::path::PathBuf {
    let folder = env
        .dir
        .path()
        .join("documents")
        .join(client_id)
        .join("importer-1")
        .join(id);
    std::fs::create_dir_all(folder.join("attachments")).expect("mkdir");
    std::fs::write(folder.join("message.eml"), b"Subject: hi\r\n\r\nhi").expect("write");
    sqlx::query(
        "INSERT INTO documents (id, client_id, importer_id, imported_at, sink, location, metadata) \
         VALUES ($1, $2, 'importer-1', $3, 'filesystem', $4, '{}')",
    )
    .bind(id)
    .bind(client_id)
    .bind(t(imported_at).as_millisecond())
    .bind(folder.display().to_string())
    .execute(env.store.pool())
    .await
    .expect("insert document");
    folder
}

async fn document_ids(env: &Env) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM documents ORDER BY id")
        .fetch_all(env.store.pool())
        .await
        .expect("documents")
}

#[tokio::test]
async fn purge_documents_deletes_only_old_documents_of_its_client() {
    let env = Env::new("2026-06-30T12:00:00Z").await;
    let other = env
        .store
        .create_client("other", &[], env.clock.now())
        .await
        .expect("other");
    let old = add_document(&env, &env.client_id, "d1-old", "2026-05-01T00:00:00Z").await;
    let recent = add_document(&env, &env.client_id, "d2-recent", "2026-06-20T00:00:00Z").await;
    let others = add_document(&env, &other.id, "d3-other-old", "2026-05-01T00:00:00Z").await;
    let runner = env.runner("a");

    // Off by default: without a retention it refuses, and nothing is touched.
    let refused = runner
        .run(
            &env.client_id,
            "purge-documents",
            Map::new(),
            TriggerKind::Manual,
        )
        .await;
    assert!(
        matches!(&refused, Err(StartError::InvalidParams(e)) if e.mentions("params.retention_days")),
        "{refused:?}"
    );
    let Value::Object(zero) = json!({"retention_days": 0}) else {
        unreachable!()
    };
    // Out of bounds: refused before any run starts, nothing deleted.
    let refused = runner
        .run(&env.client_id, "purge-documents", zero, TriggerKind::Manual)
        .await;
    assert!(
        matches!(&refused, Err(StartError::InvalidParams(e)) if e.mentions("params.retention_days")),
        "{refused:?}"
    );
    assert_eq!(document_ids(&env).await.len(), 3);

    let Value::Object(thirty) = json!({"retention_days": 30}) else {
        unreachable!()
    };
    let done = runner
        .run(
            &env.client_id,
            "purge-documents",
            thirty,
            TriggerKind::Manual,
        )
        .await
        .expect("run");
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{:?}", done.log);
    assert_eq!(
        done.log,
        [
            "deleting documents imported before 2026-05-31T12:00:00Z (older than 30 days)",
            "1 documents deleted"
        ]
    );
    assert!(!old.exists());
    assert!(recent.join("message.eml").exists());
    assert!(
        others.join("message.eml").exists(),
        "other clients are untouched"
    );
    assert_eq!(document_ids(&env).await, ["d2-recent", "d3-other-old"]);
}

#[tokio::test]
async fn purge_documents_never_deletes_outside_the_spool() {
    let env = Env::new("2026-06-30T12:00:00Z").await;
    let outside = env.dir.path().join("elsewhere");
    std::fs::create_dir_all(&outside).expect("mkdir");
    sqlx::query(
        "INSERT INTO documents (id, client_id, importer_id, imported_at, sink, location, metadata) \
         VALUES ('d1', $1, 'importer-1', 0, 'filesystem', $2, '{}')",
    )
    .bind(&env.client_id)
    .bind(format!(
        "{}/documents/../elsewhere",
        env.dir.path().display()
    ))
    .execute(env.store.pool())
    .await
    .expect("insert");
    let Value::Object(params) = json!({"retention_days": 1}) else {
        unreachable!()
    };
    let done = env
        .runner("a")
        .run(
            &env.client_id,
            "purge-documents",
            params,
            TriggerKind::Manual,
        )
        .await
        .expect("run");
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert!(outside.exists());
    assert_eq!(
        document_ids(&env).await,
        ["d1"],
        "the row stays for a human to look at"
    );
    assert!(
        done.log
            .iter()
            .any(|l| l.contains("is outside the document spool")),
        "{:?}",
        done.log
    );
}
