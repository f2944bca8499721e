//! Push for IMAP: every IMAP importer's Inbox is watched with `IDLE`, and
//! new mail wakes an import of that importer at once. One instance watches
//! each mailbox (a lease per mailbox, renewed while watching; another
//! instance takes over when it lapses). A watch that fails is retried with
//! a growing pause; polling stays the safety net.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use store::importers::ImporterRecord;
use tokio_util::sync::CancellationToken;

use crate::mailbox::Patience;
use crate::{Connector, ImporterMailbox};

/// Called with (client id, importer id) when new mail arrived.
pub type Wake = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// How often the set of watched importers is brought up to date.
const RESCAN: Duration = Duration::from_secs(60);
const LEASE_TTL: SignedDuration = SignedDuration::from_secs(90);
const LEASE_RENEW: Duration = Duration::from_secs(30);
const FIRST_PAUSE: Duration = Duration::from_secs(5);
const LONGEST_PAUSE: Duration = Duration::from_secs(300);

impl Connector {
    /// Watches the Inbox of every IMAP importer of every client until
    /// `stop`, calling `wake` on new mail. `serve` runs one per instance.
    pub async fn watch_imap_inboxes(&self, wake: Wake, stop: CancellationToken) {
        // Importer id → the settings' version watched, and its watcher.
        let mut watching: HashMap<String, (jiff::Timestamp, CancellationToken)> = HashMap::new();
        loop {
            match self.imap_importers().await {
                Ok(importers) => {
                    // A changed importer is watched afresh with its new settings.
                    watching.retain(|id, (version, token)| {
                        let keep = importers
                            .iter()
                            .any(|r| r.id == *id && r.updated_at == *version)
                            && !token.is_cancelled();
                        if !keep {
                            token.cancel();
                        }
                        keep
                    });
                    for record in importers {
                        if watching.contains_key(&record.id) {
                            continue;
                        }
                        let token = stop.child_token();
                        watching.insert(record.id.clone(), (record.updated_at, token.clone()));
                        let (this, wake) = (self.clone(), wake.clone());
                        tokio::spawn(async move { this.watch_importer(record, wake, token).await });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not list the IMAP importers to watch; trying again in a minute")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(RESCAN) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    async fn imap_importers(&self) -> store::Result<Vec<ImporterRecord>> {
        let mut out = Vec::new();
        for client in self.store.list_clients().await? {
            out.extend(
                self.store
                    .list_importers(&client.id)
                    .await?
                    .into_iter()
                    .filter(|r| r.settings.protocol == domain::importer::Protocol::Imap),
            );
        }
        Ok(out)
    }

    /// Watches one importer's Inbox while this instance holds its mailbox's
    /// watch lease; ends with `stop` (the importer was deleted or changed,
    /// or mailferry stops).
    async fn watch_importer(&self, record: ImporterRecord, wake: Wake, stop: CancellationToken) {
        // The mailbox's name, as the import lease has it: one watcher per
        // mailbox, whichever importers share it.
        let lease = match import::lease::lease_name(&self.store, &record).await {
            Ok(name) => format!("idle:{name}"),
            Err(_) => format!("idle:import:{}", record.id),
        };
        let owner = import::lease::owner_name();
        let mut pause = FIRST_PAUSE;
        let mut uid_next = None;
        let on_new = {
            let (client, importer) = (record.client_id.clone(), record.id.clone());
            move || wake(&client, &importer)
        };
        while !stop.is_cancelled() {
            let now = self.clock.now();
            let held = self
                .store
                .try_acquire_lease(
                    &lease,
                    &owner,
                    now.checked_add(LEASE_TTL).unwrap_or(now),
                    now,
                )
                .await
                .unwrap_or(false);
            if held {
                let watching = stop.child_token();
                let renewer = tokio::spawn({
                    let (store, clock, lease, owner, watching) = (
                        self.store.clone(),
                        self.clock.clone(),
                        lease.clone(),
                        owner.clone(),
                        watching.clone(),
                    );
                    async move {
                        loop {
                            tokio::time::sleep(LEASE_RENEW).await;
                            let now = clock.now();
                            let until = now.checked_add(LEASE_TTL).unwrap_or(now);
                            if !store
                                .try_acquire_lease(&lease, &owner, until, now)
                                .await
                                .unwrap_or(false)
                            {
                                watching.cancel();
                                return;
                            }
                        }
                    }
                });
                let watched = self
                    .watch_once(&record, &mut uid_next, &watching, &on_new)
                    .await;
                renewer.abort();
                match watched {
                    Ok(()) => pause = FIRST_PAUSE,
                    Err(e) => {
                        tracing::warn!(importer = %record.settings.name, error = %e, pause_s = pause.as_secs(), "could not watch the IMAP Inbox for new mail; polling goes on, and the watch is tried again");
                        let _ = self.store.release_lease(&lease, &owner).await;
                        uid_next = None;
                        tokio::select! {
                            () = tokio::time::sleep(pause) => {}
                            () = stop.cancelled() => {}
                        }
                        pause = (pause * 2).min(LONGEST_PAUSE);
                        continue;
                    }
                }
            } else {
                // Another instance watches this mailbox.
                tokio::select! {
                    () = tokio::time::sleep(LEASE_RENEW) => {}
                    () = stop.cancelled() => {}
                }
            }
        }
        let _ = self.store.release_lease(&lease, &owner).await;
    }

    /// One watching session (a login, `IDLE` until its time is up).
    async fn watch_once(
        &self,
        record: &ImporterRecord,
        uid_next: &mut Option<u32>,
        stop: &CancellationToken,
        on_new: &(dyn Fn() + Send + Sync),
    ) -> Result<(), String> {
        let mailbox = self
            .mailbox_until(record, Patience::Background, stop.clone())
            .await
            .map_err(|e| e.to_string())?;
        let folders = import::pipeline::resolve(&mailbox, record)
            .await
            .map_err(|e| e.to_string())?;
        let ImporterMailbox::Imap(imap) = &mailbox else {
            return Err("the importer is no longer an IMAP importer".to_owned());
        };
        tracing::info!(importer = %record.settings.name, id = %record.id, "watching the IMAP Inbox for new mail (IDLE)");
        imap.watch(&folders.inbox.id, uid_next, stop, on_new)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
