//! An importer's health in one word: the state its overview badge shows,
//! one stable name per state on every page and in the API.

use serde::Serialize;
use utoipa::ToSchema;

/// Where an importer stands, worst first: the overview sorts by this order,
/// so problems come to the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Microsoft refused the grant's tokens: someone must sign in again.
    ReauthRequired,
    /// The account or app cannot open the mailbox.
    MailboxDenied,
    /// A folder setting is ambiguous or names a missing folder.
    FolderProblem,
    /// The last run(s) failed for another reason.
    Failing,
    /// Nobody has signed in yet (a delegated importer).
    Unauthenticated,
    /// Microsoft asked to wait (`Retry-After`) past the last run's end.
    Throttled,
    /// A run is working the Inbox now.
    Importing,
    /// Nothing to do.
    Healthy,
}

impl HealthState {
    /// The API's name of the state (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReauthRequired => "reauth_required",
            Self::MailboxDenied => "mailbox_denied",
            Self::FolderProblem => "folder_problem",
            Self::Failing => "failing",
            Self::Unauthenticated => "unauthenticated",
            Self::Throttled => "throttled",
            Self::Importing => "importing",
            Self::Healthy => "healthy",
        }
    }

    /// Whether someone must act before mail is imported again.
    pub fn is_problem(self) -> bool {
        self < Self::Throttled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_sort_before_passing_states_and_names_are_stable() {
        let mut states = [
            HealthState::Healthy,
            HealthState::Throttled,
            HealthState::Failing,
            HealthState::ReauthRequired,
            HealthState::Importing,
        ];
        states.sort();
        assert_eq!(
            states.map(HealthState::as_str),
            [
                "reauth_required",
                "failing",
                "throttled",
                "importing",
                "healthy"
            ]
        );
        assert!(HealthState::Unauthenticated.is_problem());
        assert!(!HealthState::Throttled.is_problem());
        assert_eq!(
            serde_json::to_value(HealthState::FolderProblem).expect("json"),
            "folder_problem"
        );
    }
}
