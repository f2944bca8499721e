//! The seed: the serialisable description of tenants, apps, users and mailboxes the
//! emulator starts with. See the crate README for the JSON format.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Everything the emulator knows at start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    pub tenants: Vec<SeedTenant>,
}

/// A directory (Entra tenant).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedTenant {
    /// Tenant GUID.
    pub id: String,
    /// Verified domain names, e.g. `contoso.example`; any of them can name the tenant in URLs.
    pub domains: Vec<String>,
    #[serde(default)]
    pub apps: Vec<SeedApp>,
    #[serde(default)]
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub shared_mailboxes: Vec<SeedSharedMailbox>,
}

/// An app registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedApp {
    pub client_id: String,
    #[serde(default)]
    pub display_name: String,
    /// Client secrets. An app without secrets is a public client.
    #[serde(default)]
    pub secrets: Vec<SeedSecret>,
    /// Certificate credentials (PEM), checked in client assertions.
    #[serde(default)]
    pub certificates: Vec<SeedCertificate>,
    /// Registered redirect URIs, matched exactly (case and trailing slash matter).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Delegated permissions configured on the app: Graph's as short names (e.g.
    /// `Mail.ReadWrite`), Exchange Online's as full URIs
    /// (`https://outlook.office.com/IMAP.AccessAsUser.All`). Requesting anything else at
    /// /authorize fails with AADSTS70011.
    #[serde(default)]
    pub delegated_permissions: Vec<String>,
    /// Application permissions (app roles) granted with admin consent, e.g. `Mail.ReadWrite`.
    #[serde(default)]
    pub application_roles: Vec<String>,
    /// An admin consented to the delegated permissions for every user.
    #[serde(default)]
    pub admin_consent: bool,
    /// Users (UPNs) who already consented to all delegated permissions.
    #[serde(default)]
    pub user_consents: Vec<String>,
}

/// A certificate uploaded to the app registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCertificate {
    pub pem: String,
}

/// A client secret with an optional expiry.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSecret {
    pub value: String,
    #[serde(default)]
    pub expires: Option<Timestamp>,
}

impl std::fmt::Debug for SeedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedSecret")
            .field("value", &"****")
            .field("expires", &self.expires)
            .finish()
    }
}

/// A user with a mailbox.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    /// Object id (GUID); generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    pub user_principal_name: String,
    #[serde(default)]
    pub display_name: String,
    pub password: String,
    #[serde(default)]
    pub folders: Vec<SeedFolder>,
}

impl std::fmt::Debug for SeedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedUser")
            .field("id", &self.id)
            .field("user_principal_name", &self.user_principal_name)
            .field("password", &"****")
            .finish_non_exhaustive()
    }
}

/// A shared mailbox and the users (UPNs) with full access to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSharedMailbox {
    #[serde(default)]
    pub id: Option<String>,
    pub user_principal_name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub full_access: Vec<String>,
    #[serde(default)]
    pub folders: Vec<SeedFolder>,
}

/// A folder below the mailbox root. Well-known folders (Inbox, Drafts, …) are created
/// automatically; naming one here (by display name or `well_known_name`) adds children or
/// messages to it instead of creating a duplicate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFolder {
    pub display_name: String,
    #[serde(default)]
    pub well_known_name: Option<String>,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub children: Vec<SeedFolder>,
    #[serde(default)]
    pub messages: Vec<SeedMessage>,
}

/// A message as raw RFC 5322 text; Graph properties are derived from it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedMessage {
    /// The raw MIME text.
    #[serde(default)]
    pub mime: Option<String>,
    /// The raw MIME, base64-encoded (for 8-bit or binary content).
    #[serde(default)]
    pub mime_base64: Option<String>,
    /// When the mailbox received it; defaults to the `Date` header, else "now".
    #[serde(default)]
    pub received: Option<Timestamp>,
    #[serde(default)]
    pub is_read: bool,
}

/// The demo tenant's id, app and users, exported so scripts and tests can refer to them.
pub mod demo {
    pub const TENANT_ID: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    pub const DOMAIN: &str = "contoso.example";
    pub const CLIENT_ID: &str = "0b7a1c52-2f3e-4c7f-9a55-6d1e8f0c4b21";
    pub const CLIENT_SECRET: &str = "demo-secret~value.NotForProduction";
    pub const REDIRECT_URI: &str = "http://127.0.0.1:8080/api/v2/importers/email/authenticate/end";
    pub const DAEMON_CLIENT_ID: &str = "5f2d3c1b-8e7a-4d6c-b9a0-1c2e3f4a5b6c";
    pub const DAEMON_CLIENT_SECRET: &str = "daemon-secret~value.NotForProduction";
    pub const ALICE: &str = "alice@contoso.example";
    pub const ALICE_PASSWORD: &str = "Alice-Passw0rd!";
    pub const BOB: &str = "bob@contoso.example";
    pub const BOB_PASSWORD: &str = "Bob-Passw0rd!";
    pub const SHARED: &str = "invoices@contoso.example";
}

