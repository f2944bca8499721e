//! The Graph mailbox and the folder rules against the Microsoft emulator:
//! a tree with duplicate names under different parents, more than ten
//! top-level folders, deep nesting, non-ASCII names, a shared mailbox;
//! paging, MIME, moves with immutable ids; throttling, server errors and
//! the per-mailbox concurrency limit; the folder picker and the Mail
//! connection test through the REST API.

use std::sync::Arc;
use std::time::Duration;

use domain::folder::FolderSpec;
use domain::mailbox::StaticToken;
use domain::mailbox::{
    FolderError, FolderTree, Mailbox, MailboxErrorKind, MatchedBy, PageCursor, resolve_folder,
};
use microsoft::graph::{AuthMode, GraphConfig, GraphMailbox, RetryPolicy};
use msemu::{EmulatorHandle, FaultKind, FaultRule, Options, Seed, SeedFolder, demo};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::{TestApp, install_crypto, json as body_json, start_emulator};

const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

fn folder(name: &str, children: Vec<SeedFolder>) -> SeedFolder {
    SeedFolder {
        display_name: name.into(),
        children,
        ..SeedFolder::default()
    }
}

/// Alice's mailbox: `Exported` under Inbox and under Archive, `Archive`
/// also under `Inbox/Projekte`, twelve customer folders at the top, five
/// levels below Inbox, non-ASCII names and a hidden folder.
fn seed() -> Seed {
    let mut seed = Seed::demo();
    let tenant = &mut seed.tenants[0];
    let alice = tenant
        .users
        .iter_mut()
        .find(|u| u.user_principal_name == demo::ALICE)
        .expect("alice in the demo seed");
    let inbox_messages = std::mem::take(&mut alice.folders[0].messages);
    let mut inbox = folder(
        "Inbox",
        vec![
            folder("Exported", vec![]),
            folder("Überweisungen", vec![]),
            folder(
                "Projekte",
                vec![
                    folder("Archive", vec![]),
                    folder(
                        "Ebene 1",
                        vec![folder(
                            "Ebene 2",
                            vec![folder("Ebene 3", vec![folder("Tief – 深い", vec![])])],
                        )],
                    ),
                ],
            ),
        ],
    );
    inbox.messages = inbox_messages;
    let mut folders = vec![
        inbox,
        folder("Archive", vec![folder("Exported", vec![])]),
        folder("Error", vec![]),
        folder("日本語", vec![]),
        SeedFolder {
            display_name: "Versteckt".into(),
            hidden: true,
            ..SeedFolder::default()
        },
    ];
    folders.extend((1..=12).map(|n| folder(&format!("Kunde {n:02}"), vec![])));
    alice.folders = folders;
    seed
}

async fn emulator() -> EmulatorHandle {
    start_emulator(
        seed(),
        Options {
            auto_consent: true,
            ..Options::default()
        },
    )
    .await
}

fn http() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// An app-only token of the demo daemon app (application role Mail.ReadWrite).
async fn app_token(emu: &EmulatorHandle) -> SecretString {
    let resp = http()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            emu.base_url(),
            demo::TENANT_ID
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", demo::DAEMON_CLIENT_ID),
            ("client_secret", demo::DAEMON_CLIENT_SECRET),
            ("scope", &format!("{GRAPH_RESOURCE}/.default")),
        ])
        .send()
        .await
        .expect("token request");
    let body: Value = resp.json().await.expect("token JSON");
    SecretString::from(
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
    )
}

/// A delegated token for `user` through the authorization-code flow
/// (the emulator consents on the user's behalf).
async fn delegated_token(emu: &EmulatorHandle, user: &str) -> SecretString {
    let scope = format!(
        "offline_access {GRAPH_RESOURCE}/Mail.ReadWrite {GRAPH_RESOURCE}/Mail.ReadWrite.Shared"
    );
    let verifier = "a-plain-pkce-verifier-that-is-long-enough-for-the-rules-0123";
    let mut url = url_of(&format!(
        "{}/{}/oauth2/v2.0/authorize",
        emu.base_url(),
        demo::TENANT_ID
    ));
    url.query_pairs_mut()
        .append_pair("client_id", demo::CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", demo::REDIRECT_URI)
        .append_pair("scope", &scope)
        .append_pair("state", "s")
        .append_pair("login_hint", user)
        .append_pair("code_challenge", verifier)
        .append_pair("code_challenge_method", "plain");
    let resp = http().get(url.as_str()).send().await.expect("authorize");
    assert_eq!(
        resp.status(),
        302,
        "authorize: {}",
        resp.text().await.unwrap_or_default()
    );
    let location = url_of(resp.headers()["location"].to_str().expect("location"));
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code in redirect");
    let resp = http()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            emu.base_url(),
            demo::TENANT_ID
        ))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", demo::CLIENT_ID),
            ("client_secret", demo::CLIENT_SECRET),
            ("code", &code),
            ("redirect_uri", demo::REDIRECT_URI),
            ("code_verifier", verifier),
            ("scope", &scope),
        ])
        .send()
        .await
        .expect("token request");
    let body: Value = resp.json().await.expect("token JSON");
    SecretString::from(
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {body}"))
            .to_owned(),
    )
}

