//! The store's behaviour, told as stories that run unchanged against SQLite
//! and a real PostgreSQL (started by `scripts/test.sh`, which exports
//! `MAILFERRY_TEST_POSTGRES_URL`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation is the test failing"
)]

use domain::importer::{ImporterInput, SecretKind, ValidImporter};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use store::grants::{Grant, GrantState};
use store::{Keyring, Store, StoreError};
use test_support::{Db, fresh_database, key_file, open_store, sqlite_file};

struct TestDb {
    store: Store,
    key_path: std::path::PathBuf,
    sqlite_path: Option<std::path::PathBuf>,
    url: String,
    _dir: tempfile::TempDir,
}

async fn test_db(db: Db) -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database(db, dir.path()).await;
    let store = open_store(&url, dir.path()).await;
    TestDb {
        store,
        key_path: key_file(dir.path()),
        sqlite_path: (db == Db::Sqlite).then(|| sqlite_file(dir.path())),
        url,
        _dir: dir,
    }
}

async fn sqlite() -> TestDb {
    test_db(Db::Sqlite).await
}

async fn postgres() -> TestDb {
    test_db(Db::Postgres).await
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
    a_denied_mailbox_outlives_refreshes_until_access_is_found,
    a_pending_account_change_is_sealed_and_confirmed_once,
    jobs_belong_to_their_client_and_new_clients_get_defaults,
    a_due_slot_is_claimed_by_exactly_one_instance,
    a_dead_instances_lease_is_taken_over_after_it_expires,
    executions_are_listed_swept_and_pruned,
    named_leases_have_one_holder_at_a_time,
    import_work_is_claimed_once_and_taken_over_when_lapsed,
    ledger_follows_a_mail_to_its_folder,
    unfinished_ledger_rows_are_listed_and_confirmed_only_once,
    documents_are_recorded_once_and_scoped_to_their_client,
    import_runs_are_recorded_per_importer_and_read_newest_first,
    an_importer_saved_with_the_bare_auth_xoauth2_is_readable_after_migration_0007,
    a_mailbox_throttle_keeps_the_latest_instant_and_lapses,
);

async fn a_mailbox_throttle_keeps_the_latest_instant_and_lapses(db: TestDb) {
    let s = &db.store;
    let (mailbox, now) = ("mailbox:c:alice@contoso.com", t("2026-03-01T12:00:00Z"));
    assert_eq!(s.mailbox_throttle(mailbox, now).await.expect("read"), None);
    let later = t("2026-03-01T12:10:00Z");
    s.put_mailbox_throttle("c", mailbox, later, "HTTP 429")
        .await
        .expect("put");
    // An earlier instant told afterwards (another instance's older answer)
    // does not shorten it.
    s.put_mailbox_throttle("c", mailbox, t("2026-03-01T12:05:00Z"), "HTTP 503")
        .await
        .expect("put");
    let kept = s
        .mailbox_throttle(mailbox, now)
        .await
        .expect("read")
        .expect("throttled");
    assert_eq!((kept.until, kept.reason.as_str()), (later, "HTTP 429"));
    assert_eq!(
        s.mailbox_throttle("mailbox:c:bob@contoso.com", now)
            .await
            .expect("read"),
        None,
        "per mailbox"
    );
    assert_eq!(
        s.mailbox_throttle(mailbox, later).await.expect("read"),
        None,
        "lapsed at its instant"
    );
}

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
        .create_api_token(&client.id, "ci", None, now)
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

    // A token with an expiry works until then; a revoked one not at all.
    let until = t("2026-04-01T00:00:00Z");
    let (short, short_token) = s
        .create_api_token(&client.id, "short", Some(until), now)
        .await
        .expect("token");
    let works_at = |at: &'static str| {
        let token = short_token.expose_secret().to_owned();
        async move { s.token_owner(&token, t(at)).await.expect("q").is_some() }
    };
    assert!(works_at("2026-03-31T23:59:59Z").await);
    assert!(!works_at("2026-04-01T00:00:00Z").await, "expired");
    assert!(
        s.revoke_api_token(&client.id, &short.token_id, now)
            .await
            .expect("revoke")
    );
    assert!(!works_at("2026-03-30T00:00:00Z").await, "revoked");
    assert!(
        !s.revoke_api_token(&client.id, &short.token_id, now)
            .await
            .expect("again")
    );
    assert!(
        s.token_owner(token.expose_secret(), now)
            .await
            .expect("q")
            .is_some()
    );
    let listed = s.list_api_tokens(&client.id).await.expect("list");
    let short_info = listed
        .iter()
        .find(|i| i.id == short.token_id)
        .expect("listed");
    assert_eq!(short_info.expires_at, Some(until));
    assert_eq!(short_info.revoked_at, Some(now));
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

/// What the refresh-tokens script stores after Microsoft answered.
async fn refresh_at(s: &Store, importer_id: &str, version: i64, now: Timestamp) -> bool {
    let access = SecretString::from("AT-after-refresh");
    let tokens = store::grants::RefreshedTokens {
        access_token: &access,
        access_token_expires_at: now + jiff::SignedDuration::from_mins(90),
        refresh_token: None,
        scopes: &[],
    };
    s.store_refreshed_tokens(importer_id, version, tokens, now)
        .await
        .expect("refresh")
}

