//! The whole folder tree. Graph v1.0's `mailFolders` lists only the top
//! level (10 per page by default), so the client walks `childFolders` level
//! by level, skipping leaves by `childFolderCount`, and follows every
//! `@odata.nextLink` exactly as given. Graph does not mark well-known
//! folders in listings; their ids are asked for by name.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use domain::mailbox::{FolderNode, FolderTree, MailboxError, MailboxErrorKind};
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::Value;

use super::error::Operation;
use super::transport::{Transport, segment};

const FIELDS: &str = "id,displayName,parentFolderId,childFolderCount,isHidden";

/// Well-known names an admin may plausibly use for an importer folder.
/// (`msgfolderroot`, `searchfolders` and the recoverable-items folders are
/// not mail folders one imports from or into.)
const WELL_KNOWN: [&str; 8] = [
    "inbox",
    "archive",
    "drafts",
    "sentitems",
    "deleteditems",
    "junkemail",
    "outbox",
    "conversationhistory",
];

/// A mailbox larger than this is surely a server looping its answers.
const MAX_FOLDERS: usize = 100_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFolder {
    id: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    parent_folder_id: Option<String>,
    /// Absent when a proxy trims fields: then the children are asked for.
    #[serde(default)]
    child_folder_count: Option<u64>,
    #[serde(default)]
    is_hidden: Option<bool>,
}

async fn list_all(transport: &Transport, first: String) -> Result<Vec<RawFolder>, MailboxError> {
    let mut url = first;
    let mut out = Vec::new();
    loop {
        let page = transport
            .json(reqwest::Method::GET, &url, None, Operation::Folders)
            .await?;
        for item in page
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(parse_folder(item)?);
        }
        match page.get("@odata.nextLink").and_then(Value::as_str) {
            Some(next) => {
                transport.check_next_link(next)?;
                url = next.to_owned();
            }
            None => return Ok(out),
        }
    }
}

fn parse_folder(item: &Value) -> Result<RawFolder, MailboxError> {
    RawFolder::deserialize(item).map_err(|e| {
        MailboxError::new(
            MailboxErrorKind::Permanent,
            format!("Microsoft Graph listed a folder in an unexpected shape: {e}"),
            "check the importer's Graph endpoint setting",
        )
    })
}

pub async fn folder_tree(
    transport: &Transport,
    include_hidden: bool,
) -> Result<FolderTree, MailboxError> {
    let mut query = format!("?$select={FIELDS}");
    if let Some(top) = transport.config.folder_page_size {
        query.push_str(&format!("&$top={top}"));
    }
    if include_hidden {
        query.push_str("&includeHiddenFolders=true");
    }
    let base = transport.mailbox_url().to_owned();
    let mut folders = list_all(transport, format!("{base}/mailFolders{query}")).await?;
    let mut seen: HashSet<String> = folders.iter().map(|f| f.id.clone()).collect();
    let mut frontier: Vec<String> = parents(&folders);
    while !frontier.is_empty() {
        // All of a level at once: the mailbox gate keeps at most four in flight.
        let mut requests = Vec::with_capacity(frontier.len());
        for id in &frontier {
            requests.push(list_all(
                transport,
                format!("{base}/mailFolders/{}/childFolders{query}", segment(id)),
            ));
        }
        let pages = join_all(requests).await;
        frontier = Vec::new();
        for page in pages {
            let children: Vec<RawFolder> = page?
                .into_iter()
                .filter(|f| seen.insert(f.id.clone()))
                .collect();
            frontier.extend(parents(&children));
            folders.extend(children);
        }
        if folders.len() > MAX_FOLDERS {
            return Err(MailboxError::new(
                MailboxErrorKind::Permanent,
                format!("the mailbox reports more than {MAX_FOLDERS} folders"),
                "check the importer's Graph endpoint setting",
            ));
        }
    }
    let well_known = match transport.mailbox_identity() {
        Some(mailbox) => match cached_well_known(mailbox) {
            Some(ids) => ids,
            None => {
                let ids = Arc::new(well_known_ids(transport, &base).await?);
                remember_well_known(mailbox, Arc::clone(&ids));
                ids
            }
        },
        None => Arc::new(well_known_ids(transport, &base).await?),
    };
    let nodes = folders
        .into_iter()
        .map(|f| {
            let mut node = FolderNode::new(f.id, f.display_name, f.parent_folder_id)
                .hidden(f.is_hidden.unwrap_or(false));
            node.well_known_name = well_known.get(&node.id).map(|n| (*n).to_owned());
            node
        })
        .collect();
    FolderTree::build(nodes).map_err(|e| {
        MailboxError::new(
            MailboxErrorKind::Permanent,
            format!("Microsoft Graph's folder list is inconsistent: {e}"),
            "try again later; if it persists, report it with the server log",
        )
    })
}

fn parents(folders: &[RawFolder]) -> Vec<String> {
    folders
        .iter()
        .filter(|f| f.child_folder_count.is_none_or(|n| n > 0))
        .map(|f| f.id.clone())
        .collect()
}

/// Folder id → well-known name, for the well-known folders this mailbox has.
/// How long a mailbox's well-known folder ids are reused. They never change
/// for a mailbox, but one may appear (the Archive, once someone archives);
/// reusing them spares a run eight of its ten requests to an empty Inbox.
const WELL_KNOWN_KEPT: Duration = Duration::from_secs(3600);

type WellKnownIds = Arc<HashMap<String, &'static str>>;

fn well_known_cache() -> &'static Mutex<HashMap<String, (Instant, WellKnownIds)>> {
    static CACHE: OnceLock<Mutex<HashMap<String, (Instant, WellKnownIds)>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn cached_well_known(mailbox: &str) -> Option<WellKnownIds> {
    let cache = well_known_cache().lock().unwrap_or_else(|p| p.into_inner());
    cache
        .get(mailbox)
        .filter(|(at, _)| at.elapsed() < WELL_KNOWN_KEPT)
        .map(|(_, ids)| Arc::clone(ids))
}

fn remember_well_known(mailbox: &str, ids: WellKnownIds) {
    let mut cache = well_known_cache().lock().unwrap_or_else(|p| p.into_inner());
    cache.retain(|_, (at, _)| at.elapsed() < WELL_KNOWN_KEPT);
    cache.insert(mailbox.to_owned(), (Instant::now(), ids));
}

async fn well_known_ids(
    transport: &Transport,
    base: &str,
) -> Result<HashMap<String, &'static str>, MailboxError> {
    let urls: Vec<String> = WELL_KNOWN
        .iter()
        .map(|name| format!("{base}/mailFolders/{name}?$select=id"))
        .collect();
    let mut requests = Vec::with_capacity(urls.len());
    for url in &urls {
        requests.push(transport.get_json(url));
    }
    let answers = join_all(requests).await;
    let mut out = HashMap::new();
    for (name, answer) in WELL_KNOWN.into_iter().zip(answers) {
        match answer {
            Ok(v) => {
                if let Some(id) = v.get("id").and_then(Value::as_str) {
                    out.insert(id.to_owned(), name);
                }
            }
            // A mailbox without that folder (no Archive yet, say).
            Err(e)
                if matches!(
                    e.kind,
                    MailboxErrorKind::NotFound | MailboxErrorKind::Permanent
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
