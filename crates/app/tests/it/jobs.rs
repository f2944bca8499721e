//! Jobs, scripts and executions through the REST API and `mailferry run`,
//! as an admin uses them.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestApp, json, mailferry_bin};

fn field_errors(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_owned(),
                        e["message"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_new_client_has_the_default_jobs_and_they_can_be_edited() {
    let app = TestApp::spawn().await;
    let jobs = json(app.get("/api/v2/jobs").await).await;
    let jobs = jobs.as_array().expect("a list");
    let summary: Vec<(&str, &str, &str, bool)> = jobs
        .iter()
        .map(|j| {
            (
                j["script"].as_str().expect("script"),
                j["cron"].as_str().expect("cron"),
                j["timezone"].as_str().expect("timezone"),
                j["enabled"].as_bool().expect("enabled"),
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
    let refresh = &jobs[0];
    assert_eq!(
        refresh["schedule_description"], "at minutes 0 and 50 of every hour (UTC)",
        "the description shows that */50 is not every 50 minutes"
    );
    assert_eq!(refresh["next_run_at"], "2026-03-29T00:50:00Z");
    assert_eq!(refresh["params"], json!({}));

    // The UI sends the job back as it got it, with the change: accepted
    // (also when the build lacks the job's script).
    let mut import = jobs[1].clone();
    import["enabled"] = json!(false);
    let id = import["id"].as_str().expect("id").to_owned();
    let response = app.put_json(&format!("/api/v2/jobs/{id}"), &import).await;
    assert_eq!(response.status(), 200);
    let saved = json(response).await;
    assert_eq!(saved["enabled"], false);
    assert_eq!(saved["next_run_at"], Value::Null);

    // Moving it to another script this build lacks is refused.
    import["script"] = json!("nope");
    let response = app.put_json(&format!("/api/v2/jobs/{id}"), &import).await;
    assert_eq!(response.status(), 422);
    let errors = field_errors(&json(response).await);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "script");
    assert!(
        errors[0]
            .1
            .contains("there is no script `nope` in this build; scripts: ")
            && errors[0].1.contains("purge-documents"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn a_job_is_validated_field_by_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"script": "purge-documents", "cron": "0 24 * * *", "params": {"retention_days": 30}}),
            "cron",
            "field 2 (hour)",
        ),
        (
            json!({"script": "purge-documents", "cron": "0 2 * * *", "timezone": "Mars/Olympus", "params": {"retention_days": 30}}),
            "timezone",
            "Mars/Olympus",
        ),
        (
            json!({"script": "nope", "cron": "0 2 * * *"}),
            "script",
            "there is no script `nope` in this build; scripts: ",
        ),
        (
            json!({"script": "purge-documents", "cron": "0 2 * * *"}),
            "params.retention_days",
            "is required",
        ),
        (
            json!({"script": "purge-documents", "cron": "0 2 * * *", "params": {"retention_days": "30"}}),
            "params.retention_days",
            "must be an integer",
        ),
        (
            json!({"script": "purge-documents", "cron": "0 2 * * *", "schedule": "daily", "params": {"retention_days": 30}}),
            "schedule",
            "unknown field",
        ),
    ];
    for (body, field, message) in cases {
        let response = app.post_json("/api/v2/jobs", &body).await;
        assert_eq!(response.status(), 422, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let errors = field_errors(&json(response).await);
        assert!(
            errors
                .iter()
                .any(|(f, m)| f == field && m.contains(message)),
            "{body}: expected {field}: …{message}…, got {errors:?}"
        );
    }
    // Both a bad expression and a bad zone are reported at once.
    let response = app
        .post_json(
            "/api/v2/jobs",
            &json!({"script": "purge-documents", "cron": "61 * * * *", "timezone": "Nowhere", "params": {"retention_days": 1}}),
        )
        .await;
    let fields: Vec<String> = field_errors(&json(response).await)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, ["timezone", "cron"]);
    let jobs = json(app.get("/api/v2/jobs").await).await;
    assert_eq!(
        jobs.as_array().expect("list").len(),
        2,
        "nothing was created"
    );
}

#[tokio::test]
async fn a_job_shows_its_next_runs_across_a_daylight_saving_change() {
    // The test app's clock: 2026-03-29T00:30:00Z, half an hour before
    // Berlin springs forward (02:00 CET → 03:00 CEST).
    let app = TestApp::spawn().await;
    let response = app
        .post_json(
            "/api/v2/jobs",
            &json!({"script": "purge-documents", "cron": "30 2 * * *", "timezone": "Europe/Berlin",
                    "params": {"retention_days": 90}, "description": "keep a quarter"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let job = json(response).await;
    let id = job["id"].as_str().expect("id").to_owned();
    assert_eq!(job["enabled"], true);
    assert_eq!(job["description"], "keep a quarter");
    assert_eq!(job["next_run_at"], "2026-03-29T01:00:00Z");

    let next = json(
        app.get(&format!("/api/v2/jobs/{id}/next-runs?count=3"))
            .await,
    )
    .await;
    assert_eq!(next["description"], "at 02:30 every day (Europe/Berlin)");
    assert_eq!(
        next["runs"],
        json!([
            {"utc": "2026-03-29T01:00:00Z", "local": "2026-03-29T03:00:00+02:00"},
            {"utc": "2026-03-30T00:30:00Z", "local": "2026-03-30T02:30:00+02:00"},
            {"utc": "2026-03-31T00:30:00Z", "local": "2026-03-31T02:30:00+02:00"},
        ])
    );
    let default_count = json(app.get(&format!("/api/v2/jobs/{id}/next-runs")).await).await;
    assert_eq!(default_count["runs"].as_array().expect("runs").len(), 10);
    for bad in ["0", "101", "many"] {
        let response = app
            .get(&format!("/api/v2/jobs/{id}/next-runs?count={bad}"))
            .await;
        assert_eq!(response.status(), 422, "count={bad}");
        assert_eq!(field_errors(&json(response).await)[0].0, "count");
    }

    // Another client sees none of it.
    let other = app.token_for_new_client("other").await;
    let response = app
        .http
        .get(app.url(&format!("/api/v2/jobs/{id}")))
        .bearer_auth(&other)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 404);

    assert_eq!(
        app.delete(&format!("/api/v2/jobs/{id}")).await.status(),
        204
    );
    assert_eq!(app.get(&format!("/api/v2/jobs/{id}")).await.status(), 404);
}

async fn wait_until_finished(app: &TestApp, id: &str) -> Value {
    for _ in 0..500 {
        let execution = json(app.get(&format!("/api/v2/executions/{id}")).await).await;
        if execution["status"] != "running" {
            return execution;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("execution {id} never finished");
}

#[tokio::test]
async fn a_script_runs_on_demand_and_its_execution_is_kept() {
    let app = TestApp::spawn().await;
    let scripts = json(app.get("/api/v2/scripts").await).await;
    let purge = scripts
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["name"] == "purge-documents")
        .expect("purge-documents is listed");
    assert!(
        purge["description"]
            .as_str()
            .unwrap_or_default()
            .contains("Off by default")
    );
    assert_eq!(
        purge["params"],
        json!([{"name": "retention_days", "kind": "integer", "required": true,
                "description": "keep documents this many days (1–36500); older ones are deleted"}])
    );

    let response = app
        .post_json(
            "/api/v2/scripts/purge-documents/run",
            &json!({"retention_days": 30}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let started = json(response).await;
    assert_eq!(started["status"], "running");
    assert_eq!(started["trigger"], "manual");
    assert_eq!(started["job_id"], Value::Null);
    let id = started["id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/api/v2/executions/{id}"));
    let done = wait_until_finished(&app, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["started_at"], "2026-03-29T00:30:00Z");
    assert_eq!(done["finished_at"], "2026-03-29T00:30:00Z");
    assert_eq!(
        done["log"],
        json!([
            "deleting documents imported before 2026-02-27T00:30:00Z (older than 30 days)",
            "0 documents deleted"
        ])
    );

    // Off by default: without a retention the script does not start.
    let response = app
        .http
        .post(app.url("/api/v2/scripts/purge-documents/run"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 422);
    assert_eq!(
        field_errors(&json(response).await)[0].0,
        "params.retention_days"
    );
    let response = app
        .post_json("/api/v2/scripts/import-everything/run", &json!({}))
        .await;
    assert_eq!(response.status(), 404);
    let problem = json(response).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("there is no script `import-everything` in this build; scripts: "),
        "{problem}"
    );

    let list = json(
        app.get("/api/v2/executions?script=purge-documents&limit=10")
            .await,
    )
    .await;
    let ids: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [id.as_str()], "refused runs are not recorded");
    let response = app.get("/api/v2/executions?limit=0").await;
    assert_eq!(response.status(), 422);
    let other = app.token_for_new_client("other").await;
    let theirs = app
        .http
        .get(app.url("/api/v2/executions"))
        .bearer_auth(&other)
        .send()
        .await
        .expect("GET");
    assert_eq!(json(theirs).await, json!([]));
}

fn mailferry_run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(mailferry_bin())
        .arg("run")
        .args(args)
        .env("MAILFERRY_DATA_DIR", dir)
        .env_remove("MAILFERRY_DATABASE_URL")
        .env_remove("MAILFERRY_MASTER_KEY_FILE")
        .output()
        .expect("run mailferry")
}

/// A delegated importer whose grant Microsoft revoked, in `dir`'s database.
async fn revoked_grant_in(dir: &std::path::Path) {
    let store = crate::support::data_dir_store(dir).await;
    let now = jiff::Timestamp::now();
    let client = store.ensure_default_client(now).await.expect("client");
    let input: domain::importer::ImporterInput =
        serde_json::from_value(crate::support::graph_importer_body("Revoked")).expect("input");
    let importer = store
        .create_importer(&client.id, &input.validate(None).expect("valid"), now)
        .await
        .expect("importer");
    store
        .put_grant(&store::grants::Grant {
            importer_id: importer.id,
            state: store::grants::GrantState::ReauthRequired,
            account: Some("alice@contoso.com".into()),
            scopes: vec!["Mail.ReadWrite".into()],
            access_token: None,
            access_token_expires_at: None,
            refresh_token: None,
            refresh_token_issued_at: None,
            last_refresh_at: None,
            last_error: Some("AADSTS50173: the grant was revoked; press Authenticate".into()),
            consecutive_failures: 1,
            version: 1,
            updated_at: now,
        })
        .await
        .expect("grant");
    store.close().await;
}

#[test]
fn mailferry_run_prints_a_summary_and_fails_when_the_script_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = mailferry_run(
        dir.path(),
        &["purge-documents", "--param", "retention_days=30"],
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.starts_with("purge-documents for client default: succeeded in "),
        "{stdout}"
    );
    assert!(stdout.contains("  0 documents deleted"), "{stdout}");

    // Out-of-range parameters are refused before anything runs.
    let out_of_range = mailferry_run(
        dir.path(),
        &["purge-documents", "--param", "retention_days=0"],
    );
    assert!(!out_of_range.status.success());
    let stderr = String::from_utf8_lossy(&out_of_range.stderr);
    assert!(
        stderr.contains("params.retention_days: 0 is out of range: use 1–36500"),
        "{stderr}"
    );

    // A script that runs and fails makes the command fail: refresh-tokens
    // with a grant Microsoft has revoked.
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(revoked_grant_in(dir.path()));
    let failed = mailferry_run(dir.path(), &["refresh-tokens"]);
    assert!(!failed.status.success());
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(
        stdout.contains("refresh-tokens for client default: failed"),
        "{stdout}"
    );
    assert!(stdout.contains("AADSTS50173"), "{stdout}");

    let refused = mailferry_run(dir.path(), &["purge-documents"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("params.retention_days: is required"),
        "{stderr}"
    );

    let unknown = mailferry_run(dir.path(), &["nope"]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("there is no script `nope` in this build; scripts: "),
        "{stderr}"
    );
}
