//! Fetches and moves that wait for the connection are served together:
//! whoever gets the connection next sends one `UID FETCH` for every mail
//! waiting to be fetched and one `UID MOVE` per destination for every mail
//! waiting to be moved (the group-commit pattern). The pipeline works
//! several mails at once, so while one command runs the next ones queue
//! up; one command per batch instead of one per mail is what lets a single
//! IMAP connection keep up (and spares the server rewriting its index for
//! every mail).
//!
//! Each request still gets its own answer: a UID that is no longer there is
//! `NotFound` for that mail alone, found with one `UID SEARCH` per batch
//! (commands on a missing UID succeed silently, RFC 3501 §6.4.8).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_imap::types::Fetch;
use futures_util::TryStreamExt;
use tokio::sync::oneshot;

use crate::connect::within;
use crate::error::ImapError;
use crate::message_id::MessageId;
use crate::{Connection, gone};

type Reply<T> = oneshot::Sender<Result<T, ImapError>>;
/// Requests of one kind, each with where its answer goes.
type Requests<T> = Vec<(MessageId, Reply<T>)>;

/// The requests waiting for the connection.
#[derive(Default)]
pub(crate) struct Pending {
    fetches: Vec<(MessageId, Reply<Vec<u8>>)>,
    moves: Vec<(MessageId, String, Reply<()>)>,
}

impl Pending {
    pub(crate) fn fetch(&mut self, id: MessageId) -> oneshot::Receiver<Result<Vec<u8>, ImapError>> {
        let (tx, rx) = oneshot::channel();
        self.fetches.push((id, tx));
        rx
    }

    pub(crate) fn relocate(
        &mut self,
        id: MessageId,
        destination: String,
    ) -> oneshot::Receiver<Result<(), ImapError>> {
        let (tx, rx) = oneshot::channel();
        self.moves.push((id, destination, tx));
        rx
    }

    /// Everything waiting, leaving nothing behind; requests whose caller
    /// gave up (a time-out, a stopped run) are dropped.
    pub(crate) fn take(&mut self) -> Pending {
        let mut taken = std::mem::take(self);
        taken.fetches.retain(|(_, tx)| !tx.is_closed());
        taken.moves.retain(|(_, _, tx)| !tx.is_closed());
        taken
    }
}

/// What a caller's receiver yields when the batch carrying its request was
/// abandoned midway (the connection timed out).
pub(crate) fn abandoned() -> ImapError {
    ImapError::Dropped(
        "the request was abandoned with its batch; the next run tries again".to_owned(),
    )
}

/// Serves `pending` on `c`: moves first (they free the Inbox), then
/// fetches. A failure of the connection is every waiting request's and
/// is returned, so the connection is started afresh. Each command may
/// take `per_mail` for each mail it carries: a batch's time-out grows with
/// it, so a slow link does not fail (and count an attempt against) every
/// mail of a batch that one mail alone would have let through.
pub(crate) async fn serve(
    c: &mut Connection,
    pending: Pending,
    per_mail: Duration,
) -> Result<(), ImapError> {
    let mut moves: BTreeMap<(String, String), Requests<()>> = BTreeMap::new();
    for (id, destination, tx) in pending.moves {
        moves
            .entry((id.folder.clone(), destination))
            .or_default()
            .push((id, tx));
    }
    let mut fetches: BTreeMap<String, Requests<Vec<u8>>> = BTreeMap::new();
    for (id, tx) in pending.fetches {
        fetches.entry(id.folder.clone()).or_default().push((id, tx));
    }
    let mut groups = moves.into_iter();
    while let Some(((folder, destination), requests)) = groups.next() {
        if let Err(e) = move_group(c, &folder, &destination, requests, per_mail).await
            && e.breaks_connection()
        {
            fail_all(groups.flat_map(|(_, r)| r), &e);
            fail_all(fetches.into_values().flatten(), &e);
            return Err(e);
        }
    }
    let mut groups = fetches.into_iter();
    while let Some((folder, requests)) = groups.next() {
        if let Err(e) = fetch_group(c, &folder, requests, per_mail).await
            && e.breaks_connection()
        {
            fail_all(groups.flat_map(|(_, r)| r), &e);
            return Err(e);
        }
    }
    Ok(())
}

fn fail_all<T>(requests: impl Iterator<Item = (MessageId, Reply<T>)>, e: &ImapError) {
    for (_, tx) in requests {
        let _ = tx.send(Err(e.clone()));
    }
}

