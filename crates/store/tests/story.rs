//! The store's behaviour, told as stories that run unchanged against SQLite
//! and a real PostgreSQL (started by `scripts/test.sh`, which exports
//! `MAILFERRY_TEST_POSTGRES_URL`).

use domain::importer::{ImporterInput, SecretKind, ValidImporter};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use store::grants::{Grant, GrantState};
use store::{Keyring, Store, StoreError};

struct TestDb {
    store: Store,
    key_path: std::path::PathBuf,
    sqlite_path: Option<std::path::PathBuf>,
    url: String,
    _dir: tempfile::TempDir,
}

async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_path = dir.path().join("master.key");
    let path = dir.path().join("mailferry.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url, Keyring::load_or_create(&key_path).expect("key"))
        .await
        .expect("connect");
    TestDb {
        store,
        key_path,
        sqlite_path: Some(path),
        url,
        _dir: dir,
    }
}

async fn postgres() -> TestDb {
    let admin_url = std::env::var("MAILFERRY_TEST_POSTGRES_URL").expect(
        "MAILFERRY_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts a PostgreSQL for them",
    );
    sqlx::any::install_default_drivers();
    let name = format!("mf_story_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::AnyPool::connect(&admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let url = match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("MAILFERRY_TEST_POSTGRES_URL must end in /DATABASE"),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let key_path = dir.path().join("master.key");
    let store = Store::connect(&url, Keyring::load_or_create(&key_path).expect("key"))
        .await
        .expect("connect");
    TestDb {
        store,
        key_path,
        sqlite_path: None,
        url,
        _dir: dir,
    }
}

macro_rules! on_both_backends {
    ($($story:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test] async fn $story() { super::$story(super::sqlite().await).await })*
        }
        mod postgres_backend {
            $(#[tokio::test] async fn $story() { super::$story(super::postgres().await).await })*
        }
    };
}

on_both_backends!(
    clients_and_hosts,
    users_and_tokens,
    importer_lifecycle,
    clients_never_see_each_others_importers,
    grant_is_dropped_only_by_grant_relevant_changes,
    secrets_are_sealed_at_rest,
    key_rotation_reseals_everything,
);

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn graph_importer(name: &str, secret: Option<&str>) -> ImporterInput {
    let mut value = serde_json::json!({
        "name": name,
        "protocol": "graph_delegated",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "tenant_id": "contoso.onmicrosoft.com",
        "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" }
    });
    if let Some(secret) = secret {
        value["client_secret"] = secret.into();
    }
    serde_json::from_value(value).expect("input")
}

fn valid(input: &ImporterInput, stored: Option<SecretKind>) -> ValidImporter {
    input.validate(stored).expect("valid importer")
}

