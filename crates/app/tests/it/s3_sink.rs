//! An importer whose documents go to S3 (a real S3 server, moto, on
//! loopback), driven through the API: the key is write-only, documents land
//! in the bucket in the spool's layout, downloads and purges go through the
//! bucket, and bad settings are refused by name.

use msemu::demo;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;
use test_support::s3::S3Server;

#[tokio::test]
async fn documents_go_to_the_bucket_and_come_back_from_it() {
    let app = TestApp::spawn().await;
    let emu = empty_demo_emulator().await;
    let s3 = S3Server::from_env();
    let bucket = s3.new_bucket().await;
    let mut imids = Vec::new();
    for n in 0..3 {
        let (imid, raw) = import::corpus::numbered_mail(n, Some(2_000));
        emu.add_message(demo::ALICE, "Inbox", &raw).expect("add");
        imids.push(imid);
    }
    let created = app
        .post_json(
            "/api/v2/importers/email",
            &app_only_importer_body(&emu, &json!({"sink": s3.sink_body(&bucket, "docs")})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let view = json(created).await;
    let importer_id = view["id"].as_str().expect("id").to_owned();
    assert_eq!(view["sink"]["kind"], "s3");
    assert_eq!(view["sink"]["prefix"], "docs/", "the prefix ends with /");
    assert_eq!(view["sink"]["secret_access_key_set"], true);
    assert!(
        !view
            .to_string()
            .contains(test_support::s3::SECRET_ACCESS_KEY),
        "the secret is write-only: {view}"
    );

    run_import_ok(&app).await;
    let places: Vec<String> = emu
        .messages(demo::ALICE)
        .expect("messages")
        .into_iter()
        .map(|m| m.folder_path)
        .collect();
    assert_eq!(places, ["Exported"; 3], "every mail moved once stored");
    let docs = app
        .store
        .list_documents(&app.client_id, Some(&importer_id), 100, 0)
        .await
        .expect("docs");
    assert_eq!(docs.len(), 3);
    let objects = s3.objects(&bucket).await;
    assert_eq!(
        objects.len(),
        9,
        "message, one PDF and metadata each: {:?}",
        objects.keys()
    );
    for doc in &docs {
        assert_eq!(doc.sink, "s3");
        let base = format!("docs/{}/{importer_id}/{}/", doc.metadata.client, doc.id);
        assert_eq!(doc.location, format!("s3://{bucket}/{base}"));
        let metadata: serde_json::Value =
            serde_json::from_slice(&objects[&format!("{base}metadata.json")]).expect("json");
        assert_eq!(metadata["document_id"], doc.id.as_str());
        let pdf = &doc.metadata.attachments[0];
        let stored = &objects[&format!("{base}{}", pdf.file)];
        assert_eq!(sinks::sha256_hex(stored), pdf.sha256);

        // The download reads the bucket.
        let download = app
            .get(&format!("/api/v2/documents/{}/files/{}", doc.id, pdf.file))
            .await;
        assert_eq!(download.status(), StatusCode::OK);
        assert!(download.bytes().await.expect("bytes")[..] == stored[..]);
    }

    // Editing other fields keeps the stored key; the documents stay readable.
    let mut edit = app_only_importer_body(&emu, &json!({"sink": s3.sink_body(&bucket, "docs")}));
    edit["sink"]
        .as_object_mut()
        .expect("sink")
        .remove("secret_access_key");
    edit["name"] = json!("Invoices (S3)");
    edit.as_object_mut().expect("body").remove("client_secret");
    let saved = app
        .put_json(&format!("/api/v2/importers/email/{importer_id}"), &edit)
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert_eq!(json(saved).await["sink"]["secret_access_key_set"], true);

    // Purging deletes the objects, then the rows.
    app.clock.advance(jiff::SignedDuration::from_hours(72));
    let purge = run_named(&app, "purge-documents", json!({"retention_days": 1})).await;
    assert_eq!(
        purge.status,
        store::executions::ExecutionStatus::Succeeded,
        "{:?}",
        purge.log
    );
    assert!(s3.objects(&bucket).await.is_empty());
    assert_eq!(
        app.store
            .count_documents(&importer_id)
            .await
            .expect("count"),
        0
    );
}

#[tokio::test]
async fn s3_settings_are_checked_by_name_and_the_key_never_follows_a_new_server() {
    let app = TestApp::spawn().await;
    let emu = empty_demo_emulator().await;
    let s3 = S3Server::from_env();
    let bucket = s3.new_bucket().await;
    let problems = async |v: serde_json::Value| {
        let r = app_only_importer_body(&emu, &json!({"sink": v}));
        let response = app.post_json("/api/v2/importers/email", &r).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        json(response).await.to_string()
    };
    let mut no_secret = s3.sink_body(&bucket, "");
    no_secret
        .as_object_mut()
        .expect("sink")
        .remove("secret_access_key");
    assert!(problems(no_secret).await.contains("sink.secret_access_key"));
    let text =
        problems(json!({"kind": "s3", "bucket": "Not A Bucket", "endpoint": "ftp://x"})).await;
    for field in [
        "sink.bucket",
        "sink.region",
        "sink.endpoint",
        "sink.access_key_id",
    ] {
        assert!(text.contains(field), "{field}: {text}");
    }

    let created = app
        .post_json(
            "/api/v2/importers/email",
            &app_only_importer_body(&emu, &json!({"sink": s3.sink_body(&bucket, "")})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = json(created).await["id"].as_str().expect("id").to_owned();
    // Another server without the key again: refused, nothing changes.
    let mut moved = app_only_importer_body(&emu, &json!({"sink": s3.sink_body(&bucket, "")}));
    moved["sink"]["endpoint"] = json!("https://s3.elsewhere.example");
    moved["sink"]
        .as_object_mut()
        .expect("sink")
        .remove("secret_access_key");
    let refused = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &moved)
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json(refused)
            .await
            .to_string()
            .contains("sink.secret_access_key")
    );
    let view = json(app.get(&format!("/api/v2/importers/email/{id}")).await).await;
    assert_eq!(view["sink"]["endpoint"], s3.url.as_str());
}
