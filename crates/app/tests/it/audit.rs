//! The audit log: who changed which importer or job and when, sign-ins and
//! their failures — with field names, never a secret's value — for the
//! client's own eyes only, and pruned after its retention.

use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::{TestApp, graph_importer_body, json as body_json};

async fn audit(app: &TestApp) -> Vec<Value> {
    let response = app.get("/api/v2/audit").await;
    assert_eq!(response.status(), 200);
    body_json(response)
        .await
        .as_array()
        .expect("a list")
        .clone()
}

fn actions(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect()
}

#[tokio::test]
async fn changes_and_sign_ins_are_logged_without_secrets_for_the_client_only() {
    let app = TestApp::spawn().await;
    let mut body = graph_importer_body("Invoices");
    body["client_secret"] = json!("first-Secret~value");
    let created = app.post_json("/api/v2/importers/email", &body).await;
    assert_eq!(created.status(), 201);
    let id = body_json(created).await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    body["folders"]["exported"] = json!("Inbox/Done");
    body["client_secret"] = json!("second-Secret~value");
    let updated = app
        .put_json(&format!("/api/v2/importers/email/{id}"), &body)
        .await;
    assert_eq!(updated.status(), 200);
    let deleted = app.delete(&format!("/api/v2/importers/email/{id}")).await;
    assert_eq!(deleted.status(), 204);

    // A failed and a successful sign-in at the UI.
    app.store
        .create_user(
            &app.client_id,
            "admin@example.com",
            &SecretString::from("correct horse battery staple"),
            app.clock_now(),
        )
        .await
        .expect("user");
    // An address that is no user's (or a password typed as the address)
    // is not recorded.
    for (email, password) in [
        ("correct horse battery staple", "x"),
        ("admin@example.com", "not-the-password!"),
        ("admin@example.com", "correct horse battery staple"),
    ] {
        app.http
            .post(app.url("/ui/login"))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .expect("sign in");
    }

    let events = audit(&app).await;
    assert_eq!(
        actions(&events),
        [
            "signin.succeeded",
            "signin.failed",
            "importer.deleted",
            "importer.updated",
            "importer.created"
        ],
        "{events:#?}"
    );
    assert_eq!(
        events[2]["detail"], "`Invoices`",
        "a deleted importer is named: {events:#?}"
    );
    let update = &events[3];
    let detail = update["detail"].as_str().expect("detail");
    assert!(
        detail.contains("folders.exported") && detail.contains("client_secret (replaced)"),
        "{detail}"
    );
    assert_eq!(update["target"], json!(id));
    assert!(
        update["actor"]
            .as_str()
            .expect("actor")
            .starts_with("token:")
    );
    assert!(
        update["actor_name"].is_string(),
        "the token's label names the actor"
    );
    assert_eq!(events[0]["actor_name"], "admin@example.com");
    assert_eq!(events[1]["actor_name"], "admin@example.com");
    assert_eq!(events[1]["detail"], "wrong password");
    let text = serde_json::to_string(&events).expect("json");
    assert!(
        !text.contains("Secret~value")
            && !text.contains("not-the-password")
            && !text.contains("correct horse"),
        "{text}"
    );

    // Another client sees none of it.
    let other = app
        .store
        .create_client("other", &[], app.clock_now())
        .await
        .expect("client");
    let (_, token) = app
        .store
        .create_api_token(&other.id, "other's token", None, app.clock_now())
        .await
        .expect("token");
    let theirs: Value = app
        .http
        .get(app.url("/api/v2/audit"))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&token))
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    assert_eq!(theirs, json!([]));

    // Older than the retention: pruned.
    let later = app.clock_now() + jiff::SignedDuration::from_hours(366 * 24);
    let pruned = app
        .store
        .prune_audit(store::audit::DEFAULT_AUDIT_RETENTION, later)
        .await
        .expect("prune");
    assert_eq!(pruned, 5);
    assert!(audit(&app).await.is_empty());
}
