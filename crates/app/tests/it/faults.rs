//! Faults of the machine: the disk filling up while a document is written
//! (a real, size-limited tmpfs mounted over the client's spool folder —
//! the test runs as root, as CI does).

use std::path::{Path, PathBuf};
use std::process::Command;

use msemu::demo;
use serde_json::json;

use crate::support::{TestApp, empty_demo_emulator, invoice_mail, json as body_json};

/// A tmpfs of `size` mounted at `at`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount(8)");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

async fn run_import(app: &TestApp) -> Vec<String> {
    crate::support::run_import_emails(app).await.log
}

#[tokio::test]
async fn a_full_disk_leaves_the_mail_in_the_inbox_says_so_and_the_next_run_imports_it_once() {
    let emu = empty_demo_emulator().await;
    let app = TestApp::spawn().await;
    let created = app
        .post_json(
            "/api/v2/importers/email",
            &crate::support::app_only_importer_body(&emu, &json!({ "name": "Disk" })),
        )
        .await;
    assert_eq!(created.status(), 201);
    let importer_id = body_json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let client = app
        .store
        .client_by_id(&app.client_id)
        .await
        .expect("query")
        .expect("client");

    // 1 MiB of disk, 900 KiB of it taken: a 300 KiB attachment cannot fit.
    let spool = app.dir.path().join("documents").join(&client.name);
    let _disk = Tmpfs::mount(&spool, "1m");
    let filler = spool.join("filler");
    std::fs::write(&filler, vec![0u8; 900 * 1024]).expect("filler");
    let pdf: Vec<u8> = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    emu.add_message(
        demo::ALICE,
        "Inbox",
        &invoice_mail("<full-1@contoso.example>", "Invoice", &pdf),
    )
    .expect("deliver");

    let log = run_import(&app).await;
    let line = log
        .iter()
        .find(|l| l.contains("disk full"))
        .unwrap_or_else(|| panic!("the run says the disk is full: {log:#?}"));
    assert!(
        line.contains(&spool.display().to_string()),
        "the path is named: {line}"
    );
    let place = |imid: &str| {
        emu.messages(demo::ALICE)
            .expect("messages")
            .into_iter()
            .filter(|m| m.internet_message_id.as_deref() == Some(imid))
            .map(|m| m.folder_path)
            .collect::<Vec<_>>()
    };
    assert_eq!(place("<full-1@contoso.example>"), ["Inbox"]);
    assert!(
        app.store
            .list_documents(&app.client_id, None, 10, 0)
            .await
            .expect("documents")
            .is_empty(),
        "no document row for a document that is not on disk"
    );

    // Space freed: the next run imports it, once.
    std::fs::remove_file(&filler).expect("free space");
    let log = run_import(&app).await;
    assert!(log.iter().any(|l| l.contains("imported 1")), "{log:#?}");
    assert_eq!(place("<full-1@contoso.example>"), ["Exported"]);
    let docs = std::fs::read_dir(spool.join(&importer_id))
        .expect("importer folder")
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(docs, 1, "one document, no leftovers of the failed attempt");
    let log = run_import(&app).await;
    assert!(log.iter().any(|l| l.contains("imported 0")), "{log:#?}");
    emu.shutdown().await;
}
