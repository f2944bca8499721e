//! The pipeline against an in-memory mailbox whose ids change on every move
//! (Graph without immutable ids) unless told to keep them, a real SQLite
//! store and a real spool.

use std::collections::BTreeMap;
use std::sync::Mutex;

use domain::clock::SystemClock;
use domain::mailbox::{
    FolderNode, FolderTree, Mailbox, MailboxError, MailboxErrorKind, MessageLocation, MessagePage,
    MessageSummary, PageCursor,
};
use import::corpus::{self, Expected};
use import::pipeline::{ImportError, ImportRun, Outcome};
use sinks::{FilesystemSpool, sha256_hex};
use store::Store;
use store::importers::ImporterRecord;
use store::ledger::LedgerState;
use test_support::{Db, fresh_store, invoice_mail};

/// folder id → [(message id, raw)] in arrival order
type Folders = BTreeMap<String, Vec<(String, Vec<u8>)>>;

#[derive(Default)]
struct Fake {
    /// folder id → [(message id, raw)] in arrival order
    folders: Mutex<Folders>,
    next_id: Mutex<u64>,
    /// message ids whose next fetches fail (transient), and how often
    fail_fetch: Mutex<BTreeMap<String, u32>>,
    /// moves that fail (transient) before succeeding
    fail_moves: Mutex<u32>,
    extra_folders: Vec<FolderNode>,
    /// Moves keep a message's id (Graph immutable ids).
    keep_ids: bool,
    /// How often `locate_message` was asked.
    locates: Mutex<usize>,
    /// message id → its categories (the reason mark), carried by moves.
    categories: Mutex<BTreeMap<String, Vec<String>>>,
    /// Listings report each mail's size, as Graph's PidTagMessageSize does.
    report_sizes: bool,
    /// Every fetch, by message id.
    fetched: Mutex<Vec<String>>,
    /// Microsoft denies the account access to the mailbox.
    denied: Mutex<bool>,
}

impl Fake {
    fn new(mails: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let f = Fake::default();
        for raw in mails {
            f.add("inbox", raw);
        }
        f
    }
    fn add(&self, folder: &str, raw: Vec<u8>) -> String {
        let id = self.new_id();
        self.folders
            .lock()
            .expect("lock")
            .entry(folder.to_owned())
            .or_default()
            .push((id.clone(), raw));
        id
    }
    fn new_id(&self) -> String {
        let mut n = self.next_id.lock().expect("lock");
        *n += 1;
        format!("AAMk/{n}+=")
    }
    fn in_folder(&self, folder: &str) -> Vec<(String, Vec<u8>)> {
        self.folders
            .lock()
            .expect("lock")
            .get(folder)
            .cloned()
            .unwrap_or_default()
    }
}

fn err(kind: MailboxErrorKind, m: &str) -> MailboxError {
    MailboxError::new(kind, m, "try again")
}

const PAGE: usize = 7;

