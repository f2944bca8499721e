//! The filesystem spool (the default sink), exactly as the contract says:
//! `DATA_DIR/documents/{client}/{importer_id}/{document_id}/` with
//! `message.eml`, `attachments/` and `metadata.json`.
//!
//! A document is written into a temporary folder beside its final place,
//! every file and folder is fsynced, and the folder is then renamed into
//! place: a reader (or a run after a crash) sees the whole document or none
//! of it. Renaming onto an existing document fails, so the first writer wins
//! and a second import of the same `document_id` stores nothing new.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::document::{Document, MESSAGE_FILE, METADATA_FILE};
use crate::{DocumentSink, SinkError, SinkFuture, Stored};

/// Prefix of folders being written; never a valid document id.
const TEMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Clone)]
pub struct FilesystemSpool {
    /// `DATA_DIR/documents`.
    root: PathBuf,
    /// Importer folders already rid of crash leftovers by this spool: one
    /// scan each, not one per document (which made a large folder's
    /// import quadratic).
    cleaned: Arc<Mutex<HashSet<PathBuf>>>,
}

impl FilesystemSpool {
    /// A spool under `data_dir/documents`. The root is made absolute (the
    /// file system is not asked), so the locations it records still name
    /// the document when mailferry later runs from another directory.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        let root = data_dir.as_ref().join("documents");
        Self {
            root: std::path::absolute(&root).unwrap_or(root),
            cleaned: Arc::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder a document has (or would have).
    pub fn document_dir(
        &self,
        client: &str,
        importer_id: &str,
        document_id: &str,
    ) -> Result<PathBuf, SinkError> {
        for (what, segment) in [
            ("client", client),
            ("importer id", importer_id),
            ("document id", document_id),
        ] {
            if !is_plain_segment(segment) {
                return Err(SinkError::unstorable(format!(
                    "the {what} `{segment}` cannot name a folder of the document spool"
                )));
            }
        }
        Ok(self.root.join(client).join(importer_id).join(document_id))
    }

    /// The document folder a `location` names, if it is one inside the
    /// spool; anything else is refused, so a purge can never delete
    /// outside it (a tampered row, a moved data directory).
    pub fn folder_of(&self, location: &str) -> Result<PathBuf, SinkError> {
        let path = Path::new(location);
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let inside = path.starts_with(&self.root)
            && path != self.root
            && !path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir));
        if inside {
            Ok(path)
        } else {
            Err(SinkError::unstorable(format!(
                "its folder {location} is outside the document spool {}",
                self.root.display()
            )))
        }
    }

    fn store_blocking(&self, doc: &Document) -> Result<Stored, SinkError> {
        let m = &doc.metadata;
        let dir = self.document_dir(&m.client, &m.importer_id, &m.document_id)?;
        let location = dir.display().to_string();
        if dir.exists() {
            return Ok(Stored {
                location,
                already_present: true,
            });
        }
        let parent = dir
            .parent()
            .ok_or_else(|| SinkError::unstorable("the spool has no parent folder"))?;
        fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))?;
        self.remove_stale_temps(parent);
        // A concurrent cleaner may remove a temp folder between its creation
        // and its lock; that attempt fails and the next one succeeds.
        let mut attempt = 0;
        let (temp, _lock) = loop {
            attempt += 1;
            let temp = parent.join(format!(
                "{TEMP_PREFIX}{}-{}",
                m.document_id,
                uuid::Uuid::new_v4().simple()
            ));
            match write_document(&temp, doc) {
                Ok(lock) => break (temp, lock),
                Err(e) => {
                    let _ = fs::remove_dir_all(&temp);
                    if attempt >= 3 || !e.is_transient() {
                        return Err(e);
                    }
                }
            }
        };
        match fs::rename(&temp, &dir) {
            Ok(()) => {}
            // Another writer got there first: its document is the same one.
            Err(_) if dir.exists() => {
                let _ = fs::remove_dir_all(&temp);
                return Ok(Stored {
                    location,
                    already_present: true,
                });
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&temp);
                return Err(io_error("rename into place", &dir, e));
            }
        }
        sync_dir(parent).map_err(|e| io_error("sync", parent, e))?;
        Ok(Stored {
            location,
            already_present: false,
        })
    }

    /// A crash while writing leaves a temporary folder; the next attempt at
    /// the same document removes it. A folder still being written is locked
    /// by its writer (the lock dies with the process), so it is left alone.
    /// Removes the temporary folders crashed writers left in `parent`; a
    /// writer still at work holds its folder's lock, so its folder stays.
    fn remove_stale_temps(&self, parent: &Path) {
        {
            let mut cleaned = self.cleaned.lock().unwrap_or_else(|p| p.into_inner());
            if !cleaned.insert(parent.to_path_buf()) {
                return;
            }
        }
        if let Ok(entries) = fs::read_dir(parent) {
            for entry in entries.flatten() {
                if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    continue;
                }
                let unlocked = File::open(entry.path()).is_ok_and(|d| d.try_lock().is_ok());
                if unlocked {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}

impl DocumentSink for FilesystemSpool {
    fn kind(&self) -> &'static str {
        "filesystem"
    }

    /// Writes `doc` unless a document with its id is already there.
    fn store<'a>(&'a self, doc: &'a Document) -> SinkFuture<'a, Stored> {
        Box::pin(async move {
            let spool = self.clone();
            let doc = doc.clone();
            tokio::task::spawn_blocking(move || spool.store_blocking(&doc))
                .await
                .map_err(|e| SinkError::transient(format!("the spool writer stopped: {e}")))?
        })
    }

    fn read<'a>(&'a self, location: &'a str, file: &'a str) -> SinkFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let folder = self.folder_of(location)?;
            // Only plain names inside the document folder: the metadata's
            // `message.eml` and `attachments/{name}`, never `..` or a root.
            let relative = Path::new(file);
            let plain = relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain || file.is_empty() {
                return Ok(None);
            }
            let path = folder.join(relative);
            match tokio::fs::read(&path).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_error("read", &path, e)),
            }
        })
    }

    fn remove<'a>(&'a self, location: &'a str) -> SinkFuture<'a, ()> {
        Box::pin(async move {
            let folder = self.folder_of(location)?;
            match tokio::fs::remove_dir_all(&folder).await {
                Ok(()) => Ok(()),
                // Already gone (an earlier purge stopped before the row).
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error("delete", &folder, e)),
            }
        })
    }
}

