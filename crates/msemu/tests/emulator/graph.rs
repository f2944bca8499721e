//! Graph mail: addressing, folders, listing with query options and paging, MIME,
//! attachments, move/copy/patch, ids, error shapes and permissions.

use jiff::SignedDuration;
use msemu::{Options, Seed, demo};
use serde_json::{Value, json};

use crate::common::{self, GRAPH, enc, graph_error, mime};

#[tokio::test]
async fn me_users_and_app_tokens() {
    let env = common::start().await;
    let alice = env.alice().await;
    let me = env.get_json(&alice, "/v1.0/me").await;
    assert_eq!(me["userPrincipalName"], demo::ALICE);
    let by_upn = env
        .get_json(&alice, &format!("/v1.0/users/{}", demo::ALICE))
        .await;
    assert_eq!(by_upn["id"], me["id"]);

    let app = env.app_token().await;
    let (code, _) = graph_error(env.get(&app, "/v1.0/me").await, 400).await;
    assert_eq!(code, "BadRequest");
    let folders = env
        .get_json(&app, &format!("/v1.0/users/{}/mailFolders", demo::ALICE))
        .await;
    assert!(folders["value"].as_array().expect("value").len() >= 3);
    let (code, _) = graph_error(
        env.get(&app, "/v1.0/users/nobody@contoso.example/mailFolders")
            .await,
        404,
    )
    .await;
    assert_eq!(code, "ErrorInvalidUser");
    env.stop().await;
}

#[tokio::test]
async fn folders_top_level_paging_hidden_children_and_names() {
    let env = common::start().await;
    let t = env.alice().await;
    for path in [
        "Inbox/Projects",
        "Archive/Projects",
        "Inbox/Projects/2026",
        "Receipts",
    ] {
        let r = env
            .admin_post(
                &format!("/_emulator/mailboxes/{}/folders", demo::ALICE),
                json!({"path": path}),
            )
            .await;
        assert_eq!(r.status(), 201, "{path}");
    }
    // Default page size is 10 and the root lists only its direct children.
    let first = env.get_json(&t, "/v1.0/me/mailFolders").await;
    let mut names: Vec<String> = first["value"]
        .as_array()
        .expect("v")
        .iter()
        .map(|f| f["displayName"].as_str().expect("n").to_string())
        .collect();
    assert_eq!(names.len(), 10);
    let next = first["@odata.nextLink"].as_str().expect("nextLink");
    assert!(
        next.starts_with(&env.base) && !next.contains("skip=") && next.contains("skiptoken"),
        "{next}"
    );
    let second = env
        .get_json(&t, next.strip_prefix(&env.base).expect("base"))
        .await;
    names.extend(
        second["value"]
            .as_array()
            .expect("v")
            .iter()
            .map(|f| f["displayName"].as_str().expect("n").to_string()),
    );
    assert!(second.get("@odata.nextLink").is_none());
    assert!(names.contains(&"Exported".to_string()) && !names.contains(&"Projects".to_string()));
    assert!(!names.contains(&"Sync Issues".to_string()));

    let hidden = env
        .get_json(&t, "/v1.0/me/mailFolders?includeHiddenFolders=true&$top=50")
        .await;
    assert!(
        hidden["value"]
            .as_array()
            .expect("v")
            .iter()
            .any(|f| f["displayName"] == "Sync Issues" && f["isHidden"] == true)
    );

    // Well-known names, both path forms; the returned id is the real one.
    let inbox = env.get_json(&t, "/v1.0/me/mailFolders/inbox").await;
    let inbox2 = env.get_json(&t, "/v1.0/me/mailFolders('Inbox')").await;
    assert_eq!(inbox["id"], inbox2["id"]);
    assert_ne!(inbox["id"], "inbox");
    assert_eq!(inbox["childFolderCount"], 1);
    let inbox_id = inbox["id"].as_str().expect("id");
    let kids = env
        .get_json(
            &t,
            &format!("/v1.0/me/mailFolders/{}/childFolders", enc(inbox_id)),
        )
        .await;
    let projects = &kids["value"][0];
    assert_eq!(projects["displayName"], "Projects");
    assert_eq!(projects["parentFolderId"], inbox["id"]);
    let grandkids = env
        .get_json(
            &t,
            &format!(
                "/v1.0/me/mailFolders/{}/childFolders/{}/childFolders",
                enc(inbox_id),
                enc(projects["id"].as_str().expect("id"))
            ),
        )
        .await;
    assert_eq!(grandkids["value"][0]["displayName"], "2026");

    // Same name under another parent is fine; a sibling duplicate is not.
    let dup = env
        .http
        .post(env.url(&format!(
            "/v1.0/me/mailFolders/{}/childFolders",
            enc(inbox_id)
        )))
        .bearer_auth(&t)
        .json(&json!({"displayName": "projects"}))
        .send()
        .await
        .expect("post");
    assert_eq!(graph_error(dup, 409).await.0, "ErrorFolderExists");
    let created = env
        .http
        .post(env.url("/v1.0/me/mailFolders"))
        .bearer_auth(&t)
        .json(&json!({"displayName": "Projects"}))
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), 201);

    let delta = env.get_json(&t, "/v1.0/me/mailFolders/delta").await;
    assert!(
        delta["value"]
            .as_array()
            .expect("v")
            .iter()
            .any(|f| f["displayName"] == "2026")
    );
    assert!(delta["@odata.deltaLink"].is_string());
    env.stop().await;
}