fn url_of(raw: &str) -> reqwest::Url {
    reqwest::Url::parse(raw).expect("URL")
}

/// Fast retries, so fault tests take milliseconds of backoff, not seconds.
fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(5),
    }
}

fn mailbox(
    emu: &EmulatorHandle,
    token: SecretString,
    mailbox: Option<&str>,
    auth: AuthMode,
    client_id: &str,
) -> GraphMailbox {
    let mut config = GraphConfig::new(&emu.base_url(), client_id, mailbox.map(str::to_owned), auth);
    config.retry = quick_retry();
    GraphMailbox::new(http(), config, Arc::new(StaticToken(token)))
}

async fn alice_app_only(emu: &EmulatorHandle) -> GraphMailbox {
    mailbox(
        emu,
        app_token(emu).await,
        Some(demo::ALICE),
        AuthMode::AppOnly,
        demo::DAEMON_CLIENT_ID,
    )
}

fn paths(tree: &FolderTree) -> Vec<String> {
    tree.nodes().iter().map(|n| n.path_string()).collect()
}

#[tokio::test]
async fn the_folder_tree_covers_every_level_and_page() {
    let emu = emulator().await;
    let mut config = GraphConfig::new(
        &emu.base_url(),
        demo::DAEMON_CLIENT_ID,
        Some(demo::ALICE.into()),
        AuthMode::AppOnly,
    );
    // Graph's default page of 10: the 20 top-level folders need nextLinks.
    config.folder_page_size = None;
    let graph = GraphMailbox::new(http(), config, Arc::new(StaticToken(app_token(&emu).await)));

    let asked = || emu.counters().mailboxes[demo::ALICE].requests;
    let tree = graph.folder_tree(false).await.expect("tree");
    let first = asked();
    // Again: the well-known folders' ids are known now (8 requests fewer),
    // and still marked.
    let again = graph.folder_tree(false).await.expect("tree again");
    assert_eq!(
        asked() - first,
        first - 8,
        "the listing again, without the 8 well-known lookups"
    );
    assert_eq!(
        again.well_known("inbox").map(|n| n.path_string()),
        Some("Inbox".to_owned())
    );
    let got = paths(&tree);
    let expected: Vec<String> = emu
        .folders(demo::ALICE)
        .expect("admin folders")
        .into_iter()
        .filter(|f| !f.hidden)
        .map(|f| f.path)
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(sorted, expected_sorted, "every visible folder, each once");
    assert!(tree.children(None).count() > 10, "{got:?}");
    for path in [
        "Inbox/Projekte/Ebene 1/Ebene 2/Ebene 3/Tief – 深い",
        "Inbox/Überweisungen",
        "日本語",
        "Inbox/Exported",
        "Archive/Exported",
        "Kunde 12",
    ] {
        assert!(
            got.contains(&path.to_owned()),
            "{path} missing from {got:?}"
        );
    }
    assert!(!got.contains(&"Versteckt".to_owned()));
    let inbox = tree.well_known("inbox").expect("well-known inbox marked");
    assert_eq!(inbox.path_string(), "Inbox");
    assert_eq!(
        tree.well_known("archive").expect("archive").path_string(),
        "Archive"
    );

    let with_hidden = graph.folder_tree(true).await.expect("tree with hidden");
    let hidden = with_hidden
        .nodes()
        .iter()
        .find(|n| n.display_name == "Versteckt")
        .expect("hidden folder listed on request");
    assert!(hidden.hidden);
    emu.shutdown().await;
}

