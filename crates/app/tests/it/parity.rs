//! The seed product's remaining features end to end, through the API and
//! against the emulator: an app that signs in with a certificate (made by
//! the `openssl` tool) instead of a secret, the emulator refusing what
//! Entra refuses, and ZIP passwords and an S/MIME key that are write-only,
//! kept on update and used by the import.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use domain::credential::ClientCertificate;
use microsoft::entra::assertion::{ASSERTION_TYPE, AssertionSigner};
use msemu::{EmulatorHandle, demo};
use serde_json::{Value, json};
use store::executions::ExecutionStatus;

use crate::support::{TestApp, empty_demo_emulator, invoice_mail, json as body_json};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl tool (scripts/install-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key and a self-signed certificate valid for `days`, as an admin makes
/// them for an app registration.
fn key_and_certificate(dir: &Path, name: &str, days: &str) -> (String, String) {
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            days,
            "-subj",
            "/CN=mailferry test",
        ],
    );
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("pem");
    (read(&key), read(&cert))
}

async fn upload_certificate(emu: &EmulatorHandle, pem: &str) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/_emulator/apps/{}/certificates",
            emu.base_url(),
            demo::DAEMON_CLIENT_ID
        ))
        .json(&json!({ "pem": pem }))
        .send()
        .await
        .expect("emulator");
    assert_eq!(response.status(), 201);
}

/// The app-only importer, with `credential` instead of the demo secret.
fn importer_body(emu: &EmulatorHandle, credential: Value) -> Value {
    let mut body = crate::support::app_only_importer_body(emu, &json!({ "name": "Parity" }));
    body.as_object_mut()
        .expect("object")
        .remove("client_secret");
    for (k, v) in credential.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

async fn run_import(app: &TestApp) -> Vec<String> {
    crate::support::run_import_ok(app).await
}

async fn run_import_as_is(app: &TestApp) -> (ExecutionStatus, Vec<String>) {
    let run = crate::support::run_import_emails(app).await;
    (run.status, run.log)
}

fn folder_of(emu: &EmulatorHandle, imid: &str) -> String {
    emu.messages(demo::ALICE)
        .expect("messages")
        .into_iter()
        .find(|m| m.internet_message_id.as_deref() == Some(imid))
        .map(|m| m.folder_path)
        .unwrap_or_else(|| panic!("{imid} is in the mailbox"))
}

/// `POST` to the emulator's token endpoint with a client assertion.
async fn token_with_assertion(emu: &EmulatorHandle, assertion: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            emu.base_url(),
            demo::TENANT_ID
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", demo::DAEMON_CLIENT_ID),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .expect("emulator");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

fn error_code(body: &Value) -> i64 {
    body["error_codes"][0].as_i64().unwrap_or_default()
}

#[tokio::test]
async fn an_app_signs_in_with_a_certificate_and_the_emulator_refuses_what_entra_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, cert) = key_and_certificate(dir.path(), "app", "2");
    let (other_key, other_cert) = key_and_certificate(dir.path(), "other", "2");
    let emu = empty_demo_emulator().await;
    upload_certificate(&emu, &cert).await;
    let app = TestApp::spawn().await;
    // An assertion carries mailferry's time and Microsoft checks it against
    // its own: both clocks read the real time here.
    app.clock.set(jiff::Timestamp::now());

    // The key must be the certificate's: checked at save, nothing stored.
    let mismatched = importer_body(
        &emu,
        json!({ "client_certificate_pem": cert, "client_private_key_pem": other_key }),
    );
    let refused = app.post_json("/api/v2/importers/email", &mismatched).await;
    assert_eq!(refused.status(), 422);
    let problem = body_json(refused).await;
    assert_eq!(
        problem["errors"][0]["field"], "client_private_key_pem",
        "{problem}"
    );
    assert_eq!(
        body_json(app.get("/api/v2/importers/email").await).await,
        json!([])
    );

    let body = importer_body(
        &emu,
        json!({ "client_certificate_pem": cert, "client_private_key_pem": key }),
    );
    let created = app.post_json("/api/v2/importers/email", &body).await;
    assert_eq!(created.status(), 201);
    let view = body_json(created).await;
    let parsed = ClientCertificate::parse(&cert).expect("cert").certificate;
    // The portal's thumbprint (SHA-1), as the openssl tool prints it.
    let fingerprint = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in", "app.pem"])
        .current_dir(dir.path())
        .output()
        .expect("openssl");
    let fingerprint = String::from_utf8_lossy(&fingerprint.stdout).replace(':', "");
    let portal = view["client_certificate"]["thumbprint"]
        .as_str()
        .expect("thumbprint");
    assert!(
        fingerprint.trim().ends_with(portal),
        "{fingerprint} vs {portal}"
    );
    assert_eq!(
        view["client_certificate"]["thumbprint_sha256"],
        parsed.thumbprint_sha256()
    );
    assert_eq!(view["client_private_key_set"], true);
    assert!(view.get("client_secret_set").is_none(), "{view}");
    assert!(
        !view.to_string().contains("PRIVATE KEY"),
        "the key is write-only"
    );

    // The import gets its token with a client assertion.
    emu.add_message(
        demo::ALICE,
        "Inbox",
        &invoice_mail("<cert-1@contoso.example>", "Invoice", b"%PDF-1.4 cert"),
    )
    .expect("deliver");
    let log = run_import(&app).await;
    assert!(log.iter().any(|l| l.contains("imported 1")), "{log:#?}");
    assert_eq!(folder_of(&emu, "<cert-1@contoso.example>"), "Exported");

    // What the emulator refuses, with Entra's codes.
    let signer = AssertionSigner::new(&parsed, &key).expect("signer");
    let audience = format!("{}/{}/oauth2/v2.0/token", emu.base_url(), demo::TENANT_ID);
    let now = jiff::Timestamp::now();
    let good = signer
        .assertion(demo::DAEMON_CLIENT_ID, &audience, now)
        .expect("sign");
    assert_eq!(token_with_assertion(&emu, &good).await.0, 200);

    let wrong_audience = signer
        .assertion(
            demo::DAEMON_CLIENT_ID,
            "https://login.example/x/oauth2/v2.0/token",
            now,
        )
        .expect("sign");
    let (status, body) = token_with_assertion(&emu, &wrong_audience).await;
    assert_eq!((status, error_code(&body)), (401, 700023), "{body}");

    // The claims changed after signing: the key is found, the signature fails.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut claims: Value =
        serde_json::from_slice(&b64.decode(&parts[1]).expect("b64")).expect("json");
    claims["exp"] = json!(claims["exp"].as_i64().expect("exp") + 3600);
    parts[1] = b64.encode(claims.to_string());
    let (status, body) = token_with_assertion(&emu, &parts.join(".")).await;
    assert_eq!((status, error_code(&body)), (401, 700027), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("Key was found")
    );

    // A certificate the app does not have.
    let stranger = AssertionSigner::new(
        &ClientCertificate::parse(&other_cert)
            .expect("cert")
            .certificate,
        &other_key,
    )
    .expect("signer");
    let (status, body) = token_with_assertion(
        &emu,
        &stranger
            .assertion(demo::DAEMON_CLIENT_ID, &audience, now)
            .expect("sign"),
    )
    .await;
    assert_eq!((status, error_code(&body)), (401, 700027), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("key was not found")
    );

    // Three days on, the two-day certificate has expired.
    let later = emu.advance_clock(jiff::SignedDuration::from_hours(72));
    let (status, body) = token_with_assertion(
        &emu,
        &signer
            .assertion(demo::DAEMON_CLIENT_ID, &audience, later)
            .expect("sign"),
    )
    .await;
    assert_eq!((status, error_code(&body)), (401, 7000274), "{body}");
    // The admin reads what to do about a certificate, not about a secret.
    let (status, log) = run_import_as_is(&app).await;
    assert_eq!(status, ExecutionStatus::Failed);
    let line = log
        .iter()
        .find(|l| l.contains("AADSTS7000274"))
        .expect("the refusal is logged");
    assert!(line.contains("the certificate is not accepted"), "{line}");
    assert!(!line.contains("client secret"), "{line}");
    emu.shutdown().await;
}