impl Mailbox for Fake {
    async fn folder_tree(&self, _hidden: bool) -> Result<FolderTree, MailboxError> {
        if *self.denied.lock().expect("lock") {
            return Err(err(MailboxErrorKind::Permission, "access denied"));
        }
        let mut nodes = vec![
            FolderNode::new("inbox", "Inbox", None).well_known("inbox"),
            FolderNode::new("exported", "Exported", Some("inbox".into())),
            FolderNode::new("error", "Error", None),
        ];
        nodes.extend(self.extra_folders.iter().cloned());
        Ok(FolderTree::build(nodes).expect("tree"))
    }
    async fn list_messages(
        &self,
        folder_id: &str,
        cursor: Option<&PageCursor>,
    ) -> Result<MessagePage, MailboxError> {
        let skip: usize = cursor.map_or(0, |c| c.0.parse().expect("cursor"));
        let all = self.in_folder(folder_id);
        let messages = all
            .iter()
            .skip(skip)
            .take(PAGE)
            .map(|(id, raw)| MessageSummary {
                id: id.clone(),
                internet_message_id: None,
                received_at: None,
                subject: None,
                from: None,
                has_attachments: true,
                size: self.report_sizes.then_some(raw.len() as u64),
                error_mark: self
                    .categories
                    .lock()
                    .expect("lock")
                    .get(id)
                    .is_some_and(|c| c.iter().any(|c| c.starts_with("mailferry: "))),
            })
            .collect();
        let next = (skip + PAGE < all.len()).then(|| PageCursor((skip + PAGE).to_string()));
        Ok(MessagePage { messages, next })
    }
    async fn fetch_mime(&self, message_id: &str) -> Result<Vec<u8>, MailboxError> {
        self.fetched
            .lock()
            .expect("lock")
            .push(message_id.to_owned());
        if let Some(n) = self.fail_fetch.lock().expect("lock").get_mut(message_id)
            && *n > 0
        {
            *n -= 1;
            return Err(err(MailboxErrorKind::Transient, "429 storm"));
        }
        for mails in self.folders.lock().expect("lock").values() {
            if let Some((_, raw)) = mails.iter().find(|(id, _)| id == message_id) {
                return Ok(raw.clone());
            }
        }
        Err(err(MailboxErrorKind::NotFound, "gone"))
    }
    async fn move_message(&self, message_id: &str, dest: &str) -> Result<String, MailboxError> {
        {
            let mut f = self.fail_moves.lock().expect("lock");
            if *f > 0 {
                *f -= 1;
                return Err(err(MailboxErrorKind::Transient, "503"));
            }
        }
        let new_id = if self.keep_ids {
            message_id.to_owned()
        } else {
            self.new_id()
        };
        let mut folders = self.folders.lock().expect("lock");
        for mails in folders.values_mut() {
            if let Some(i) = mails.iter().position(|(id, _)| id == message_id) {
                let (_, raw) = mails.remove(i);
                folders
                    .entry(dest.to_owned())
                    .or_default()
                    .push((new_id.clone(), raw));
                let mut categories = self.categories.lock().expect("lock");
                if let Some(c) = categories.remove(message_id) {
                    categories.insert(new_id.clone(), c);
                }
                return Ok(new_id);
            }
        }
        Err(err(MailboxErrorKind::NotFound, "gone"))
    }
    async fn mark_error_reason(
        &self,
        message_id: &str,
        reason_code: Option<&str>,
    ) -> Result<(), MailboxError> {
        let mut categories = self.categories.lock().expect("lock");
        let mine = categories.entry(message_id.to_owned()).or_default();
        mine.retain(|c| !c.starts_with("mailferry: "));
        if let Some(code) = reason_code {
            mine.push(format!("mailferry: {code}"));
        }
        Ok(())
    }
    async fn locate_message(
        &self,
        message_id: &str,
        _hint: &domain::mailbox::LocateHint<'_>,
    ) -> Result<MessageLocation, MailboxError> {
        *self.locates.lock().expect("lock") += 1;
        let folders = self.folders.lock().expect("lock");
        Ok(folders
            .iter()
            .find(|(_, mails)| mails.iter().any(|(id, _)| id == message_id))
            .map_or(MessageLocation::Gone, |(folder, _)| {
                MessageLocation::Folder {
                    folder: folder.clone(),
                    message_id: message_id.to_owned(),
                }
            }))
    }
}

struct Env {
    store: Store,
    importer: ImporterRecord,
    sink: FilesystemSpool,
    data: tempfile::TempDir,
}

async fn env(folders: serde_json::Value) -> Env {
    let (store, data) = fresh_store(Db::Sqlite).await;
    let now = "2026-03-01T00:00:00Z".parse().expect("ts");
    let client = store.ensure_default_client(now).await.expect("client");
    let input: domain::importer::ImporterInput = serde_json::from_value(serde_json::json!({
        "name": "Invoices", "protocol": "graph_delegated",
        "client_id": "11111111-2222-3333-4444-555555555555", "client_secret": "s",
        "tenant_id": "contoso.onmicrosoft.com", "folders": folders,
        "attachments": corpus::attachment_rules_json(), "rules": corpus::import_rules_json()
    }))
    .expect("input");
    let importer = store
        .create_importer(&client.id, &input.validate(None).expect("valid"), now)
        .await
        .expect("importer");
    let sink = FilesystemSpool::new(data.path());
    Env {
        store,
        importer,
        sink,
        data,
    }
}

fn default_folders() -> serde_json::Value {
    serde_json::json!({"inbox": "Inbox", "exported": "Inbox/Exported", "error": "Error"})
}

fn no_log(_: String) {}
fn never() -> bool {
    false
}

fn run<'a>(e: &'a Env, mb: &'a Fake) -> ImportRun<'a, Fake> {
    ImportRun {
        store: &e.store,
        clock: &SystemClock,
        mailbox: mb,
        importer: &e.importer,
        client_name: "default",
        sink: &e.sink,
        log: &no_log,
        should_stop: &never,
    }
}

/// The ledger row of the mail `source_key`, which must have one.
async fn ledger_row(e: &Env, source_key: &str) -> store::ledger::LedgerEntry {
    e.store
        .ledger_entry(&e.importer.id, source_key)
        .await
        .expect("read")
        .expect("row")
}

fn sha_of(raw: &[u8]) -> String {
    sha256_hex(raw)
}

