//! Folder resolution, by design.md's "Folder names": a path is followed from
//! the top (its first level may be a well-known name such as `inbox`); a bare
//! name must match exactly one display name anywhere in the tree, or else be
//! a well-known name. Never a silent pick: an ambiguous name is an error that
//! lists every full path it matched. Names compare without regard to case,
//! as Exchange does.

use std::fmt;

use serde::Serialize;

use super::tree::{FolderNode, FolderTree};
use crate::folder::FolderSpec;
use crate::importer::Folders;

/// Which of an importer's three folders a setting is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderRole {
    Inbox,
    Exported,
    Error,
}

impl FolderRole {
    pub const ALL: [Self; 3] = [Self::Inbox, Self::Exported, Self::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Exported => "exported",
            Self::Error => "error",
        }
    }

    /// The folder's role as the UI names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Inbox => "Inbox",
            Self::Exported => "Exported",
            Self::Error => "Error",
        }
    }
}

/// How a setting found its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    Path,
    DisplayName,
    WellKnownName,
}

/// A setting resolved to one folder of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedFolder {
    pub id: String,
    /// Full path from the top, e.g. `Inbox/Exported`.
    pub path: String,
    pub matched_by: MatchedBy,
}

impl ResolvedFolder {
    fn of(node: &FolderNode, matched_by: MatchedBy) -> Self {
        Self {
            id: node.id.clone(),
            path: node.path_string(),
            matched_by,
        }
    }
}

/// A folder setting that does not name exactly one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderError {
    /// A bare name that several folders carry.
    Ambiguous { spec: String, paths: Vec<String> },
    /// A bare name no folder carries and that is no well-known name.
    NotFound { spec: String, closest: Vec<String> },
    /// A path one of whose levels does not exist. `parent` is the path that
    /// does exist (empty: the top of the mailbox).
    PathNotFound {
        spec: String,
        parent: String,
        missing: String,
        closest: Vec<String>,
    },
    /// The folder exists but holds no mail (an IMAP `\Noselect` parent).
    NotSelectable { spec: String, path: String },
}

fn quoted_list(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl FolderError {
    /// What is wrong, in plain words.
    pub fn detail(&self) -> String {
        match self {
            Self::Ambiguous { spec, paths } => format!(
                "`{spec}` is the name of {} folders: {}",
                paths.len(),
                quoted_list(paths)
            ),
            Self::NotFound { spec, closest } if closest.is_empty() => format!(
                "no folder is named `{spec}`, and it is not a well-known folder name, \
                 and no folder has a similar name"
            ),
            Self::NotFound { spec, closest } => format!(
                "no folder is named `{spec}`, and it is not a well-known folder name; \
                 the closest folders are {}",
                quoted_list(closest)
            ),
            Self::PathNotFound {
                spec,
                parent,
                missing,
                closest,
            } => {
                let below = if parent.is_empty() {
                    "the top of the mailbox has".to_owned()
                } else {
                    format!("`{parent}` has")
                };
                let mut s = format!("`{spec}` does not exist: {below} no folder `{missing}`");
                if !closest.is_empty() {
                    s.push_str(&format!(
                        "; the closest folders are {}",
                        quoted_list(closest)
                    ));
                }
                s
            }
            Self::NotSelectable { spec, path } => format!(
                "`{spec}` names `{path}`, which only groups other folders and cannot hold mail"
            ),
        }
    }

    /// What the admin should do about it.
    pub fn fix(&self) -> String {
        match self {
            Self::Ambiguous { paths, .. } => format!(
                "write the full path of the folder you mean, e.g. `{}`, or pick it in the folder picker",
                paths.first().map(String::as_str).unwrap_or("Inbox/Exported")
            ),
            Self::NotSelectable { .. } => {
                "pick one of its subfolders, or a folder that holds mail".to_owned()
            }
            Self::NotFound { .. } | Self::PathNotFound { .. } => {
                "correct the folder setting (pick the folder in the folder picker), or create the folder in the mailbox"
                    .to_owned()
            }
        }
    }
}

impl fmt::Display for FolderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.detail(), self.fix())
    }
}