#[tokio::test]
async fn folders_resolve_by_well_known_name_by_name_and_by_path() {
    let emu = emulator().await;
    let tree = alice_app_only(&emu)
        .await
        .folder_tree(false)
        .await
        .expect("tree");
    let resolve = |raw: &str| resolve_folder(&tree, &FolderSpec::parse(raw).expect("spec"));

    let inbox = resolve("inbox").expect("inbox by display name, case-insensitive");
    assert_eq!(inbox.path, "Inbox");
    let inbox_wk = resolve("INBOX").expect("inbox");
    assert_eq!(inbox_wk.id, inbox.id);
    let deleted = resolve("deleteditems").expect("a well-known name no display name carries");
    assert_eq!(
        (deleted.path.as_str(), deleted.matched_by),
        ("Deleted Items", MatchedBy::WellKnownName)
    );
    let by_name = resolve("überweisungen").expect("by name");
    assert_eq!(
        (by_name.path.as_str(), by_name.matched_by),
        ("Inbox/Überweisungen", MatchedBy::DisplayName)
    );
    let deep = resolve("Tief – 深い").expect("deep by name");
    assert_eq!(
        deep.path,
        "Inbox/Projekte/Ebene 1/Ebene 2/Ebene 3/Tief – 深い"
    );
    let by_path = resolve("inbox/exported").expect("by path from a well-known name");
    assert_eq!(
        (by_path.path.as_str(), by_path.matched_by),
        ("Inbox/Exported", MatchedBy::Path)
    );
    assert_ne!(
        by_path.id,
        resolve("Archive/Exported").expect("other Exported").id
    );

    match resolve("Exported") {
        Err(FolderError::Ambiguous { paths, .. }) => {
            let mut paths = paths;
            paths.sort();
            assert_eq!(paths, ["Archive/Exported", "Inbox/Exported"]);
        }
        other => panic!("ambiguous expected, got {other:?}"),
    }
    // One match is the well-known Archive: still an error naming both.
    match resolve("archive") {
        Err(FolderError::Ambiguous { paths, .. }) => {
            assert!(paths.contains(&"Archive".to_owned()), "{paths:?}");
            assert!(
                paths.contains(&"Inbox/Projekte/Archive".to_owned()),
                "{paths:?}"
            );
        }
        other => panic!("ambiguous expected, got {other:?}"),
    }
    match resolve("Exportd") {
        Err(e @ FolderError::NotFound { .. }) => {
            let text = e.to_string();
            assert!(text.contains("`Inbox/Exported`"), "{text}");
            assert!(text.contains("`Archive/Exported`"), "{text}");
        }
        other => panic!("not found expected, got {other:?}"),
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_shared_mailbox_is_reached_through_users_and_refused_without_rights() {
    let emu = emulator().await;
    let alice = mailbox(
        &emu,
        delegated_token(&emu, demo::ALICE).await,
        Some(demo::SHARED),
        AuthMode::Delegated,
        demo::CLIENT_ID,
    );
    let tree = alice
        .folder_tree(false)
        .await
        .expect("alice has full access");
    let inbox = tree.well_known("inbox").expect("inbox").id.clone();
    let page = alice.list_messages(&inbox, None).await.expect("messages");
    assert_eq!(page.messages.len(), 2);

    let bob = mailbox(
        &emu,
        delegated_token(&emu, demo::BOB).await,
        Some(demo::SHARED),
        AuthMode::Delegated,
        demo::CLIENT_ID,
    );
    let denied = bob.folder_tree(false).await.expect_err("bob has no rights");
    assert_eq!(denied.kind, MailboxErrorKind::Permission, "{denied}");
    assert!(denied.message.contains(demo::SHARED), "{denied}");
    assert!(denied.fix.contains("Mail.ReadWrite.Shared"), "{denied}");
    assert!(denied.fix.contains("Full Access"), "{denied}");
    emu.shutdown().await;
}

fn mime(n: usize) -> Vec<u8> {
    let minute = n % 60;
    let hour = (n / 60) % 24;
    let day = 1 + n / (60 * 24);
    format!(
        "From: Sender {n} <s{n}@example.org>\r\nTo: alice@contoso.example\r\n\
         Subject: Bulk {n}\r\nDate: {day:02} Feb 2026 {hour:02}:{minute:02}:00 +0000\r\n\
         Message-ID: <bulk-{n}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nBody {n} – äöü\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn paging_mime_and_moves_with_immutable_ids() {
    let emu = emulator().await;
    // Added newest first, so "oldest first" must come from the request.
    for n in (0..1050).rev() {
        emu.add_message(demo::ALICE, "Inbox/Bulk", &mime(n))
            .expect("add message");
    }
    let graph = alice_app_only(&emu).await;
    let tree = graph.folder_tree(false).await.expect("tree");
    let bulk = resolve_folder(&tree, &FolderSpec::parse("Inbox/Bulk").expect("spec"))
        .expect("bulk folder");
    let exported = resolve_folder(&tree, &FolderSpec::parse("Inbox/Exported").expect("spec"))
        .expect("exported folder");

    let mut listed = Vec::new();
    let mut cursor: Option<PageCursor> = None;
    let mut pages = 0;
    loop {
        let page = graph
            .list_messages(&bulk.id, cursor.as_ref())
            .await
            .expect("page");
        pages += 1;
        listed.extend(page.messages);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(listed.len(), 1050);
    assert_eq!(pages, 5, "pages of 250");
    let subjects: Vec<String> = listed
        .iter()
        .map(|m| m.subject.clone().expect("subject"))
        .collect();
    let expected: Vec<String> = (0..1050).map(|n| format!("Bulk {n}")).collect();
    assert_eq!(subjects, expected, "oldest first, none twice, none missing");
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].received_at <= w[1].received_at)
    );
    let first = &listed[0];
    assert_eq!(
        first.internet_message_id.as_deref(),
        Some("<bulk-0@example.org>")
    );
    assert_eq!(first.from.as_deref(), Some("s0@example.org"));
    assert!(
        first.id.contains('/') && first.id.contains('+') && first.id.contains('='),
        "ids need escaping: {}",
        first.id
    );
    let admin = emu.messages(demo::ALICE).expect("admin messages");
    let known = admin
        .iter()
        .find(|m| m.internet_message_id.as_deref() == Some("<bulk-0@example.org>"))
        .expect("in emulator");
    assert_eq!(first.id, known.immutable_id, "immutable ids were asked for");

    let raw = graph.fetch_mime(&first.id).await.expect("MIME");
    let text = String::from_utf8(raw).expect("utf-8 MIME");
    assert!(text.contains("Message-ID: <bulk-0@example.org>"), "{text}");
    assert!(text.contains("Body 0 – äöü"), "{text}");

    let moved = graph
        .move_message(&first.id, &exported.id)
        .await
        .expect("move");
    assert_eq!(moved, first.id, "an immutable id survives the move");
    let after = emu.messages(demo::ALICE).expect("admin messages");
    let now = after
        .iter()
        .find(|m| m.immutable_id == first.id)
        .expect("still there");
    assert_eq!(now.folder_path, "Inbox/Exported");
    // The same id keeps working after the move.
    assert!(graph.fetch_mime(&moved).await.is_ok());
    let first_page = graph.list_messages(&bulk.id, None).await.expect("page");
    assert_eq!(first_page.messages[0].subject.as_deref(), Some("Bulk 1"));

    // A well-formed id of no message: one letter of a real id changed.
    let mut unknown: Vec<char> = first.id.chars().collect();
    unknown[30] = if unknown[30] == 'A' { 'B' } else { 'A' };
    let unknown: String = unknown.into_iter().collect();
    let gone = graph.fetch_mime(&unknown).await.expect_err("unknown id");
    assert_eq!(gone.kind, MailboxErrorKind::NotFound, "{gone}");
    emu.shutdown().await;
}

fn fault(kind: FaultKind, count: Option<u32>) -> FaultRule {
    FaultRule {
        count,
        ..FaultRule::graph(kind)
    }
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_as_told_then_reported() {
    let emu = emulator().await;
    let graph = alice_app_only(&emu).await;
    let tree = graph.folder_tree(false).await.expect("tree");
    let inbox = tree.well_known("inbox").expect("inbox").id.clone();
    let message = graph
        .list_messages(&inbox, None)
        .await
        .expect("list")
        .messages[0]
        .id
        .clone();

    // 429 with a fractional Retry-After, three times.
    let before = graph.stats().waits().len();
    emu.add_fault(fault(FaultKind::Throttle { retry_after: 0.2 }, Some(3)));
    let started = std::time::Instant::now();
    graph
        .fetch_mime(&message)
        .await
        .expect("succeeds after the throttling");
    let waits = graph.stats().waits()[before..].to_vec();
    assert_eq!(
        waits,
        vec![Duration::from_millis(200); 3],
        "waited exactly as told"
    );
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(graph.stats().throttled(), 3);

    // 503 and 500 without Retry-After: exponential backoff within the policy.
    let before = graph.stats().waits().len();
    emu.add_fault(fault(
        FaultKind::Status {
            status: 503,
            retry_after: None,
        },
        Some(1),
    ));
    emu.add_fault(fault(
        FaultKind::Status {
            status: 500,
            retry_after: None,
        },
        Some(1),
    ));
    graph
        .fetch_mime(&message)
        .await
        .expect("succeeds after two 5xx");
    let waits = graph.stats().waits()[before..].to_vec();
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(
        waits.iter().all(|w| *w <= Duration::from_millis(100)),
        "{waits:?}"
    );

    // 503 with Retry-After is honoured too.
    let before = graph.stats().waits().len();
    emu.add_fault(fault(
        FaultKind::Status {
            status: 503,
            retry_after: Some(0.15),
        },
        Some(1),
    ));
    graph.fetch_mime(&message).await.expect("succeeds");
    assert_eq!(
        graph.stats().waits()[before..],
        [Duration::from_millis(150)]
    );

    // A dropped connection is retried like a 5xx.
    emu.add_fault(fault(FaultKind::Drop, Some(1)));
    graph
        .fetch_mime(&message)
        .await
        .expect("succeeds after a dropped connection");

    // A mailbox that keeps failing: a clear error after the bounded attempts.
    let requests = graph.stats().requests();
    emu.add_fault(fault(
        FaultKind::Status {
            status: 502,
            retry_after: None,
        },
        None,
    ));
    let err = graph.fetch_mime(&message).await.expect_err("gives up");
    assert_eq!(err.kind, MailboxErrorKind::Transient, "{err}");
    assert!(err.is_transient());
    assert!(err.message.contains("gave up after 4 attempts"), "{err}");
    assert!(err.message.contains("HTTP 502"), "{err}");
    assert!(err.fix.contains("next run"), "{err}");
    assert_eq!(
        graph.stats().requests() - requests,
        4,
        "exactly the bounded attempts"
    );
    emu.clear_faults();

    // A Retry-After beyond the policy is not waited out inside the run.
    emu.add_fault(fault(FaultKind::Throttle { retry_after: 60.0 }, Some(1)));
    let err = graph
        .fetch_mime(&message)
        .await
        .expect_err("too long to wait");
    assert!(
        err.is_transient() && err.message.contains("asked to wait 60.0 s"),
        "{err}"
    );
    emu.clear_faults();
    emu.shutdown().await;
}

#[tokio::test]
async fn never_more_than_four_requests_in_flight_per_mailbox() {
    let emu = emulator().await;
    for n in 0..16 {
        emu.add_message(demo::ALICE, "Inbox/Many", &mime(n))
            .expect("add");
    }
    let token = app_token(&emu).await;
    // Two independent clients of the same mailbox share the one limit.
    let a = mailbox(
        &emu,
        token.clone(),
        Some(demo::ALICE),
        AuthMode::AppOnly,
        demo::DAEMON_CLIENT_ID,
    );
    let b = mailbox(
        &emu,
        token,
        Some(demo::ALICE),
        AuthMode::AppOnly,
        demo::DAEMON_CLIENT_ID,
    );
    let tree = a.folder_tree(false).await.expect("tree");
    let many =
        resolve_folder(&tree, &FolderSpec::parse("Inbox/Many").expect("spec")).expect("folder");
    let ids: Vec<String> = a
        .list_messages(&many.id, None)
        .await
        .expect("list")
        .messages
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids.len(), 16);
    // Slow answers make requests overlap, so a missing limit would show.
    emu.add_fault(fault(FaultKind::Latency { ms: 40 }, None));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in ids.into_iter().enumerate() {
        let client = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move { client.fetch_mime(&id).await });
    }
    let mut fetched = 0;
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("fetch succeeds");
        fetched += 1;
    }
    assert_eq!(fetched, 16);
    let counters = emu.counters();
    let alice = &counters.mailboxes[demo::ALICE];
    assert!(
        alice.max_in_flight <= 4,
        "high-water mark {}",
        alice.max_in_flight
    );
    assert!(
        alice.max_in_flight >= 2,
        "requests did run concurrently: {}",
        alice.max_in_flight
    );
    assert_eq!(
        alice.concurrency_throttled, 0,
        "never refused for concurrency"
    );
    emu.clear_faults();
    emu.shutdown().await;
}