async fn seed_messages(env: &common::Env, n: usize, folder: &str) {
    for i in 0..n {
        let r = env
            .admin_post(
                &format!("/_emulator/mailboxes/{}/messages", demo::ALICE),
                json!({
                    "folder": folder,
                    "mime": mime(&format!("Bulk {i:02}"), "Mon, 05 Jan 2026 10:00:00 +0000"),
                    "received": format!("2026-02-{:02}T10:00:00Z", i + 1),
                }),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
}

#[tokio::test]
async fn message_listing_query_options_and_paging() {
    let env = common::start().await;
    let t = env.alice().await;
    seed_messages(&env, 25, "Bulk").await;
    let folders = env.get_json(&t, "/v1.0/me/mailFolders?$top=20").await;
    let bulk_id = folders["value"]
        .as_array()
        .expect("v")
        .iter()
        .find(|f| f["displayName"] == "Bulk")
        .expect("Bulk")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let base = format!("/v1.0/me/mailFolders/{}/messages", enc(&bulk_id));

    let default = env.get_json(&t, &base).await;
    assert_eq!(default["value"].as_array().expect("v").len(), 10);
    // Default order is newest first.
    assert_eq!(default["value"][0]["subject"], "Bulk 24");

    let mut seen = vec![];
    let mut next = Some(format!(
        "{base}?$top=10&$select=subject,receivedDateTime&$orderby=receivedDateTime asc"
    ));
    let mut pages = 0;
    while let Some(link) = next {
        let page = env
            .get_json(&t, link.strip_prefix(&env.base).unwrap_or(&link))
            .await;
        for m in page["value"].as_array().expect("v") {
            assert!(
                m.get("body").is_none() && m["id"].is_string() && m["subject"].is_string(),
                "{m}"
            );
            seen.push(m["subject"].as_str().expect("s").to_string());
        }
        next = page["@odata.nextLink"].as_str().map(str::to_string);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    assert_eq!(seen[0], "Bulk 00");
    assert_eq!(seen[24], "Bulk 24");

    // A client that computes its own $skiptoken breaks, as it would against Graph.
    let forged = env.get(&t, &format!("{base}?$top=10&$skiptoken=10")).await;
    assert_eq!(forged.status(), 400);

    let filtered = env
        .get_json(&t, &format!("{base}?$filter=receivedDateTime ge 2026-02-20T00:00:00Z&$orderby=receivedDateTime desc&$top=50"))
        .await;
    assert_eq!(filtered["value"].as_array().expect("v").len(), 6);
    let inefficient = env
        .get(&t, &format!("{base}?$filter=isRead eq false and receivedDateTime ge 2026-02-20T00:00:00Z&$orderby=receivedDateTime desc"))
        .await;
    assert_eq!(graph_error(inefficient, 400).await.0, "InefficientFilter");
    let too_big = env.get(&t, &format!("{base}?$top=1001")).await;
    assert_eq!(too_big.status(), 400);
    let max = env.get_json(&t, &format!("{base}?$top=1000")).await;
    assert_eq!(max["value"].as_array().expect("v").len(), 25);
    let bad_select = env.get(&t, &format!("{base}?$select=nonsense")).await;
    assert_eq!(bad_select.status(), 400);
    env.stop().await;
}

const WITH_ATTACHMENTS: &str = "From: a@example.org\r\nTo: alice@contoso.example\r\nSubject: Parts\r\n\
Message-ID: <parts@example.org>\r\nDate: Tue, 06 Jan 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n\
Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n--rel\r\nContent-Type: text/html\r\n\r\n\
<p>logo <img src=\"cid:logo@x\"></p>\r\n--rel\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n\
Content-Disposition: inline; filename=\"logo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--rel--\r\n\
--outer\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--outer\r\nContent-Type: message/rfc822\r\n\
Content-Disposition: attachment\r\n\r\nFrom: b@example.org\r\nTo: c@example.org\r\nSubject: Forwarded one\r\n\r\nInner body\r\n\
--outer--\r\n";

#[tokio::test]
async fn mime_and_attachments() {
    let env = common::start().await;
    let t = env.alice().await;
    let info = env
        .emu()
        .add_message(demo::ALICE, "Inbox", WITH_ATTACHMENTS.as_bytes())
        .expect("add");
    let m = format!("/v1.0/me/messages/{}", enc(&info.id));

    let raw = env.get(&t, &format!("{m}/$value")).await;
    assert_eq!(raw.status(), 200);
    assert!(
        raw.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/plain")
    );
    assert_eq!(
        raw.bytes().await.expect("bytes").as_ref(),
        WITH_ATTACHMENTS.as_bytes()
    );

    let msg = env.get_json(&t, &m).await;
    assert_eq!(msg["hasAttachments"], true);
    assert_eq!(msg["internetMessageId"], "<parts@example.org>");
    assert_eq!(msg["from"]["emailAddress"]["address"], "a@example.org");

    let list = env.get_json(&t, &format!("{m}/attachments")).await;
    let atts = list["value"].as_array().expect("v");
    assert_eq!(atts.len(), 3, "{list}");
    let by_type = |t: &str| {
        atts.iter()
            .filter(|a| a["@odata.type"] == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    let files = by_type("#microsoft.graph.fileAttachment");
    let inline = files
        .iter()
        .find(|a| a["isInline"] == true)
        .expect("inline");
    assert_eq!(inline["contentId"], "logo@x");
    let pdf = files.iter().find(|a| a["name"] == "a.pdf").expect("pdf");
    assert_eq!(pdf["contentType"], "application/pdf");
    assert_eq!(pdf["contentBytes"], "JVBERi0xLjQK");
    let item = &by_type("#microsoft.graph.itemAttachment")[0];
    assert!(item["contentType"].is_null());

    let pdf_raw = env
        .get(
            &t,
            &format!(
                "{m}/attachments/{}/$value",
                enc(pdf["id"].as_str().expect("id"))
            ),
        )
        .await;
    assert_eq!(pdf_raw.headers()["content-type"], "application/pdf");
    assert!(pdf_raw.bytes().await.expect("b").starts_with(b"%PDF"));
    let item_id = enc(item["id"].as_str().expect("id"));
    let expanded = env
        .get_json(
            &t,
            &format!("{m}/attachments/{item_id}?$expand=microsoft.graph.itemattachment/item"),
        )
        .await;
    assert_eq!(expanded["item"]["subject"], "Forwarded one");
    let item_raw = env
        .get(&t, &format!("{m}/attachments/{item_id}/$value"))
        .await;
    assert!(
        String::from_utf8_lossy(&item_raw.bytes().await.expect("b"))
            .contains("Subject: Forwarded one")
    );
    env.stop().await;
}

#[tokio::test]
async fn move_copy_patch_and_ids() {
    let env = common::start().await;
    let t = env.alice().await;
    let list = env
        .get_json(&t, "/v1.0/me/mailFolders/inbox/messages")
        .await;
    let id = list["value"][0]["id"].as_str().expect("id").to_string();
    assert!(
        id.contains('/') && id.contains('+') && id.contains('='),
        "{id}"
    );

    // Unescaped ids split into segments: Graph says the id is malformed.
    let (code, _) = graph_error(env.get(&t, &format!("/v1.0/me/messages/{id}")).await, 400).await;
    assert_eq!(code, "ErrorInvalidIdMalformed");
    let wrong_case = id.to_lowercase();
    let resp = env
        .get(&t, &format!("/v1.0/me/messages/{}", enc(&wrong_case)))
        .await;
    assert_eq!(resp.status(), 404, "ids are case-sensitive");

    let exported = env.get_json(&t, "/v1.0/me/mailFolders?$top=20").await["value"]
        .as_array()
        .expect("v")
        .iter()
        .find(|f| f["displayName"] == "Exported")
        .expect("Exported")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let moved = env
        .http
        .post(env.url(&format!("/v1.0/me/messages/{}/move", enc(&id))))
        .bearer_auth(&t)
        .json(&json!({"destinationId": exported}))
        .send()
        .await
        .expect("move");
    assert_eq!(moved.status(), 201);
    let moved: Value = moved.json().await.expect("json");
    let new_id = moved["id"].as_str().expect("id").to_string();
    assert_ne!(new_id, id);
    assert_eq!(moved["parentFolderId"], exported.as_str());
    let (code, _) = graph_error(
        env.get(&t, &format!("/v1.0/me/messages/{}", enc(&id)))
            .await,
        404,
    )
    .await;
    assert_eq!(code, "ErrorItemNotFound");

    // With immutable ids the id survives a move (here: back to the inbox by well-known name).
    let imm = env
        .http
        .get(env.url(&format!("/v1.0/me/messages/{}", enc(&new_id))))
        .bearer_auth(&t)
        .header("Prefer", "IdType=\"ImmutableId\"")
        .send()
        .await
        .expect("get");
    assert_eq!(
        imm.headers()["preference-applied"],
        "IdType=\"ImmutableId\""
    );
    let imm_id = imm.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let back = env
        .http
        .post(env.url(&format!("/v1.0/me/messages/{}/move", enc(&imm_id))))
        .bearer_auth(&t)
        .header("Prefer", "IdType=\"ImmutableId\"")
        .json(&json!({"destinationId": "inbox"}))
        .send()
        .await
        .expect("move");
    assert_eq!(back.status(), 201);
    assert_eq!(
        back.json::<Value>().await.expect("json")["id"],
        imm_id.as_str()
    );
    assert_eq!(
        env.get(&t, &format!("/v1.0/me/messages/{}", enc(&imm_id)))
            .await
            .status(),
        200
    );

    let copy = env
        .http
        .post(env.url(&format!("/v1.0/me/messages/{}/copy", enc(&imm_id))))
        .bearer_auth(&t)
        .json(&json!({"destinationId": "archive"}))
        .send()
        .await
        .expect("copy");
    assert_eq!(copy.status(), 201);

    let patched = env
        .http
        .patch(env.url(&format!("/v1.0/me/messages/{}", enc(&imm_id))))
        .bearer_auth(&t)
        .json(&json!({"isRead": true, "categories": ["Imported"]}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let p: Value = patched.json().await.expect("json");
    assert_eq!(
        (p["isRead"].clone(), p["categories"][0].clone()),
        (json!(true), json!("Imported"))
    );
    let read_only = env
        .http
        .patch(env.url(&format!("/v1.0/me/messages/{}", enc(&imm_id))))
        .bearer_auth(&t)
        .json(&json!({"receivedDateTime": "2020-01-01T00:00:00Z"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(read_only.status(), 400);

    let folders = env.emu().folders(demo::ALICE).expect("folders");
    assert_eq!(
        folders
            .iter()
            .find(|f| f.path == "Archive")
            .expect("archive")
            .total,
        1
    );
    let msgs = env.emu().messages(demo::ALICE).expect("messages");
    assert!(
        msgs.iter()
            .any(|m| m.folder_path == "Inbox" && m.is_read && m.categories == ["Imported"])
    );
    env.stop().await;
}

#[tokio::test]
async fn error_shape_and_token_validation() {
    let env = common::start().await;
    let t = env.alice().await;
    let resp = env
        .http
        .get(env.url("/v1.0/me/messages/AAMkAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%3D"))
        .bearer_auth(&t)
        .header("client-request-id", "my-client-id")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.headers()["client-request-id"], "my-client-id");
    let (code, _) = graph_error(resp, 404).await;
    assert_eq!(code, "ErrorItemNotFound");

    let (code, h) = graph_error(env.get("not-a-jwt", "/v1.0/me").await, 401).await;
    assert_eq!(code, "InvalidAuthenticationToken");
    assert!(
        h["www-authenticate"]
            .to_str()
            .expect("h")
            .starts_with("Bearer realm=\"\"")
    );
    let no_auth = env.http.get(env.url("/v1.0/me")).send().await.expect("get");
    assert_eq!(
        graph_error(no_auth, 401).await.0,
        "InvalidAuthenticationToken"
    );

    // Expiry follows the emulator's clock.
    env.emu().advance_clock(SignedDuration::from_mins(76));
    let (code, h) = graph_error(env.get(&t, "/v1.0/me").await, 401).await;
    assert_eq!(code, "InvalidAuthenticationToken");
    assert!(h.contains_key("www-authenticate"));
    let unknown_segment = env.get(&env.alice().await, "/v1.0/me/calendars").await;
    assert_eq!(graph_error(unknown_segment, 400).await.0, "BadRequest");
    env.stop().await;
}

#[tokio::test]
async fn permissions_for_own_shared_and_app_access() {
    let mut seed = Seed::demo();
    seed.tenants[0].apps[1].application_roles = vec!["User.Read.All".into()];
    let env = common::start_with(
        seed,
        Options {
            auto_consent: true,
            ..Options::default()
        },
    )
    .await;
    let shared = format!("/v1.0/users/{}/mailFolders/inbox/messages", demo::SHARED);

    let full = env.alice().await;
    assert_eq!(
        env.get_json(&full, &shared).await["value"]
            .as_array()
            .expect("v")
            .len(),
        2
    );

    let no_shared = env
        .user_tokens(demo::ALICE, &format!("{GRAPH}Mail.ReadWrite"))
        .await
        .access;
    assert_eq!(
        graph_error(env.get(&no_shared, &shared).await, 403).await.0,
        "ErrorAccessDenied"
    );
    assert_eq!(
        env.get(&no_shared, "/v1.0/me/mailFolders").await.status(),
        200
    );
    let bob_path = format!("/v1.0/users/{}/mailFolders", demo::BOB);
    assert_eq!(
        graph_error(env.get(&full, &bob_path).await, 403).await.0,
        "ErrorAccessDenied"
    );

    // Bob has the .Shared scope but no Exchange rights on the shared mailbox.
    let bob = env
        .user_tokens(
            demo::BOB,
            &format!("{GRAPH}Mail.ReadWrite {GRAPH}Mail.ReadWrite.Shared"),
        )
        .await
        .access;
    assert_eq!(
        graph_error(env.get(&bob, &shared).await, 403).await.0,
        "ErrorAccessDenied"
    );

    let user_read_only = env
        .user_tokens(demo::ALICE, &format!("{GRAPH}User.Read"))
        .await
        .access;
    assert_eq!(env.get(&user_read_only, "/v1.0/me").await.status(), 200);
    assert_eq!(
        graph_error(env.get(&user_read_only, "/v1.0/me/mailFolders").await, 403)
            .await
            .0,
        "ErrorAccessDenied"
    );

    let read_only = env
        .user_tokens(demo::ALICE, &format!("{GRAPH}Mail.Read"))
        .await
        .access;
    let id = env.get_json(&read_only, "/v1.0/me/messages").await["value"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let patch = env
        .http
        .patch(env.url(&format!("/v1.0/me/messages/{}", enc(&id))))
        .bearer_auth(&read_only)
        .json(&json!({"isRead": true}))
        .send()
        .await
        .expect("patch");
    assert_eq!(graph_error(patch, 403).await.0, "ErrorAccessDenied");

    let app_without_mail = env.app_token().await;
    assert_eq!(
        graph_error(
            env.get(
                &app_without_mail,
                &format!("/v1.0/users/{}/messages", demo::ALICE)
            )
            .await,
            403
        )
        .await
        .0,
        "ErrorAccessDenied"
    );
    env.stop().await;
}