async fn a_denied_mailbox_outlives_refreshes_until_access_is_found(db: TestDb) {
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
    let state = |g: Option<Grant>| {
        let g = g.expect("grant");
        (g.state, g.last_error, g.version)
    };
    let refreshed = |version| refresh_at(s, &rec.id, version, now);

    // Reachable while authorized: nothing to change.
    assert!(
        !s.set_grant_mailbox_access(&rec.id, Ok(()), now)
            .await
            .expect("set")
    );
    let (st, _, v1) = state(s.grant(&rec.id).await.expect("q"));
    assert_eq!(st, GrantState::Authorized);

    // An import finds the mailbox refused: denied with the reason; the
    // tokens (and so the version) are untouched.
    let denied = "bob cannot open the mailbox x (HTTP 403). Fix: grant Full Access".to_owned();
    assert!(
        s.set_grant_mailbox_access(&rec.id, Err(denied.clone()), now)
            .await
            .expect("set")
    );
    assert_eq!(
        state(s.grant(&rec.id).await.expect("q")),
        (GrantState::MailboxDenied, Some(denied.clone()), v1)
    );

    // A failed refresh overwrites last_error; a successful one refreshes the
    // tokens and restores the denial instead of declaring it authorized.
    s.record_refresh_failure(&rec.id, "network down", now)
        .await
        .expect("failure");
    assert!(refreshed(v1).await);
    let grant = s.grant(&rec.id).await.expect("q").expect("grant");
    assert_eq!(grant.state, GrantState::MailboxDenied);
    assert_eq!(grant.last_error.as_deref(), Some(denied.as_str()));
    assert_eq!(grant.consecutive_failures, 0);
    assert_eq!(
        grant
            .access_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .as_deref(),
        Some("AT-after-refresh")
    );

    // Access granted meanwhile: the next import flips it back.
    assert!(
        s.set_grant_mailbox_access(&rec.id, Ok(()), now)
            .await
            .expect("set")
    );
    let (st, error, v2) = state(s.grant(&rec.id).await.expect("q"));
    assert_eq!((st, error), (GrantState::Authorized, None));
    assert!(refreshed(v2).await);
    assert_eq!(
        s.grant(&rec.id).await.expect("q").expect("grant").state,
        GrantState::Authorized
    );

    // The callback stores a denied grant directly; refreshes keep it denied.
    let mut signed_in = sample_grant(&rec.id, now);
    signed_in.state = GrantState::MailboxDenied;
    signed_in.last_error = Some(denied.clone());
    s.put_grant(&signed_in).await.expect("grant");
    let (_, _, v3) = state(s.grant(&rec.id).await.expect("q"));
    assert!(refreshed(v3).await);
    assert_eq!(
        state(s.grant(&rec.id).await.expect("q")).0,
        GrantState::MailboxDenied
    );

    // Tokens Microsoft refused are the bigger problem: left alone.
    let (_, _, v4) = state(s.grant(&rec.id).await.expect("q"));
    assert!(
        s.mark_reauth_required(&rec.id, v4, "AADSTS50173", now)
            .await
            .expect("mark")
    );
    assert!(
        !s.set_grant_mailbox_access(&rec.id, Err(denied.clone()), now)
            .await
            .expect("set")
    );
    assert!(
        !s.set_grant_mailbox_access(&rec.id, Ok(()), now)
            .await
            .expect("set")
    );
    assert_eq!(
        state(s.grant(&rec.id).await.expect("q")).0,
        GrantState::ReauthRequired
    );
}

