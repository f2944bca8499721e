//! The importer API as the contract describes it.

use crate::support::{Db, TestApp, graph_importer_body, json};

const BASE: &str = "/api/v2/importers/email";

#[tokio::test]
async fn importer_crud_round_trip_with_write_only_secret() {
    let app = TestApp::spawn().await;
    let created = app.post_json(BASE, &graph_importer_body("Invoices")).await;
    assert_eq!(created.status(), 201);
    let body = json(created).await;
    let id = body["id"].as_str().expect("id").to_owned();
    assert_eq!(body["client_secret_set"], true);
    assert!(body.get("client_secret").is_none());
    assert!(!body.to_string().contains("Azure-Secret-Value~0001"));
    assert_eq!(
        body["redirect_uri"],
        format!("{}/api/v2/importers/email/authenticate/end", app.base_url)
    );
    assert_eq!(body["folders"]["exported"], "Exported");
    assert_eq!(body["authentication_required"], true);
    assert_eq!(body["created_at"], "2026-03-29T00:30:00Z");

    let listed = json(app.get(BASE).await).await;
    assert_eq!(listed.as_array().expect("array").len(), 1);

    // update without the secret keeps it; renaming keeps the grant question unchanged
    let mut update = graph_importer_body("Renamed");
    update
        .as_object_mut()
        .expect("object")
        .remove("client_secret");
    app.clock.advance(jiff::SignedDuration::from_hours(1));
    let updated = app.put_json(&format!("{BASE}/{id}"), &update).await;
    assert_eq!(updated.status(), 200);
    let body = json(updated).await;
    assert_eq!(body["name"], "Renamed");
    assert_eq!(body["client_secret_set"], true);
    assert_eq!(body["updated_at"], "2026-03-29T01:30:00Z");
    let secret = app
        .store
        .importer_secret(&app.client_id, &id)
        .await
        .expect("q")
        .expect("kept");
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&secret),
        "Azure-Secret-Value~0001"
    );

    assert_eq!(app.delete(&format!("{BASE}/{id}")).await.status(), 204);
    assert_eq!(app.get(&format!("{BASE}/{id}")).await.status(), 404);
    assert_eq!(app.delete(&format!("{BASE}/{id}")).await.status(), 404);
}

#[tokio::test]
async fn a_webhook_token_is_write_only_sealed_kept_and_dropped_with_the_webhook() {
    let app = TestApp::spawn().await;
    let mut body = graph_importer_body("Hooked");
    body["sink"] = serde_json::json!({
        "kind": "webhook", "url": "https://dms.example.com/inbox", "token": "Hook-Token~0001"
    });
    let created = app.post_json(BASE, &body).await;
    assert_eq!(created.status(), 201);
    let view = json(created).await;
    let id = view["id"].as_str().expect("id").to_owned();
    assert_eq!(view["sink"]["kind"], "webhook");
    assert_eq!(view["sink"]["token_set"], true);
    assert!(!view.to_string().contains("Hook-Token~0001"), "{view}");
    let db = std::fs::read(app.dir.path().join("mailferry.db")).expect("db");
    assert!(
        !db.windows(15).any(|w| w == b"Hook-Token~0001"),
        "sealed at rest"
    );
    let stored = |app: &TestApp, id: String| {
        let store = app.store.clone();
        let client = app.client_id.clone();
        async move {
            store
                .sink_secret(&client, &id)
                .await
                .expect("q")
                .map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned())
        }
    };
    assert_eq!(
        stored(&app, id.clone()).await.as_deref(),
        Some("Hook-Token~0001")
    );

    // A PUT without the token keeps it …
    body.as_object_mut()
        .expect("object")
        .remove("client_secret");
    body["sink"].as_object_mut().expect("sink").remove("token");
    let kept = json(app.put_json(&format!("{BASE}/{id}"), &body).await).await;
    assert_eq!(kept["sink"]["token_set"], true, "{kept}");
    assert_eq!(
        stored(&app, id.clone()).await.as_deref(),
        Some("Hook-Token~0001")
    );
    // … but not to another host: it must be entered again …
    body["sink"]["url"] = serde_json::json!("https://attacker.example/inbox");
    let moved = app.put_json(&format!("{BASE}/{id}"), &body).await;
    assert_eq!(moved.status(), 422);
    assert!(json(moved).await.to_string().contains("sink.token"));
    assert_eq!(
        stored(&app, id.clone()).await.as_deref(),
        Some("Hook-Token~0001")
    );
    body["sink"]["url"] = serde_json::json!("https://dms.example.com/inbox");
    // … a token on the spool is refused and changes nothing …
    body["sink"] = serde_json::json!({"kind": "spool", "token": "x"});
    let refused = app.put_json(&format!("{BASE}/{id}"), &body).await;
    assert_eq!(refused.status(), 422);
    assert!(json(refused).await.to_string().contains("sink.token"));
    assert_eq!(
        stored(&app, id.clone()).await.as_deref(),
        Some("Hook-Token~0001")
    );
    // … and leaving the webhook drops it.
    body["sink"] = serde_json::json!({"kind": "spool"});
    let spool = json(app.put_json(&format!("{BASE}/{id}"), &body).await).await;
    assert!(spool["sink"].get("token_set").is_none(), "{spool}");
    assert_eq!(stored(&app, id).await, None);
}