async fn clients_and_hosts(db: TestDb) {
    let s = &db.store;
    let now = t("2026-03-29T00:30:00Z");
    let default = s.ensure_default_client(now).await.expect("default");
    assert_eq!(
        s.ensure_default_client(now).await.expect("again").id,
        default.id
    );
    let acme = s
        .create_client("acme", &["Acme.Example.com".into()], now)
        .await
        .expect("acme");
    assert_eq!(acme.hosts, ["acme.example.com"]);
    assert_eq!(acme.created_at, now);
    assert!(matches!(
        s.create_client("acme", &[], now).await,
        Err(StoreError::Conflict(_))
    ));
    let err = s
        .create_client("other", &["acme.example.com".into()], now)
        .await
        .expect_err("host taken");
    assert!(
        err.to_string().contains("already belongs to client `acme`"),
        "{err}"
    );
    assert!(matches!(
        s.create_client("Bad Name", &[], now).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.client_for_host("acme.example.com:8080")
            .await
            .expect("q")
            .expect("c")
            .name,
        "acme"
    );
    assert_eq!(
        s.client_for_host("unknown.example")
            .await
            .expect("q")
            .expect("c")
            .name,
        "default"
    );
    assert_eq!(s.list_clients().await.expect("list").len(), 2);
}

async fn users_and_tokens(db: TestDb) {
    let s = &db.store;
    let now = t("2026-01-01T00:00:00Z");
    let client = s.ensure_default_client(now).await.expect("default");
    let pw = SecretString::from("correct horse battery");
    let user = s
        .create_user(&client.id, "Admin@Example.com", &pw, now)
        .await
        .expect("user");
    assert_eq!(user.email, "admin@example.com");
    assert!(matches!(
        s.create_user(&client.id, "admin@example.com", &pw, now)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        s.verify_user(&client.id, "ADMIN@example.com", &pw)
            .await
            .expect("q")
            .is_some()
    );
    assert!(
        s.verify_user(
            &client.id,
            "admin@example.com",
            &SecretString::from("wrong")
        )
        .await
        .expect("q")
        .is_none()
    );

    let (owner, token) = s
        .create_api_token(&client.id, "ci", now)
        .await
        .expect("token");
    let found = s
        .token_owner(token.expose_secret(), now)
        .await
        .expect("q")
        .expect("found");
    assert_eq!(found, owner);
    assert!(
        s.token_owner("mf_not-a-token", now)
            .await
            .expect("q")
            .is_none()
    );
}

async fn importer_lifecycle(db: TestDb) {
    let s = &db.store;
    let created_at = t("2026-02-01T10:00:00Z");
    let client = s.ensure_default_client(created_at).await.expect("default");
    let rec = s
        .create_importer(
            &client.id,
            &valid(&graph_importer("Invoices", Some("sec-1")), None),
            created_at,
        )
        .await
        .expect("create");
    assert_eq!(rec.stored_secret, Some(SecretKind::ClientSecret));
    let listed = s.list_importers(&client.id).await.expect("list");
    assert_eq!(listed, vec![rec.clone()]);

    let updated_at = t("2026-02-02T10:00:00Z");
    let saved = s
        .update_importer(
            &client.id,
            &rec.id,
            &valid(&graph_importer("Renamed", None), rec.stored_secret),
            updated_at,
        )
        .await
        .expect("update");
    assert_eq!(saved.record.settings.name, "Renamed");
    assert_eq!(saved.record.created_at, created_at);
    assert_eq!(saved.record.updated_at, updated_at);
    let secret = s
        .importer_secret(&client.id, &rec.id)
        .await
        .expect("q")
        .expect("kept");
    assert_eq!(secret.expose_secret(), "sec-1");

    let again = s
        .importer(&client.id, &rec.id)
        .await
        .expect("q")
        .expect("found");
    assert_eq!(again, saved.record);
    assert!(
        s.delete_importer(&client.id, &rec.id)
            .await
            .expect("delete")
    );
    assert!(
        !s.delete_importer(&client.id, &rec.id)
            .await
            .expect("delete twice")
    );
    assert!(s.importer(&client.id, &rec.id).await.expect("q").is_none());
}

async fn clients_never_see_each_others_importers(db: TestDb) {
    let s = &db.store;
    let now = t("2026-02-01T10:00:00Z");
    let a = s.create_client("a", &[], now).await.expect("a");
    let b = s.create_client("b", &[], now).await.expect("b");
    let rec = s
        .create_importer(&a.id, &valid(&graph_importer("A's", Some("x")), None), now)
        .await
        .expect("create");
    assert!(s.list_importers(&b.id).await.expect("list").is_empty());
    assert!(s.importer(&b.id, &rec.id).await.expect("q").is_none());
    assert!(
        s.importer_secret(&b.id, &rec.id)
            .await
            .expect("q")
            .is_none()
    );
    let upd = s
        .update_importer(
            &b.id,
            &rec.id,
            &valid(&graph_importer("stolen", Some("y")), None),
            now,
        )
        .await;
    assert!(matches!(upd, Err(StoreError::NotFound(_))));
    assert!(!s.delete_importer(&b.id, &rec.id).await.expect("delete"));
    assert_eq!(
        s.importer(&a.id, &rec.id)
            .await
            .expect("q")
            .expect("intact")
            .settings
            .name,
        "A's"
    );
}

fn sample_grant(importer_id: &str, now: Timestamp) -> Grant {
    Grant {
        importer_id: importer_id.to_owned(),
        state: GrantState::Authorized,
        account: Some("alice@contoso.example".into()),
        scopes: vec!["Mail.ReadWrite".into(), "User.Read".into()],
        access_token: Some(SecretString::from("AT-plaintext-access-token-0001")),
        access_token_expires_at: Some(now + jiff::SignedDuration::from_mins(75)),
        refresh_token: Some(SecretString::from("RT-plaintext-refresh-token-0001")),
        refresh_token_issued_at: Some(now),
        last_refresh_at: None,
        last_error: None,
        consecutive_failures: 0,
        version: 1,
        updated_at: now,
    }
}

async fn grant_is_dropped_only_by_grant_relevant_changes(db: TestDb) {
    let s = &db.store;
    let now = t("2026-02-01T10:00:00Z");
    let client = s.ensure_default_client(now).await.expect("default");
    let rec = s
        .create_importer(
            &client.id,
            &valid(&graph_importer("I", Some("x")), None),
            now,
        )
        .await
        .expect("create");
    s.put_grant(&sample_grant(&rec.id, now))
        .await
        .expect("grant");
    let grant = s.grant(&rec.id).await.expect("q").expect("stored");
    assert_eq!(
        grant
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .as_deref(),
        Some("RT-plaintext-refresh-token-0001")
    );
    assert_eq!(
        grant.access_token_expires_at,
        Some(t("2026-02-01T11:15:00Z"))
    );

    // renaming and another mailbox keep the grant
    let mut input = graph_importer("Renamed", None);
    input.mailbox = Some("shared@contoso.example".into());
    let saved = s
        .update_importer(
            &client.id,
            &rec.id,
            &valid(&input, Some(SecretKind::ClientSecret)),
            now,
        )
        .await
        .expect("update");
    assert!(!saved.grant_dropped);
    assert!(s.grant(&rec.id).await.expect("q").is_some());

    // a new client secret drops it
    let saved = s
        .update_importer(
            &client.id,
            &rec.id,
            &valid(&graph_importer("Renamed", Some("new")), None),
            now,
        )
        .await
        .expect("update");
    assert!(saved.grant_dropped);
    assert!(s.grant(&rec.id).await.expect("q").is_none());
}

async fn secrets_are_sealed_at_rest(db: TestDb) {
    let s = &db.store;
    let now = t("2026-02-01T10:00:00Z");
    let client = s.ensure_default_client(now).await.expect("default");
    let secret = "Client-Secret-Plaintext-7f3a";
    let rec = s
        .create_importer(
            &client.id,
            &valid(&graph_importer("I", Some(secret)), None),
            now,
        )
        .await
        .expect("create");
    s.put_grant(&sample_grant(&rec.id, now))
        .await
        .expect("grant");
    let needles = [
        secret,
        "AT-plaintext-access-token-0001",
        "RT-plaintext-refresh-token-0001",
    ];

    // every column of every row, as the database returns it
    let row: (Vec<u8>, String) =
        sqlx::query_as("SELECT secret_sealed, settings FROM importers WHERE id = $1")
            .bind(&rec.id)
            .fetch_one(s.pool())
            .await
            .expect("row");
    let grant_row: (Vec<u8>, Vec<u8>) = sqlx::query_as(
        "SELECT access_token_sealed, refresh_token_sealed FROM oauth_grants WHERE importer_id = $1",
    )
    .bind(&rec.id)
    .fetch_one(s.pool())
    .await
    .expect("grant row");
    for blob in [&row.0, &grant_row.0, &grant_row.1] {
        for needle in needles {
            assert!(
                !contains(blob, needle.as_bytes()),
                "{needle} readable in a sealed column"
            );
        }
    }
    assert!(!row.1.contains(secret));

    // and the database files themselves (SQLite: main file and WAL)
    if let Some(path) = &db.sqlite_path {
        s.close().await;
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(b) = std::fs::read(&file) {
                bytes.extend(b);
            }
        }
        assert!(bytes.len() > 4096, "the database file was read");
        assert!(
            contains(&bytes, b"contoso.onmicrosoft.com"),
            "plain settings are in the file, so the search works"
        );
        for needle in needles {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{needle} readable in the database file"
            );
        }
    }
}

