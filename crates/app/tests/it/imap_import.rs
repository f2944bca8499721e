//! IMAP importers against a real Dovecot (started by `scripts/test.sh`):
//! the corpus lands where the rules say, byte for byte as the server serves
//! it; a second run imports nothing; Error mails carry their reason as
//! keywords; ambiguous folders touch nothing; the connection test and the
//! folder picker speak IMAP; a server that goes away mid-run loses nothing.
//! Mails go in and are checked with `doveadm`, not with mailferry's client.

use std::collections::BTreeSet;

use import::corpus::{self, Expected};
use serde_json::{Value, json};
use store::executions::Execution;
use test_support::dovecot::Dovecot;

use crate::support::{TestApp, json as body_json};

fn importer_body(dovecot: &Dovecot, user: &str, password: &str, folders: Value) -> Value {
    json!({
        "name": "Dovecot",
        "protocol": "imap",
        "host": dovecot.host,
        "port": dovecot.imaps_port,
        "security": "tls",
        "tls_ca_pem": dovecot.ca_pem,
        "username": user,
        "password": password,
        "folders": folders,
        "attachments": corpus::attachment_rules_json(),
        "rules": corpus::import_rules_json(),
    })
}

fn default_folders() -> Value {
    json!({ "inbox": "INBOX", "exported": "Exported", "error": "Error" })
}

