//! The emulator's world: directory objects (tenants, apps, users), mailboxes with their
//! folder trees and messages, and the identity platform's grants. Everything lives in
//! memory behind one mutex; no lock is ever held across an `.await`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::ids::{self, IdKind};
use crate::mime::{self, MimeProps};
use crate::seed::{Seed, SeedFolder, SeedMessage};

/// Folders every Exchange mailbox has, as (well-known name, display name, hidden).
const DEFAULT_FOLDERS: &[(&str, &str, bool)] = &[
    ("inbox", "Inbox", false),
    ("drafts", "Drafts", false),
    ("sentitems", "Sent Items", false),
    ("deleteditems", "Deleted Items", false),
    ("junkemail", "Junk Email", false),
    ("archive", "Archive", false),
    ("outbox", "Outbox", false),
    ("conversationhistory", "Conversation History", false),
    ("syncissues", "Sync Issues", true),
];

/// Errors in a seed or an admin request that the emulator refuses.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("duplicate {kind} `{name}` in the seed")]
    Duplicate { kind: &'static str, name: String },
    #[error("unknown {kind} `{name}`")]
    Unknown { kind: &'static str, name: String },
    #[error("a folder named `{0}` already exists under the same parent")]
    FolderExists(String),
    #[error("message MIME could not be parsed")]
    UnparsableMime(#[from] mime::UnparsableMime),
    #[error("invalid base64 in `mime_base64`")]
    Base64,
    #[error("a message needs `mime` or `mime_base64`")]
    NoMime,
    #[error("the certificate is unusable: {0}")]
    Certificate(String),
}

/// Why a Graph lookup failed: Graph tells a malformed id (400) from a missing one (404).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Malformed,
    NotFound,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub domains: Vec<String>,
}

#[derive(Clone)]
pub struct Secret {
    pub value: String,
    pub expires: Option<Timestamp>,
}

/// A certificate credential of an app (its public half).
#[derive(Clone)]
pub struct AppCertificate {
    /// base64url SHA-256 of the DER (`x5t#S256`).
    pub x5t_s256: String,
    /// base64url SHA-1 of the DER (`x5t`, the older header).
    pub x5t: String,
    /// What Entra's errors print: the SHA-1 thumbprint in upper-case hex.
    pub sha1_hex: String,
    /// The RSA public key (PKCS#1), as the certificate carries it.
    pub public_key: Vec<u8>,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

#[derive(Clone)]
pub struct App {
    pub tenant_id: String,
    pub client_id: String,
    pub display_name: String,
    pub secrets: Vec<Secret>,
    pub certificates: Vec<AppCertificate>,
    pub redirect_uris: Vec<String>,
    pub delegated_permissions: Vec<String>,
    pub application_roles: Vec<String>,
    pub admin_consent: bool,
}

impl App {
    pub fn is_confidential(&self) -> bool {
        !self.secrets.is_empty() || !self.certificates.is_empty()
    }
}

#[derive(Clone)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub upn: String,
    pub display_name: String,
    pub password: String,
    /// Refresh tokens issued before this instant are revoked (AADSTS50173).
    pub tokens_valid_from: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct UserMailbox {
    pub id: String,
    pub tenant_id: String,
    pub upn: String,
    pub display_name: String,
    pub root_folder: String,
    /// User ids with Exchange full-access rights (the owner always has them).
    pub full_access: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Folder {
    pub id: String,
    pub mailbox_id: String,
    pub parent_id: Option<String>,
    pub display_name: String,
    pub well_known: Option<String>,
    pub hidden: bool,
    seq: u64,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub id: String,
    pub index: usize,
}

#[derive(Debug, Clone)]
pub struct Message {
    /// Survives moves; returned only to clients that send `Prefer: IdType="ImmutableId"`.
    pub immutable_id: String,
    /// The default (REST) id; replaced on every move, like Exchange's entry-id-based ids.
    pub rest_id: String,
    pub mailbox_id: String,
    pub folder_id: String,
    pub mime: Arc<Vec<u8>>,
    pub props: Arc<MimeProps>,
    pub attachments: Vec<Attachment>,
    pub received: Timestamp,
    pub created: Timestamp,
    pub last_modified: Timestamp,
    pub is_read: bool,
    pub categories: Vec<String>,
    pub change_key: String,
    pub conversation_id: String,
    seq: u64,
}

/// An issued, not yet redeemed authorization code.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub tenant_segment: String,
    pub tenant_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: String,
    pub nonce: Option<String>,
    pub issued: Timestamp,
    pub redeemed: bool,
}

/// A refresh token's grant.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub issued: Timestamp,
    /// Set once the token was exchanged: strict rotation rejects a second use.
    pub used: bool,
    /// Set when an admin revoked the user's sessions (AADSTS50173).
    pub revoked: bool,
}

/// Lifetimes of issued tokens.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub access_token: SignedDuration,
    pub refresh_token_inactivity: SignedDuration,
    pub authorization_code: SignedDuration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            access_token: SignedDuration::from_mins(75),
            refresh_token_inactivity: SignedDuration::from_hours(90 * 24),
            authorization_code: SignedDuration::from_mins(10),
        }
    }
}