async fn a_pending_account_change_is_sealed_and_confirmed_once(db: TestDb) {
    use store::grants::NewPendingGrant;
    use store::oauth_states::StateLookup;
    let now = t("2026-02-01T10:00:00Z");
    let minutes = |m| now + jiff::SignedDuration::from_mins(m);
    let (client, rec) = {
        let s = &db.store;
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
        (client, rec)
    };
    let mut bobs = sample_grant(&rec.id, now);
    bobs.account = Some("bob@contoso.example".into());
    bobs.access_token = Some(SecretString::from("AT-plaintext-of-bob-0002"));
    bobs.refresh_token = Some(SecretString::from("RT-plaintext-of-bob-0002"));
    bobs.state = GrantState::MailboxDenied;
    bobs.last_error = Some("bob has no mailbox. Fix: license".into());
    let new = NewPendingGrant {
        client_id: &client.id,
        started_by: "admin@contoso.example",
        previous_account: "alice@contoso.example",
        grant: &bobs,
    };
    let s = &db.store;
    let confirmation = s.create_pending_grant(new, now).await.expect("pending");
    assert_eq!(confirmation.expires_at, minutes(10));

    // Sealed at rest, and only the token's hash is stored.
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT token_sha256, access_token_sealed, refresh_token_sealed FROM pending_grants",
    )
    .fetch_all(s.pool())
    .await
    .expect("rows");
    assert_eq!(rows.len(), 1);
    let token = confirmation.token.expose_secret().to_owned();
    assert_ne!(rows[0].0, token);
    for blob in [&rows[0].1, &rows[0].2] {
        for needle in ["AT-plaintext-of-bob-0002", "RT-plaintext-of-bob-0002"] {
            assert!(!contains(blob, needle.as_bytes()), "{needle} readable");
        }
    }
    // The importer's grant is untouched until confirmed.
    let current = s.grant(&rec.id).await.expect("q").expect("grant");
    assert_eq!(current.account.as_deref(), Some("alice@contoso.example"));

    assert!(matches!(
        s.consume_pending_grant(&format!("{token}x"), minutes(1))
            .await
            .expect("q"),
        StateLookup::Unknown
    ));
    let StateLookup::Valid(pending) = s
        .consume_pending_grant(&token, minutes(1))
        .await
        .expect("q")
    else {
        panic!("the first use is valid");
    };
    assert_eq!(pending.client_id, client.id);
    assert_eq!(pending.started_by, "admin@contoso.example");
    assert_eq!(pending.previous_account, "alice@contoso.example");
    assert_eq!(pending.expires_at, minutes(10));
    let g = &pending.grant;
    assert_eq!(g.importer_id, rec.id);
    assert_eq!(g.account.as_deref(), Some("bob@contoso.example"));
    assert_eq!(
        (g.state, g.last_error.as_deref()),
        (
            GrantState::MailboxDenied,
            Some("bob has no mailbox. Fix: license")
        )
    );
    assert_eq!(g.scopes, bobs.scopes);
    assert_eq!(g.access_token_expires_at, bobs.access_token_expires_at);
    assert_eq!(g.refresh_token_issued_at, bobs.refresh_token_issued_at);
    assert_eq!(
        g.access_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .as_deref(),
        Some("AT-plaintext-of-bob-0002")
    );
    assert_eq!(
        g.refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .as_deref(),
        Some("RT-plaintext-of-bob-0002")
    );
    assert!(matches!(
        s.consume_pending_grant(&token, minutes(2)).await.expect("q"),
        StateLookup::AlreadyUsed { used_at } if used_at == minutes(1)
    ));
    // Once used, no copy of its tokens stays behind.
    type SealedTokens = (Option<Vec<u8>>, Option<Vec<u8>>);
    let left: Vec<SealedTokens> =
        sqlx::query_as("SELECT access_token_sealed, refresh_token_sealed FROM pending_grants")
            .fetch_all(s.pool())
            .await
            .expect("rows");
    assert_eq!(left, vec![(None, None)]);

    // Ten minutes to decide.
    let late = s.create_pending_grant(new, now).await.expect("pending");
    assert!(matches!(
        s.consume_pending_grant(late.token.expose_secret(), minutes(11)).await.expect("q"),
        StateLookup::Expired { expired_at } if expired_at == minutes(10)
    ));

    // Key rotation re-seals pending grants too.
    let waiting = s
        .create_pending_grant(new, minutes(11))
        .await
        .expect("pending");
    s.close().await;
    Keyring::append_new_key(&db.key_path).expect("new key");
    let rotated = Store::connect(&db.url, Keyring::load(&db.key_path).expect("keys"))
        .await
        .expect("reconnect");
    // The importer's secret, its grant's two tokens, the waiting pending
    // grant's two; the expired one's were dropped.
    assert_eq!(rotated.reseal_all().await.expect("reseal"), 5);
    let text = std::fs::read_to_string(&db.key_path).expect("read");
    std::fs::write(&db.key_path, text.lines().last().expect("line")).expect("write");
    rotated.close().await;
    let rotated = Store::connect(&db.url, Keyring::load(&db.key_path).expect("keys"))
        .await
        .expect("reconnect");
    let StateLookup::Valid(pending) = rotated
        .consume_pending_grant(waiting.token.expose_secret(), minutes(12))
        .await
        .expect("q")
    else {
        panic!("valid after rotation");
    };
    assert!(pending.grant.refresh_token.is_some());
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn ledger_follows_a_mail_to_its_folder(db: TestDb) {
    use store::ledger::{LedgerEntry, LedgerState, MailFate, MailFilter};
    let s = &db.store;
    let now = t("2026-03-01T10:00:00Z");
    let entry = LedgerEntry {
        importer_id: "imp-1".into(),
        source_key: "AAMk/+=1".into(),
        mail_id: LedgerEntry::new_mail_id(),
        internet_message_id: Some("<a@contoso.com>".into()),
        mime_sha256: Some("ab".repeat(32)),
        content_sha256: Some("c1".repeat(32)),
        document_id: Some("doc-1".into()),
        state: LedgerState::Stored,
        reason: None,
        subject: Some("Rechnung März".into()),
        sender: Some("billing@supplier.example".into()),
        received_at: Some(t("2026-03-01T09:59:00Z")),
        attempts: 0,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    s.record_ledger(&entry).await.expect("record");
    assert_eq!(
        s.ledger_entry("imp-1", "AAMk/+=1").await.expect("read"),
        Some(entry.clone())
    );
    assert_eq!(
        s.ledger_entry("imp-1", "aamk/+=1").await.expect("read"),
        None,
        "ids are case-sensitive"
    );
    assert_eq!(
        s.ledger_entry("imp-2", "AAMk/+=1").await.expect("read"),
        None
    );

    let later = t("2026-03-01T10:00:05Z");
    s.set_ledger_state("imp-1", "AAMk/+=1", LedgerState::Moved, later)
        .await
        .expect("moved");
    let moved = s
        .ledger_entry("imp-1", "AAMk/+=1")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(moved.state, LedgerState::Moved);
    assert_eq!((moved.created_at, moved.updated_at), (now, later));
    assert!(matches!(
        s.set_ledger_state("imp-1", "missing", LedgerState::Moved, later)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.ledger_activity("imp-2").await.expect("sum"), None);
    let sum = s
        .ledger_activity("imp-1")
        .await
        .expect("sum")
        .expect("activity");
    assert_eq!(
        (sum.last_at, sum.imported, sum.to_error, sum.unfinished),
        (later, 1, 0, 0)
    );

    // Rows that may be the same mail under a new id: by its Message-ID …
    let found = s
        .ledger_entries_for_mail("imp-1", Some("<a@contoso.com>"), "ff", "ee")
        .await
        .expect("find");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].source_key, "AAMk/+=1");
    assert_eq!(found[0].content_sha256, Some("c1".repeat(32)));
    assert!(
        s.ledger_entries_for_mail("imp-2", Some("<a@contoso.com>"), "ff", "ee")
            .await
            .expect("find")
            .is_empty()
    );
    // … and a mail without one by its content or its MIME.
    let no_id = LedgerEntry {
        source_key: "AAMk2".into(),
        mail_id: LedgerEntry::new_mail_id(),
        internet_message_id: None,
        mime_sha256: Some("cd".repeat(32)),
        content_sha256: None,
        document_id: None,
        state: LedgerState::ToError,
        reason: Some("no_importable_attachment: the mail has no attachment".into()),
        ..entry.clone()
    };
    s.record_ledger(&no_id).await.expect("record");
    let found = s
        .ledger_entries_for_mail("imp-1", None, "ff", &"cd".repeat(32))
        .await
        .expect("find");
    assert_eq!(found.len(), 1, "same MIME");
    assert_eq!(
        found[0].reason_parts(),
        Some(("no_importable_attachment", "the mail has no attachment"))
    );
    assert!(
        s.ledger_entries_for_mail("imp-1", None, &"c1".repeat(32), &"ab".repeat(32))
            .await
            .expect("find")
            .is_empty(),
        "a mail with a Message-ID is matched by it, not by content or MIME"
    );

    // Recording again advances the row and keeps its creation time.
    s.record_ledger(&LedgerEntry {
        state: LedgerState::MovedToError,
        updated_at: later,
        created_at: later,
        ..no_id.clone()
    })
    .await
    .expect("re-record");
    let again = s
        .ledger_entry("imp-1", "AAMk2")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        (again.state, again.created_at, again.updated_at),
        (LedgerState::MovedToError, now, later)
    );
    assert_eq!(again.mail_id, no_id.mail_id, "a row keeps its mail_id");
    assert_eq!(s.ledger_entries("imp-1").await.expect("list").len(), 2);

    // The admin's view: newest first, by fate, paged; one mail by its id.
    let mails = |fate| async move {
        s.ledger_mails(
            "imp-1",
            &MailFilter {
                fate,
                document_id: None,
            },
            10,
            0,
        )
        .await
    };
    let keys = |rows: Vec<LedgerEntry>| -> Vec<String> {
        rows.into_iter().map(|r| r.source_key).collect()
    };
    // Both changed at `later`: the source key orders them.
    assert_eq!(keys(mails(None).await.expect("all")), ["AAMk/+=1", "AAMk2"]);
    assert_eq!(
        keys(mails(Some(MailFate::Error)).await.expect("error")),
        ["AAMk2"]
    );
    assert_eq!(
        keys(mails(Some(MailFate::Exported)).await.expect("exported")),
        ["AAMk/+=1"]
    );
    assert!(
        mails(Some(MailFate::Pending))
            .await
            .expect("pending")
            .is_empty()
    );
    assert_eq!(
        keys(
            s.ledger_mails("imp-1", &MailFilter::default(), 1, 1)
                .await
                .expect("page 2")
        ),
        ["AAMk2"]
    );
    let of_document = MailFilter {
        fate: None,
        document_id: Some("doc-1".into()),
    };
    assert_eq!(
        keys(
            s.ledger_mails("imp-1", &of_document, 10, 0)
                .await
                .expect("by document")
        ),
        ["AAMk/+=1"]
    );
    let by_id = s
        .ledger_entry_by_mail_id("imp-1", &entry.mail_id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(by_id.subject.as_deref(), Some("Rechnung März"));
    assert_eq!(
        s.ledger_entry_by_mail_id("imp-2", &entry.mail_id)
            .await
            .expect("read"),
        None,
        "another importer's mail is not found"
    );

    // Transient failures count runs; a decided row starts again at 1.
    let failing = LedgerEntry {
        source_key: "AAMk3".into(),
        mail_id: LedgerEntry::new_mail_id(),
        state: LedgerState::Pending,
        document_id: None,
        ..entry.clone()
    };
    for expected in 1..=3 {
        let n = s
            .record_attempt(&failing, &format!("503 #{expected}"))
            .await
            .expect("attempt");
        assert_eq!(n, expected);
    }
    let pending = s
        .ledger_entry("imp-1", "AAMk3")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        (
            pending.state,
            pending.attempts,
            pending.last_error.as_deref()
        ),
        (LedgerState::Pending, 3, Some("503 #3"))
    );
    assert_eq!(pending.mail_id, failing.mail_id);
    assert_eq!(
        s.record_attempt(&no_id, "timeout").await.expect("attempt"),
        1,
        "a mail moved back from Error counts afresh"
    );
    assert_eq!(
        s.record_attempt(&entry, "late failure")
            .await
            .expect("attempt"),
        0,
        "a mail with a document is never reopened by a failure"
    );
    let kept = s
        .ledger_entry("imp-1", &entry.source_key)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        (kept.state, kept.document_id.as_deref()),
        (LedgerState::Moved, Some("doc-1"))
    );

    // Reprocessing reopens only a mail that is in Error.
    let reopen = |mail_id: String| async move {
        s.reopen_ledger_entry("imp-1", &mail_id, "reprocess requested", later)
            .await
            .expect("reopen")
    };
    assert!(
        !reopen(entry.mail_id.clone()).await,
        "an exported mail is not reopened"
    );
    s.set_ledger_state("imp-1", "AAMk2", LedgerState::MovedToError, later)
        .await
        .expect("to error");
    assert!(reopen(no_id.mail_id.clone()).await);
    assert!(!reopen(no_id.mail_id.clone()).await, "only once");
    let reopened = s
        .ledger_entry("imp-1", "AAMk2")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        (reopened.state, reopened.attempts, reopened.reason),
        (LedgerState::Pending, 0, None)
    );
}

