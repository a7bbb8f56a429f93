//! Supabase Auth: the HTTP client, the session's one owner, and sign-in through the
//! project's OAuth providers ([`oauth`]).

pub mod client;
pub mod oauth;
pub mod session;