async fn key_rotation_reseals_everything(db: TestDb) {
    let now = t("2026-02-01T10:00:00Z");
    let rec = {
        let s = &db.store;
        let client = s.ensure_default_client(now).await.expect("default");
        let rec = s
            .create_importer(
                &client.id,
                &valid(&graph_importer("I", Some("before-rotation")), None),
                now,
            )
            .await
            .expect("create");
        s.put_grant(&sample_grant(&rec.id, now))
            .await
            .expect("grant");
        s.close().await;
        rec
    };
    Keyring::append_new_key(&db.key_path).expect("new key");
    let store = Store::connect(&db.url, Keyring::load(&db.key_path).expect("keys"))
        .await
        .expect("reconnect");
    assert_eq!(store.reseal_all().await.expect("reseal"), 3);
    assert_eq!(store.reseal_all().await.expect("nothing left"), 0);
    // drop the old key: everything still opens
    let text = std::fs::read_to_string(&db.key_path).expect("read");
    std::fs::write(&db.key_path, text.lines().last().expect("line")).expect("write");
    store.close().await;
    let store = Store::connect(&db.url, Keyring::load(&db.key_path).expect("keys"))
        .await
        .expect("reconnect");
    let secret = store
        .importer_secret(&rec.client_id, &rec.id)
        .await
        .expect("q")
        .expect("secret");
    assert_eq!(secret.expose_secret(), "before-rotation");
    let grant = store.grant(&rec.id).await.expect("q").expect("grant");
    assert!(grant.access_token.is_some());
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