async fn create_importer(app: &TestApp, body: &Value) -> String {
    let created = app.post_json("/api/v2/importers/email", body).await;
    let status = created.status();
    let body = body_json(created).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

async fn run_import(app: &TestApp) -> Execution {
    crate::support::run_import_emails(app).await
}

fn summary(run: &Execution) -> String {
    run.log
        .iter()
        .find(|l| l.contains("imported ") && l.contains("left for retry"))
        .cloned()
        .unwrap_or_else(|| panic!("a summary in {:#?}", run.log))
}

/// RFC 5322 lines end in CRLF; an IMAP server stores and serves them so.
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut previous = 0u8;
    for &b in raw {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out
}

#[tokio::test]
async fn the_corpus_lands_where_the_rules_say_from_dovecot_once() {
    let dovecot = Dovecot::from_env();
    let (user, password) = dovecot.new_user();
    let mails = corpus::corpus();
    for mail in &mails {
        dovecot.save(&user, "INBOX", &mail.raw);
    }
    let app = TestApp::spawn().await;
    let id = create_importer(
        &app,
        &importer_body(&dovecot, &user, &password, default_folders()),
    )
    .await;

    // The connection test and the folder picker speak IMAP.
    let test = body_json(
        app.post_json(&format!("/api/v2/importers/email/{id}/test"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(test["ok"], true, "{test:#}");
    let ids: Vec<&str> = test["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "connection",
            "move",
            "inbox_folder",
            "exported_folder",
            "error_folder",
            "distinct_folders"
        ]
    );
    let folders = body_json(
        app.get(&format!("/api/v2/importers/email/{id}/folders"))
            .await,
    )
    .await;
    let text = folders.to_string();
    assert!(text.contains("Überweisungen"), "decoded UTF-7: {text}");
    assert!(text.contains("Invoices"), "{text}");

    let run = run_import(&app).await;
    let imports: Vec<_> = mails
        .iter()
        .filter(|m| matches!(m.expected, Expected::Import(_)))
        .collect();
    let errors = mails.len() - imports.len();
    assert!(
        summary(&run).contains(&format!(": imported {}, to Error {errors}", imports.len())),
        "{}",
        summary(&run)
    );
    assert!(
        dovecot.mails(&user, "INBOX").is_empty(),
        "the Inbox is empty"
    );
    assert_eq!(dovecot.mails(&user, "Exported").len(), imports.len());
    let in_error = dovecot.mails(&user, "Error");
    assert_eq!(in_error.len(), errors);
    for mail in &in_error {
        assert!(
            mail.flags.iter().any(|f| f == "$MailferryError")
                && mail.flags.iter().any(|f| f.starts_with("$Mailferry:")),
            "the reason travels with the mail: {mail:?}"
        );
    }

    // Every document holds the mail as the server serves it.
    let docs = store_documents(&app).await;
    assert_eq!(docs.len(), imports.len());
    let stored: BTreeSet<Vec<u8>> = docs
        .iter()
        .map(|location| std::fs::read(format!("{location}/message.eml")).expect("eml"))
        .collect();
    for mail in &imports {
        assert!(
            stored.contains(&crlf(&mail.raw)),
            "{}: its document holds the mail byte for byte",
            mail.name
        );
    }

    // A second run finds nothing to do.
    let again = run_import(&app).await;
    assert!(
        summary(&again).contains(": imported 0, to Error 0"),
        "{}",
        summary(&again)
    );
    assert_eq!(store_documents(&app).await.len(), imports.len());
}

async fn store_documents(app: &TestApp) -> Vec<String> {
    app.store
        .list_documents(&app.client_id, None, 1000, 0)
        .await
        .expect("documents")
        .into_iter()
        .map(|d| d.location)
        .collect()
}

#[tokio::test]
async fn an_ambiguous_folder_stops_the_run_before_any_mail_is_touched() {
    let dovecot = Dovecot::from_env();
    let (user, password) = dovecot.new_user();
    let (_, raw) = corpus::numbered_mail(1, Some(2_000));
    dovecot.save(&user, "INBOX", &raw);
    let app = TestApp::spawn().await;
    // `Invoices` is the name of INBOX/Invoices and Archive/Invoices.
    create_importer(
        &app,
        &importer_body(
            &dovecot,
            &user,
            &password,
            json!({ "inbox": "INBOX", "exported": "Invoices", "error": "Error" }),
        ),
    )
    .await;
    let run = run_import(&app).await;
    let log = run.log.join("\n");
    assert!(
        log.contains("INBOX/Invoices") && log.contains("Archive/Invoices"),
        "{log}"
    );
    assert_eq!(dovecot.mails(&user, "INBOX").len(), 1, "no mail touched");
    assert!(store_documents(&app).await.is_empty());
}

#[tokio::test]
async fn a_wrong_password_or_certificate_is_named_with_its_fix() {
    let dovecot = Dovecot::from_env();
    let (user, _) = dovecot.new_user();
    let app = TestApp::spawn().await;
    let mut body = importer_body(&dovecot, &user, "not the password", default_folders());
    let id = create_importer(&app, &body).await;
    let test = body_json(
        app.post_json(&format!("/api/v2/importers/email/{id}/test"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(test["ok"], false);
    assert_eq!(test["checks"][0]["id"], "connection");
    assert!(
        test["checks"][0]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("password")),
        "{test:#}"
    );
    assert!(
        test["checks"][1]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("not checked")),
        "{test:#}"
    );
    assert_eq!(test["checks"][0]["status"], "failed", "{test:#}");
    assert_eq!(test["checks"][1]["status"], "not_checked", "{test:#}");
    // Without the CA, the server's certificate is not trusted.
    body.as_object_mut().expect("object").remove("tls_ca_pem");
    let id = create_importer(&app, &body).await;
    let test = body_json(
        app.post_json(&format!("/api/v2/importers/email/{id}/test"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(test["ok"], false);
    assert!(
        test["checks"][0]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("tls_ca_pem")),
        "{test:#}"
    );
}

/// Reprocessing on IMAP: the mail in Error has a new UID there; it is found
/// by its Message-ID, loses its keywords, goes back to the Inbox, and the
/// next run decides it afresh with the changed rules.
#[tokio::test]
async fn a_mail_in_error_is_reprocessed_from_dovecot() {
    let dovecot = Dovecot::from_env();
    let (user, password) = dovecot.new_user();
    let raw = crate::support::invoice_mail(
        "<weekly-newsletter@supplier.example>",
        "Weekly newsletter",
        &corpus::file_bytes("pdf", 3_000, 7),
    );
    dovecot.save(&user, "INBOX", &raw);
    let app = TestApp::spawn().await;
    let mut body = importer_body(&dovecot, &user, &password, default_folders());
    body["rules"] = json!({ "subject_block": ["*newsletter*"] });
    let id = create_importer(&app, &body).await;
    run_import(&app).await;
    let in_error = dovecot.mails(&user, "Error");
    assert_eq!(in_error.len(), 1);
    assert!(in_error[0].flags.iter().any(|f| f == "$MailferryError"));

    body.as_object_mut().expect("object").remove("password");
    body["rules"] = json!({});
    let put = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &body)
        .await;
    assert_eq!(put.status(), 200);
    let mails = body_json(
        app.get(&format!("/api/v2/importers/email/{id}/mails?state=error"))
            .await,
    )
    .await;
    let mail_id = mails[0]["mail_id"].as_str().expect("mail_id").to_owned();
    let reprocess = format!("/api/v2/importers/email/{id}/mails/{mail_id}/reprocess");
    let answer = app.post_json(&reprocess, &json!({})).await;
    assert_eq!(answer.status(), 202);
    assert!(dovecot.mails(&user, "Error").is_empty(), "out of Error");
    let inbox = dovecot.mails(&user, "INBOX");
    assert_eq!(inbox.len(), 1, "back in the Inbox");
    assert!(
        !inbox[0].flags.iter().any(|f| f.starts_with("$Mailferry")),
        "without mailferry's keywords: {:?}",
        inbox[0].flags
    );
    assert_eq!(app.post_json(&reprocess, &json!({})).await.status(), 409);
    let run = run_import(&app).await;
    assert!(
        summary(&run).contains(": imported 1, to Error 0"),
        "{}",
        summary(&run)
    );
    assert_eq!(dovecot.mails(&user, "Exported").len(), 1);
    assert_eq!(store_documents(&app).await.len(), 1);
}
