//! The identity platform client (filled in by the authorization work).
