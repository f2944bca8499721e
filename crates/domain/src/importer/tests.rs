use super::*;

fn graph_input() -> ImporterInput {
    serde_json::from_value(serde_json::json!({
        "name": "Invoices",
        "protocol": "graph_delegated",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "s3cr3t",
        "tenant_id": "contoso.onmicrosoft.com",
        "mailbox": "invoices@contoso.com",
        "folders": { "inbox": "Inbox", "exported": "Inbox/Exported", "error": "Error" },
        "attachments": { "allowed_types": ["application/pdf", "Image/*"], "include_inline": false }
    }))
    .expect("valid json")
}

fn imap_input() -> ImporterInput {
    serde_json::from_value(serde_json::json!({
        "name": "Scans",
        "protocol": "imap",
        "host": "imap.example.com",
        "security": "starttls",
        "username": "scans",
        "password": "pw",
        "folders": { "inbox": "INBOX", "exported": "Exported", "error": "Error" }
    }))
    .expect("valid json")
}

#[test]
fn a_complete_graph_importer_is_parsed_with_cloud_defaults() {
    let valid = graph_input().validate(None).expect("valid");
    let graph = valid.settings.graph().expect("graph");
    assert_eq!(graph.app.cloud, Cloud::Global);
    assert_eq!(
        graph.app.endpoints.authority,
        "https://login.microsoftonline.com"
    );
    assert_eq!(graph.app.endpoints.graph, "https://graph.microsoft.com");
    assert_eq!(graph.mailbox.as_deref(), Some("invoices@contoso.com"));
    assert_eq!(
        valid.settings.attachments.allowed_types,
        ["application/pdf", "image/*"]
    );
    assert_eq!(
        valid.secret,
        Some((SecretKind::ClientSecret, SecretChange::Set("s3cr3t".into())))
    );
}

#[test]
fn every_missing_field_is_named_at_once() {
    let errors = ImporterInput {
        protocol: Some("graph_delegated".into()),
        ..Default::default()
    }
    .validate(None)
    .expect_err("invalid");
    for field in [
        "name",
        "client_id",
        "tenant_id",
        "folders.inbox",
        "folders.exported",
        "folders.error",
    ] {
        assert!(errors.mentions(field), "{field} not reported in {errors}");
    }
}

#[test]
fn folders_must_be_distinct_ignoring_case() {
    let mut input = graph_input();
    input.folders = Some(FoldersInput {
        inbox: Some("Inbox".into()),
        exported: Some("inbox".into()),
        error: Some("Error".into()),
    });
    let errors = input.validate(None).expect_err("invalid");
    assert!(errors.mentions("folders.exported"));
    assert!(!errors.mentions("folders.error"));
}

#[test]
fn client_credentials_need_a_mailbox_and_a_real_tenant() {
    let mut input = graph_input();
    input.protocol = Some("graph_client_credentials".into());
    input.mailbox = None;
    input.tenant_id = Some("common".into());
    let errors = input.validate(None).expect_err("invalid");
    assert!(errors.mentions("mailbox"));
    assert!(errors.mentions("tenant_id"));
}

#[test]
fn delegated_importer_may_use_the_users_own_mailbox_and_common() {
    let mut input = graph_input();
    input.mailbox = Some("".into());
    input.tenant_id = Some("Common".into());
    let valid = input.validate(None).expect("valid");
    let graph = valid.settings.graph().expect("graph");
    assert_eq!(graph.mailbox, None);
    assert_eq!(graph.app.tenant_id.as_str(), "common");
}

#[test]
fn secret_is_required_on_create_and_kept_on_update() {
    let mut input = graph_input();
    input.client_secret = None;
    assert!(
        input
            .validate(None)
            .expect_err("invalid")
            .mentions("client_secret")
    );
    let valid = input
        .validate(Some(SecretKind::ClientSecret))
        .expect("valid");
    assert_eq!(
        valid.secret,
        Some((SecretKind::ClientSecret, SecretChange::Keep))
    );
    // a stored IMAP password is no client secret
    assert!(input.validate(Some(SecretKind::Password)).is_err());
}

#[test]
fn bad_values_are_explained() {
    let mut input = graph_input();
    input.client_id = Some("my-app".into());
    input.tenant_id = Some("not a tenant".into());
    input.mailbox = Some("nobody".into());
    input.cloud = Some("mars".into());
    input.client_secret_expires_at = Some("next week".into());
    input.attachments = Some(AttachmentRulesInput {
        allowed_types: Some(vec!["pdf".into()]),
        allowed_extensions: Some(vec!["p d f".into()]),
        ..Default::default()
    });
    let errors = input.validate(None).expect_err("invalid");
    for field in [
        "client_id",
        "tenant_id",
        "mailbox",
        "cloud",
        "client_secret_expires_at",
        "attachments.allowed_types[0]",
        "attachments.allowed_extensions[0]",
    ] {
        assert!(errors.mentions(field), "{field} not reported in {errors}");
    }
    let cloud = errors
        .errors
        .iter()
        .find(|e| e.field == "cloud")
        .expect("cloud");
    assert!(cloud.message.contains("`usgov-dod`"), "{}", cloud.message);
}