#[tokio::test]
async fn a_kept_password_is_never_sent_to_another_server() {
    let app = TestApp::spawn().await;
    let mut body = serde_json::json!({
        "name": "IMAP", "protocol": "imap", "host": "imap.contoso.example",
        "username": "invoices", "password": "Imap-Password~0001",
        "folders": { "inbox": "INBOX", "exported": "Exported", "error": "Error" }
    });
    let created = json(app.post_json(BASE, &body).await).await;
    let id = created["id"].as_str().expect("id").to_owned();
    body.as_object_mut().expect("object").remove("password");
    body["name"] = serde_json::json!("Renamed");
    assert_eq!(
        app.put_json(&format!("{BASE}/{id}"), &body).await.status(),
        200,
        "same server: the password is kept"
    );
    body["host"] = serde_json::json!("imap.attacker.example");
    let moved = app.put_json(&format!("{BASE}/{id}"), &body).await;
    assert_eq!(moved.status(), 422);
    let problem = json(moved).await;
    assert!(problem.to_string().contains("\"password\""), "{problem}");
    body["password"] = serde_json::json!("their own password");
    assert_eq!(
        app.put_json(&format!("{BASE}/{id}"), &body).await.status(),
        200
    );
}

#[tokio::test]
async fn bad_bodies_get_problem_json_naming_every_field() {
    let app = TestApp::spawn().await;
    let mut body = graph_importer_body("x");
    body["client_id"] = "not-a-guid".into();
    body["folders"]["error"] = "Inbox".into();
    body.as_object_mut().expect("object").remove("tenant_id");
    let response = app.post_json(BASE, &body).await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem = json(response).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(fields, ["client_id", "tenant_id", "folders.error"]);
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("client_id")
    );

    // wrong JSON type, unknown field, not JSON at all
    let problem = json(
        app.post_json(
            BASE,
            &serde_json::json!({"name": "x", "folders": {"inbox": 3}}),
        )
        .await,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "folders.inbox");
    let problem = json(
        app.post_json(BASE, &serde_json::json!({"name": "x", "colour": "red"}))
            .await,
    )
    .await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .expect("m")
            .contains("colour")
    );
    let response = app
        .http
        .post(app.url(BASE))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 400);
    let response = app
        .http
        .post(app.url(BASE))
        .bearer_auth(&app.token)
        .body("name=x")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 415);
    assert!(
        app.store
            .list_importers(&app.client_id)
            .await
            .expect("q")
            .is_empty(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn a_token_of_one_client_never_reaches_another_clients_importers() {
    let app = TestApp::spawn().await;
    let id = json(app.post_json(BASE, &graph_importer_body("A's")).await).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let other = app.token_for_new_client("b").await;
    let as_other = |req: reqwest::RequestBuilder| req.bearer_auth(&other).send();
    let list = as_other(app.http.get(app.url(BASE))).await.expect("list");
    assert_eq!(json(list).await, serde_json::json!([]));
    assert_eq!(
        as_other(app.http.get(app.url(&format!("{BASE}/{id}"))))
            .await
            .expect("get")
            .status(),
        404
    );
    assert_eq!(
        as_other(
            app.http
                .put(app.url(&format!("{BASE}/{id}")))
                .json(&graph_importer_body("stolen"))
        )
        .await
        .expect("put")
        .status(),
        404
    );
    assert_eq!(
        as_other(app.http.delete(app.url(&format!("{BASE}/{id}"))))
            .await
            .expect("delete")
            .status(),
        404
    );
    assert_eq!(
        json(app.get(&format!("{BASE}/{id}")).await).await["name"],
        "A's"
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let app = TestApp::spawn().await;
    let none = app.http.get(app.url(BASE)).send().await.expect("GET");
    assert_eq!(none.status(), 401);
    assert!(none.headers().contains_key("www-authenticate"));
    let wrong = app
        .http
        .get(app.url(BASE))
        .bearer_auth("mf_wrong")
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );
}

#[tokio::test]
async fn saving_drops_the_grant_only_for_grant_relevant_changes() {
    let app = TestApp::spawn_with(Db::Postgres, "2026-10-25T00:30:00Z".parse().expect("ts")).await;
    let id = json(app.post_json(BASE, &graph_importer_body("I")).await).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let now = app.clock_now();
    app.store
        .put_grant(&store::grants::Grant {
            importer_id: id.clone(),
            state: store::grants::GrantState::Authorized,
            account: Some("alice@contoso.com".into()),
            // As granted for a shared mailbox (the importer names one).
            scopes: vec!["Mail.ReadWrite".into(), "Mail.ReadWrite.Shared".into()],
            access_token: Some("at".to_owned().into()),
            access_token_expires_at: Some(now + jiff::SignedDuration::from_hours(1)),
            refresh_token: Some("rt".to_owned().into()),
            refresh_token_issued_at: Some(now),
            last_refresh_at: None,
            last_error: None,
            consecutive_failures: 0,
            version: 1,
            updated_at: now,
        })
        .await
        .expect("grant");
    assert_eq!(
        json(app.get(&format!("{BASE}/{id}")).await).await["authentication_required"],
        false
    );

    let mut body = graph_importer_body("I");
    body.as_object_mut()
        .expect("object")
        .remove("client_secret");
    body["folders"]["exported"] = "Inbox/Done".into();
    let saved = json(app.put_json(&format!("{BASE}/{id}"), &body).await).await;
    assert_eq!(saved["authentication_required"], false);
    assert!(saved.get("authentication_notice").is_none());

    body["tenant_id"] = "fabrikam.onmicrosoft.com".into();
    let saved = json(app.put_json(&format!("{BASE}/{id}"), &body).await).await;
    assert_eq!(saved["authentication_required"], true);
    assert!(
        saved["authentication_notice"]
            .as_str()
            .expect("notice")
            .contains("Authenticate")
    );
    assert!(app.store.grant(&id).await.expect("q").is_none());
}

#[tokio::test]
async fn the_openapi_document_describes_the_importer_api() {
    let app = TestApp::spawn().await;
    let doc = json(
        app.http
            .get(app.url("/api/v2/openapi.json"))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    for path in [
        "/api/v2/importers/email",
        "/api/v2/importers/email/{id}",
        "/healthz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(doc["components"]["schemas"].get("ImporterInput").is_some());
    // the alert settings' log target, documented where clients read it
    for schema in ["AlertSettingsInput", "AlertSettingsView"] {
        let log = &doc["components"]["schemas"][schema]["properties"]["log"];
        assert_eq!(log["type"], "boolean", "{schema}: {log}");
        assert!(
            log["description"]
                .as_str()
                .is_some_and(|d| d.contains("log")),
            "{schema}: {log}"
        );
    }
    // an importer's problem (overview, alerts) is not the API's error body
    let problems = &doc["components"]["schemas"]["OverviewEntry"]["properties"]["problems"];
    assert_eq!(
        problems["items"]["$ref"], "#/components/schemas/AlertProblem",
        "{problems}"
    );
    assert!(
        doc["components"]["schemas"]["Problem"]["required"]
            .as_array()
            .is_some_and(|r| r.contains(&serde_json::json!("type")))
    );
    // the connection test's checks say passed, failed or not checked
    let status = &doc["components"]["schemas"]["CheckStatus"];
    assert_eq!(
        status["enum"],
        serde_json::json!(["passed", "failed", "not_checked"]),
        "{status}"
    );

    // client generators need every operation id to be unique
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            if let Some(other) = ids.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("operationId {id} is used by {other} and {method} {path}");
            }
        }
    }
    assert!(
        ids.contains_key("importers_list") && ids.contains_key("jobs_list"),
        "{ids:?}"
    );
    // liveness needs no token, and the document says so
    assert_eq!(
        doc["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([{}])
    );
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = TestApp::spawn().await;
    let response = app.get(BASE).await;
    let id = response
        .headers()
        .get("x-request-id")
        .expect("request id")
        .to_str()
        .expect("ascii");
    assert_eq!(id.len(), 36);
    let echoed = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("GET");
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn pages_allow_no_inline_script_no_framing_and_no_referrer() {
    let app = TestApp::spawn().await;
    // The UI, its sign-in page, the API and the OAuth callback (whose URL
    // carries the authorization code) alike.
    for path in [
        "/ui/",
        "/ui/login",
        BASE,
        "/api/v2/importers/email/authenticate/end?code=secret-code&state=x",
    ] {
        let response = app.get(path).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
                .to_owned()
        };
        let csp = header("content-security-policy");
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(!csp.contains("script-src 'self' 'unsafe"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
    }
}
