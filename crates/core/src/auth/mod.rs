//! Supabase Auth: the HTTP client and the session's one owner.

pub mod client;
pub mod session;