fn encrypted_zip(dir: &Path, password: &str) -> Vec<u8> {
    std::fs::write(dir.join("invoice.pdf"), b"%PDF-1.4 zipped").expect("write");
    let _ = std::fs::remove_file(dir.join("i.zip"));
    let out = Command::new("zip")
        .args(["-q", "-P", password, "i.zip", "invoice.pdf"])
        .current_dir(dir)
        .output()
        .expect("zip (scripts/install-test-deps.sh installs it)");
    assert!(out.status.success());
    std::fs::read(dir.join("i.zip")).expect("zip")
}

fn mail_with_zip(imid: &str, zip: &[u8]) -> Vec<u8> {
    crate::support::TestMail::new("Invoice in a ZIP")
        .from(Some("Billing"), "billing@supplier.example")
        .message_id(imid)
        .attach("application/zip", "i.zip", zip)
        .build()
}

#[tokio::test]
async fn zip_passwords_and_the_smime_key_are_write_only_kept_on_update_and_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let emu = empty_demo_emulator().await;
    let app = TestApp::spawn().await;
    let body = importer_body(
        &emu,
        json!({
            "client_secret": demo::DAEMON_CLIENT_SECRET,
            "zip_passwords": [{ "sender": "*@supplier.example", "password": "wrong" }],
        }),
    );
    let created = app.post_json("/api/v2/importers/email", &body).await;
    assert_eq!(created.status(), 201);
    let view = body_json(created).await;
    let id = view["id"].as_str().expect("id").to_owned();
    assert_eq!(
        view["zip_passwords"],
        json!([{ "sender": "*@supplier.example", "password_set": true }])
    );
    assert!(
        !view.to_string().contains("wrong"),
        "the password is write-only"
    );

    // The stored password does not open the archive: Error, naming the pattern.
    emu.add_message(
        demo::ALICE,
        "Inbox",
        &mail_with_zip(
            "<zip-1@supplier.example>",
            &encrypted_zip(dir.path(), "right"),
        ),
    )
    .expect("deliver");
    run_import(&app).await;
    assert_eq!(folder_of(&emu, "<zip-1@supplier.example>"), "Error");
    let errors = body_json(
        app.get(&format!("/api/v2/importers/email/{id}/mails?state=error"))
            .await,
    )
    .await;
    assert_eq!(errors[0]["reason"]["code"], "zip_password", "{errors}");
    assert!(
        errors[0]["reason"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("*@supplier.example"),
        "{errors}"
    );

    // An update without the password keeps it; a new entry needs one.
    let mut update = body.clone();
    update
        .as_object_mut()
        .expect("object")
        .remove("client_secret");
    update["zip_passwords"] = json!([
        { "sender": "*@supplier.example" },
        { "sender": "*@other.example" },
    ]);
    let response = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &update)
        .await;
    assert_eq!(response.status(), 422);
    let problem = body_json(response).await;
    assert_eq!(
        problem["errors"][0]["field"], "zip_passwords[1].password",
        "{problem}"
    );

    // The right password, then Reprocess: the archive's invoice is imported.
    update["zip_passwords"] = json!([{ "sender": "*@supplier.example", "password": "right" }]);
    let response = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &update)
        .await;
    assert_eq!(response.status(), 200);
    let mail_id = errors[0]["mail_id"].as_str().expect("mail id");
    let reprocessed = app
        .post_json(
            &format!("/api/v2/importers/email/{id}/mails/{mail_id}/reprocess"),
            &json!({}),
        )
        .await;
    assert!(reprocessed.status().is_success());
    run_import(&app).await;
    assert_eq!(folder_of(&emu, "<zip-1@supplier.example>"), "Exported");

    // Saving again without zip_passwords' password keeps it working.
    update["zip_passwords"] = json!([{ "sender": "*@supplier.example" }]);
    let response = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &update)
        .await;
    assert_eq!(response.status(), 200);
    let keys = app
        .store
        .content_keys(&app.client_id, &id)
        .await
        .expect("keys");
    assert_eq!(keys.zip_passwords.len(), 1);

    // An S/MIME key that its password does not open is refused at save.
    let smime_dir = dir.path().join("smime");
    std::fs::create_dir_all(&smime_dir).expect("dir");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../import/tests/fixtures/smime/make.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&smime_dir)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p12 = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(smime_dir.join("alice.p12")).expect("p12"));
    update["smime"] = json!({ "key_pkcs12_base64": p12, "pkcs12_password": "nope" });
    let response = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &update)
        .await;
    assert_eq!(response.status(), 422);
    let problem = body_json(response).await;
    assert_eq!(
        problem["errors"][0]["field"], "smime.pkcs12_password",
        "{problem}"
    );
    update["smime"] = json!({ "key_pkcs12_base64": p12, "pkcs12_password": "p12pass" });
    let response = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &update)
        .await;
    assert_eq!(response.status(), 200);
    let view = body_json(response).await;
    assert_eq!(view["smime"]["key_set"], true);
    assert!(!view.to_string().contains("p12pass"));
    // Both keys live in one sealed slot; neither update lost the other.
    let keys = app
        .store
        .content_keys(&app.client_id, &id)
        .await
        .expect("keys");
    assert_eq!(keys.zip_passwords.len(), 1);
    assert!(keys.smime_pkcs12_base64.is_some());

    // A signed mail from a trusted CA and an encrypted one: both imported,
    // the verdict in the document's metadata.
    let ca = std::fs::read_to_string(smime_dir.join("ca.pem")).expect("ca");
    update["smime"] = json!({ "trusted_ca_pem": ca, "platform_roots": false });
    let response = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &update)
        .await;
    assert_eq!(response.status(), 200, "the stored key is kept");
    for mail in ["signed-clear.eml", "encrypted.eml"] {
        emu.add_message(
            demo::ALICE,
            "Inbox",
            &std::fs::read(smime_dir.join(mail)).expect("mail"),
        )
        .expect("deliver");
    }
    let log = run_import(&app).await;
    assert!(log.iter().any(|l| l.contains("imported 2")), "{log:#?}");
    let docs = body_json(
        app.get(&format!("/api/v2/documents?importer_id={id}"))
            .await,
    )
    .await;
    let verdict = |imid: &str| {
        docs.as_array()
            .expect("list")
            .iter()
            .find(|d| d["source"]["internet_message_id"] == imid)
            .map(|d| d["smime"].clone())
            .unwrap_or_else(|| panic!("a document for {imid}: {docs}"))
    };
    let signed = verdict("<signed-clear-1@example.com>");
    assert_eq!(signed["signature"], "valid", "{signed}");
    assert_eq!(signed["signer"], "alice@example.com");
    let encrypted = verdict("<encrypted-1@example.com>");
    assert_eq!(encrypted["encrypted"], true, "{encrypted}");
    emu.shutdown().await;
}
