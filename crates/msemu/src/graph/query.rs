//! OData query options for message and folder lists: `$top`, `$select`, `$orderby`,
//! `$filter` (with Outlook's InefficientFilter rule) and paging tokens.

use std::cmp::Ordering;

use axum::http::StatusCode;
use jiff::Timestamp;

use super::error::GraphError;
use crate::state::Message;

/// Message properties `$select` accepts.
pub const MESSAGE_PROPERTIES: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "uniqueBody",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
];

/// Parsed query options.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub top: Option<usize>,
    pub select: Option<Vec<String>>,
    pub orderby: Vec<(String, bool)>,
    pub filter: Vec<Clause>,
    pub skiptoken: Option<String>,
    pub skip: usize,
    pub include_hidden: bool,
    /// Ids asked for by `$expand=singleValueExtendedProperties($filter=id eq '…')`.
    pub extended_properties: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Time(Timestamp),
    Bool(bool),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub property: String,
    pub op: Op,
    pub value: Literal,
}

fn invalid_filter(msg: &str) -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Invalid filter clause: {msg}"),
    )
}

/// Properties `$orderby` and `$filter` accept, with their canonical casing.
const SORTABLE: &[&str] = &[
    "receivedDateTime",
    "sentDateTime",
    "createdDateTime",
    "lastModifiedDateTime",
    "subject",
    "isRead",
    "hasAttachments",
    "internetMessageId",
];

fn canonical(prop: &str) -> Option<&'static str> {
    SORTABLE
        .iter()
        .copied()
        .find(|p| p.eq_ignore_ascii_case(prop))
}

fn parse_clause(text: &str) -> Result<Clause, GraphError> {
    let mut parts = text.trim().splitn(3, ' ');
    let (Some(prop), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid_filter(text));
    };
    let property = canonical(prop)
        .ok_or_else(|| {
            GraphError::bad_request(format!(
                "Could not find a property named '{prop}' on type 'microsoft.graph.message'."
            ))
        })?
        .to_string();
    let op = match op.to_lowercase().as_str() {
        "eq" => Op::Eq,
        "ne" => Op::Ne,
        "gt" => Op::Gt,
        "ge" => Op::Ge,
        "lt" => Op::Lt,
        "le" => Op::Le,
        _ => return Err(invalid_filter(text)),
    };
    let value = value.trim();
    let value = if let Some(s) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Literal::Text(s.replace("''", "'"))
    } else if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
        Literal::Bool(value.eq_ignore_ascii_case("true"))
    } else {
        Literal::Time(
            value
                .parse::<Timestamp>()
                .map_err(|_| invalid_filter(text))?,
        )
    };
    Ok(Clause {
        property,
        op,
        value,
    })
}

/// The ids in `singleValueExtendedProperties($filter=id eq 'A' or id eq 'B')`.
fn extended_property_ids(expand: &str) -> Vec<String> {
    let Some(rest) = expand
        .trim()
        .strip_prefix("singleValueExtendedProperties(")
        .and_then(|r| r.strip_suffix(')'))
    else {
        return Vec::new();
    };
    let filter = rest.trim().strip_prefix("$filter=").unwrap_or_default();
    filter
        .split(" or ")
        .filter_map(|clause| {
            let value = clause.trim().strip_prefix("id eq ")?.trim();
            Some(value.strip_prefix('\'')?.strip_suffix('\'')?.to_owned())
        })
        .collect()
}

