//! The admin API over HTTP, and https with the generated CA.

use msemu::{Emulator, Options, Seed, demo};
use serde_json::{Value, json};

use crate::common::{self, mime};

#[tokio::test]
async fn admin_endpoints() {
    let env = common::start().await;
    let r = env
        .admin_post(
            &format!("/_emulator/mailboxes/{}/folders", demo::ALICE),
            json!({"path": "Inbox/Projects", "hidden": true}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let again = env
        .admin_post(
            &format!("/_emulator/mailboxes/{}/folders", demo::ALICE),
            json!({"path": "Inbox/Projects"}),
        )
        .await;
    assert_eq!(again.status(), 409);

    let added = env
        .admin_post(
            &format!("/_emulator/mailboxes/{}/messages", demo::SHARED),
            json!({"folder": "Inbox/Q1", "mime": mime("Admin added", "Tue, 06 Jan 2026 08:00:00 +0000"), "is_read": true}),
        )
        .await;
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.expect("json");
    assert_eq!(added["folder_path"], "Inbox/Q1");
    assert!(added["id"].as_str().expect("id").contains('/'));
    let bad = env
        .admin_post(
            &format!("/_emulator/mailboxes/{}/messages", demo::SHARED),
            json!({"folder": "Inbox", "mime": ""}),
        )
        .await;
    assert_eq!(bad.status(), 400);

    let folders: Value = env
        .http
        .get(env.url(&format!("/_emulator/mailboxes/{}/folders", demo::ALICE)))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let projects = folders
        .as_array()
        .expect("a")
        .iter()
        .find(|f| f["path"] == "Inbox/Projects")
        .expect("projects")
        .clone();
    assert_eq!(projects["hidden"], true);
    assert!(
        folders
            .as_array()
            .expect("a")
            .iter()
            .any(|f| f["well_known_name"] == "inbox" && f["total"] == 3)
    );
    let msgs: Value = env
        .http
        .get(env.url(&format!("/_emulator/mailboxes/{}/messages", demo::SHARED)))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(msgs.as_array().expect("a").len(), 3);

    let clock: Value = env
        .admin_post("/_emulator/clock/advance", json!({"seconds": 3600.5}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(clock["offset_seconds"], 3600);
    let revoked = env
        .admin_post(
            &format!("/_emulator/users/{}/revoke-refresh-tokens", demo::ALICE),
            json!({}),
        )
        .await;
    assert_eq!(revoked.status(), 200);
    let faults: Value = env
        .http
        .get(env.url("/_emulator/faults"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(faults, json!([]));
    let counters: Value = env
        .http
        .get(env.url("/_emulator/counters"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert!(counters["endpoints"]["admin"].as_u64().expect("n") >= 4);
    assert_eq!(
        env.admin_post("/_emulator/counters/reset", json!({}))
            .await
            .status(),
        204
    );
    env.stop().await;
}

#[tokio::test]
async fn https_with_generated_ca() {
    common::install_crypto();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let https = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let emu = Emulator::start(Seed::demo(), Options::default(), http, Some(https))
        .await
        .expect("start");
    let pem_path = emu.ca_pem_path().expect("ca").to_path_buf();
    let pem = std::fs::read(&pem_path).expect("pem");
    let ca = reqwest::Certificate::from_pem(&pem).expect("cert");
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("client");
    let base = emu.https_base_url().expect("https");
    let conf: Value = client
        .get(format!(
            "{base}/{}/v2.0/.well-known/openid-configuration",
            demo::TENANT_ID
        ))
        .send()
        .await
        .expect("https get")
        .json()
        .await
        .expect("json");
    assert!(
        conf["token_endpoint"]
            .as_str()
            .expect("te")
            .starts_with("https://127.0.0.1:")
    );
    // An untrusting client fails: the certificate really is self-made.
    assert!(
        common::client()
            .get(format!("{base}/_emulator/health"))
            .send()
            .await
            .is_err()
    );
    emu.shutdown().await;
    assert!(!pem_path.exists());
}