impl std::error::Error for FolderError {}

fn same_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// Among siblings with case-insensitively equal names (should Exchange ever
/// allow them) the exact spelling wins; otherwise every candidate stays.
fn pick_sibling<'a>(candidates: Vec<&'a FolderNode>, name: &str) -> Vec<&'a FolderNode> {
    if candidates.len() > 1 {
        let exact: Vec<_> = candidates
            .iter()
            .copied()
            .filter(|n| n.display_name == name)
            .collect();
        if exact.len() == 1 {
            return exact;
        }
    }
    candidates
}

/// Resolves one folder setting against a tree.
pub fn resolve_folder(tree: &FolderTree, spec: &FolderSpec) -> Result<ResolvedFolder, FolderError> {
    let resolved = if spec.is_bare_name() {
        resolve_bare(tree, spec)
    } else {
        resolve_path(tree, spec)
    }?;
    match tree.get(&resolved.id) {
        Some(node) if !node.selectable => Err(FolderError::NotSelectable {
            spec: spec.to_string(),
            path: resolved.path,
        }),
        _ => Ok(resolved),
    }
}

fn resolve_bare(tree: &FolderTree, spec: &FolderSpec) -> Result<ResolvedFolder, FolderError> {
    let name = spec.to_string();
    let matches: Vec<&FolderNode> = tree
        .nodes()
        .iter()
        .filter(|n| same_name(&n.display_name, &name))
        .collect();
    match matches.as_slice() {
        [one] => Ok(ResolvedFolder::of(one, MatchedBy::DisplayName)),
        [] => match tree.well_known(&name) {
            Some(node) => Ok(ResolvedFolder::of(node, MatchedBy::WellKnownName)),
            None => Err(FolderError::NotFound {
                closest: closest(tree.nodes().iter(), &name),
                spec: name,
            }),
        },
        several => Err(FolderError::Ambiguous {
            paths: several.iter().map(|n| n.path_string()).collect(),
            spec: name,
        }),
    }
}

fn resolve_path(tree: &FolderTree, spec: &FolderSpec) -> Result<ResolvedFolder, FolderError> {
    let segments = spec.segments();
    let mut current: Option<&FolderNode> = None;
    for (level, segment) in segments.iter().enumerate() {
        let parent_id = current.map(|n| n.id.as_str());
        let siblings: Vec<&FolderNode> = tree.children(parent_id).collect();
        let mut found = pick_sibling(
            siblings
                .iter()
                .copied()
                .filter(|n| same_name(&n.display_name, segment))
                .collect(),
            segment,
        );
        if found.is_empty() && level == 0 {
            // Well-known names are locale-independent: `inbox/…` works in a
            // mailbox whose Inbox is called `Posteingang`.
            found.extend(tree.well_known(segment));
        }
        match found.as_slice() {
            [one] => current = Some(one),
            [] => {
                let near = closest(siblings.iter().copied(), segment);
                return Err(FolderError::PathNotFound {
                    spec: spec.to_string(),
                    parent: current.map(FolderNode::path_string).unwrap_or_default(),
                    missing: segment.clone(),
                    closest: if near.is_empty() {
                        closest(tree.nodes().iter(), segment)
                    } else {
                        near
                    },
                });
            }
            several => {
                return Err(FolderError::Ambiguous {
                    spec: spec.to_string(),
                    paths: several.iter().map(|n| n.path_string()).collect(),
                });
            }
        }
    }
    current
        .map(|n| ResolvedFolder::of(n, MatchedBy::Path))
        .ok_or_else(|| FolderError::PathNotFound {
            spec: spec.to_string(),
            parent: String::new(),
            missing: spec.to_string(),
            closest: Vec::new(),
        })
}

/// At most this many suggestions: enough to spot a typo, short enough to read.
const MAX_SUGGESTIONS: usize = 5;

