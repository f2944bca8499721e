//! An IMAP mailbox behind the `Mailbox` port: the same pipeline, folder
//! rules, ledger and exactly-once guarantees as Graph.
//!
//! - A message's id is `{uidvalidity}:{uid}:{folder}`: the folder's name as
//!   the server spells it (modified UTF-7) and the UID, valid while the
//!   folder's UIDVALIDITY is. A changed UIDVALIDITY makes the old ids
//!   unknown, never another mail's; the ledger then recognises mails by
//!   their content.
//! - Folders come from `LIST` with the server's hierarchy delimiter; names
//!   are shown decoded, `SPECIAL-USE` attributes map to the well-known
//!   names folder resolution understands (`\Sent` → `sentitems`, …), and
//!   `\Noselect` parents are shown but cannot be resolved to.
//! - Moves use `UID MOVE`, or `UID COPY` + `UID STORE +FLAGS (\Deleted)` +
//!   `UID EXPUNGE` of exactly those UIDs (UIDPLUS) — never a plain
//!   `EXPUNGE`, which could remove mails someone else marked deleted.
//! - Fetches and moves waiting for the connection go out together, one
//!   command per batch ([`batch`]).
//! - A mail sent to Error carries the keywords `$MailferryError` and
//!   `$Mailferry:{reason code}` where the folder allows keywords.
//! - One connection, opened on first use and again after it broke: a
//!   dropped connection fails the current request (transient), and the
//!   next request reconnects.

mod batch;
pub mod connect;
pub mod error;
mod folders;
pub mod idle;
mod message_id;

// What the fuzz targets read server text with.
pub use folders::display as folder_display;
pub use message_id::MessageId;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_imap::types::{Fetch, Flag};
use domain::mailbox::{
    FolderTree, LocateHint, Mailbox, MailboxError, MessageLocation, MessagePage, MessageSummary,
    PageCursor,
};
use futures_util::TryStreamExt;
use tokio::sync::Mutex;

pub use connect::{Credential, ImapConfig, Security};
pub use error::ImapError;

/// Mails listed per page.
const PAGE: usize = 200;
/// The keyword every mail mailferry sent to Error carries.
pub const ERROR_KEYWORD: &str = "$MailferryError";
/// The prefix of the keyword naming the reason.
pub const REASON_KEYWORD_PREFIX: &str = "$Mailferry:";

/// What the server can do, as far as mailferry cares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub r#move: bool,
    pub uidplus: bool,
}

struct Connection {
    session: connect::ImapSession,
    capabilities: Capabilities,
    /// The selected folder and its UIDVALIDITY.
    selected: Option<(String, u32)>,
    /// Whether the selected folder keeps keywords (`PERMANENTFLAGS` has `\*`).
    keywords_allowed: bool,
}

pub struct ImapMailbox {
    config: ImapConfig,
    credential: Credential,
    connection: Mutex<Option<Connection>>,
    /// Fetches and moves waiting for the connection, served together.
    pending: Arc<std::sync::Mutex<batch::Pending>>,
}

impl std::fmt::Debug for ImapMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapMailbox")
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .field("username", &self.config.username)
            .finish_non_exhaustive()
    }
}

