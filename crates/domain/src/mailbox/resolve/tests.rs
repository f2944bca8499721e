use super::*;
use crate::mailbox::FolderNode;

fn spec(raw: &str) -> FolderSpec {
    FolderSpec::parse(raw).expect("valid spec")
}

/// A German mailbox with the traps the seed's FAQ warns about: `Exported`
/// and `Projekte` under different parents, a user folder named like the
/// well-known `Archive`, deep nesting and non-ASCII names.
fn tree() -> FolderTree {
    let f = |id: &str, name: &str, parent: Option<&str>| {
        FolderNode::new(id, name, parent.map(str::to_owned))
    };
    FolderTree::build(vec![
        f("inbox", "Posteingang", Some("root")).well_known("inbox"),
        f("sent", "Gesendete Elemente", Some("root")).well_known("sentitems"),
        f("archive", "Archive", Some("root")).well_known("archive"),
        f("exp1", "Exported", Some("inbox")),
        f("exp2", "Exported", Some("archive")),
        f("err", "Fehler", Some("inbox")),
        f("ueb", "Überweisungen", Some("inbox")),
        f("proj", "Projekte", None),
        f("arch2", "Archive", Some("proj")),
        f("d1", "Ebene 1", Some("proj")),
        f("d2", "Ebene 2", Some("d1")),
        f("d3", "Ebene 3", Some("d2")),
        f("d4", "Ebene 4 – 日本語", Some("d3")),
        f("done", "Erledigt", Some("d4")),
        f("hidden", "Versteckt", None).hidden(true),
    ])
    .expect("tree")
}

fn resolved(raw: &str) -> ResolvedFolder {
    resolve_folder(&tree(), &spec(raw)).unwrap_or_else(|e| panic!("{raw}: {e}"))
}

fn error(raw: &str) -> FolderError {
    resolve_folder(&tree(), &spec(raw)).expect_err(raw)
}

#[test]
fn unique_display_names_resolve_anywhere_in_the_tree() {
    let r = resolved("Fehler");
    assert_eq!(
        (r.id.as_str(), r.path.as_str()),
        ("err", "Posteingang/Fehler")
    );
    assert_eq!(r.matched_by, MatchedBy::DisplayName);
    assert_eq!(
        resolved("Erledigt").path,
        "Projekte/Ebene 1/Ebene 2/Ebene 3/Ebene 4 – 日本語/Erledigt"
    );
    assert_eq!(resolved("Ebene 4 – 日本語").id, "d4");
    assert_eq!(resolved("Versteckt").id, "hidden");
}

#[test]
fn names_compare_without_case_including_non_ascii() {
    assert_eq!(resolved("überweisungen").id, "ueb");
    assert_eq!(resolved("ÜBERWEISUNGEN").id, "ueb");
    assert_eq!(resolved("posteingang/fehler").id, "err");
    assert_eq!(resolved("PROJEKTE/ebene 1/EBENE 2").id, "d2");
}

#[test]
fn a_bare_name_no_folder_carries_is_tried_as_a_well_known_name() {
    let r = resolved("inbox");
    assert_eq!((r.id.as_str(), r.path.as_str()), ("inbox", "Posteingang"));
    assert_eq!(r.matched_by, MatchedBy::WellKnownName);
    assert_eq!(resolved("SentItems").id, "sent");
}

#[test]
fn paths_follow_levels_and_may_start_with_a_well_known_name() {
    let r = resolved("Posteingang/Exported");
    assert_eq!((r.id.as_str(), r.matched_by), ("exp1", MatchedBy::Path));
    assert_eq!(resolved("inbox/Exported").id, "exp1");
    assert_eq!(resolved("Archive/Exported").id, "exp2");
    assert_eq!(resolved("archive/exported").id, "exp2");
    assert_eq!(resolved("Projekte/Archive").id, "arch2");
    assert_eq!(
        resolved("Projekte/Ebene 1/Ebene 2/Ebene 3/Ebene 4 – 日本語/Erledigt").id,
        "done"
    );
}

#[test]
fn an_ambiguous_name_lists_every_full_path() {
    assert_eq!(
        error("Exported"),
        FolderError::Ambiguous {
            spec: "Exported".into(),
            paths: vec!["Posteingang/Exported".into(), "Archive/Exported".into()],
        }
    );
    let message = error("exported").to_string();
    assert!(message.contains("`Posteingang/Exported`"), "{message}");
    assert!(message.contains("`Archive/Exported`"), "{message}");
    assert!(message.contains("full path"), "{message}");
}

#[test]
fn a_name_shared_with_a_well_known_folder_is_still_ambiguous() {
    // The well-known Archive must not win silently over Projekte/Archive.
    assert_eq!(
        error("Archive"),
        FolderError::Ambiguous {
            spec: "Archive".into(),
            paths: vec!["Archive".into(), "Projekte/Archive".into()],
        }
    );
}