/// Folders whose display name is near `name`: a small edit distance, or one
/// name starting with or containing the other, ignoring case. Closest first.
fn closest<'a>(candidates: impl Iterator<Item = &'a FolderNode>, name: &str) -> Vec<String> {
    let wanted: Vec<char> = name.to_lowercase().chars().collect();
    let wanted_str: String = wanted.iter().collect();
    let tolerance = (wanted.len() / 3).max(2);
    let mut scored: Vec<(usize, String)> = candidates
        .filter_map(|n| {
            let have_str = n.display_name.to_lowercase();
            let have: Vec<char> = have_str.chars().collect();
            let distance = edit_distance(&wanted, &have);
            let related = wanted.len() >= 2
                && (have_str.starts_with(&wanted_str)
                    || wanted_str.starts_with(&have_str) && have.len() >= 2
                    || have_str.contains(&wanted_str));
            (distance <= tolerance || related).then(|| (distance, n.path_string()))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, p)| p)
        .collect()
}

/// Levenshtein distance over characters (not bytes: names are often not ASCII).
fn edit_distance(a: &[char], b: &[char]) -> usize {
    // `prev` is the row above: prev[j] is the distance between the first i
    // characters of `a` and the first j of `b`.
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = Vec::with_capacity(b.len() + 1);
    for (i, ca) in a.iter().enumerate() {
        row.clear();
        let mut left = i + 1;
        row.push(left);
        for ((cb, &diagonal), &above) in b.iter().zip(&prev).zip(prev.iter().skip(1)) {
            let substitution = diagonal + usize::from(ca != cb);
            left = substitution.min(above + 1).min(left + 1);
            row.push(left);
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev.last().copied().unwrap_or(b.len())
}

/// An importer's three folders, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedFolders {
    pub inbox: ResolvedFolder,
    pub exported: ResolvedFolder,
    pub error: ResolvedFolder,
}

impl ResolvedFolders {
    pub fn get(&self, role: FolderRole) -> &ResolvedFolder {
        match role {
            FolderRole::Inbox => &self.inbox,
            FolderRole::Exported => &self.exported,
            FolderRole::Error => &self.error,
        }
    }
}

/// Why an importer's folders cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoldersError {
    /// These settings do not name exactly one folder each.
    Unresolved(Vec<(FolderRole, FolderError)>),
    /// Two or three settings name the same folder.
    NotDistinct {
        path: String,
        roles: Vec<FolderRole>,
    },
}

impl fmt::Display for FoldersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unresolved(errors) => {
                let parts: Vec<String> = errors
                    .iter()
                    .map(|(role, e)| format!("{} folder: {e}", role.label()))
                    .collect();
                f.write_str(&parts.join(". "))
            }
            Self::NotDistinct { path, roles } => {
                let names: Vec<&str> = roles.iter().map(|r| r.label()).collect();
                write!(
                    f,
                    "the {} folder settings all name `{path}`; Inbox, Exported and Error must be three different folders: change one of them",
                    names.join(" and ")
                )
            }
        }
    }
}

impl std::error::Error for FoldersError {}

/// Resolves all three folders; they must be three different folders, else
/// imported mail would be moved back into the Inbox (or errors hidden).
pub fn resolve_folders(
    tree: &FolderTree,
    folders: &Folders,
) -> Result<ResolvedFolders, FoldersError> {
    let spec = |role| match role {
        FolderRole::Inbox => &folders.inbox,
        FolderRole::Exported => &folders.exported,
        FolderRole::Error => &folders.error,
    };
    let results = FolderRole::ALL.map(|role| resolve_folder(tree, spec(role)));
    let [Ok(inbox), Ok(exported), Ok(error)] = results else {
        let errors = FolderRole::ALL
            .into_iter()
            .zip(results)
            .filter_map(|(role, r)| r.err().map(|e| (role, e)))
            .collect();
        return Err(FoldersError::Unresolved(errors));
    };
    let resolved = ResolvedFolders {
        inbox,
        exported,
        error,
    };
    for role in FolderRole::ALL {
        let id = &resolved.get(role).id;
        let roles: Vec<FolderRole> = FolderRole::ALL
            .into_iter()
            .filter(|r| resolved.get(*r).id == *id)
            .collect();
        if roles.len() > 1 {
            return Err(FoldersError::NotDistinct {
                path: resolved.get(role).path.clone(),
                roles,
            });
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests;