#[tokio::test]
async fn the_corpus_lands_where_the_rules_say_once() {
    let e = env(default_folders()).await;
    let mails = corpus::corpus();
    let mb = Fake::new(mails.iter().map(|m| m.raw.clone()));
    let predictions = run(&e, &mb).dry_run().await.expect("dry run");
    assert_eq!(predictions.len(), mails.len());
    assert_eq!(
        mb.in_folder("inbox").len(),
        mails.len(),
        "the dry run touched nothing"
    );
    assert!(
        e.store
            .ledger_entries(&e.importer.id)
            .await
            .expect("ledger")
            .is_empty()
    );

    let summary = run(&e, &mb).run().await.expect("run");
    assert!(summary.left_for_retry.is_empty(), "{summary:?}");
    let exported: Vec<String> = mb
        .in_folder("exported")
        .iter()
        .map(|(_, r)| sha_of(r))
        .collect();
    let errored: Vec<String> = mb
        .in_folder("error")
        .iter()
        .map(|(_, r)| sha_of(r))
        .collect();
    assert!(mb.in_folder("inbox").is_empty());
    let docs = e
        .store
        .list_documents(&e.importer.client_id, None, 1000, 0)
        .await
        .expect("docs");
    for (mail, prediction) in mails.iter().zip(&predictions) {
        let sha = sha_of(&mail.raw);
        match &mail.expected {
            Expected::Import(files) => {
                assert!(exported.contains(&sha), "{} is in Exported", mail.name);
                assert_eq!(prediction.outcome, Outcome::Import, "{}", mail.name);
                let doc = docs
                    .iter()
                    .find(|d| {
                        sha_of(
                            &std::fs::read(std::path::Path::new(&d.location).join("message.eml"))
                                .expect("eml"),
                        ) == sha
                    })
                    .unwrap_or_else(|| panic!("{} has a document", mail.name));
                let got: Vec<&str> = doc
                    .metadata
                    .attachments
                    .iter()
                    .map(|a| a.file.trim_start_matches("attachments/"))
                    .collect();
                let want: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
                assert_eq!(got, want, "{}", mail.name);
                assert_eq!(
                    prediction.attachments, want,
                    "{}: the dry run predicted the files",
                    mail.name
                );
                for (a, file) in doc.metadata.attachments.iter().zip(files) {
                    let on_disk = std::fs::read(std::path::Path::new(&doc.location).join(&a.file))
                        .expect("file");
                    assert!(
                        file.matches(&on_disk),
                        "{}: {} bytes match the source",
                        mail.name,
                        a.file
                    );
                    assert_eq!(a.sha256, file.sha256);
                }
            }
            Expected::Error(code) => {
                assert!(errored.contains(&sha), "{} is in Error", mail.name);
                assert_eq!(prediction.outcome, Outcome::Error, "{}", mail.name);
                assert_eq!(
                    prediction.reason.as_deref(),
                    Some(code.as_str()),
                    "{}",
                    mail.name
                );
            }
        }
    }
    let imports = mails
        .iter()
        .filter(|m| matches!(m.expected, Expected::Import(_)))
        .count();
    assert_eq!(docs.len(), imports);
    assert_eq!(summary.imported as usize, imports);
    assert_eq!(
        summary.to_error.values().sum::<u64>() as usize,
        mails.len() - imports
    );
    let ledger = e
        .store
        .ledger_entries(&e.importer.id)
        .await
        .expect("ledger");
    assert!(ledger.iter().all(|l| matches!(
        l.state,
        store::ledger::LedgerState::Moved | store::ledger::LedgerState::MovedToError
    )));
    assert!(
        ledger
            .iter()
            .filter(|l| l.state == store::ledger::LedgerState::MovedToError)
            .all(|l| l.reason.is_some())
    );

    // A second run finds nothing; the same mails dropped back into the
    // Inbox (under new ids) make no second document.
    let again = run(&e, &mb).run().await.expect("second run");
    assert_eq!((again.imported, again.to_error.len()), (0, 0));
    for (_, raw) in mb.in_folder("exported").into_iter().take(5) {
        mb.add("inbox", raw);
    }
    let third = run(&e, &mb).run().await.expect("third run");
    assert_eq!((third.imported, third.completed_from_earlier_run), (0, 5));
    assert_eq!(
        e.store
            .count_documents(&e.importer.id)
            .await
            .expect("count") as usize,
        imports
    );
    let spool_dir = e.data.path().join("documents/default").join(&e.importer.id);
    assert_eq!(
        std::fs::read_dir(spool_dir).expect("spool").count(),
        imports
    );
}

#[tokio::test]
async fn transient_failures_leave_mail_in_the_inbox_and_lose_nothing() {
    let e = env(default_folders()).await;
    let mails: Vec<_> = corpus::corpus().into_iter().take(10).collect();
    let mb = Fake::new(mails.iter().map(|m| m.raw.clone()));
    let ids: Vec<String> = mb
        .in_folder("inbox")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    mb.fail_fetch
        .lock()
        .expect("lock")
        .insert(ids[0].clone(), 100);
    mb.fail_fetch
        .lock()
        .expect("lock")
        .insert(ids[3].clone(), 1);
    *mb.fail_moves.lock().expect("lock") = 2;
    let first = run(&e, &mb).run().await.expect("run");
    assert!(first.left_for_retry.len() >= 2, "{first:?}");
    assert!(mb.in_folder("inbox").iter().any(|(id, _)| id == &ids[0]));
    mb.fail_fetch.lock().expect("lock").clear();
    let second = run(&e, &mb).run().await.expect("run");
    assert!(second.left_for_retry.is_empty(), "{second:?}");
    assert!(mb.in_folder("inbox").is_empty());
    let imports = mails
        .iter()
        .filter(|m| matches!(m.expected, Expected::Import(_)))
        .count();
    assert_eq!(
        e.store
            .count_documents(&e.importer.id)
            .await
            .expect("count") as usize,
        imports
    );
    assert_eq!(mb.in_folder("exported").len(), imports);
    assert_eq!(mb.in_folder("error").len(), mails.len() - imports);
}