/// The whole mutable world.
#[derive(Default)]
pub struct State {
    pub tenants: Vec<Tenant>,
    pub apps: HashMap<String, App>,
    pub users: HashMap<String, User>,
    pub mailboxes: HashMap<String, UserMailbox>,
    pub folders: HashMap<String, Folder>,
    pub messages: HashMap<String, Message>,
    /// REST id → immutable id.
    pub rest_ids: HashMap<String, String>,
    /// (client id, user id, lower-case scope) the user consented to.
    pub consents: HashSet<(String, String, String)>,
    pub codes: HashMap<String, AuthCode>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    /// Browser sign-in sessions: cookie value → user id.
    pub sessions: HashMap<String, String>,
    /// Authorize requests waiting for the login, account-picker or consent page.
    pub flows: HashMap<String, crate::entra::authorize::Flow>,
    /// Paging tokens handed out in `@odata.nextLink`: token → offset.
    pub skiptokens: HashMap<String, usize>,
    pub lifetimes: Lifetimes,
    /// Change-notification subscriptions, by id.
    pub subscriptions: HashMap<String, crate::graph::subscriptions::Subscription>,
    /// Messages that arrived in a folder (new, moved or copied there) since
    /// the notifier last looked: (mailbox id, folder id, immutable id).
    pub arrivals: Vec<(String, String, String)>,
    seq: u64,
}

/// A mailbox the seed asks for: a user's own or a shared one.
struct MailboxSeed<'a> {
    id: &'a str,
    tenant_id: &'a str,
    upn: &'a str,
    display_name: &'a str,
    /// The users with full access (the owner, a shared mailbox's delegates).
    full_access: BTreeSet<String>,
    folders: &'a [SeedFolder],
}