impl ImapMailbox {
    pub fn new(config: ImapConfig, credential: Credential) -> Self {
        Self {
            config,
            credential,
            connection: Mutex::new(None),
            pending: Arc::default(),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, batch::Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a request with `queue`, then serves every queued request once
    /// the connection is free (unless whoever had it served this one), and
    /// returns this request's answer.
    async fn batched<T>(
        &self,
        queue: impl FnOnce(&mut batch::Pending) -> tokio::sync::oneshot::Receiver<Result<T, ImapError>>,
    ) -> Result<T, MailboxError> {
        let mut answer = queue(&mut self.pending());
        let pending = self.pending.clone();
        let per_mail = self.config.command_timeout;
        let served = self
            .with_limit(None, move |c| {
                Box::pin(async move {
                    let taken = pending.lock().unwrap_or_else(|p| p.into_inner()).take();
                    batch::serve(c, taken, per_mail).await
                })
            })
            .await;
        match answer.try_recv() {
            Ok(result) => result.map_err(|e| self.fail(e)),
            // Not served: the connection could not be opened.
            Err(_) => Err(served
                .err()
                .unwrap_or_else(|| self.fail(batch::abandoned()))),
        }
    }

    pub fn config(&self) -> &ImapConfig {
        &self.config
    }

    fn server(&self) -> String {
        format!("{}:{}", self.config.host, self.config.port)
    }

    fn fail(&self, e: ImapError) -> MailboxError {
        e.into_mailbox_error(&self.server())
    }

    /// Connects and logs in (if not connected) and reports what the server
    /// can do: the connection test's first checks.
    pub async fn capabilities(&self) -> Result<Capabilities, MailboxError> {
        self.with(|c| Box::pin(async move { Ok(c.capabilities) }))
            .await
    }

    /// Runs `work` on the connection within the command time-out, opening
    /// the connection first if needed; a broken connection is dropped so
    /// the next request opens a new one.
    async fn with<T>(
        &self,
        work: impl for<'c> FnOnce(
            &'c mut Connection,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, ImapError>> + Send + 'c>,
        >,
    ) -> Result<T, MailboxError> {
        self.with_limit(Some(self.config.command_timeout), work)
            .await
    }

    /// [`Self::with`] with another time-out; `None` when `work` bounds its
    /// own commands (a batch: its time grows with its size).
    async fn with_limit<T>(
        &self,
        limit: Option<std::time::Duration>,
        work: impl for<'c> FnOnce(
            &'c mut Connection,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, ImapError>> + Send + 'c>,
        >,
    ) -> Result<T, MailboxError> {
        let mut guard = self.connection.lock().await;
        if guard.is_none() {
            let login = self.credential.login().await?;
            let mut session = connect::open(&self.config, &login)
                .await
                .map_err(|e| self.fail(e))?;
            let capabilities = read_capabilities(&mut session)
                .await
                .map_err(|e| self.fail(e))?;
            *guard = Some(Connection {
                session,
                capabilities,
                selected: None,
                keywords_allowed: false,
            });
        }
        let Some(connection) = guard.as_mut() else {
            return Err(self.fail(ImapError::Dropped("no connection".to_owned())));
        };
        let result = match limit {
            Some(limit) => connect::within(limit, "the command", work(connection)).await,
            None => work(connection).await,
        };
        if let Err(e) = &result
            && e.breaks_connection()
        {
            // The session's state is unknown now: start over next time.
            *guard = None;
        }
        result.map_err(|e| self.fail(e))
    }
}

async fn read_capabilities(session: &mut connect::ImapSession) -> Result<Capabilities, ImapError> {
    let caps = session.capabilities().await.map_err(ImapError::from_imap)?;
    Ok(Capabilities {
        r#move: caps.has_str("MOVE"),
        uidplus: caps.has_str("UIDPLUS"),
    })
}

impl Connection {
    /// Selects `folder` unless it is selected; returns its UIDVALIDITY.
    async fn select(&mut self, folder: &str) -> Result<u32, ImapError> {
        if let Some((selected, validity)) = &self.selected
            && selected == folder
        {
            return Ok(*validity);
        }
        self.selected = None;
        let mailbox =
            self.session
                .select(folder)
                .await
                .map_err(|e| match ImapError::from_imap(e) {
                    ImapError::No(text) => ImapError::NotFound(format!(
                        "the folder `{}` cannot be opened ({text})",
                        folders::display(folder)
                    )),
                    other => other,
                })?;
        let validity = mailbox.uid_validity.ok_or_else(|| {
            ImapError::Unsupported(format!(
                "the folder `{}` has no UIDVALIDITY, so its mails cannot be told apart across sessions",
                folders::display(folder)
            ))
        })?;
        self.keywords_allowed = mailbox
            .permanent_flags
            .iter()
            .any(|f| matches!(f, Flag::MayCreate));
        self.selected = Some((folder.to_owned(), validity));
        Ok(validity)
    }

    /// Selects the message's folder and checks its UIDVALIDITY.
    async fn select_message(&mut self, id: &MessageId) -> Result<(), ImapError> {
        let validity = self.select(&id.folder).await?;
        if validity != id.uid_validity {
            return Err(renumbered(id, validity));
        }
        Ok(())
    }

    async fn fetch(&mut self, uids: &str, items: &str) -> Result<Vec<Fetch>, ImapError> {
        let stream = self
            .session
            .uid_fetch(uids, items)
            .await
            .map_err(ImapError::from_imap)?;
        stream.try_collect().await.map_err(ImapError::from_imap)
    }

    async fn search(&mut self, query: &str) -> Result<BTreeSet<u32>, ImapError> {
        let uids = self
            .session
            .uid_search(query)
            .await
            .map_err(ImapError::from_imap)?;
        Ok(uids.into_iter().collect())
    }

    /// Sets or removes flags on a UID set of the selected folder.
    async fn store_set(&mut self, set: &str, change: &str) -> Result<(), ImapError> {
        let stream = self
            .session
            .uid_store(set, change)
            .await
            .map_err(ImapError::from_imap)?;
        let _: Vec<Fetch> = stream.try_collect().await.map_err(ImapError::from_imap)?;
        Ok(())
    }
}

/// The folder's UIDVALIDITY changed since `id` was listed.
fn renumbered(id: &MessageId, validity: u32) -> ImapError {
    ImapError::NotFound(format!(
        "the folder `{}` was renumbered (UIDVALIDITY {} → {validity}); the mail is looked for by its content",
        folders::display(&id.folder),
        id.uid_validity
    ))
}

fn gone(id: &MessageId) -> ImapError {
    ImapError::NotFound(format!(
        "there is no mail with UID {} in `{}` any more",
        id.uid,
        folders::display(&id.folder)
    ))
}

/// The keywords mailferry set on a mail.
fn own_keywords(fetch: &Fetch) -> Vec<String> {
    fetch
        .flags()
        .filter_map(|f| match f {
            Flag::Custom(k) if k == ERROR_KEYWORD || k.starts_with(REASON_KEYWORD_PREFIX) => {
                Some(k.into_owned())
            }
            _ => None,
        })
        .collect()
}

fn summary(folder: &str, uid_validity: u32, fetch: &Fetch) -> Option<MessageSummary> {
    let uid = fetch.uid?;
    let header = fetch.header();
    let parsed = header.and_then(|h| mail_parser::MessageParser::default().parse_headers(h));
    let text = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Some(MessageSummary {
        id: MessageId {
            uid_validity,
            uid,
            folder: folder.to_owned(),
        }
        .to_string(),
        internet_message_id: parsed
            .as_ref()
            .and_then(|m| m.message_id())
            .map(|id| format!("<{}>", id.trim().trim_matches(['<', '>']))),
        received_at: fetch
            .internal_date()
            .and_then(|d| jiff::Timestamp::from_second(d.timestamp()).ok()),
        subject: text(parsed.as_ref().and_then(|m| m.subject())),
        from: parsed
            .as_ref()
            .and_then(|m| m.from())
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_owned),
        has_attachments: true,
        size: fetch.size.map(u64::from),
        error_mark: !own_keywords(fetch).is_empty(),
    })
}

/// What a listing asks for: enough to decide before downloading.
const LIST_ITEMS: &str = "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER])";

impl Mailbox for ImapMailbox {
    /// IMAP has no hidden folders: `include_hidden` changes nothing.
    async fn folder_tree(&self, _include_hidden: bool) -> Result<FolderTree, MailboxError> {
        let names = self
            .with(|c| {
                Box::pin(async move {
                    let stream = c
                        .session
                        .list(Some(""), Some("*"))
                        .await
                        .map_err(ImapError::from_imap)?;
                    let names: Vec<async_imap::types::Name> =
                        stream.try_collect().await.map_err(ImapError::from_imap)?;
                    Ok(names)
                })
            })
            .await?;
        folders::tree(&names).map_err(|e| self.fail(e))
    }

