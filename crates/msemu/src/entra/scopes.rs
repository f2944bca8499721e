//! Scope strings as clients send them (`https://graph.microsoft.com/Mail.ReadWrite`,
//! `Mail.ReadWrite`, `.default`, OIDC scopes, Exchange Online's
//! `https://outlook.office.com/IMAP.AccessAsUser.All`) reduced to what the emulator reasons
//! about.

/// OIDC scopes, which never need consent and belong to no resource.
pub const OIDC: &[&str] = &["openid", "profile", "email", "offline_access"];

const GRAPH_PREFIXES: &[&str] = &[
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000/",
];

/// Exchange Online's resource URI in the form an app's configured permissions and consents
/// are compared in.
pub const OUTLOOK_RESOURCE: &str = "https://outlook.office.com";

/// Exchange Online ("Office 365 Exchange Online"), the resource of IMAP, POP and SMTP
/// OAuth, by the names clients use for it: its two URIs and its well-known application id.
pub const OUTLOOK_RESOURCES: &[&str] = &[
    OUTLOOK_RESOURCE,
    "https://outlook.office365.com",
    "00000002-0000-0ff1-ce00-000000000000",
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
    /// Exchange Online permissions as requested (full URIs, e.g.
    /// `https://outlook.office.com/IMAP.AccessAsUser.All`), in request order.
    pub outlook: Vec<String>,
    /// An Exchange Online scope came before any Graph scope: a token for these scopes is
    /// a token for Exchange Online (Entra issues a token for the first resource named).
    pub outlook_first: bool,
    /// Scopes of resources other than Graph and Exchange Online (full URIs).
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
            if outlook_resource(item).is_some() {
                if s.graph.is_empty() && !s.graph_default {
                    s.outlook_first = true;
                }
                if !contains(&s.outlook, item) {
                    s.outlook.push(item.to_string());
                }
                continue;
            }
            let short = GRAPH_PREFIXES
                .iter()
                .find_map(|p| {
                    lower
                        .starts_with(p)
                        .then(|| item.get(p.len()..).unwrap_or_default().to_string())
                })
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

    /// How many resources the scopes name (Graph, Exchange Online, others each count).
    pub fn resource_count(&self) -> usize {
        usize::from(!self.graph.is_empty() || self.graph_default)
            + usize::from(!self.outlook.is_empty())
            + self.other_resources.len()
    }

    /// The resource permissions in request order as far as it matters: the first
    /// resource's permissions first.
    pub fn permissions(&self, graph: Vec<String>) -> Vec<String> {
        if self.outlook_first {
            self.outlook.iter().cloned().chain(graph).collect()
        } else {
            graph
                .into_iter()
                .chain(self.outlook.iter().cloned())
                .collect()
        }
    }
}

/// The Exchange Online resource a scope names, as the audience of its tokens
/// (`https://outlook.office.com/IMAP.AccessAsUser.All` → `https://outlook.office.com`).
pub fn outlook_resource(scope: &str) -> Option<&'static str> {
    let lower = scope.to_lowercase();
    OUTLOOK_RESOURCES.iter().copied().find(|r| {
        lower
            .strip_prefix(r)
            .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'))
    })
}

/// A permission without its resource prefix, as it appears in a token's `scp`.
pub fn short_name(scope: &str) -> &str {
    let lower = scope.to_lowercase();
    let prefixes = OUTLOOK_RESOURCES
        .iter()
        .map(|r| format!("{r}/"))
        .chain(GRAPH_PREFIXES.iter().map(|p| p.to_string()));
    for p in prefixes {
        if lower.starts_with(&p) {
            return scope.get(p.len()..).unwrap_or(scope);
        }
    }
    scope
}

/// The form in which a permission is configured on an app and consented: Graph permissions
/// as short names, Exchange Online ones as `https://outlook.office.com/<name>`.
pub fn permission_key(scope: &str) -> String {
    match outlook_resource(scope) {
        Some(_) => format!("{OUTLOOK_RESOURCE}/{}", short_name(scope)),
        None => short_name(scope).to_string(),
    }
}

/// Whether `set` contains `scope`, ignoring case as Entra does and the resource's spelling.
pub fn contains(set: &[String], scope: &str) -> bool {
    let key = permission_key(scope);
    set.iter()
        .any(|s| permission_key(s).eq_ignore_ascii_case(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mixed_forms() {
        let s = Scopes::parse(
            "offline_access openid https://graph.microsoft.com/Mail.ReadWrite User.Read \
             https://outlook.office.com/IMAP.AccessAsUser.All https://example.org/x",
        );
        assert_eq!(s.graph, vec!["Mail.ReadWrite", "User.Read"]);
        assert_eq!(s.oidc, vec!["offline_access", "openid"]);
        assert_eq!(
            s.outlook,
            vec!["https://outlook.office.com/IMAP.AccessAsUser.All"]
        );
        assert!(!s.outlook_first);
        assert_eq!(s.other_resources, vec!["https://example.org/x"]);
        assert_eq!(s.resource_count(), 3);
        assert!(Scopes::parse("https://graph.microsoft.com/.default").graph_default);
    }

    #[test]
    fn exchange_online_scopes() {
        let s = Scopes::parse(
            "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access Mail.Read",
        );
        assert!(s.outlook_first);
        assert_eq!(
            s.permissions(s.graph.clone()),
            vec![
                "https://outlook.office365.com/IMAP.AccessAsUser.All",
                "Mail.Read"
            ]
        );
        assert_eq!(
            outlook_resource("https://outlook.office365.com/IMAP.AccessAsUser.All"),
            Some("https://outlook.office365.com")
        );
        assert_eq!(
            outlook_resource("00000002-0000-0ff1-ce00-000000000000/SMTP.Send"),
            Some("00000002-0000-0ff1-ce00-000000000000")
        );
        assert_eq!(outlook_resource("https://outlook.office.com.evil/x"), None);
        assert_eq!(
            short_name("https://outlook.office.com/IMAP.AccessAsUser.All"),
            "IMAP.AccessAsUser.All"
        );
        assert_eq!(
            short_name("https://graph.microsoft.com/Mail.Read"),
            "Mail.Read"
        );
        assert_eq!(
            permission_key("00000002-0000-0ff1-ce00-000000000000/IMAP.AccessAsUser.All"),
            "https://outlook.office.com/IMAP.AccessAsUser.All"
        );
        let app = vec![
            "Mail.Read".to_string(),
            "https://outlook.office.com/IMAP.AccessAsUser.All".to_string(),
        ];
        assert!(contains(
            &app,
            "https://outlook.office365.com/imap.accessasuser.all"
        ));
        assert!(contains(&app, "https://graph.microsoft.com/mail.read"));
        assert!(!contains(&app, "IMAP.AccessAsUser.All"));
    }
}
