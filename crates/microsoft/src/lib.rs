//! Clients for Microsoft's services: the identity platform v2.0
//! ([`identity`]: authorization code with PKCE, refresh, client credentials,
//! national clouds) and Graph mail ([`graph`]).

pub mod entra;
pub mod graph;