impl Seed {
    /// A ready demo tenant: an importer app (delegated, with a secret and the mailferry redirect
    /// URI), a daemon app with the `Mail.ReadWrite` application role, `alice` (Inbox with sample
    /// mails carrying PDF attachments, plus `Exported` and `Error`), `bob` (no shared access) and
    /// the shared mailbox `invoices@` that alice has full access to.
    pub fn demo() -> Seed {
        let sample = |n: usize, folder: &str| SeedMessage {
            mime: Some(sample_mime(n, folder)),
            received: Timestamp::from_second(1_767_225_600 + (n as i64) * 3600).ok(),
            ..SeedMessage::default()
        };
        let folder = |name: &str, messages: Vec<SeedMessage>| SeedFolder {
            display_name: name.to_string(),
            messages,
            ..SeedFolder::default()
        };
        Seed {
            tenants: vec![SeedTenant {
                id: demo::TENANT_ID.into(),
                domains: vec![demo::DOMAIN.into(), "contoso.onmicrosoft.example".into()],
                apps: vec![
                    SeedApp {
                        client_id: demo::CLIENT_ID.into(),
                        display_name: "mailferry".into(),
                        certificates: Vec::new(),
                        secrets: vec![SeedSecret {
                            value: demo::CLIENT_SECRET.into(),
                            expires: None,
                        }],
                        redirect_uris: vec![demo::REDIRECT_URI.into()],
                        delegated_permissions: [
                            "User.Read",
                            "Mail.Read",
                            "Mail.ReadWrite",
                            "Mail.Read.Shared",
                            "Mail.ReadWrite.Shared",
                            "https://outlook.office.com/IMAP.AccessAsUser.All",
                        ]
                        .map(String::from)
                        .to_vec(),
                        application_roles: vec![],
                        admin_consent: false,
                        user_consents: vec![],
                    },
                    SeedApp {
                        client_id: demo::DAEMON_CLIENT_ID.into(),
                        display_name: "mailferry daemon".into(),
                        certificates: Vec::new(),
                        secrets: vec![SeedSecret {
                            value: demo::DAEMON_CLIENT_SECRET.into(),
                            expires: None,
                        }],
                        redirect_uris: vec![],
                        delegated_permissions: vec![],
                        application_roles: vec!["Mail.ReadWrite".into()],
                        admin_consent: true,
                        user_consents: vec![],
                    },
                ],
                users: vec![
                    SeedUser {
                        id: Some("3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b".into()),
                        user_principal_name: demo::ALICE.into(),
                        display_name: "Alice Example".into(),
                        password: demo::ALICE_PASSWORD.into(),
                        folders: vec![
                            folder("Inbox", (1..=3).map(|n| sample(n, "inbox")).collect()),
                            folder("Exported", vec![]),
                            folder("Error", vec![]),
                        ],
                    },
                    SeedUser {
                        id: Some("9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d".into()),
                        user_principal_name: demo::BOB.into(),
                        display_name: "Bob Example".into(),
                        password: demo::BOB_PASSWORD.into(),
                        folders: vec![],
                    },
                ],
                shared_mailboxes: vec![SeedSharedMailbox {
                    id: Some("c4d5e6f7-a8b9-4c0d-8e1f-2a3b4c5d6e7f".into()),
                    user_principal_name: demo::SHARED.into(),
                    display_name: "Invoices".into(),
                    full_access: vec![demo::ALICE.into()],
                    folders: vec![folder(
                        "Inbox",
                        (4..=5).map(|n| sample(n, "invoices")).collect(),
                    )],
                }],
            }],
        }
    }
}

/// A small but real PDF, so importers exercise a genuine attachment.
fn sample_pdf(n: usize) -> String {
    let text = format!("Invoice {n}");
    let stream = format!("BT /F1 24 Tf 72 720 Td ({text}) Tj ET");
    let pdf = format!(
        "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
         2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n\
         3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj\n\
         4 0 obj<</Length {}>>stream\n{stream}\nendstream endobj\n\
         5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n\
         trailer<</Root 1 0 R>>\n%%EOF\n",
        stream.len()
    );
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(pdf.as_bytes());
    b64.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A sample invoice mail with one PDF attachment.
pub(crate) fn sample_mime(n: usize, tag: &str) -> String {
    format!(
        "From: Supplier {n} <billing{n}@supplier.example>\r\n\
         To: Alice Example <alice@contoso.example>\r\n\
         Subject: Invoice {n}\r\n\
         Date: Thu, 01 Jan 2026 {hh:02}:00:00 +0000\r\n\
         Message-ID: <invoice-{n}-{tag}@supplier.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\
         \r\n\
         --b{n}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Please find invoice {n} attached.\r\n\
         --b{n}\r\n\
         Content-Type: application/pdf; name=\"invoice-{n}.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"invoice-{n}.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {pdf}\r\n\
         --b{n}--\r\n",
        hh = n % 24,
        pdf = sample_pdf(n),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_example_and_demo_seed_load() {
        let readme = include_str!("../README.md");
        let section = &readme[readme.find("## Seed file format").expect("section")..];
        let start = section.find("```json\n").expect("json block") + "```json\n".len();
        let end = start + section[start..].find("```").expect("end");
        let seed: Seed = serde_json::from_str(&section[start..end]).expect("README example parses");
        let world = crate::state::State::from_seed(&seed, Timestamp::now()).expect("loads");
        assert_eq!(world.messages.len(), 1);

        let text = serde_json::to_string(&Seed::demo()).expect("serialise");
        let back: Seed = serde_json::from_str(&text).expect("round trip");
        let world = crate::state::State::from_seed(&back, Timestamp::now()).expect("demo loads");
        assert_eq!(world.messages.len(), 5);
    }
}