/// The requests whose UID is in `folder` under the UIDVALIDITY it was
/// listed with; the others are answered `NotFound` here.
async fn present<T>(
    c: &mut Connection,
    folder: &str,
    requests: Requests<T>,
    per_mail: Duration,
) -> Result<Requests<T>, ImapError> {
    let validity = match within(per_mail, "SELECT", c.select(folder)).await {
        Ok(v) => v,
        Err(e) => {
            fail_all(requests.into_iter(), &e);
            return Err(e);
        }
    };
    let (current, renumbered): (Vec<_>, Vec<_>) = requests
        .into_iter()
        .partition(|(id, _)| id.uid_validity == validity);
    for (id, tx) in renumbered {
        let _ = tx.send(Err(crate::renumbered(&id, validity)));
    }
    if current.is_empty() {
        return Ok(current);
    }
    let query = format!("UID {}", uid_set(&current));
    let existing = match within(limit(per_mail, &current), "UID SEARCH", c.search(&query)).await {
        Ok(found) => found,
        Err(e) => {
            fail_all(current.into_iter(), &e);
            return Err(e);
        }
    };
    let (there, missing): (Vec<_>, Vec<_>) = current
        .into_iter()
        .partition(|(id, _)| existing.contains(&id.uid));
    for (id, tx) in missing {
        let _ = tx.send(Err(gone(&id)));
    }
    Ok(there)
}

async fn move_group(
    c: &mut Connection,
    folder: &str,
    destination: &str,
    requests: Requests<()>,
    per_mail: Duration,
) -> Result<(), ImapError> {
    let requests = present(c, folder, requests, per_mail).await?;
    if requests.is_empty() {
        return Ok(());
    }
    let set = uid_set(&requests);
    let moved = within(
        limit(per_mail, &requests),
        "moving mail",
        move_uids(c, &set, destination),
    )
    .await;
    for (_, tx) in requests {
        let _ = tx.send(moved.clone());
    }
    moved
}

async fn move_uids(c: &mut Connection, set: &str, destination: &str) -> Result<(), ImapError> {
    if c.capabilities.r#move {
        c.session
            .uid_mv(set, destination)
            .await
            .map_err(ImapError::from_imap)
    } else if c.capabilities.uidplus {
        c.session
            .uid_copy(set, destination)
            .await
            .map_err(ImapError::from_imap)?;
        c.store_set(set, "+FLAGS.SILENT (\\Deleted)").await?;
        // UID EXPUNGE of exactly these UIDs: never a plain EXPUNGE, which
        // could remove mails someone else marked deleted.
        let stream = c
            .session
            .uid_expunge(set)
            .await
            .map_err(ImapError::from_imap)?;
        let _: Vec<u32> = stream.try_collect().await.map_err(ImapError::from_imap)?;
        Ok(())
    } else {
        Err(ImapError::Unsupported(
            "neither MOVE nor UIDPLUS: mailferry moves a mail only with UID MOVE, or with UID COPY and a UID EXPUNGE of exactly its mails".to_owned(),
        ))
    }
}

async fn fetch_group(
    c: &mut Connection,
    folder: &str,
    requests: Requests<Vec<u8>>,
    per_mail: Duration,
) -> Result<(), ImapError> {
    let validity = match within(per_mail, "SELECT", c.select(folder)).await {
        Ok(v) => v,
        Err(e) => {
            fail_all(requests.into_iter(), &e);
            return Err(e);
        }
    };
    // A missing UID is simply absent from FETCH's answer: no SEARCH needed.
    let set = uid_set(&requests);
    let fetching = c.fetch(&set, "(UID BODY.PEEK[])");
    let fetched: Vec<Fetch> = match within(limit(per_mail, &requests), "UID FETCH", fetching).await
    {
        Ok(f) => f,
        Err(e) => {
            fail_all(requests.into_iter(), &e);
            return Err(e);
        }
    };
    let mut bodies: BTreeMap<u32, Vec<u8>> = fetched
        .iter()
        .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
        .collect();
    for (id, tx) in requests {
        let answer = if id.uid_validity != validity {
            Err(crate::renumbered(&id, validity))
        } else {
            bodies.remove(&id.uid).ok_or_else(|| gone(&id))
        };
        let _ = tx.send(answer);
    }
    Ok(())
}

/// The time a command carrying `requests` may take.
fn limit<T>(per_mail: Duration, requests: &[T]) -> Duration {
    per_mail.saturating_mul(u32::try_from(requests.len()).unwrap_or(u32::MAX).max(1))
}

/// `3,5,9`: the UIDs of `requests`, each once.
fn uid_set<T>(requests: &[(MessageId, T)]) -> String {
    requests
        .iter()
        .map(|(id, _)| id.uid)
        .collect::<BTreeSet<u32>>()
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