impl ListQuery {
    /// Parses the query string; unknown `$` options are rejected as Graph does.
    pub fn parse(query: Option<&str>, max_top: usize) -> Result<ListQuery, GraphError> {
        let mut q = ListQuery::default();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match k.as_ref() {
                "$top" | "top" => {
                    let n: usize = v.parse().map_err(|_| {
                        GraphError::bad_request(format!("Invalid value '{v}' for $top."))
                    })?;
                    if n == 0 || n > max_top {
                        return Err(GraphError::new(
                            StatusCode::BAD_REQUEST,
                            "ErrorInvalidUrlQuery",
                            format!("The value of $top must be between 1 and {max_top}."),
                        ));
                    }
                    q.top = Some(n);
                }
                "$select" | "select" => {
                    q.select = Some(
                        v.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect(),
                    )
                }
                "$orderby" | "orderby" => {
                    for item in v.split(',') {
                        let mut it = item.split_whitespace();
                        let prop = it.next().unwrap_or_default();
                        let desc = match it.next().map(str::to_lowercase).as_deref() {
                            None | Some("asc") => false,
                            Some("desc") => true,
                            Some(_) => {
                                return Err(GraphError::bad_request(format!(
                                    "Invalid $orderby '{item}'."
                                )));
                            }
                        };
                        let prop = canonical(prop).ok_or_else(|| {
                            GraphError::bad_request(format!(
                                "Could not find a property named '{prop}' on type \
                                 'microsoft.graph.message'."
                            ))
                        })?;
                        q.orderby.push((prop.to_string(), desc));
                    }
                }
                "$filter" | "filter" => {
                    q.filter = split_and(&v)
                        .iter()
                        .map(|c| parse_clause(c))
                        .collect::<Result<_, _>>()?;
                }
                "$skiptoken" => q.skiptoken = Some(v.into_owned()),
                "$skip" | "skip" => {
                    q.skip = v.parse().map_err(|_| {
                        GraphError::bad_request(format!("Invalid value '{v}' for $skip."))
                    })?
                }
                "includeHiddenFolders" => q.include_hidden = v.eq_ignore_ascii_case("true"),
                "$expand" | "expand" => q.extended_properties.extend(extended_property_ids(&v)),
                "$count" | "$format" => {}
                other if other.starts_with('$') => {
                    return Err(GraphError::bad_request(format!(
                        "Query option '{other}' is not supported."
                    )));
                }
                _ => {}
            }
        }
        // Outlook's rule: properties in $orderby must come first in $filter, in the same order.
        if !q.filter.is_empty() && !q.orderby.is_empty() {
            let ok = q.orderby.len() <= q.filter.len()
                && q.orderby
                    .iter()
                    .zip(&q.filter)
                    .all(|((o, _), c)| *o == c.property);
            if !ok {
                return Err(GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "InefficientFilter",
                    "The restriction or sort order is too complex for this operation.",
                ));
            }
        }
        if let Some(sel) = &q.select {
            for s in sel {
                if !MESSAGE_PROPERTIES.iter().any(|p| p.eq_ignore_ascii_case(s))
                    && !super::render::FOLDER_PROPERTIES
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(s))
                {
                    return Err(GraphError::bad_request(format!(
                        "Could not find a property named '{s}' on type 'microsoft.graph.message'."
                    )));
                }
            }
        }
        Ok(q)
    }

    pub fn matches(&self, m: &Message) -> bool {
        self.filter.iter().all(|c| clause_matches(c, m))
    }

    pub fn compare(&self, a: &Message, b: &Message) -> Ordering {
        let keys: Vec<(String, bool)> = if self.orderby.is_empty() {
            vec![("receivedDateTime".into(), true)]
        } else {
            self.orderby.clone()
        };
        for (prop, desc) in keys {
            let o = value_of(&prop, a).partial_cmp_lit(&value_of(&prop, b));
            let o = if desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

/// Splits on ` and ` outside quotes.
fn split_and(filter: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut in_quote = false;
    let words: Vec<&str> = filter.split(' ').collect();
    for w in words {
        if !in_quote && w.eq_ignore_ascii_case("and") && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            continue;
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
        if w.matches('\'').count() % 2 == 1 {
            in_quote = !in_quote;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn value_of(prop: &str, m: &Message) -> Literal {
    match prop {
        "receivedDateTime" => Literal::Time(m.received),
        "sentDateTime" => Literal::Time(m.props.sent.unwrap_or(m.received)),
        "createdDateTime" => Literal::Time(m.created),
        "lastModifiedDateTime" => Literal::Time(m.last_modified),
        "isRead" => Literal::Bool(m.is_read),
        "hasAttachments" => Literal::Bool(m.props.attachments.iter().any(|a| !a.is_inline)),
        "internetMessageId" => {
            Literal::Text(m.props.internet_message_id.clone().unwrap_or_default())
        }
        _ => Literal::Text(m.props.subject.clone()),
    }
}

trait CmpLit {
    fn partial_cmp_lit(&self, other: &Literal) -> Ordering;
}

impl CmpLit for Literal {
    fn partial_cmp_lit(&self, other: &Literal) -> Ordering {
        match (self, other) {
            (Literal::Time(a), Literal::Time(b)) => a.cmp(b),
            (Literal::Bool(a), Literal::Bool(b)) => a.cmp(b),
            (Literal::Text(a), Literal::Text(b)) => a.to_lowercase().cmp(&b.to_lowercase()),
            _ => Ordering::Equal,
        }
    }
}

fn clause_matches(c: &Clause, m: &Message) -> bool {
    let v = value_of(&c.property, m);
    let o = v.partial_cmp_lit(&c.value);
    match c.op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inefficient_filter_rule() {
        let ok = ListQuery::parse(
            Some(
                "%24filter=receivedDateTime+ge+2024-01-01T00:00:00Z&%24orderby=receivedDateTime+desc",
            ),
            1000,
        );
        assert!(ok.is_ok());
        let bad = ListQuery::parse(
            Some(
                "$filter=isRead eq false and receivedDateTime ge 2024-01-01T00:00:00Z&$orderby=receivedDateTime desc",
            ),
            1000,
        );
        assert_eq!(bad.err().map(|e| e.code), Some("InefficientFilter"));
        assert!(ListQuery::parse(Some("$top=1001"), 1000).is_err());
    }
}
