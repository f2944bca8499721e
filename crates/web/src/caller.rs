//! Who is calling: an API token (`Authorization: Bearer …`) names the client
//! whose data the request may see; nothing else does.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::AppState;
use crate::problem::Problem;

#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    /// Who started an action, for audit fields such as OAuth state ownership.
    pub principal: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(Problem::unauthorized)?;
        let owner = state
            .store
            .token_owner(token, state.clock.now())
            .await?
            .ok_or_else(Problem::unauthorized)?;
        Ok(Self {
            client_id: owner.client_id,
            principal: format!("token:{}", owner.token_id),
        })
    }
}