// ---- the REST API: folder picker and Mail connection test ----

fn importer_body(emu: &EmulatorHandle, protocol: &str, mailbox: &str, exported: &str) -> Value {
    let (client_id, secret) = if protocol == "graph_client_credentials" {
        (demo::DAEMON_CLIENT_ID, demo::DAEMON_CLIENT_SECRET)
    } else {
        (demo::CLIENT_ID, demo::CLIENT_SECRET)
    };
    json!({
        "name": format!("{protocol} {mailbox}"),
        "protocol": protocol,
        "client_id": client_id,
        "client_secret": secret,
        "tenant_id": demo::TENANT_ID,
        "mailbox": mailbox,
        "folders": { "inbox": "inbox", "exported": exported, "error": "Error" },
        "cloud": "global",
        "endpoints": { "authority": emu.base_url(), "graph": emu.base_url() },
    })
}

async fn create(app: &TestApp, body: &Value) -> String {
    let resp = app.post_json("/api/v2/importers/email", body).await;
    assert_eq!(resp.status(), 201);
    body_json(resp).await["id"].as_str().expect("id").to_owned()
}

async fn connection_test(app: &TestApp, id: &str) -> Value {
    let resp = app
        .post_json(&format!("/api/v2/importers/email/{id}/test"), &json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    body_json(resp).await
}

fn check<'a>(result: &'a Value, id: &str) -> &'a Value {
    result["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {result}"))
}