#[test]
fn a_missing_name_names_the_closest_folders() {
    let FolderError::NotFound { spec, closest } = error("Exportd") else {
        panic!("not found expected")
    };
    assert_eq!(spec, "Exportd");
    assert_eq!(closest, ["Archive/Exported", "Posteingang/Exported"]);
    let FolderError::NotFound { closest, .. } = error("Ebene") else {
        panic!("not found expected")
    };
    assert!(
        closest.contains(&"Projekte/Ebene 1".to_owned()),
        "{closest:?}"
    );
    assert!(closest.len() <= 5);
    let FolderError::NotFound { closest, .. } = error("uberweisungen") else {
        panic!("not found expected")
    };
    assert_eq!(closest, ["Posteingang/Überweisungen"]);
    let nothing = error("Zzzzzzzzzz");
    assert!(
        matches!(&nothing, FolderError::NotFound { closest, .. } if closest.is_empty()),
        "{nothing:?}"
    );
    assert!(nothing.to_string().contains("no folder has a similar name"));
}

#[test]
fn a_missing_path_level_says_which_level_and_suggests_siblings() {
    assert_eq!(
        error("Posteingang/Fehlr"),
        FolderError::PathNotFound {
            spec: "Posteingang/Fehlr".into(),
            parent: "Posteingang".into(),
            missing: "Fehlr".into(),
            closest: vec!["Posteingang/Fehler".into()],
        }
    );
    let FolderError::PathNotFound {
        parent, missing, ..
    } = error("Nope/Exported")
    else {
        panic!("path not found expected")
    };
    assert_eq!((parent.as_str(), missing.as_str()), ("", "Nope"));
    assert!(
        error("Nope/Exported")
            .detail()
            .contains("the top of the mailbox has no folder `Nope`")
    );
    // A well-known name only stands in at the first level.
    assert!(matches!(
        error("Projekte/inbox"),
        FolderError::PathNotFound { .. }
    ));
    // Outside its siblings' names the whole tree is searched for suggestions.
    let FolderError::PathNotFound { closest, .. } = error("Projekte/Fehlr") else {
        panic!("path not found expected")
    };
    assert_eq!(closest, ["Posteingang/Fehler"]);
}

#[test]
fn siblings_differing_only_in_case_prefer_the_exact_spelling() {
    let tree = FolderTree::build(vec![
        FolderNode::new("a", "Done", None),
        FolderNode::new("b", "DONE", None),
    ])
    .expect("tree");
    assert!(resolve_folder(&tree, &spec("x/y")).is_err());
    let r = resolve_folder(&tree, &spec("DONE")).expect_err("two names");
    assert!(matches!(r, FolderError::Ambiguous { paths, .. } if paths.len() == 2));
    let tree = FolderTree::build(vec![
        FolderNode::new("a", "Done", None),
        FolderNode::new("b", "DONE", None),
        FolderNode::new("c", "x", Some("a".into())),
        FolderNode::new("d", "x", Some("b".into())),
    ])
    .expect("tree");
    assert_eq!(
        resolve_folder(&tree, &spec("DONE/x")).expect("exact").id,
        "d"
    );
    assert!(matches!(
        resolve_folder(&tree, &spec("done/x")),
        Err(FolderError::Ambiguous { .. })
    ));
}

fn folders(inbox: &str, exported: &str, error: &str) -> Folders {
    Folders {
        inbox: spec(inbox),
        exported: spec(exported),
        error: spec(error),
    }
}

#[test]
fn three_distinct_folders_resolve_together() {
    let r = resolve_folders(&tree(), &folders("inbox", "Posteingang/Exported", "Fehler"))
        .expect("resolves");
    assert_eq!(
        [
            r.inbox.id.as_str(),
            r.exported.id.as_str(),
            r.error.id.as_str()
        ],
        ["inbox", "exp1", "err"]
    );
    assert_eq!(r.get(FolderRole::Exported).path, "Posteingang/Exported");
}

#[test]
fn every_unresolved_folder_is_reported_at_once() {
    let Err(FoldersError::Unresolved(errors)) =
        resolve_folders(&tree(), &folders("inbox", "Exported", "Errors"))
    else {
        panic!("unresolved expected")
    };
    let roles: Vec<FolderRole> = errors.iter().map(|(r, _)| *r).collect();
    assert_eq!(roles, [FolderRole::Exported, FolderRole::Error]);
    assert!(matches!(errors[0].1, FolderError::Ambiguous { .. }));
    assert!(matches!(errors[1].1, FolderError::NotFound { .. }));
}

#[test]
fn the_same_folder_twice_is_refused_even_when_spelled_differently() {
    let err = resolve_folders(&tree(), &folders("inbox", "Posteingang", "Fehler"))
        .expect_err("not distinct");
    assert_eq!(
        err,
        FoldersError::NotDistinct {
            path: "Posteingang".into(),
            roles: vec![FolderRole::Inbox, FolderRole::Exported],
        }
    );
    assert!(err.to_string().contains("three different folders"));
    let err = resolve_folders(&tree(), &folders("Fehler", "inbox/fehler", "FEHLER"))
        .expect_err("not distinct");
    assert!(matches!(err, FoldersError::NotDistinct { roles, .. } if roles.len() == 3));
}

#[test]
fn edit_distance_counts_characters() {
    let d = |a: &str, b: &str| {
        edit_distance(
            &a.chars().collect::<Vec<_>>(),
            &b.chars().collect::<Vec<_>>(),
        )
    };
    assert_eq!(d("", ""), 0);
    assert_eq!(d("abc", ""), 3);
    assert_eq!(d("kitten", "sitting"), 3);
    assert_eq!(d("überweisung", "uberweisung"), 1);
    assert_eq!(d("日本語", "日本"), 1);
}
