//! Supabase Auth: the HTTP client, the session's one owner, sign-in through the
//! browser ([`oauth`]), and sessions at rest in the OS keychain ([`keychain`]).

pub mod client;
pub mod keychain;
pub mod oauth;
pub mod session;
