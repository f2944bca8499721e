//! `limit` and `offset` of the list endpoints, read the same way everywhere.

use std::collections::HashMap;

use domain::validation::ValidationErrors;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = store::documents::MAX_PAGE;

#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub limit: u32,
    pub offset: u32,
}

impl Paging {
    /// Takes `limit` and `offset` out of `query` (what remains are the
    /// endpoint's own filters), naming each bad value in `errors`.
    pub fn take(query: &mut HashMap<String, String>, errors: &mut ValidationErrors) -> Self {
        let mut paging = Self {
            limit: DEFAULT_LIMIT,
            offset: 0,
        };
        if let Some(value) = query.remove("limit") {
            match value.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => paging.limit = n,
                _ => errors.add(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}, not `{value}`"),
                ),
            }
        }
        if let Some(value) = query.remove("offset") {
            match value.parse::<u32>() {
                Ok(n) => paging.offset = n,
                _ => errors.add(
                    "offset",
                    format!("must be a whole number from 0, not `{value}`"),
                ),
            }
        }
        paging
    }
}