    async fn list_messages(
        &self,
        folder_id: &str,
        cursor: Option<&PageCursor>,
    ) -> Result<MessagePage, MailboxError> {
        let folder = folder_id.to_owned();
        let after: u32 = cursor.and_then(|c| c.0.parse().ok()).unwrap_or(0);
        self.with(move |c| {
            Box::pin(async move {
                let validity = c.select(&folder).await?;
                let from = after.saturating_add(1);
                // `n:*` always includes the highest UID, even one below n.
                let uids: Vec<u32> = c
                    .search(&format!("UID {from}:*"))
                    .await?
                    .into_iter()
                    .filter(|u| *u >= from)
                    .collect();
                let page: Vec<u32> = uids.iter().copied().take(PAGE).collect();
                let next = (uids.len() > page.len())
                    .then(|| page.last().map(|last| PageCursor(last.to_string())))
                    .flatten();
                if page.is_empty() {
                    return Ok(MessagePage {
                        messages: Vec::new(),
                        next: None,
                    });
                }
                let set = page
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let mut fetched = c.fetch(&set, LIST_ITEMS).await?;
                fetched.sort_by_key(|f| f.uid);
                let messages = fetched
                    .iter()
                    .filter_map(|f| summary(&folder, validity, f))
                    .collect();
                Ok(MessagePage { messages, next })
            })
        })
        .await
    }