/// Every check has a name and a plain-words detail; failed ones a fix; its
/// status agrees with `ok`, and a check not run says so in its detail.
fn assert_well_formed(result: &Value) {
    for c in result["checks"].as_array().expect("checks") {
        assert!(c["name"].as_str().is_some_and(|s| !s.is_empty()), "{c}");
        assert!(c["detail"].as_str().is_some_and(|s| !s.is_empty()), "{c}");
        if c["ok"] == false {
            assert!(c["fix"].as_str().is_some_and(|s| !s.is_empty()), "{c}");
        }
        let status = c["status"].as_str().expect("status");
        assert_eq!(c["ok"] == true, status == "passed", "{c}");
        assert_eq!(
            status == "not_checked",
            c["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("not checked")),
            "{c}"
        );
    }
    let all_ok = result["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .all(|c| c["ok"] == true);
    assert_eq!(result["ok"], all_ok);
}

#[tokio::test]
async fn connection_test_and_folder_picker_for_an_authorized_importer() {
    let emu = emulator().await;
    let app = TestApp::spawn().await;
    let id = create(
        &app,
        &importer_body(
            &emu,
            "graph_client_credentials",
            demo::ALICE,
            "Inbox/Exported",
        ),
    )
    .await;
    let result = connection_test(&app, &id).await;
    assert_well_formed(&result);
    assert_eq!(result["ok"], true, "{result:#}");
    let ids: Vec<&str> = result["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [
            "token",
            "mailbox",
            "permissions",
            "inbox_folder",
            "exported_folder",
            "error_folder",
            "distinct_folders"
        ]
    );
    assert!(
        check(&result, "inbox_folder")["detail"]
            .as_str()
            .expect("detail")
            .contains("`Inbox`")
    );
    assert!(
        check(&result, "exported_folder")["detail"]
            .as_str()
            .expect("detail")
            .contains("`Inbox/Exported`")
    );
    assert!(
        check(&result, "permissions")["detail"]
            .as_str()
            .expect("detail")
            .contains("Mail.ReadWrite")
    );

    let resp = app
        .get(&format!("/api/v2/importers/email/{id}/folders"))
        .await;
    assert_eq!(resp.status(), 200);
    let tree = body_json(resp).await;
    let top = tree.as_array().expect("array of top-level folders");
    assert!(top.len() > 10);
    let inbox = top.iter().find(|f| f["name"] == "Inbox").expect("Inbox");
    assert_eq!(inbox["well_known_name"], "inbox");
    let projekte = inbox["children"]
        .as_array()
        .expect("children")
        .iter()
        .find(|f| f["name"] == "Projekte")
        .expect("Projekte");
    assert_eq!(projekte["path"], "Inbox/Projekte");
    assert!(!top.iter().any(|f| f["name"] == "Versteckt"));
    let resp = app
        .get(&format!(
            "/api/v2/importers/email/{id}/folders?include_hidden=true"
        ))
        .await;
    let tree = body_json(resp).await;
    assert!(
        tree.as_array()
            .expect("array")
            .iter()
            .any(|f| f["name"] == "Versteckt" && f["hidden"] == true)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn connection_test_names_the_fix_for_each_failure() {
    let emu = emulator().await;
    let app = TestApp::spawn().await;

    // Not authorized yet.
    let id = create(
        &app,
        &importer_body(&emu, "graph_delegated", "", "Inbox/Exported"),
    )
    .await;
    let result = connection_test(&app, &id).await;
    assert_well_formed(&result);
    assert_eq!(result["ok"], false);
    let token = check(&result, "token");
    assert_eq!(token["ok"], false);
    assert_eq!(token["status"], "failed");
    assert!(
        token["fix"].as_str().expect("fix").contains("Authenticate"),
        "{token}"
    );
    // Skipped because the token failed: not checked, not failed.
    for id in [
        "mailbox",
        "permissions",
        "inbox_folder",
        "exported_folder",
        "error_folder",
    ] {
        let c = check(&result, id);
        assert_eq!(c["status"], "not_checked", "{c}");
        assert_eq!(c["ok"], false, "{c}");
    }
    assert!(
        check(&result, "exported_folder")["detail"]
            .as_str()
            .expect("detail")
            .starts_with("not checked")
    );
    let resp = app
        .get(&format!("/api/v2/importers/email/{id}/folders"))
        .await;
    assert_eq!(resp.status(), 409);

    // A shared mailbox the authorizing account has no rights to.
    let id = create(
        &app,
        &importer_body(&emu, "graph_delegated", demo::SHARED, "Exported"),
    )
    .await;
    let now = app.clock_now();
    app.store
        .put_grant(&store::grants::Grant {
            importer_id: id.clone(),
            state: store::grants::GrantState::Authorized,
            account: Some(demo::BOB.into()),
            scopes: vec!["Mail.ReadWrite".into(), "Mail.ReadWrite.Shared".into()],
            access_token: Some(delegated_token(&emu, demo::BOB).await),
            access_token_expires_at: Some(now + jiff::SignedDuration::from_hours(1)),
            refresh_token: None,
            refresh_token_issued_at: None,
            last_refresh_at: Some(now),
            last_error: None,
            consecutive_failures: 0,
            version: 1,
            updated_at: now,
        })
        .await
        .expect("grant");
    let result = connection_test(&app, &id).await;
    assert_well_formed(&result);
    assert_eq!(result["ok"], false);
    assert_eq!(check(&result, "token")["ok"], true);
    let permissions = check(&result, "permissions");
    assert_eq!(permissions["ok"], false, "{result:#}");
    let fix = permissions["fix"].as_str().expect("fix");
    assert!(
        fix.contains("Mail.ReadWrite.Shared") && fix.contains(demo::SHARED),
        "{fix}"
    );

    // An ambiguous folder name: every matching path is listed.
    let id = create(
        &app,
        &importer_body(&emu, "graph_client_credentials", demo::ALICE, "Exported"),
    )
    .await;
    let result = connection_test(&app, &id).await;
    assert_well_formed(&result);
    assert_eq!(result["ok"], false);
    assert_eq!(check(&result, "mailbox")["ok"], true);
    assert_eq!(check(&result, "inbox_folder")["ok"], true);
    let exported = check(&result, "exported_folder");
    assert_eq!(exported["ok"], false);
    let detail = exported["detail"].as_str().expect("detail");
    assert!(
        detail.contains("`Inbox/Exported`") && detail.contains("`Archive/Exported`"),
        "{detail}"
    );
    assert!(exported["fix"].as_str().expect("fix").contains("full path"));

    // A wrong client secret.
    let mut body = importer_body(
        &emu,
        "graph_client_credentials",
        demo::ALICE,
        "Inbox/Exported",
    );
    body["client_secret"] = json!("not-the-secret");
    let id = create(&app, &body).await;
    let result = connection_test(&app, &id).await;
    assert_well_formed(&result);
    let token = check(&result, "token");
    assert_eq!(token["ok"], false);
    assert!(
        token["fix"]
            .as_str()
            .expect("fix")
            .contains("client secret"),
        "{token}"
    );
    emu.shutdown().await;
}