#[test]
fn custom_endpoints_override_the_cloud_but_not_the_resource() {
    let mut input = graph_input();
    input.cloud = Some("usgov".into());
    input.endpoints = Some(EndpointsInput {
        authority: Some("http://127.0.0.1:9000/".into()),
        graph: None,
    });
    let valid = input.validate(None).expect("valid");
    let graph = valid.settings.graph().expect("graph");
    assert_eq!(graph.app.endpoints.authority, "http://127.0.0.1:9000");
    assert_eq!(graph.app.endpoints.graph, "https://graph.microsoft.us");
    assert_eq!(
        graph.app.cloud.graph_resource(),
        "https://graph.microsoft.us"
    );

    input.endpoints = Some(EndpointsInput {
        authority: Some("ftp://x".into()),
        graph: Some("https://graph?x=1".into()),
    });
    let errors = input.validate(None).expect_err("invalid");
    assert!(errors.mentions("endpoints.authority"));
    assert!(errors.mentions("endpoints.graph"));
}

#[test]
fn imap_defaults_and_foreign_fields() {
    let valid = imap_input().validate(None).expect("valid");
    let imap = valid.settings.imap().expect("imap");
    assert_eq!(imap.port, 143);
    assert_eq!(imap.auth, ImapLogin::Password);
    assert_eq!(valid.settings.delegated_access(), None);
    assert_eq!(
        valid.secret,
        Some((SecretKind::Password, SecretChange::Set("pw".into())))
    );

    let mut input = imap_input();
    input.client_id = Some("11111111-2222-3333-4444-555555555555".into());
    input.port = Some(70000);
    let errors = input.validate(None).expect_err("invalid");
    assert!(errors.mentions("client_id"));
    assert!(errors.mentions("port"));
}

#[test]
fn imap_with_xoauth2_signs_in_with_an_entra_app_instead_of_a_password() {
    let mut input = imap_input();
    input.auth = Some("xoauth2".into());
    let errors = input.validate(None).expect_err("invalid");
    // The password is refused, and the app's fields are asked for.
    assert!(errors.mentions("password"));
    assert!(errors.mentions("client_id"));
    assert!(errors.mentions("tenant_id"));

    input.password = None;
    input.client_id = Some("11111111-2222-3333-4444-555555555555".into());
    input.tenant_id = Some("contoso.onmicrosoft.com".into());
    let errors = input.validate(None).expect_err("no client secret");
    assert!(errors.mentions("client_secret"));
    input.client_secret = Some("s3cret".into());
    let valid = input.validate(None).expect("valid");
    assert_eq!(
        valid.secret,
        Some((SecretKind::ClientSecret, SecretChange::Set("s3cret".into())))
    );
    assert_eq!(
        valid.settings.delegated_access(),
        Some(DelegatedAccess::Imap)
    );
    let app = valid.settings.entra_app().expect("an Entra app");
    assert_eq!(app.cloud.outlook_resource(), "https://outlook.office.com");
    assert_eq!(app.endpoints.authority, "https://login.microsoftonline.com");
}

#[test]
fn grant_survives_only_changes_that_keep_the_application() {
    let base = graph_input().validate(None).expect("valid").settings;
    let mut renamed = base.clone();
    renamed.name = "Renamed".into();
    if let Connection::Graph(g) = &mut renamed.connection {
        g.mailbox = Some("other@contoso.com".into());
    }
    assert!(base.grant_survives_change_to(&renamed, false));
    assert!(!base.grant_survives_change_to(&renamed, true));
    for change in [
        |g: &mut GraphSettings| g.app.client_id = "99999999-2222-3333-4444-555555555555".into(),
        |g: &mut GraphSettings| g.app.tenant_id = TenantId("fabrikam.com".into()),
        |g: &mut GraphSettings| g.app.cloud = Cloud::China,
        |g: &mut GraphSettings| g.app.endpoints.graph = "http://127.0.0.1:1".into(),
    ] {
        let mut next = base.clone();
        if let Connection::Graph(g) = &mut next.connection {
            change(g);
        }
        assert!(!base.grant_survives_change_to(&next, false));
    }
    let mut cc = base.clone();
    cc.protocol = Protocol::GraphClientCredentials;
    assert!(!base.grant_survives_change_to(&cc, false));
}

#[test]
fn instants_are_parsed_to_utc_whatever_the_offset() {
    let a = parse_instant("2026-05-31T02:00:00+02:00").expect("valid");
    let b = parse_instant("2026-05-31").expect("valid");
    assert_eq!(a, b);
    assert_eq!(b.to_string(), "2026-05-31T00:00:00Z");
    assert!(parse_instant("31.05.2026").is_err());
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let err = serde_json::from_value::<ImporterInput>(serde_json::json!({"nmae": "x"}))
        .expect_err("unknown field");
    assert!(err.to_string().contains("nmae"));
}