    /// A page ends at a UID, and UIDs never shift.
    fn cursor_survives_moves(&self) -> bool {
        true
    }

    async fn fetch_mime(&self, message_id: &str) -> Result<Vec<u8>, MailboxError> {
        let id = MessageId::parse(message_id).map_err(|e| self.fail(e))?;
        self.batched(|pending| pending.fetch(id)).await
    }

    async fn move_message(
        &self,
        message_id: &str,
        destination_folder_id: &str,
    ) -> Result<String, MailboxError> {
        let id = MessageId::parse(message_id).map_err(|e| self.fail(e))?;
        let old = id.to_string();
        let destination = destination_folder_id.to_owned();
        self.batched(|pending| pending.relocate(id, destination))
            .await?;
        // The new UID is the server's (COPYUID); the mail is found again by
        // its Message-ID when it matters.
        Ok(old)
    }

    async fn mark_error_reason(
        &self,
        message_id: &str,
        reason_code: Option<&str>,
    ) -> Result<(), MailboxError> {
        let id = MessageId::parse(message_id).map_err(|e| self.fail(e))?;
        let wanted: Vec<String> = reason_code
            .map(|code| {
                vec![
                    ERROR_KEYWORD.to_owned(),
                    format!("{REASON_KEYWORD_PREFIX}{}", keyword_safe(code)),
                ]
            })
            .unwrap_or_default();
        self.with(move |c| {
            Box::pin(async move {
                c.select_message(&id).await?;
                if !c.keywords_allowed {
                    return Ok(());
                }
                let current = c.fetch(&id.uid.to_string(), "(UID FLAGS)").await?;
                if !current.iter().any(|f| f.uid == Some(id.uid)) {
                    return Err(gone(&id));
                }
                let have: Vec<String> = current.iter().flat_map(own_keywords).collect();
                let stale: Vec<&String> = have.iter().filter(|k| !wanted.contains(k)).collect();
                if !stale.is_empty() {
                    let list = stale
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(" ");
                    c.store_set(&id.uid.to_string(), &format!("-FLAGS.SILENT ({list})"))
                        .await?;
                }
                let missing: Vec<&String> = wanted.iter().filter(|k| !have.contains(k)).collect();
                if !missing.is_empty() {
                    let list = missing
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(" ");
                    c.store_set(&id.uid.to_string(), &format!("+FLAGS.SILENT ({list})"))
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn locate_message(
        &self,
        message_id: &str,
        hint: &LocateHint<'_>,
    ) -> Result<MessageLocation, MailboxError> {
        let id = MessageId::parse(message_id).map_err(|e| self.fail(e))?;
        let internet_message_id = hint.internet_message_id.map(str::to_owned);
        let candidates: Vec<String> = hint.folders.iter().map(|f| (*f).to_owned()).collect();
        self.with(move |c| {
            Box::pin(async move {
                // Still where it was listed?
                let validity = c.select(&id.folder).await?;
                if validity == id.uid_validity
                    && c.search(&format!("UID {}", id.uid))
                        .await?
                        .contains(&id.uid)
                {
                    return Ok(MessageLocation::Folder {
                        folder: id.folder.clone(),
                        message_id: id.to_string(),
                    });
                }
                // A move gives the mail a new UID in its new folder: find it
                // by its Message-ID in the folders it may have gone to.
                let Some(mid) = internet_message_id else {
                    return Ok(MessageLocation::Gone);
                };
                for folder in &candidates {
                    let validity = c.select(folder).await?;
                    let query = format!("HEADER Message-ID {}", quoted(&mid));
                    if let Some(uid) = c.search(&query).await?.into_iter().next_back() {
                        return Ok(MessageLocation::Folder {
                            folder: folder.clone(),
                            message_id: MessageId {
                                uid_validity: validity,
                                uid,
                                folder: folder.clone(),
                            }
                            .to_string(),
                        });
                    }
                }
                Ok(MessageLocation::Gone)
            })
        })
        .await
    }
}

/// A reason code as an IMAP keyword (an atom: no spaces or specials).
fn keyword_safe(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An IMAP quoted string.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