impl State {
    /// Builds the world from a seed.
    pub fn from_seed(seed: &Seed, now: Timestamp) -> Result<State, StateError> {
        let mut st = State::default();
        let mut upns = HashSet::new();
        for t in &seed.tenants {
            st.tenants.push(Tenant {
                id: t.id.clone(),
                domains: t.domains.clone(),
            });
            for u in &t.users {
                if !upns.insert(u.user_principal_name.to_lowercase()) {
                    return Err(StateError::Duplicate {
                        kind: "user",
                        name: u.user_principal_name.clone(),
                    });
                }
                let id = u.id.clone().unwrap_or_else(ids::new_guid);
                st.users.insert(
                    id.clone(),
                    User {
                        id: id.clone(),
                        tenant_id: t.id.clone(),
                        upn: u.user_principal_name.clone(),
                        display_name: u.display_name.clone(),
                        password: u.password.clone(),
                        tokens_valid_from: None,
                    },
                );
                let mut access = BTreeSet::new();
                access.insert(id.clone());
                st.add_mailbox(
                    MailboxSeed {
                        id: &id,
                        tenant_id: &t.id,
                        upn: &u.user_principal_name,
                        display_name: &u.display_name,
                        full_access: access,
                        folders: &u.folders,
                    },
                    now,
                )?;
            }
            for s in &t.shared_mailboxes {
                if !upns.insert(s.user_principal_name.to_lowercase()) {
                    return Err(StateError::Duplicate {
                        kind: "mailbox",
                        name: s.user_principal_name.clone(),
                    });
                }
                let mut access = BTreeSet::new();
                for upn in &s.full_access {
                    let user = st.user_by_upn(upn).ok_or_else(|| StateError::Unknown {
                        kind: "user",
                        name: upn.clone(),
                    })?;
                    access.insert(user.id.clone());
                }
                let id = s.id.clone().unwrap_or_else(ids::new_guid);
                st.add_mailbox(
                    MailboxSeed {
                        id: &id,
                        tenant_id: &t.id,
                        upn: &s.user_principal_name,
                        display_name: &s.display_name,
                        full_access: access,
                        folders: &s.folders,
                    },
                    now,
                )?;
            }
            for a in &t.apps {
                if st.apps.contains_key(&a.client_id) {
                    return Err(StateError::Duplicate {
                        kind: "app",
                        name: a.client_id.clone(),
                    });
                }
                for upn in &a.user_consents {
                    let user = st.user_by_upn(upn).ok_or_else(|| StateError::Unknown {
                        kind: "user",
                        name: upn.clone(),
                    })?;
                    let uid = user.id.clone();
                    for scope in &a.delegated_permissions {
                        st.consents.insert((
                            a.client_id.clone(),
                            uid.clone(),
                            crate::entra::scopes::permission_key(scope).to_lowercase(),
                        ));
                    }
                }
                st.apps.insert(
                    a.client_id.clone(),
                    App {
                        tenant_id: t.id.clone(),
                        client_id: a.client_id.clone(),
                        display_name: a.display_name.clone(),
                        secrets: a
                            .secrets
                            .iter()
                            .map(|s| Secret {
                                value: s.value.clone(),
                                expires: s.expires,
                            })
                            .collect(),
                        certificates: a
                            .certificates
                            .iter()
                            .map(|c| AppCertificate::from_pem(&c.pem))
                            .collect::<Result<_, _>>()?,
                        redirect_uris: a.redirect_uris.clone(),
                        delegated_permissions: a.delegated_permissions.clone(),
                        application_roles: a.application_roles.clone(),
                        admin_consent: a.admin_consent,
                    },
                );
            }
        }
        Ok(st)
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn add_mailbox(&mut self, mailbox: MailboxSeed<'_>, now: Timestamp) -> Result<(), StateError> {
        let MailboxSeed {
            id,
            tenant_id,
            upn,
            display_name,
            full_access,
            folders,
        } = mailbox;
        let root = ids::new_id(IdKind::Folder);
        let seq = self.next_seq();
        self.folders.insert(
            root.clone(),
            Folder {
                id: root.clone(),
                mailbox_id: id.to_string(),
                parent_id: None,
                display_name: "Top of Information Store".into(),
                well_known: Some("msgfolderroot".into()),
                hidden: false,
                seq,
            },
        );
        self.mailboxes.insert(
            id.to_string(),
            UserMailbox {
                id: id.to_string(),
                tenant_id: tenant_id.to_string(),
                upn: upn.to_string(),
                display_name: display_name.to_string(),
                root_folder: root.clone(),
                full_access,
            },
        );
        for (wk, name, hidden) in DEFAULT_FOLDERS {
            self.create_folder(id, &root, name, *hidden, Some(wk))?;
        }
        self.seed_folders(id, &root, folders, now)
    }

    fn seed_folders(
        &mut self,
        mailbox: &str,
        parent: &str,
        folders: &[SeedFolder],
        now: Timestamp,
    ) -> Result<(), StateError> {
        for f in folders {
            let existing = self
                .children(parent, true)
                .into_iter()
                .find(|c| {
                    c.display_name.eq_ignore_ascii_case(&f.display_name)
                        || (f.well_known_name.is_some()
                            && c.well_known.as_deref().map(str::to_lowercase)
                                == f.well_known_name.as_deref().map(str::to_lowercase))
                })
                .map(|c| c.id.clone());
            let fid = match existing {
                Some(fid) => fid,
                None => self.create_folder(
                    mailbox,
                    parent,
                    &f.display_name,
                    f.hidden,
                    f.well_known_name.as_deref(),
                )?,
            };
            for m in &f.messages {
                self.add_seed_message(mailbox, &fid, m, now)?;
            }
            self.seed_folders(mailbox, &fid, &f.children, now)?;
        }
        Ok(())
    }

    /// Adds a message given as a seed entry (raw or base64 MIME); its Graph
    /// properties are derived from the MIME.
    pub fn add_seed_message(
        &mut self,
        mailbox: &str,
        folder: &str,
        m: &SeedMessage,
        now: Timestamp,
    ) -> Result<String, StateError> {
        use base64::Engine;
        let raw = match (&m.mime, &m.mime_base64) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| StateError::Base64)?,
            (None, None) => return Err(StateError::NoMime),
        };
        let props = mime::derive(&raw)?;
        let received = m.received.or(props.sent).unwrap_or(now);
        let attachments = (0..props.attachments.len())
            .map(|index| Attachment {
                id: ids::new_id(IdKind::Attachment),
                index,
            })
            .collect();
        let immutable_id = ids::new_id(IdKind::Message);
        let rest_id = ids::new_id(IdKind::Message);
        let seq = self.next_seq();
        self.rest_ids.insert(rest_id.clone(), immutable_id.clone());
        self.arrivals.push((
            mailbox.to_string(),
            folder.to_string(),
            immutable_id.clone(),
        ));
        self.messages.insert(
            immutable_id.clone(),
            Message {
                immutable_id: immutable_id.clone(),
                rest_id,
                mailbox_id: mailbox.to_string(),
                folder_id: folder.to_string(),
                mime: Arc::new(raw),
                props: Arc::new(props),
                attachments,
                received,
                created: now,
                last_modified: now,
                is_read: m.is_read,
                categories: vec![],
                change_key: ids::new_token("CQAAABYAAA", 12),
                conversation_id: ids::new_id(IdKind::Message),
                seq,
            },
        );
        Ok(immutable_id)
    }

    /// Creates a folder; sibling names must be unique (case-insensitively, as in Exchange).
    pub fn create_folder(
        &mut self,
        mailbox: &str,
        parent: &str,
        name: &str,
        hidden: bool,
        well_known: Option<&str>,
    ) -> Result<String, StateError> {
        if self
            .children(parent, true)
            .iter()
            .any(|c| c.display_name.eq_ignore_ascii_case(name))
        {
            return Err(StateError::FolderExists(name.to_string()));
        }
        let id = ids::new_id(IdKind::Folder);
        let seq = self.next_seq();
        self.folders.insert(
            id.clone(),
            Folder {
                id: id.clone(),
                mailbox_id: mailbox.to_string(),
                parent_id: Some(parent.to_string()),
                display_name: name.to_string(),
                well_known: well_known.map(str::to_lowercase),
                hidden,
                seq,
            },
        );
        Ok(id)
    }

    /// Creates every missing folder along a `/`-separated path below the root.
    pub fn ensure_folder_path(&mut self, mailbox: &str, path: &str) -> Result<String, StateError> {
        let mut current = self
            .mailboxes
            .get(mailbox)
            .map(|m| m.root_folder.clone())
            .ok_or_else(|| StateError::Unknown {
                kind: "mailbox",
                name: mailbox.to_string(),
            })?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let found = self
                .children(&current, true)
                .into_iter()
                .find(|c| c.display_name.eq_ignore_ascii_case(part))
                .map(|c| c.id.clone());
            current = match found {
                Some(id) => id,
                None => self.create_folder(mailbox, &current, part, false, None)?,
            };
        }
        Ok(current)
    }

    /// A folder's path from the root, e.g. `Inbox/Projects`.
    pub fn folder_path(&self, id: &str) -> String {
        let mut parts = vec![];
        let mut current = self.folders.get(id);
        while let Some(f) = current {
            if f.parent_id.is_none() {
                break;
            }
            parts.push(f.display_name.clone());
            current = f.parent_id.as_ref().and_then(|p| self.folders.get(p));
        }
        parts.reverse();
        parts.join("/")
    }

    /// Direct children in creation order.
    pub fn children(&self, parent: &str, include_hidden: bool) -> Vec<&Folder> {
        let mut v: Vec<&Folder> = self
            .folders
            .values()
            .filter(|f| f.parent_id.as_deref() == Some(parent) && (include_hidden || !f.hidden))
            .collect();
        v.sort_by_key(|f| f.seq);
        v
    }

    /// Resolves a folder id or a well-known name within a mailbox.
    pub fn resolve_folder(&self, mailbox: &str, key: &str) -> Result<&Folder, Lookup> {
        if let Some(f) = self.folders.get(key) {
            return if f.mailbox_id == mailbox {
                Ok(f)
            } else {
                Err(Lookup::NotFound)
            };
        }
        let lower = key.to_lowercase();
        if let Some(f) = self
            .folders
            .values()
            .find(|f| f.mailbox_id == mailbox && f.well_known.as_deref() == Some(lower.as_str()))
        {
            return Ok(f);
        }
        if ids::is_well_formed(key) {
            Err(Lookup::NotFound)
        } else {
            Err(Lookup::Malformed)
        }
    }

    /// Resolves a message by REST or immutable id within a mailbox.
    pub fn resolve_message(&self, mailbox: &str, id: &str) -> Result<&Message, Lookup> {
        let key = self.rest_ids.get(id).map(String::as_str).unwrap_or(id);
        match self.messages.get(key) {
            Some(m) if m.mailbox_id == mailbox => Ok(m),
            _ if ids::is_well_formed(id) => Err(Lookup::NotFound),
            _ => Err(Lookup::Malformed),
        }
    }

    pub fn message_mut(&mut self, immutable_id: &str) -> Option<&mut Message> {
        self.messages.get_mut(immutable_id)
    }

    /// Messages in a folder, in insertion order.
    pub fn messages_in(&self, folder: &str) -> Vec<&Message> {
        let mut v: Vec<&Message> = self
            .messages
            .values()
            .filter(|m| m.folder_id == folder)
            .collect();
        v.sort_by_key(|m| m.seq);
        v
    }

    /// Messages of a whole mailbox, in insertion order.
    pub fn messages_of(&self, mailbox: &str) -> Vec<&Message> {
        let mut v: Vec<&Message> = self
            .messages
            .values()
            .filter(|m| m.mailbox_id == mailbox)
            .collect();
        v.sort_by_key(|m| m.seq);
        v
    }

    /// Moves a message: a new REST id replaces the old one, which stops resolving.
    pub fn move_message(&mut self, immutable_id: &str, dest: &str, now: Timestamp) -> Option<()> {
        let new_rest = ids::new_id(IdKind::Message);
        let m = self.messages.get_mut(immutable_id)?;
        let old_rest = std::mem::replace(&mut m.rest_id, new_rest.clone());
        m.folder_id = dest.to_string();
        m.last_modified = now;
        m.change_key = ids::new_token("CQAAABYAAA", 12);
        let arrival = (
            m.mailbox_id.clone(),
            dest.to_string(),
            immutable_id.to_string(),
        );
        self.arrivals.push(arrival);
        self.rest_ids.remove(&old_rest);
        self.rest_ids.insert(new_rest, immutable_id.to_string());
        Some(())
    }

    /// Copies a message into a folder; the copy has new ids of both kinds.
    pub fn copy_message(
        &mut self,
        immutable_id: &str,
        dest: &str,
        now: Timestamp,
    ) -> Option<String> {
        let src = self.messages.get(immutable_id)?.clone();
        let immutable = ids::new_id(IdKind::Message);
        let rest = ids::new_id(IdKind::Message);
        let seq = self.next_seq();
        self.rest_ids.insert(rest.clone(), immutable.clone());
        self.messages.insert(
            immutable.clone(),
            Message {
                immutable_id: immutable.clone(),
                rest_id: rest,
                folder_id: dest.to_string(),
                created: now,
                last_modified: now,
                attachments: src
                    .attachments
                    .iter()
                    .map(|a| Attachment {
                        id: ids::new_id(IdKind::Attachment),
                        index: a.index,
                    })
                    .collect(),
                seq,
                ..src
            },
        );
        Some(immutable)
    }

    pub fn user_by_upn(&self, upn: &str) -> Option<&User> {
        self.users
            .values()
            .find(|u| u.upn.eq_ignore_ascii_case(upn))
    }

    /// A mailbox by object id or UPN.
    pub fn mailbox_by_key(&self, key: &str) -> Option<&UserMailbox> {
        self.mailboxes.get(key).or_else(|| {
            self.mailboxes
                .values()
                .find(|m| m.upn.eq_ignore_ascii_case(key))
        })
    }

    /// A tenant by GUID or any of its domains.
    pub fn tenant(&self, segment: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| {
            t.id.eq_ignore_ascii_case(segment)
                || t.domains.iter().any(|d| d.eq_ignore_ascii_case(segment))
        })
    }

    /// Unread and total counts of a folder.
    pub fn folder_counts(&self, folder: &str) -> (usize, usize) {
        let msgs = self.messages_in(folder);
        (msgs.iter().filter(|m| !m.is_read).count(), msgs.len())
    }
}