#[test]
fn secret_expiry_warns_within_thirty_days() {
    let mut input = graph_input();
    input.client_secret_expires_at = Some("2026-05-31T02:00:00+02:00".into());
    let valid = input.validate(None).expect("valid");
    let graph = valid.settings.graph().expect("graph");
    let at = |s: &str| s.parse::<Timestamp>().expect("ts");
    assert_eq!(
        graph.app.secret_expiry_warning(at("2026-04-30T23:59:59Z")),
        None
    );
    let soon = graph
        .app
        .secret_expiry_warning(at("2026-05-02T00:00:00Z"))
        .expect("warns");
    assert!(
        soon.contains("2026-05-31 00:00 UTC") && soon.contains("in 29 days"),
        "{soon}"
    );
    let past = graph
        .app
        .secret_expiry_warning(at("2026-06-01T00:00:00Z"))
        .expect("warns");
    assert!(past.contains("expired on"), "{past}");
}

#[test]
fn attachment_name_patterns_are_parsed_lower_case_and_bad_ones_named() {
    let mut input = graph_input();
    input.attachments = Some(AttachmentRulesInput {
        exclude_names: Some(vec!["*AGB*.pdf".into(), "logo*.png".into()]),
        include_names: Some(vec!["*.pdf".into()]),
        ..AttachmentRulesInput::default()
    });
    let valid = input.validate(None).expect("valid");
    assert_eq!(
        valid.settings.attachments.exclude_names,
        ["*agb*.pdf", "logo*.png"]
    );
    assert_eq!(valid.settings.attachments.include_names, ["*.pdf"]);

    input.attachments = Some(AttachmentRulesInput {
        exclude_names: Some(vec!["ok.pdf".into(), " ".into()]),
        include_names: Some(vec!["a\u{7}b".into()]),
        ..AttachmentRulesInput::default()
    });
    let errors = input.validate(None).expect_err("invalid");
    assert!(
        errors.mentions("attachments.exclude_names[1]"),
        "{errors:?}"
    );
    assert!(
        errors.mentions("attachments.include_names[0]"),
        "{errors:?}"
    );
}

#[test]
fn an_xoauth2_grant_does_not_follow_the_importer_to_another_imap_server() {
    let mut input = imap_input();
    input.auth = Some("xoauth2".into());
    input.password = None;
    input.client_id = Some("11111111-2222-3333-4444-555555555555".into());
    input.tenant_id = Some("contoso.onmicrosoft.com".into());
    input.client_secret = Some("s3cret".into());
    let base = input.validate(None).expect("valid").settings;
    let mut renamed = base.clone();
    renamed.name = "Renamed".into();
    assert!(base.grant_survives_change_to(&renamed, false));
    for change in [
        |i: &mut ImapSettings| i.host = "imap.attacker.example".into(),
        |i: &mut ImapSettings| i.port = 1993,
    ] {
        let mut next = base.clone();
        if let Connection::Imap(i) = &mut next.connection {
            change(i);
        }
        assert!(!base.grant_survives_change_to(&next, false));
    }
}

#[test]
fn import_body_is_one_of_three_and_never_by_default() {
    let mut input = graph_input();
    assert_eq!(
        input.validate(None).expect("valid").settings.import_body,
        ImportBody::Never
    );
    input.import_body = Some("when_no_attachment".into());
    assert_eq!(
        input.validate(None).expect("valid").settings.import_body,
        ImportBody::WhenNoAttachment
    );
    input.import_body = Some("sometimes".into());
    let errors = input.validate(None).expect_err("invalid");
    assert!(errors.mentions("import_body"), "{errors:?}");
}

#[test]
fn two_importers_of_one_mailbox_share_its_key_and_other_mailboxes_do_not() {
    let body = |mailbox: &str| {
        serde_json::json!({
            "name": "x", "protocol": "graph_client_credentials",
            "client_id": "11111111-2222-3333-4444-555555555555", "client_secret": "s",
            "tenant_id": "contoso.onmicrosoft.com", "mailbox": mailbox,
            "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
        })
    };
    let key = |b: serde_json::Value| {
        let input: ImporterInput = serde_json::from_value(b).expect("input");
        input
            .validate(None)
            .expect("valid")
            .settings
            .mailbox_key(None)
    };
    let a = key(body("Invoices@Contoso.com"));
    assert!(a.is_some());
    assert_eq!(
        a,
        key(body("invoices@contoso.com")),
        "case does not make another mailbox"
    );
    assert_ne!(a, key(body("other@contoso.com")));
    // The user's own mailbox is known only from the signed-in account.
    let mut own = body("");
    own["protocol"] = "graph_delegated".into();
    let input: ImporterInput = serde_json::from_value(own).expect("input");
    let settings = input.validate(None).expect("valid").settings;
    assert_eq!(settings.mailbox_key(None), None);
    assert_eq!(
        settings.mailbox_key(Some("Invoices@contoso.com")),
        a,
        "a delegated importer signed in as the mailbox's owner shares the app-only importer's key"
    );
}