/// After a crash between a move and its ledger update, a later run lists
/// the rows whose move is unconfirmed (newest first, bounded, this importer
/// only) and confirms each with a compare-and-set that a second confirmer
/// or a changed row cannot overwrite.
async fn unfinished_ledger_rows_are_listed_and_confirmed_only_once(db: TestDb) {
    use store::ledger::{LedgerEntry, LedgerState};
    let s = &db.store;
    let row = |importer: &str, key: &str, state: LedgerState, at: &str| LedgerEntry {
        importer_id: importer.into(),
        source_key: key.into(),
        mail_id: LedgerEntry::new_mail_id(),
        internet_message_id: Some(format!("<{key}@contoso.com>")),
        mime_sha256: Some("ab".repeat(32)),
        content_sha256: Some("cc".repeat(32)),
        subject: None,
        sender: None,
        received_at: None,
        attempts: 0,
        last_error: None,
        document_id: matches!(state, LedgerState::Stored | LedgerState::Moved)
            .then(|| format!("doc-{key}")),
        state,
        reason: matches!(state, LedgerState::ToError | LedgerState::MovedToError)
            .then(|| "no_importable_attachment: no attachment".to_owned()),
        created_at: t(at),
        updated_at: t(at),
    };
    for entry in [
        row(
            "imp-1",
            "old-stored",
            LedgerState::Stored,
            "2026-03-01T10:00:00Z",
        ),
        row("imp-1", "done", LedgerState::Moved, "2026-03-01T10:00:01Z"),
        row(
            "imp-1",
            "new-to-error",
            LedgerState::ToError,
            "2026-03-01T10:00:02Z",
        ),
        row(
            "imp-1",
            "done-error",
            LedgerState::MovedToError,
            "2026-03-01T10:00:03Z",
        ),
        row(
            "imp-2",
            "other",
            LedgerState::Stored,
            "2026-03-01T10:00:04Z",
        ),
    ] {
        s.record_ledger(&entry).await.expect("record");
    }
    let keys = |rows: Vec<LedgerEntry>| -> Vec<String> {
        rows.into_iter().map(|r| r.source_key).collect()
    };
    assert_eq!(
        keys(
            s.unfinished_ledger_entries("imp-1", 10)
                .await
                .expect("list")
        ),
        ["new-to-error", "old-stored"],
        "only unfinished rows of this importer, most recently changed first"
    );
    assert_eq!(
        keys(s.unfinished_ledger_entries("imp-1", 1).await.expect("list")),
        ["new-to-error"],
        "bounded"
    );
    assert!(
        s.unfinished_ledger_entries("imp-3", 10)
            .await
            .expect("list")
            .is_empty()
    );

    let later = t("2026-03-01T11:00:00Z");
    assert!(
        !s.advance_ledger_state(
            "imp-1",
            "old-stored",
            LedgerState::ToError,
            LedgerState::MovedToError,
            later
        )
        .await
        .expect("cas"),
        "a row not in the expected state is left alone"
    );
    assert!(
        s.advance_ledger_state(
            "imp-1",
            "old-stored",
            LedgerState::Stored,
            LedgerState::Moved,
            later
        )
        .await
        .expect("cas")
    );
    assert!(
        !s.advance_ledger_state(
            "imp-1",
            "old-stored",
            LedgerState::Stored,
            LedgerState::Moved,
            later
        )
        .await
        .expect("cas"),
        "the second confirmer changes nothing"
    );
    assert!(
        !s.advance_ledger_state(
            "imp-1",
            "missing",
            LedgerState::Stored,
            LedgerState::Moved,
            later
        )
        .await
        .expect("cas")
    );
    assert!(
        s.advance_ledger_state(
            "imp-1",
            "new-to-error",
            LedgerState::ToError,
            LedgerState::MovedToError,
            later
        )
        .await
        .expect("cas")
    );
    let moved = s
        .ledger_entry("imp-1", "old-stored")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        (
            moved.state,
            moved.document_id.as_deref(),
            moved.created_at,
            moved.updated_at
        ),
        (
            LedgerState::Moved,
            Some("doc-old-stored"),
            t("2026-03-01T10:00:00Z"),
            later
        ),
        "only the state and its time change"
    );
    let errored = s
        .ledger_entry("imp-1", "new-to-error")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(errored.state, LedgerState::MovedToError);
    assert!(errored.reason.is_some(), "the reason stays");
    assert!(
        s.unfinished_ledger_entries("imp-1", 10)
            .await
            .expect("list")
            .is_empty()
    );
    let sum = s
        .ledger_activity("imp-1")
        .await
        .expect("sum")
        .expect("activity");
    assert_eq!((sum.imported, sum.to_error, sum.unfinished), (2, 2, 0));
    assert_eq!(
        s.ledger_entry("imp-2", "other")
            .await
            .expect("read")
            .expect("row")
            .state,
        LedgerState::Stored,
        "another importer's row is untouched"
    );
}