/// Writes the document into `temp` and returns the folder's lock, held
/// until the folder is renamed into place.
fn write_document(temp: &Path, doc: &Document) -> Result<File, SinkError> {
    fs::create_dir(temp).map_err(|e| io_error("create", temp, e))?;
    let lock = File::open(temp).map_err(|e| io_error("open", temp, e))?;
    lock.lock().map_err(|e| io_error("lock", temp, e))?;
    write_synced(&temp.join(MESSAGE_FILE), &doc.message)?;
    let attachments_dir = temp.join(crate::document::ATTACHMENTS_DIR);
    fs::create_dir(&attachments_dir).map_err(|e| io_error("create", &attachments_dir, e))?;
    for (meta, bytes) in doc.metadata.attachments.iter().zip(&doc.files) {
        let path = temp.join(&meta.file);
        // Names are sanitised when the document is built; this guards the
        // promise that nothing lands outside the document folder.
        if path.parent() != Some(attachments_dir.as_path()) {
            return Err(SinkError::unstorable(format!(
                "attachment file `{}` would leave the document folder",
                meta.file
            )));
        }
        write_synced(&path, bytes)?;
    }
    sync_dir(&attachments_dir).map_err(|e| io_error("sync", &attachments_dir, e))?;
    write_synced(&temp.join(METADATA_FILE), &doc.metadata_json())?;
    lock.sync_all().map_err(|e| io_error("sync", temp, e))?;
    Ok(lock)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_error("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("write", path, e))
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

fn io_error(action: &str, path: &Path, e: io::Error) -> SinkError {
    if matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) {
        return SinkError::transient(format!(
            "disk full: could not {action} {} ({e}); free space on that disk (or raise the quota): the mail stays in the Inbox and the next run imports it",
            path.display()
        ));
    }
    SinkError::transient(format!(
        "could not {action} {}: {e}; check that the data directory is writable and has free space",
        path.display()
    ))
}

/// A non-empty name that is one normal path component and not a temp folder.
fn is_plain_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && !s.starts_with('.')
        && !s.contains(['/', '\\', '\0'])
        && !s.chars().any(char::is_control)
}
