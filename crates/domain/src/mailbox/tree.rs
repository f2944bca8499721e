//! A mailbox's folder tree with every folder's full path from the top.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

/// One folder. `path` is the display names from the top of the mailbox down
/// to this folder, e.g. `["Inbox", "Invoices"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FolderNode {
    pub id: String,
    pub display_name: String,
    /// `None` for a top-level folder.
    pub parent_id: Option<String>,
    /// Locale-independent name such as `inbox` or `archive`, when known.
    pub well_known_name: Option<String>,
    pub hidden: bool,
    /// It can hold mail; an IMAP `\Noselect` folder only groups others.
    pub selectable: bool,
    pub path: Vec<String>,
}

impl FolderNode {
    /// A folder as a mailbox reports it; [`FolderTree::build`] fills in `path`.
    pub fn new(
        id: impl Into<String>,
        display_name: impl Into<String>,
        parent_id: Option<String>,
    ) -> Self {
        Self {
            id: id.into(),
            display_name: display_name.into(),
            parent_id,
            well_known_name: None,
            hidden: false,
            selectable: true,
            path: Vec::new(),
        }
    }

    pub fn well_known(mut self, name: &str) -> Self {
        self.well_known_name = Some(name.to_lowercase());
        self
    }

    pub fn hidden(mut self, hidden: bool) -> Self {
        self.hidden = hidden;
        self
    }

    /// `Inbox/Invoices`: how admins write and read folder paths.
    pub fn selectable(mut self, selectable: bool) -> Self {
        self.selectable = selectable;
        self
    }

    pub fn path_string(&self) -> String {
        self.path.join("/")
    }

    pub fn depth(&self) -> usize {
        self.path.len()
    }
}

/// A folder list that is not a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FolderTreeError {
    #[error("the mailbox reported folder id `{0}` twice")]
    DuplicateId(String),
    #[error("the mailbox reported folders whose parents form a cycle (folder id `{0}`)")]
    Cycle(String),
}

/// Every folder of a mailbox, parents before their children, siblings in
/// the order the mailbox listed them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FolderTree {
    nodes: Vec<FolderNode>,
}

impl FolderTree {
    /// Builds the tree from folders in any order. A folder whose parent is
    /// absent from the list sits at the top (Graph names the hidden root
    /// "Top of Information Store" as the parent of top-level folders).
    pub fn build(folders: Vec<FolderNode>) -> Result<Self, FolderTreeError> {
        let mut seen = HashSet::new();
        for f in &folders {
            if !seen.insert(f.id.as_str()) {
                return Err(FolderTreeError::DuplicateId(f.id.clone()));
            }
        }
        let ids: HashSet<String> = folders.iter().map(|f| f.id.clone()).collect();
        let mut children: HashMap<Option<String>, Vec<FolderNode>> = HashMap::new();
        for f in folders {
            let parent = f.parent_id.clone().filter(|p| ids.contains(p));
            children.entry(parent).or_default().push(f);
        }
        let mut nodes = Vec::with_capacity(ids.len());
        // Depth-first with an explicit stack: trees can be deep.
        let mut stack: Vec<(Vec<String>, FolderNode)> = children
            .remove(&None)
            .unwrap_or_default()
            .into_iter()
            .rev()
            .map(|f| (Vec::new(), f))
            .collect();
        while let Some((parent_path, mut node)) = stack.pop() {
            node.path = parent_path;
            node.path.push(node.display_name.clone());
            if !node.parent_id.as_ref().is_some_and(|p| ids.contains(p)) {
                node.parent_id = None;
            }
            if let Some(kids) = children.remove(&Some(node.id.clone())) {
                for kid in kids.into_iter().rev() {
                    stack.push((node.path.clone(), kid));
                }
            }
            nodes.push(node);
        }
        // Whatever was never reached hangs off a cycle.
        if let Some(orphan) = children.into_values().flatten().next() {
            return Err(FolderTreeError::Cycle(orphan.id));
        }
        Ok(Self { nodes })
    }

    pub fn nodes(&self) -> &[FolderNode] {
        &self.nodes
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&FolderNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Children of a folder, or the top-level folders for `None`.
    pub fn children<'a>(
        &'a self,
        parent_id: Option<&'a str>,
    ) -> impl Iterator<Item = &'a FolderNode> + 'a {
        self.nodes
            .iter()
            .filter(move |n| n.parent_id.as_deref() == parent_id)
    }

    pub fn well_known(&self, name: &str) -> Option<&FolderNode> {
        let name = name.to_lowercase();
        self.nodes
            .iter()
            .find(|n| n.well_known_name.as_deref() == Some(name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: &str, name: &str, parent: Option<&str>) -> FolderNode {
        FolderNode::new(id, name, parent.map(str::to_owned))
    }

    #[test]
    fn paths_follow_parents_whatever_the_input_order() {
        let tree = FolderTree::build(vec![
            f("c", "2026", Some("b")),
            f("b", "Invoices", Some("a")),
            f("a", "Inbox", Some("ROOT")),
            f("d", "Archive", None),
        ])
        .expect("tree");
        let paths: Vec<String> = tree.nodes().iter().map(FolderNode::path_string).collect();
        assert_eq!(
            paths,
            ["Inbox", "Inbox/Invoices", "Inbox/Invoices/2026", "Archive"]
        );
        assert_eq!(
            tree.get("a").expect("a").parent_id,
            None,
            "unknown root dropped"
        );
        assert_eq!(tree.get("c").expect("c").depth(), 3);
        assert_eq!(tree.children(None).count(), 2);
        assert_eq!(tree.children(Some("a")).count(), 1);
    }

    #[test]
    fn duplicate_ids_and_cycles_are_refused() {
        assert_eq!(
            FolderTree::build(vec![f("a", "A", None), f("a", "B", None)]),
            Err(FolderTreeError::DuplicateId("a".into()))
        );
        assert!(matches!(
            FolderTree::build(vec![
                f("x", "X", Some("y")),
                f("y", "Y", Some("x")),
                f("z", "Z", None)
            ]),
            Err(FolderTreeError::Cycle(_))
        ));
    }

    #[test]
    fn very_deep_trees_do_not_recurse() {
        let mut folders = vec![f("0", "L0", None)];
        for i in 1..5000 {
            folders.push(f(
                &i.to_string(),
                &format!("L{i}"),
                Some(&(i - 1).to_string()),
            ));
        }
        let tree = FolderTree::build(folders).expect("tree");
        assert_eq!(tree.get("4999").expect("leaf").depth(), 5000);
    }
}