async fn documents_are_recorded_once_and_scoped_to_their_client(db: TestDb) {
    use domain::document::{DocumentAttachment, DocumentMetadata, DocumentSource};
    use store::documents::DocumentRecord;
    let s = &db.store;
    let now = t("2026-03-01T10:00:00Z");
    let a = s.ensure_default_client(now).await.expect("default");
    let b = s.create_client("other", &[], now).await.expect("other");
    let record = |id: &str, client: &str, minute: i64| DocumentRecord {
        id: id.into(),
        client_id: client.into(),
        importer_id: "imp-1".into(),
        sink: "filesystem".into(),
        location: format!("/data/documents/default/imp-1/{id}"),
        metadata: DocumentMetadata {
            document_id: id.into(),
            client: "default".into(),
            importer_id: "imp-1".into(),
            source: DocumentSource {
                protocol: "graph_delegated".into(),
                mailbox: "me".into(),
                message_id: "AAMk".into(),
                internet_message_id: Some(format!("<{id}@x>")),
            },
            subject: Some("Rechnung März".into()),
            from: Some("anna@contoso.com".into()),
            to: vec!["invoices@contoso.com".into()],
            received_at: Some(now),
            imported_at: now + jiff::SignedDuration::from_mins(minute),
            attachments: vec![DocumentAttachment {
                file: "attachments/a.pdf".into(),
                filename: Some("a.pdf".into()),
                content_type: "application/pdf".into(),
                size: 3,
                sha256: "00".repeat(32),
            }],
            smime: None,
        },
    };
    assert!(
        s.insert_document(&record("d1", &a.id, 1))
            .await
            .expect("insert")
    );
    assert!(
        s.insert_document(&record("d2", &a.id, 2))
            .await
            .expect("insert")
    );
    assert!(
        !s.insert_document(&record("d1", &a.id, 9))
            .await
            .expect("again"),
        "same id: nothing new"
    );
    assert!(
        s.insert_document(&record("d3", &b.id, 3))
            .await
            .expect("insert")
    );

    let listed = s.list_documents(&a.id, None, 100, 0).await.expect("list");
    assert_eq!(
        listed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["d2", "d1"]
    );
    assert_eq!(listed[1], record("d1", &a.id, 1), "the first record stays");
    assert_eq!(
        s.list_documents(&a.id, Some("imp-2"), 100, 0)
            .await
            .expect("list"),
        []
    );
    assert_eq!(
        s.list_documents(&a.id, None, 1, 1).await.expect("page")[0].id,
        "d1"
    );
    assert_eq!(
        s.document(&a.id, "d3").await.expect("get"),
        None,
        "another client's document is invisible"
    );
    assert_eq!(
        s.document(&b.id, "d3").await.expect("get").expect("own").id,
        "d3"
    );
    assert_eq!(s.count_documents("imp-1").await.expect("count"), 3);
}

// ---- jobs, executions and leases (the scheduler's storage) ----

use store::executions::{ExecutionFilter, ExecutionStatus, NewExecution, Retention, TriggerKind};
use store::jobs::{JobClaim, JobSpec};

fn job_spec(script: &str, cron: &str, tz: &str) -> JobSpec {
    JobSpec {
        script: script.to_owned(),
        schedule: domain::schedule::CronSchedule::parse(cron, tz).expect("schedule"),
        enabled: true,
        params: serde_json::Map::new(),
        description: String::new(),
    }
}

fn scheduled(job: &store::jobs::Job, slot: Timestamp, owner: &str, now: Timestamp) -> NewExecution {
    NewExecution {
        client_id: job.client_id.clone(),
        script: job.script.clone(),
        job_id: Some(job.id.clone()),
        trigger: TriggerKind::Scheduled,
        params: job.params.clone(),
        scheduled_for: Some(slot),
        owner: owner.to_owned(),
        started_at: now,
    }
}

fn claim<'a>(
    job: &'a store::jobs::Job,
    owner: &'a str,
    now: Timestamp,
    lease_secs: i64,
) -> JobClaim<'a> {
    let slot = job.next_run_at.expect("job is scheduled");
    let schedule = job.schedule().expect("schedule");
    JobClaim {
        job_id: &job.id,
        seen_next_run_at: slot,
        slot,
        following: schedule.next_run(slot).map(|z| z.timestamp()),
        owner,
        lease_until: now
            .checked_add(jiff::SignedDuration::from_secs(lease_secs))
            .expect("ts"),
        now,
        execution: scheduled(job, slot, owner, now),
    }
}

