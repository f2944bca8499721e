//! Scope strings as clients send them (`https://graph.microsoft.com/Mail.ReadWrite`,
//! `Mail.ReadWrite`, `.default`, OIDC scopes) reduced to what the emulator reasons about.

/// OIDC scopes, which never need consent and belong to no resource.
pub const OIDC: &[&str] = &["openid", "profile", "email", "offline_access"];

const GRAPH_PREFIXES: &[&str] = &[
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000/",
];

/// A parsed `scope` parameter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scopes {
    /// Graph permissions as short names, in request order.
    pub graph: Vec<String>,
    /// OIDC scopes, lower-case.
    pub oidc: Vec<String>,
    /// `https://graph.microsoft.com/.default` was requested.
    pub graph_default: bool,
    /// Scopes of resources other than Graph (full URIs).
    pub other_resources: Vec<String>,
}

impl Scopes {
    pub fn parse(raw: &str) -> Scopes {
        let mut s = Scopes::default();
        for item in raw.split([' ', '+']).filter(|x| !x.is_empty()) {
            let lower = item.to_lowercase();
            if OIDC.contains(&lower.as_str()) {
                if !s.oidc.contains(&lower) {
                    s.oidc.push(lower);
                }
                continue;
            }
            let short = GRAPH_PREFIXES
                .iter()
                .find_map(|p| (lower.starts_with(p)).then(|| item[p.len()..].to_string()))
                .or_else(|| (!item.contains('/') && !item.contains(':')).then(|| item.to_string()));
            match short {
                Some(name) if name == ".default" => s.graph_default = true,
                Some(name) => {
                    if !s.graph.iter().any(|g| g.eq_ignore_ascii_case(&name)) {
                        s.graph.push(name)
                    }
                }
                None => s.other_resources.push(item.to_string()),
            }
        }
        s
    }
}

/// Whether `set` contains `scope`, ignoring case as Entra does.
pub fn contains(set: &[String], scope: &str) -> bool {
    set.iter().any(|s| s.eq_ignore_ascii_case(scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mixed_forms() {
        let s = Scopes::parse(
            "offline_access openid https://graph.microsoft.com/Mail.ReadWrite User.Read \
             https://outlook.office.com/IMAP.AccessAsUser.All",
        );
        assert_eq!(s.graph, vec!["Mail.ReadWrite", "User.Read"]);
        assert_eq!(s.oidc, vec!["offline_access", "openid"]);
        assert_eq!(s.other_resources.len(), 1);
        assert!(Scopes::parse("https://graph.microsoft.com/.default").graph_default);
    }
}
