//! Watching a folder for new mail with `IDLE` (RFC 2177) on a connection of
//! its own, so the import's connection is never held: `EXISTS` while idling
//! means new mail; a `UIDNEXT` that grew between sessions means mail came
//! while no session was open. The session ends after [`SESSION`] so that a
//! fresh login (a fresh OAuth token) follows, well inside the 29 minutes
//! after which servers may drop an idle client.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use domain::mailbox::MailboxError;
use imap_proto::{MailboxDatum, Response};
use tokio_util::sync::CancellationToken;

use crate::connect::{self, within};
use crate::error::ImapError;
use crate::{ImapMailbox, folders};

/// How long one watching session lasts before it logs in again.
pub const SESSION: Duration = Duration::from_secs(25 * 60);

/// Why [`ImapMailbox::watch`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// `stop` was cancelled.
    Stopped,
    /// The session's time is up: watch again (a fresh login).
    Renew,
}

impl ImapMailbox {
    /// Watches `folder` (its name as the server spells it) until `stop` or
    /// the session's end, calling `on_new` for each sign of new mail.
    /// `uid_next` carries the folder's `UIDNEXT` from one session to the
    /// next, so mail that came in between is noticed too.
    pub async fn watch(
        &self,
        folder: &str,
        uid_next: &mut Option<u32>,
        stop: &CancellationToken,
        on_new: &(dyn Fn() + Send + Sync),
    ) -> Result<WatchEnd, MailboxError> {
        let login = self.credential.login().await?;
        self.watch_session(&login, folder, uid_next, stop, on_new, SESSION)
            .await
            .map_err(|e| self.fail(e))
    }

    async fn watch_session(
        &self,
        login: &connect::Login,
        folder: &str,
        uid_next: &mut Option<u32>,
        stop: &CancellationToken,
        on_new: &(dyn Fn() + Send + Sync),
        length: Duration,
    ) -> Result<WatchEnd, ImapError> {
        let mut session = connect::open(&self.config, login).await?;
        let ends = tokio::time::Instant::now() + length;
        loop {
            // EXAMINE: read-only, so watching never changes \Recent or flags.
            let mailbox = within(self.config.command_timeout, "EXAMINE", async {
                session.examine(folder).await.map_err(ImapError::from_imap)
            })
            .await
            .map_err(|e| match e {
                ImapError::No(text) => ImapError::NotFound(format!(
                    "the folder `{}` cannot be watched ({text})",
                    folders::display(folder)
                )),
                other => other,
            })?;
            if let (Some(before), Some(now)) = (*uid_next, mailbox.uid_next)
                && now > before
            {
                on_new();
            }
            *uid_next = mailbox.uid_next;
            let left = ends.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                let _ = session.logout().await;
                return Ok(WatchEnd::Renew);
            }
            let mut idle = session.idle();
            within(self.config.command_timeout, "IDLE", async {
                idle.init().await.map_err(ImapError::from_imap)
            })
            .await?;
            let (wait, _interrupt) = idle.wait_with_timeout(left);
            let got = tokio::select! {
                got = wait => Some(got),
                () = stop.cancelled() => None,
            };
            session = within(self.config.command_timeout, "DONE", async {
                idle.done().await.map_err(ImapError::from_imap)
            })
            .await?;
            match got {
                None => {
                    let _ = session.logout().await;
                    return Ok(WatchEnd::Stopped);
                }
                Some(Ok(IdleResponse::NewData(data))) => {
                    if matches!(
                        data.parsed(),
                        Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(_))
                    ) {
                        on_new();
                    }
                }
                Some(Ok(IdleResponse::Timeout | IdleResponse::ManualInterrupt)) => {}
                Some(Err(e)) => return Err(ImapError::from_imap(e)),
            }
        }
    }
}