#[tokio::test]
async fn ambiguous_or_missing_folders_stop_the_run_before_any_mail_is_touched() {
    for (folders, needle) in [
        (
            serde_json::json!({"inbox": "Inbox", "exported": "Exported", "error": "Error"}),
            "Inbox/Exported",
        ),
        (
            serde_json::json!({"inbox": "Inbox", "exported": "Inbox/Exported", "error": "Fehler"}),
            "Fehler",
        ),
    ] {
        let e = env(folders).await;
        let mut mb = Fake::new(corpus::corpus().into_iter().take(3).map(|m| m.raw));
        mb.extra_folders = vec![FolderNode::new("exported2", "Exported", None)];
        let err = run(&e, &mb).run().await.expect_err("stopped");
        assert!(matches!(err, ImportError::Folders(_)), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
        assert!(run(&e, &mb).dry_run().await.is_err());
        assert_eq!(mb.in_folder("inbox").len(), 3, "no mail touched");
        assert!(
            e.store
                .ledger_entries(&e.importer.id)
                .await
                .expect("ledger")
                .is_empty()
        );
    }
}

#[tokio::test]
async fn two_runs_never_work_the_same_mailbox_at_once() {
    let e = env(default_folders()).await;
    let mb = Fake::new(corpus::corpus().into_iter().take(2).map(|m| m.raw));
    let now = jiff::Timestamp::now();
    assert!(
        e.store
            .try_acquire_lease(
                &format!("import:{}", e.importer.id),
                "other-run",
                now + jiff::SignedDuration::from_mins(5),
                now
            )
            .await
            .expect("lease")
    );
    let err = run(&e, &mb).run().await.expect_err("busy");
    assert!(matches!(err, ImportError::Busy(_)), "{err}");
    assert_eq!(mb.in_folder("inbox").len(), 2);
}

/// The state a crash right after a move leaves: the mail in Exported (or
/// Error), its ledger row still `stored` (or `to_error`).
async fn unrecord_move(e: &Env, source_key: &str, state: LedgerState) {
    let mut row = ledger_row(e, source_key).await;
    row.state = state;
    e.store.record_ledger(&row).await.expect("record");
}

#[tokio::test]
async fn moves_a_crash_left_unrecorded_are_confirmed_by_the_next_run() {
    let e = env(default_folders()).await;
    let mut mb = Fake {
        keep_ids: true,
        ..Fake::default()
    };
    mb.extra_folders = vec![FolderNode::new("archive", "Archive", None)];
    let mut ids = Vec::new();
    for n in 0..6 {
        let (_, raw) = corpus::numbered_mail(n, (n < 4).then_some(1_000));
        ids.push(mb.add("inbox", raw));
    }
    let first = run(&e, &mb).run().await.expect("run");
    assert_eq!((first.imported, first.moves_confirmed), (4, 0), "{first:?}");
    assert_eq!(*mb.locates.lock().expect("lock"), 0, "nothing to confirm");

    // ids[0]: crashed after its move to Exported; ids[4]: after its move
    // to Error; ids[1]: then an admin moved it to Archive; ids[2]: then
    // someone deleted it.
    unrecord_move(&e, &ids[0], LedgerState::Stored).await;
    unrecord_move(&e, &ids[4], LedgerState::ToError).await;
    unrecord_move(&e, &ids[1], LedgerState::Stored).await;
    mb.move_message(&ids[1], "archive")
        .await
        .expect("to archive");
    unrecord_move(&e, &ids[2], LedgerState::Stored).await;
    mb.folders
        .lock()
        .expect("lock")
        .values_mut()
        .for_each(|mails| mails.retain(|(id, _)| id != &ids[2]));
    let unfinished = |e: &Env| {
        let store = e.store.clone();
        let importer = e.importer.id.clone();
        async move {
            store
                .ledger_activity(&importer)
                .await
                .expect("activity")
                .expect("rows")
                .unfinished
        }
    };
    assert_eq!(unfinished(&e).await, 4);

    let lines = Mutex::new(Vec::<String>::new());
    let log = |l: String| lines.lock().expect("lock").push(l);
    let second = ImportRun {
        log: &log,
        ..run(&e, &mb)
    }
    .run()
    .await
    .expect("run");
    assert_eq!(second.moves_confirmed, 2, "{second:?}");
    assert_eq!((second.imported, second.completed_from_earlier_run), (0, 0));
    assert!(
        second
            .line()
            .contains("moves of an earlier run confirmed 2")
    );
    assert_eq!(*mb.locates.lock().expect("lock"), 4, "one lookup per row");
    let state = |key: &str| {
        let store = e.store.clone();
        let importer = e.importer.id.clone();
        let key = key.to_owned();
        async move {
            store
                .ledger_entry(&importer, &key)
                .await
                .expect("read")
                .expect("row")
                .state
        }
    };
    assert_eq!(state(&ids[0]).await, LedgerState::Moved);
    assert_eq!(state(&ids[4]).await, LedgerState::MovedToError);
    assert_eq!(state(&ids[1]).await, LedgerState::Stored, "not guessed");
    assert_eq!(state(&ids[2]).await, LedgerState::Stored, "not guessed");
    assert_eq!(unfinished(&e).await, 2);
    let lines = lines.into_inner().expect("lock");
    let about = |key: &str| lines.iter().filter(|l| l.contains(key)).count();
    assert_eq!(
        about(&ids[1]),
        1,
        "one line for the mail elsewhere: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&ids[1]) && l.contains("another folder")),
        "{lines:?}"
    );
    assert_eq!(about(&ids[2]), 1, "one line for the gone mail: {lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&ids[2]) && l.contains("no message")),
        "{lines:?}"
    );
    // Nothing was moved or stored again.
    assert_eq!(mb.in_folder("exported").len(), 2);
    assert_eq!(mb.in_folder("error").len(), 2);
    assert_eq!(mb.in_folder("archive").len(), 1);
    assert_eq!(
        e.store
            .count_documents(&e.importer.id)
            .await
            .expect("count"),
        4
    );
}

#[tokio::test]
async fn a_backlog_of_unconfirmed_moves_costs_at_most_a_bounded_number_of_lookups() {
    let e = env(default_folders()).await;
    let mb = Fake {
        keep_ids: true,
        ..Fake::default()
    };
    let now: jiff::Timestamp = "2026-03-01T00:00:00Z".parse().expect("ts");
    let backlog = import::pipeline::MAX_LOCATES_PER_RUN + 20;
    for n in 0..backlog {
        e.store
            .record_ledger(&store::ledger::LedgerEntry {
                importer_id: e.importer.id.clone(),
                source_key: format!("ghost-{n}"),
                mail_id: store::ledger::LedgerEntry::new_mail_id(),
                internet_message_id: None,
                mime_sha256: Some(format!("{n:064}")),
                content_sha256: None,
                document_id: Some(format!("doc-{n}")),
                state: LedgerState::Stored,
                reason: None,
                subject: None,
                sender: None,
                received_at: None,
                attempts: 0,
                last_error: None,
                created_at: now,
                updated_at: now,
            })
            .await
            .expect("record");
    }
    let summary = run(&e, &mb).run().await.expect("run");
    assert_eq!(summary.moves_confirmed, 0);
    assert_eq!(
        *mb.locates.lock().expect("lock"),
        import::pipeline::MAX_LOCATES_PER_RUN
    );
}

/// A mail with one PDF, for tests that need to control every header.
fn pdf(seed: u64) -> Vec<u8> {
    corpus::file_bytes("pdf", 2_000, seed)
}

#[tokio::test]
async fn two_mails_with_one_message_id_make_two_documents_and_the_same_mail_again_makes_none() {
    let e = env(default_folders()).await;
    let mb = Fake {
        keep_ids: true,
        ..Fake::default()
    };
    // An ERP that stamps every mail with the same Message-ID.
    let first = invoice_mail("<fixed@erp.fabrikam.example>", "Invoice", &pdf(1));
    let second = invoice_mail("<fixed@erp.fabrikam.example>", "Invoice", &pdf(2));
    mb.add("inbox", first.clone());
    let one = run(&e, &mb).run().await.expect("run");
    assert_eq!(one.imported, 1);
    mb.add("inbox", second.clone());
    let predictions = run(&e, &mb).dry_run().await.expect("dry run");
    assert_eq!(predictions.len(), 1);
    assert_eq!(
        predictions[0].outcome,
        Outcome::Import,
        "another mail is not `already_imported`"
    );
    let two = run(&e, &mb).run().await.expect("run");
    assert_eq!((two.imported, two.completed_from_earlier_run), (1, 0));
    let docs = e
        .store
        .list_documents(&e.importer.client_id, None, 10, 0)
        .await
        .expect("docs");
    assert_eq!(docs.len(), 2, "two mails, two documents");
    assert_ne!(docs[0].id, docs[1].id);
    let mut pdfs: Vec<Vec<u8>> = docs
        .iter()
        .map(|d| {
            std::fs::read(std::path::Path::new(&d.location).join("attachments/invoice.pdf"))
                .expect("pdf")
        })
        .collect();
    pdfs.sort();
    let mut want = vec![pdf(1), pdf(2)];
    want.sort();
    assert_eq!(pdfs, want, "both attachments kept");

    // The same mail seen again, re-rendered (other boundary) and under a
    // new id: still nothing new.
    let rerendered = String::from_utf8(first.clone())
        .expect("utf8")
        .replace("boundary=\"b1\"", "boundary=\"=_rerendered_by_exchange\"")
        .replace("--b1", "--=_rerendered_by_exchange");
    mb.add("inbox", rerendered.into_bytes());
    mb.add("inbox", second);
    let again = run(&e, &mb).run().await.expect("run");
    assert_eq!(
        (again.imported, again.completed_from_earlier_run),
        (0, 2),
        "{again:?}"
    );
    assert_eq!(
        e.store
            .count_documents(&e.importer.id)
            .await
            .expect("count"),
        2
    );
    assert!(mb.in_folder("inbox").is_empty());
}

#[tokio::test]
async fn a_mail_without_attachment_becomes_a_document_of_its_body_when_asked() {
    let mut e = env(default_folders()).await;
    e.importer.settings.import_body = domain::importer::ImportBody::WhenNoAttachment;
    let mb = Fake::default();
    let raw = corpus::corpus()
        .into_iter()
        .find(|m| m.name == "no_attachment")
        .expect("in corpus")
        .raw;
    mb.add("inbox", raw);
    let summary = run(&e, &mb).run().await.expect("run");
    assert_eq!(summary.imported, 1, "{summary:?}");
    assert_eq!(mb.in_folder("exported").len(), 1);
    let docs = e
        .store
        .list_documents(&e.importer.client_id, None, 10, 0)
        .await
        .expect("documents");
    let files: Vec<&str> = docs[0]
        .metadata
        .attachments
        .iter()
        .map(|a| a.file.as_str())
        .collect();
    assert_eq!(files, ["attachments/body.txt"]);
    let text = std::fs::read_to_string(format!("{}/attachments/body.txt", docs[0].location))
        .expect("body.txt");
    assert!(text.contains("Hello"), "{text}");
}

#[tokio::test]
async fn a_mail_over_max_mail_bytes_goes_to_error_without_being_downloaded() {
    let mut e = env(default_folders()).await;
    e.importer.settings.limits.max_mail_bytes = 5_000;
    let mb = Fake {
        keep_ids: true,
        report_sizes: true,
        ..Fake::default()
    };
    let small = mb.add("inbox", invoice_mail("<small@x>", "Small", &pdf(1)));
    let big = mb.add(
        "inbox",
        invoice_mail("<big@x>", "Big", &corpus::file_bytes("pdf", 20_000, 3)),
    );
    let predictions = run(&e, &mb).dry_run().await.expect("dry run");
    assert_eq!(predictions[1].outcome, Outcome::Error);
    assert_eq!(predictions[1].reason.as_deref(), Some("too_large"));
    let summary = run(&e, &mb).run().await.expect("run");
    assert_eq!(summary.imported, 1);
    assert_eq!(summary.to_error.get("too_large"), Some(&1));
    let fetched = mb.fetched.lock().expect("lock").clone();
    assert!(fetched.contains(&small));
    assert!(!fetched.contains(&big), "the big mail was never downloaded");
    let row = ledger_row(&e, &big).await;
    assert_eq!(row.state, LedgerState::MovedToError);
    let (code, detail) = row.reason_parts().expect("reason");
    assert_eq!(code, "too_large");
    assert!(detail.contains("max_mail_bytes (5000)"), "{detail}");
    assert_eq!(
        mb.categories.lock().expect("lock").get(&big),
        Some(&vec!["mailferry: too_large".to_owned()]),
        "the reason travels with the mail"
    );

    // Without a reported size the limit holds after the download.
    let mb = Fake {
        keep_ids: true,
        next_id: Mutex::new(100),
        ..Fake::default()
    };
    let big = mb.add(
        "inbox",
        invoice_mail("<big2@x>", "Big", &corpus::file_bytes("pdf", 20_000, 4)),
    );
    let summary = run(&e, &mb).run().await.expect("run");
    assert_eq!(summary.to_error.get("too_large"), Some(&1), "{summary:?}");
    assert!(mb.in_folder("error").iter().any(|(id, _)| id == &big));
}

#[tokio::test]
async fn a_mail_failing_in_max_attempts_runs_goes_to_error_with_the_last_error() {
    let mut e = env(default_folders()).await;
    e.importer.settings.limits.max_attempts = 3;
    let mb = Fake {
        keep_ids: true,
        ..Fake::default()
    };
    let id = mb.add("inbox", invoice_mail("<flaky@x>", "Flaky", &pdf(5)));
    mb.fail_fetch.lock().expect("lock").insert(id.clone(), 100);
    for attempt in 1..=2 {
        let s = run(&e, &mb).run().await.expect("run");
        assert_eq!(s.left_for_retry.len(), 1, "run {attempt}");
        let row = e
            .store
            .ledger_entry(&e.importer.id, &id)
            .await
            .expect("read")
            .expect("a pending row");
        assert_eq!((row.state, row.attempts), (LedgerState::Pending, attempt));
        assert!(
            row.last_error
                .as_deref()
                .is_some_and(|l| l.contains("429 storm"))
        );
    }
    let predictions = run(&e, &mb).dry_run().await.expect("dry run");
    assert_eq!(
        predictions[0].reason.as_deref(),
        Some("retries_exhausted"),
        "the dry run knows this is the last attempt"
    );
    let third = run(&e, &mb).run().await.expect("run");
    assert_eq!(third.to_error.get("retries_exhausted"), Some(&1));
    assert!(mb.in_folder("inbox").is_empty());
    let row = ledger_row(&e, &id).await;
    assert_eq!(row.state, LedgerState::MovedToError);
    let (_, detail) = row.reason_parts().expect("reason");
    assert!(
        detail.contains("3 runs") && detail.contains("429 storm"),
        "{detail}"
    );
    let fetches = mb.fetched.lock().expect("lock").len();
    run(&e, &mb).run().await.expect("run");
    assert_eq!(
        mb.fetched.lock().expect("lock").len(),
        fetches,
        "never fetched again"
    );
}

#[tokio::test]
async fn a_mail_in_error_is_decided_afresh_when_reprocessed_or_moved_back_by_hand() {
    let mut e = env(default_folders()).await;
    let mb = Fake {
        keep_ids: true,
        ..Fake::default()
    };
    let blocked = mb.add(
        "inbox",
        invoice_mail("<blocked@x>", "Weekly newsletter", &pdf(6)),
    );
    let by_hand = mb.add(
        "inbox",
        invoice_mail("<by-hand@x>", "Another newsletter", &pdf(7)),
    );
    mb.categories
        .lock()
        .expect("lock")
        .insert(blocked.clone(), vec!["Finance".to_owned()]);
    let first = run(&e, &mb).run().await.expect("run");
    assert_eq!(
        first.to_error.get("rule:subject_block"),
        Some(&2),
        "{first:?}"
    );
    assert_eq!(
        mb.categories.lock().expect("lock").get(&blocked),
        Some(&vec![
            "Finance".to_owned(),
            "mailferry: rule:subject_block".to_owned()
        ]),
        "the admin's own category is kept"
    );
    // The admin lifts the rule …
    e.importer.settings.rules = domain::rules::ImportRules::default();
    // … reprocesses one mail, and moves the other back by hand.
    let mail_id = ledger_row(&e, &blocked).await.mail_id;
    let reopened = import::reprocess::reprocess(&e.store, &SystemClock, &mb, &e.importer, &mail_id)
        .await
        .expect("reprocess");
    assert_eq!(reopened.state, LedgerState::Pending);
    assert!(mb.in_folder("inbox").iter().any(|(id, _)| id == &blocked));
    assert_eq!(
        mb.categories.lock().expect("lock").get(&blocked),
        Some(&vec!["Finance".to_owned()]),
        "reprocessing removes only mailferry's mark"
    );
    let again = import::reprocess::reprocess(&e.store, &SystemClock, &mb, &e.importer, &mail_id)
        .await
        .expect_err("not in Error any more");
    assert!(
        matches!(
            again,
            import::reprocess::ReprocessError::NotInError("pending")
        ),
        "{again}"
    );
    mb.move_message(&by_hand, "inbox").await.expect("by hand");

    let second = run(&e, &mb).run().await.expect("run");
    assert_eq!(second.imported, 2, "{second:?}");
    assert!(mb.in_folder("error").is_empty());
    assert_eq!(
        mb.categories.lock().expect("lock").get(&by_hand),
        Some(&Vec::new()),
        "an exported mail no longer says it is in Error"
    );
    assert_eq!(mb.in_folder("exported").len(), 2);
    assert_eq!(
        e.store
            .count_documents(&e.importer.id)
            .await
            .expect("count"),
        2
    );
    // A mail moved back from Exported is still never imported twice.
    let (exported_id, raw) = mb.in_folder("exported")[0].clone();
    mb.move_message(&exported_id, "inbox").await.expect("back");
    let third = run(&e, &mb).run().await.expect("run");
    assert_eq!((third.imported, third.completed_from_earlier_run), (0, 1));
    assert_eq!(
        e.store
            .count_documents(&e.importer.id)
            .await
            .expect("count"),
        2
    );
    drop(raw);
}

#[tokio::test]
async fn a_run_records_whether_the_account_may_open_the_mailbox() {
    use store::grants::{Grant, GrantState};
    let e = env(default_folders()).await;
    let now: jiff::Timestamp = "2026-03-01T00:00:00Z".parse().expect("ts");
    e.store
        .put_grant(&Grant {
            importer_id: e.importer.id.clone(),
            state: GrantState::MailboxDenied,
            account: Some("alice@contoso.example".into()),
            scopes: vec!["Mail.ReadWrite".into()],
            access_token: Some("at".to_owned().into()),
            access_token_expires_at: Some(now),
            refresh_token: Some("rt".to_owned().into()),
            refresh_token_issued_at: Some(now),
            last_refresh_at: None,
            last_error: Some("cannot open the mailbox".into()),
            consecutive_failures: 0,
            version: 1,
            updated_at: now,
        })
        .await
        .expect("grant");
    let state = || async {
        e.store
            .grant(&e.importer.id)
            .await
            .expect("read")
            .expect("grant")
            .state
    };
    let mb = Fake::new([invoice_mail("<a@x>", "Invoice", &pdf(9))]);
    *mb.denied.lock().expect("lock") = true;
    let err = run(&e, &mb).run().await.expect_err("denied");
    assert!(matches!(err, ImportError::Mailbox(_)), "{err}");
    assert_eq!(state().await, GrantState::MailboxDenied);
    assert_eq!(mb.in_folder("inbox").len(), 1, "no mail touched");
    // An Exchange admin grants access: the next run works and says so.
    *mb.denied.lock().expect("lock") = false;
    let summary = run(&e, &mb).run().await.expect("run");
    assert_eq!(summary.imported, 1);
    assert_eq!(state().await, GrantState::Authorized);
    // Access withdrawn again: the grant is reported denied.
    *mb.denied.lock().expect("lock") = true;
    run(&e, &mb).run().await.expect_err("denied");
    assert_eq!(state().await, GrantState::MailboxDenied);
}

#[tokio::test]
async fn a_failing_mailbox_stops_the_run_instead_of_failing_every_mail() {
    let e = env(default_folders()).await;
    let mb = Fake {
        keep_ids: true,
        ..Fake::default()
    };
    let ids: Vec<String> = (0..6)
        .map(|n| {
            let (_, raw) = corpus::numbered_mail(n, Some(1_000));
            mb.add("inbox", raw)
        })
        .collect();
    for id in &ids {
        mb.fail_fetch.lock().expect("lock").insert(id.clone(), 100);
    }
    let summary = run(&e, &mb).run().await.expect("run");
    assert_eq!(summary.left_for_retry.len(), 3, "{summary:?}");
    assert_stopped_because(&summary, "3 mails in a row");
    assert!(
        summary
            .line()
            .contains("the other mails wait for the next run")
    );
    let rows = e
        .store
        .ledger_entries(&e.importer.id)
        .await
        .expect("ledger");
    assert_eq!(rows.len(), 3, "no attempt counted for the mails not tried");
    assert_eq!(
        mb.in_folder("inbox").len(),
        6,
        "every mail stays in the Inbox"
    );
}

/// A sink that is down: every document is a transient failure.
#[derive(Debug)]
struct DownSink;

impl sinks::DocumentSink for DownSink {
    fn kind(&self) -> &'static str {
        "down"
    }
    fn store<'a>(&'a self, _doc: &'a sinks::Document) -> sinks::SinkFuture<'a, sinks::Stored> {
        Box::pin(async { Err(sinks::SinkError::transient("the receiver is down")) })
    }
    fn remove<'a>(&'a self, _location: &'a str) -> sinks::SinkFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn read<'a>(
        &'a self,
        _location: &'a str,
        _file: &'a str,
    ) -> sinks::SinkFuture<'a, Option<Vec<u8>>> {
        Box::pin(async { Err(sinks::SinkError::transient("the receiver is down")) })
    }
}

#[tokio::test]
async fn a_sink_that_is_down_stops_the_run_and_counts_against_no_mail() {
    let e = env(default_folders()).await;
    let mb = Fake::default();
    for n in 0..4 {
        let (_, raw) = corpus::numbered_mail(n, Some(1_000));
        mb.add("inbox", raw);
    }
    let down = DownSink;
    let summary = ImportRun {
        sink: &down,
        ..run(&e, &mb)
    }
    .run()
    .await
    .expect("run");
    assert_eq!(summary.left_for_retry.len(), 1, "{summary:?}");
    assert_stopped_because(&summary, "the sink is unavailable");
    assert!(
        e.store
            .ledger_entries(&e.importer.id)
            .await
            .expect("ledger")
            .is_empty(),
        "an outage is no mail's attempt"
    );
    assert_eq!(mb.in_folder("inbox").len(), 4);
}

/// The run stopped before the end of the Inbox, saying why.
fn assert_stopped_because(summary: &import::pipeline::Summary, needle: &str) {
    assert!(
        summary
            .stopped_because
            .as_deref()
            .is_some_and(|why| why.contains(needle)),
        "{summary:?}"
    );
}