async fn jobs_belong_to_their_client_and_new_clients_get_defaults(db: TestDb) {
    let s = &db.store;
    let now = t("2026-03-29T00:30:00Z");
    let acme = s.create_client("acme", &[], now).await.expect("acme");
    let defaults = s.list_jobs(&acme.id).await.expect("jobs");
    let summary: Vec<(&str, &str, &str, bool)> = defaults
        .iter()
        .map(|j| {
            (
                j.script.as_str(),
                j.cron.as_str(),
                j.timezone.as_str(),
                j.enabled,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("refresh-tokens", "*/50 * * * *", "UTC", true),
            ("import-emails", "*/5 * * * *", "UTC", true)
        ]
    );
    assert_eq!(defaults[0].next_run_at, Some(t("2026-03-29T00:50:00Z")));
    assert_eq!(defaults[1].next_run_at, Some(t("2026-03-29T00:35:00Z")));

    let other = s.create_client("other", &[], now).await.expect("other");
    let mut spec = job_spec("purge-documents", "30 2 * * *", "Europe/Berlin");
    spec.params.insert("retention_days".into(), 90.into());
    spec.description = "keep 90 days".into();
    let job = s.create_job(&acme.id, &spec, now).await.expect("create");
    assert_eq!(job.timezone, "Europe/Berlin");
    assert_eq!(job.params["retention_days"], 90);
    // 02:30 on the night Berlin springs forward does not exist: 03:00 CEST.
    assert_eq!(job.next_run_at, Some(t("2026-03-29T01:00:00Z")));
    assert!(s.job(&other.id, &job.id).await.expect("get").is_none());
    assert!(matches!(
        s.update_job(&other.id, &job.id, &spec, now).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(!s.delete_job(&other.id, &job.id).await.expect("delete"));

    let later = t("2026-03-30T12:00:00Z");
    spec.enabled = false;
    let off = s
        .update_job(&acme.id, &job.id, &spec, later)
        .await
        .expect("update");
    assert_eq!(off.next_run_at, None, "a disabled job owes nothing");
    assert!(
        s.due_jobs(t("2030-01-01T00:00:00Z"))
            .await
            .expect("due")
            .iter()
            .all(|j| j.id != job.id)
    );
    spec.enabled = true;
    let on = s
        .update_job(&acme.id, &job.id, &spec, later)
        .await
        .expect("update");
    assert_eq!(
        on.next_run_at,
        Some(t("2026-03-31T00:30:00Z")),
        "scheduled from the change on"
    );
    assert_eq!(on.updated_at, later);
    assert!(s.delete_job(&acme.id, &job.id).await.expect("delete"));
    assert_eq!(s.list_jobs(&acme.id).await.expect("jobs").len(), 2);
}

async fn a_due_slot_is_claimed_by_exactly_one_instance(db: TestDb) {
    let s = db.store.clone();
    let now = t("2026-06-01T10:00:00Z");
    let client = s.create_client("acme", &[], now).await.expect("client");
    let job = s
        .create_job(
            &client.id,
            &job_spec("purge-documents", "*/5 * * * *", "UTC"),
            now,
        )
        .await
        .expect("job");
    let slot = t("2026-06-01T10:05:00Z");
    assert_eq!(job.next_run_at, Some(slot));
    assert!(
        s.due_jobs(now).await.expect("due").is_empty(),
        "not due before its slot"
    );
    let at = t("2026-06-01T10:05:00.300Z");
    assert!(
        s.due_jobs(at)
            .await
            .expect("due")
            .iter()
            .any(|j| j.id == job.id)
    );

    // Ten instances race for the slot at the same moment; one wins.
    let mut racers = Vec::new();
    for i in 0..10 {
        let (s, job) = (s.clone(), job.clone());
        racers.push(tokio::spawn(async move {
            let owner = format!("instance-{i}");
            s.claim_job_run(&claim(&job, &owner, at, 3600)).await
        }));
    }
    let mut winners = Vec::new();
    for racer in racers {
        if let Some(execution) = racer.await.expect("task").expect("claim") {
            winners.push(execution);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one instance runs the slot");
    let won = &winners[0];
    assert_eq!(won.status, ExecutionStatus::Running);
    assert_eq!(won.scheduled_for, Some(slot));
    let owner = won.owner.clone().expect("owner");
    let after = s.job(&client.id, &job.id).await.expect("get").expect("job");
    assert_eq!(after.next_run_at, Some(t("2026-06-01T10:10:00Z")));
    assert_eq!(after.lease_owner.as_deref(), Some(owner.as_str()));
    assert_eq!(after.last_run_at, Some(at));

    // The second guard: the same slot cannot be recorded twice.
    let again = s
        .start_execution(&scheduled(&job, slot, "someone", at))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    // No overlap: while the run holds the lease, its next slot is not due.
    let next_slot_passed = t("2026-06-01T10:10:30Z");
    assert!(
        s.due_jobs(next_slot_passed)
            .await
            .expect("due")
            .iter()
            .all(|j| j.id != job.id)
    );
    assert_eq!(
        s.claim_job_run(&claim(&after, "instance-x", next_slot_passed, 60))
            .await
            .expect("claim"),
        None
    );
    assert!(
        s.renew_job_lease(&job.id, &owner, t("2026-06-01T10:12:00Z"))
            .await
            .expect("renew")
    );
    assert!(
        !s.renew_job_lease(&job.id, "instance-x", t("2026-06-01T10:12:00Z"))
            .await
            .expect("renew")
    );
    s.finish_execution(
        &won.id,
        ExecutionStatus::Succeeded,
        next_slot_passed,
        &["done".into()],
        None,
    )
    .await
    .expect("finish");
    s.release_job_lease(&job.id, &owner).await.expect("release");
    let released = s.job(&client.id, &job.id).await.expect("get").expect("job");
    assert_eq!(released.lease_owner, None);
    let next = s
        .claim_job_run(&claim(&released, "instance-x", next_slot_passed, 60))
        .await
        .expect("claim")
        .expect("the next slot runs once the lease is free");
    assert_eq!(next.scheduled_for, Some(t("2026-06-01T10:10:00Z")));
}

async fn a_dead_instances_lease_is_taken_over_after_it_expires(db: TestDb) {
    let s = &db.store;
    let now = t("2026-06-01T10:00:00Z");
    let client = s.create_client("acme", &[], now).await.expect("client");
    let job = s
        .create_job(
            &client.id,
            &job_spec("purge-documents", "* * * * *", "UTC"),
            now,
        )
        .await
        .expect("job");
    let at = t("2026-06-01T10:01:00Z");
    let orphan = s
        .claim_job_run(&claim(&job, "crashed", at, 60))
        .await
        .expect("claim")
        .expect("won");
    // "crashed" never renews its lease. Until it expires, nobody else runs the job.
    let job = s.job(&client.id, &job.id).await.expect("get").expect("job");
    let before_expiry = t("2026-06-01T10:02:00Z");
    assert_eq!(
        s.claim_job_run(&claim(&job, "survivor", before_expiry, 60))
            .await
            .expect("claim"),
        None
    );
    let after_expiry = t("2026-06-01T10:02:00.001Z");
    let taken = s
        .claim_job_run(&claim(&job, "survivor", after_expiry, 60))
        .await
        .expect("claim")
        .expect("the expired lease is taken over");
    assert_eq!(taken.owner.as_deref(), Some("survivor"));
    let orphan = s
        .execution(&client.id, &orphan.id)
        .await
        .expect("get")
        .expect("orphan");
    assert_eq!(orphan.status, ExecutionStatus::Failed);
    assert!(
        orphan
            .error
            .as_deref()
            .unwrap_or("")
            .contains("another instance took the job over"),
        "{orphan:?}"
    );
    assert!(
        !s.renew_job_lease(&job.id, "crashed", after_expiry)
            .await
            .expect("renew"),
        "the dead owner's lease is gone"
    );
}

async fn executions_are_listed_swept_and_pruned(db: TestDb) {
    let s = &db.store;
    let now = t("2026-06-01T10:00:00Z");
    let acme = s.create_client("acme", &[], now).await.expect("acme");
    let other = s.create_client("other", &[], now).await.expect("other");
    let manual = |client: &str, script: &str, at: Timestamp| NewExecution {
        client_id: client.to_owned(),
        script: script.to_owned(),
        job_id: None,
        trigger: TriggerKind::Manual,
        params: serde_json::Map::new(),
        scheduled_for: None,
        owner: "me".to_owned(),
        started_at: at,
    };
    let mut ids = Vec::new();
    for i in 0..12 {
        let at = now
            .checked_add(jiff::SignedDuration::from_mins(i))
            .expect("ts");
        let script = if i % 2 == 0 {
            "purge-documents"
        } else {
            "import-emails"
        };
        let e = s
            .start_execution(&manual(&acme.id, script, at))
            .await
            .expect("start");
        ids.push(e.id);
    }
    s.start_execution(&manual(&other.id, "purge-documents", now))
        .await
        .expect("other");
    let newest = s
        .list_executions(
            &acme.id,
            &ExecutionFilter {
                limit: 3,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        newest.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [&ids[11], &ids[10], &ids[9]]
    );
    let purges = s
        .list_executions(
            &acme.id,
            &ExecutionFilter {
                script: Some("purge-documents".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(purges.len(), 6);
    assert!(
        s.execution(&other.id, &ids[0])
            .await
            .expect("get")
            .is_none(),
        "scoped to the client"
    );

    // A heartbeat keeps a run alive and saves its log so far.
    let beat = t("2026-06-01T10:20:00Z");
    assert!(
        s.execution_heartbeat(&ids[11], beat, &["halfway".into()])
            .await
            .expect("beat")
    );
    let got = s
        .execution(&acme.id, &ids[11])
        .await
        .expect("get")
        .expect("e");
    assert_eq!(
        (got.heartbeat_at, got.log),
        (Some(beat), vec!["halfway".to_owned()])
    );
    // Runs without a heartbeat since 10:15 belong to a dead instance.
    let swept = s
        .fail_stale_executions(t("2026-06-01T10:15:00Z"), beat)
        .await
        .expect("sweep");
    assert_eq!(swept, 12, "all but the one that beat");
    let alive = s
        .execution(&acme.id, &ids[11])
        .await
        .expect("get")
        .expect("e");
    assert_eq!(alive.status, ExecutionStatus::Running);
    assert!(
        s.finish_execution(
            &ids[11],
            ExecutionStatus::Succeeded,
            beat,
            &["done".into()],
            None
        )
        .await
        .expect("finish")
    );
    assert!(
        !s.finish_execution(&ids[11], ExecutionStatus::Failed, beat, &[], Some("late"))
            .await
            .expect("finish"),
        "the first end wins"
    );
    let dead = s
        .execution(&acme.id, &ids[0])
        .await
        .expect("get")
        .expect("e");
    assert_eq!(dead.status, ExecutionStatus::Failed);

    // Keep the newest 5 per client, and nothing older than a day.
    let pruned = s
        .prune_executions(
            Retention {
                keep_per_client: 5,
                max_age: jiff::SignedDuration::from_hours(24),
            },
            beat,
        )
        .await
        .expect("prune");
    assert_eq!(pruned, 7);
    let left = s
        .list_executions(
            &acme.id,
            &ExecutionFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        left.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [&ids[11], &ids[10], &ids[9], &ids[8], &ids[7]]
    );
    let a_month_later = t("2026-07-02T10:00:00Z");
    let pruned = s
        .prune_executions(Retention::default(), a_month_later)
        .await
        .expect("prune");
    assert_eq!(pruned, 6, "30 days on, every finished execution is gone");
}

async fn named_leases_have_one_holder_at_a_time(db: TestDb) {
    let s = &db.store;
    let now = t("2026-06-01T10:00:00Z");
    let until = t("2026-06-01T11:00:00Z");
    assert!(
        s.try_acquire_lease("prune", "a", until, now)
            .await
            .expect("a")
    );
    assert!(
        !s.try_acquire_lease("prune", "b", until, now)
            .await
            .expect("b")
    );
    assert!(
        s.try_acquire_lease("prune", "a", t("2026-06-01T12:00:00Z"), now)
            .await
            .expect("renew")
    );
    assert_eq!(
        s.lease_owner("prune", now).await.expect("owner").as_deref(),
        Some("a")
    );
    let later = t("2026-06-01T12:00:00.001Z");
    assert!(
        s.try_acquire_lease("prune", "b", t("2026-06-01T13:00:00Z"), later)
            .await
            .expect("expired")
    );
    s.release_lease("prune", "a")
        .await
        .expect("not a's any more");
    assert_eq!(
        s.lease_owner("prune", later)
            .await
            .expect("owner")
            .as_deref(),
        Some("b")
    );
    s.release_lease("prune", "b").await.expect("release");
    assert!(
        s.try_acquire_lease("prune", "c", until, later)
            .await
            .expect("c")
    );
}

async fn import_runs_are_recorded_per_importer_and_read_newest_first(db: TestDb) {
    use store::import_runs::{ImportRunRecord, RunOutcome};
    let s = &db.store;
    let now = t("2026-03-01T10:00:00Z");
    let client = s.ensure_default_client(now).await.expect("default");
    let other = s.create_client("other", &[], now).await.expect("other");
    let mut importers = Vec::new();
    for name in ["Invoices", "Receipts"] {
        let rec = s
            .create_importer(
                &client.id,
                &valid(&graph_importer(name, Some("sec")), None),
                now,
            )
            .await
            .expect("create");
        importers.push(rec.id);
    }
    let (invoices, receipts) = (&importers[0], &importers[1]);
    let at = |minute: i64| now + jiff::SignedDuration::from_mins(minute);
    let run = |execution: &str, importer: &str, minute: i64| ImportRunRecord {
        id: ImportRunRecord::new_id(),
        execution_id: execution.to_owned(),
        client_id: client.id.clone(),
        importer_id: importer.to_owned(),
        started_at: at(minute),
        finished_at: at(minute) + jiff::SignedDuration::from_secs(7),
        outcome: RunOutcome::Succeeded,
        imported: 5,
        completed: 1,
        moves_confirmed: 2,
        to_error_by_reason: [
            ("no_importable_attachment".to_owned(), 2),
            ("rule:sender_allow".to_owned(), 1),
        ]
        .into(),
        left_for_retry: 1,
        bytes: 123_456,
        stopped_early: false,
        error: None,
        failure_kind: None,
        throttled_until: None,
    };
    assert_eq!(
        s.latest_import_run(&client.id, invoices)
            .await
            .expect("latest"),
        None,
        "no run yet"
    );

    let first = run("exec-1", invoices, 0);
    assert_eq!(first.to_error(), 3);
    assert!(s.record_import_run(&first).await.expect("record"));
    assert!(
        s.record_import_run(&run("exec-1", receipts, 0))
            .await
            .expect("record")
    );
    let failed = ImportRunRecord {
        outcome: RunOutcome::Failed,
        imported: 0,
        completed: 0,
        moves_confirmed: 0,
        to_error_by_reason: Default::default(),
        left_for_retry: 0,
        bytes: 0,
        stopped_early: true,
        error: Some("the folder `Exported` is ambiguous; no mail was touched".to_owned()),
        failure_kind: Some(store::import_runs::FailureKind::Folders),
        throttled_until: Some(at(6)),
        ..run("exec-2", invoices, 5)
    };
    assert_eq!(failed.to_error(), 0);
    assert!(s.record_import_run(&failed).await.expect("record"));

    assert_eq!(
        s.latest_import_run(&client.id, invoices)
            .await
            .expect("latest"),
        Some(failed.clone()),
        "read back as written, the newest"
    );
    assert_eq!(
        s.import_runs(&client.id, invoices, 10, 0)
            .await
            .expect("runs"),
        [failed.clone(), first.clone()]
    );
    assert_eq!(
        s.import_runs(&client.id, invoices, 1, 1)
            .await
            .expect("page"),
        std::slice::from_ref(&first)
    );
    assert_eq!(
        s.import_runs(&client.id, receipts, 10, 0)
            .await
            .expect("runs")
            .len(),
        1,
        "each importer has its own"
    );

    // One row per importer and execution.
    assert!(matches!(
        s.record_import_run(&run("exec-1", invoices, 9)).await,
        Err(StoreError::Conflict(_))
    ));
    // Another client neither sees nor writes the importer's runs.
    assert_eq!(
        s.latest_import_run(&other.id, invoices)
            .await
            .expect("latest"),
        None
    );
    let foreign = ImportRunRecord {
        client_id: other.id.clone(),
        ..run("exec-3", invoices, 10)
    };
    assert!(!s.record_import_run(&foreign).await.expect("foreign"));

    // A deleted importer's runs go with it; a run ending after the delete records nothing.
    assert!(
        s.delete_importer(&client.id, invoices)
            .await
            .expect("delete")
    );
    assert_eq!(
        s.import_runs(&client.id, invoices, 10, 0)
            .await
            .expect("runs"),
        []
    );
    assert!(
        !s.record_import_run(&run("exec-4", invoices, 20))
            .await
            .expect("late")
    );
    assert_eq!(
        s.import_runs(&client.id, receipts, 10, 0)
            .await
            .expect("runs")
            .len(),
        1,
        "the other importer's runs stay"
    );
}

/// Before XOAUTH2 was built, an IMAP importer could be saved with the bare
/// `"auth": "xoauth2"`; read as today's settings (whose XOAUTH2 carries the
/// Entra app) it would make the whole client's importer list unreadable.
/// Migration 0007 turns it into a password importer without a password.
async fn an_importer_saved_with_the_bare_auth_xoauth2_is_readable_after_migration_0007(db: TestDb) {
    let s = &db.store;
    let now = t("2026-03-29T00:30:00Z");
    let client = s.ensure_default_client(now).await.expect("client");
    let input: ImporterInput = serde_json::from_value(serde_json::json!({
        "name": "Old IMAP", "protocol": "imap", "host": "imap.example.com",
        "username": "u", "password": "pw",
        "folders": { "inbox": "INBOX", "exported": "Exported", "error": "Error" }
    }))
    .expect("input");
    let rec = s
        .create_importer(&client.id, &valid(&input, None), now)
        .await
        .expect("create");
    sqlx::query(
        "UPDATE importers SET settings = replace(settings, '\"auth\":\"password\"', '\"auth\":\"xoauth2\"') WHERE id = $1",
    )
    .bind(&rec.id)
    .execute(s.pool())
    .await
    .expect("the old form");
    assert!(
        s.list_importers(&client.id).await.is_err(),
        "unreadable before"
    );

    let migration = include_str!("../migrations/sqlite/0007_legacy_xoauth2.sql");
    assert_eq!(
        migration,
        include_str!("../migrations/postgres/0007_legacy_xoauth2.sql"),
        "one statement for both backends"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(migration.to_owned()))
        .execute(s.pool())
        .await
        .expect("migration 0007");
    let listed = s.list_importers(&client.id).await.expect("readable again");
    let imap = listed[0].settings.imap().expect("imap");
    assert_eq!(imap.auth, domain::importer::ImapLogin::Password);
}

async fn import_work_is_claimed_once_and_taken_over_when_lapsed(t: TestDb) {
    let s = &t.store;
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let later = |secs: i64| {
        now.checked_add(jiff::SignedDuration::from_secs(secs))
            .expect("ts")
    };
    let units = vec![
        (
            "mailbox:c:a".to_owned(),
            vec!["i1".to_owned(), "i2".to_owned()],
        ),
        ("mailbox:c:b".to_owned(), vec!["i3".to_owned()]),
    ];
    s.queue_import_work("e1", "c", &units, now)
        .await
        .expect("queue");
    let open = s
        .open_import_work(Some("e1"), false, now, 10)
        .await
        .expect("open");
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].importer_ids, ["i1", "i2"]);
    assert!(
        s.claim_import_work(&open[0], "w1", later(30))
            .await
            .expect("claim")
    );
    assert!(
        !s.claim_import_work(&open[0], "w2", later(30))
            .await
            .expect("claim"),
        "read before w1's claim: w2 loses"
    );
    // Only the unclaimed one is open to others; all of the run's to anyone
    // who asks for claimed ones too.
    let open = s
        .open_import_work(None, false, later(1), 10)
        .await
        .expect("open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].unit, "mailbox:c:b");
    assert_eq!(
        s.open_import_work(None, true, later(1), 10)
            .await
            .expect("open")
            .len(),
        2
    );
    // w1 dies: after its claim lapses w2 takes the unit over.
    let lapsed = s
        .open_import_work(Some("e1"), false, later(31), 10)
        .await
        .expect("open");
    assert_eq!(lapsed.len(), 2);
    let a = lapsed.iter().find(|w| w.unit == "mailbox:c:a").expect("a");
    assert!(
        s.claim_import_work(a, "w2", later(60))
            .await
            .expect("take over")
    );
    assert!(
        !s.renew_import_work("e1", "mailbox:c:a", "w1", later(90))
            .await
            .expect("renew"),
        "the old holder cannot renew"
    );
    assert!(
        s.renew_import_work("e1", "mailbox:c:a", "w2", later(90))
            .await
            .expect("renew")
    );
    let lines = vec!["Invoices: imported 2".to_owned()];
    assert!(
        !s.finish_import_work(a, "w1", &lines, &[], 1, later(40))
            .await
            .expect("finish"),
        "only the holder finishes"
    );
    assert!(
        s.finish_import_work(a, "w2", &lines, &["x".to_owned()], 2, later(40))
            .await
            .expect("finish")
    );
    let all = s.import_work_of("e1").await.expect("all");
    let done = all.iter().find(|w| w.unit == "mailbox:c:a").expect("a");
    assert_eq!(done.log, lines);
    assert_eq!(done.failures, ["x"]);
    assert_eq!(done.worked, 2);
    assert!(done.done_at.is_some());
    // A later run of the client drops the earlier run's unclaimed leftovers.
    s.queue_import_work("e2", "c", &units[..1], later(50))
        .await
        .expect("queue");
    assert!(s.import_work_of("e1").await.expect("e1").is_empty());
    assert_eq!(s.import_work_of("e2").await.expect("e2").len(), 1);
    s.delete_import_work("e2").await.expect("delete");
    assert!(s.import_work_of("e2").await.expect("e2").is_empty());
}
