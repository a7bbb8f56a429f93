//! Sign-ins that come back through the user's browser, as RFC 8252 has native apps do
//! them: PKCE (RFC 7636), the user's own browser, and the redirect received on a
//! loopback listener on a free port (`http://127.0.0.1:<port>/callback`). Two start
//! there: the project's OAuth providers ([`OAuthFlow`]) and the link in an emailed
//! sign-in message ([`EmailLinkFlow`]).
//!
//! [`OAuthFlow::start`] binds the listener and makes the URL to open
//! ([`EmailLinkFlow::start`] has the link emailed instead); `finish` waits for the
//! browser to come back, exchanges the code at
//! `/token?grant_type=pkce` and only then answers the browser's tab, so the page says
//! what really happened. The verifier and the code never leave this module except to
//! Auth, and are never logged.

use std::{future::Future, time::Duration};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

use super::client::{AuthClient, Session};
use crate::{Error, Secret};

/// How long a sign-in may wait for the browser: as long as Auth keeps the flow.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long an emailed link may wait to be followed: as long as Auth keeps its code.
pub const EMAIL_LINK_TIMEOUT: Duration = Duration::from_secs(3600);

/// The path the browser comes back to.
const CALLBACK_PATH: &str = "/callback";

/// A browser that connects must send its request within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests larger than this are not a redirect.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// A sign-in through `provider` waiting for the browser.
#[derive(Debug)]
pub struct OAuthFlow {
    url: String,
    loopback: Loopback,
}

/// A sign-in by the link in an emailed message, waiting for the browser that follows it
/// (the code in the same message signs in too, with
/// [`super::session::SessionOwner::verify_email_code`]).
#[derive(Debug)]
pub struct EmailLinkFlow {
    loopback: Loopback,
}

/// The listener the browser comes back to, and what a flow checks it brings.
#[derive(Debug)]
struct Loopback {
    /// Who the messages name: the provider, or the emailed link.
    via: String,
    verifier: Secret,
    /// Sent in the redirect URL and expected back: a request that does not carry it
    /// was not started by this flow.
    state: String,
    listener: TcpListener,
}

/// What the browser brought back.
enum Redirect {
    Code(String),
    Refused { error: String, description: String },
    Foreign,
}

impl OAuthFlow {
    /// Binds `127.0.0.1` on a free port and makes the URL that starts the sign-in at
    /// the project's `/authorize`.
    pub async fn start(auth: &AuthClient, provider: &str) -> Result<Self, Error> {
        let (loopback, redirect_to, challenge) = Loopback::bind(provider).await?;
        let url = auth.authorize_url(provider, &redirect_to, &challenge);
        Ok(Self { url, loopback })
    }

    /// The URL to open in the browser.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits for the browser's redirect (at most `timeout`, or until `cancelled`
    /// completes) and exchanges its code for a session. Requests that are not the
    /// redirect (a favicon, a stray port scan) are answered 404 and waited past.
    pub async fn finish(
        self,
        auth: &AuthClient,
        timeout: Duration,
        cancelled: impl Future<Output = ()>,
    ) -> Result<Session, Error> {
        self.loopback.finish(auth, timeout, cancelled).await
    }
}

impl EmailLinkFlow {
    /// Binds `127.0.0.1` on a free port and has Auth email `email` a code and a link
    /// that ends this flow (PKCE), creating the user unless `create_user` is false.
    pub async fn start(auth: &AuthClient, email: &str, create_user: bool) -> Result<Self, Error> {
        let (loopback, redirect_to, challenge) = Loopback::bind("the emailed link").await?;
        auth.send_email_link(email, create_user, &redirect_to, &challenge)
            .await?;
        Ok(Self { loopback })
    }

    /// Waits for the link to be followed, as [`OAuthFlow::finish`] waits for the
    /// provider.
    pub async fn finish(
        self,
        auth: &AuthClient,
        timeout: Duration,
        cancelled: impl Future<Output = ()>,
    ) -> Result<Session, Error> {
        self.loopback.finish(auth, timeout, cancelled).await
    }
}

impl Loopback {
    /// The listener, the redirect URL it answers (with the state nonce) and the S256
    /// challenge of the verifier.
    async fn bind(via: &str) -> Result<(Self, String, String), Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
            Error::Invalid(format!("cannot listen for the browser's redirect: {e}"))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Invalid(format!("cannot listen for the browser's redirect: {e}")))?
            .port();
        let verifier = random_hex();
        let state = random_hex();
        let redirect_to = format!("http://127.0.0.1:{port}{CALLBACK_PATH}?state={state}");
        let challenge = challenge(&verifier);
        let loopback = Self {
            via: via.to_string(),
            verifier: Secret::new(verifier),
            state,
            listener,
        };
        Ok((loopback, redirect_to, challenge))
    }

    async fn finish(
        self,
        auth: &AuthClient,
        timeout: Duration,
        cancelled: impl Future<Output = ()>,
    ) -> Result<Session, Error> {
        let via = self.via.clone();
        tokio::select! {
            outcome = self.receive(auth) => outcome,
            () = tokio::time::sleep(timeout) => Err(oauth_error(
                "timeout",
                format!(
                    "the sign-in with {via} was not finished in the browser within {} s",
                    timeout.as_secs()
                ),
            )),
            () = cancelled => Err(oauth_error("cancelled", "the sign-in was cancelled")),
        }
    }

    async fn receive(self, auth: &AuthClient) -> Result<Session, Error> {
        loop {
            let Ok((mut stream, _)) = self.listener.accept().await else {
                continue;
            };
            let Some(redirect) = self.read_redirect(&mut stream).await else {
                continue;
            };
            let outcome = match redirect {
                Redirect::Code(code) => {
                    auth.exchange_code(&Secret::new(code), &self.verifier).await
                }
                Redirect::Refused { error, description } => Err(oauth_error(
                    // The provider's or Auth's own word (`access_denied`, ...).
                    &error,
                    if description.is_empty() {
                        format!("{} refused the sign-in ({error})", self.via)
                    } else {
                        format!("{} refused the sign-in: {description}", self.via)
                    },
                )),
                Redirect::Foreign => Err(oauth_error(
                    "state_mismatch",
                    "the browser came back with a sign-in this app did not start; nothing was saved",
                )),
            };
            // The app's two languages: the tab cannot know which one the app shows.
            let page = match &outcome {
                Ok(_) => page(
                    "Signed in · サインインしました",
                    "You are signed in to Jobdeck. You can close this tab.",
                    "Jobdeck にサインインしました。このタブは閉じてかまいません。",
                ),
                Err(error) => page(
                    "Not signed in · サインインできませんでした",
                    &format!("{error}. You can close this tab and try again from Jobdeck."),
                    "このタブを閉じて、Jobdeck からもう一度お試しください。",
                ),
            };
            let _ = stream.write_all(page.as_bytes()).await;
            let _ = stream.shutdown().await;
            return outcome;
        }
    }

    /// Reads one request; answers the redirect it carries, or `None` (after a 404)
    /// when it is not one.
    async fn read_redirect(&self, stream: &mut TcpStream) -> Option<Redirect> {
        let mut buffer = Vec::with_capacity(1024);
        let target = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let mut chunk = [0u8; 1024];
            loop {
                let read = stream.read(&mut chunk).await.ok()?;
                if read == 0 || buffer.len() + read > MAX_REQUEST_BYTES {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..read]);
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut request = httparse::Request::new(&mut headers);
                match request.parse(&buffer) {
                    Ok(httparse::Status::Complete(_)) => {
                        return Some((request.method?.to_string(), request.path?.to_string()));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(_) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        let redirect = target.and_then(|(method, target)| {
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            (method == "GET" && path == CALLBACK_PATH).then(|| self.redirect(query))
        });
        if redirect.is_none() {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
        redirect
    }

    fn redirect(&self, query: &str) -> Redirect {
        let value = |key: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        };
        if value("state").as_deref() != Some(self.state.as_str()) {
            return Redirect::Foreign;
        }
        if let Some(error) = value("error") {
            return Redirect::Refused {
                error,
                description: value("error_description").unwrap_or_default(),
            };
        }
        match value("code") {
            Some(code) if !code.is_empty() => Redirect::Code(code),
            _ => Redirect::Refused {
                error: "invalid_request".into(),
                description: "the redirect carried no code".into(),
            },
        }
    }
}

fn oauth_error(code: &str, message: impl Into<String>) -> Error {
    Error::OAuth {
        code: code.to_string(),
        message: message.into(),
    }
}

/// 64 hex digits from two random UUIDs: 244 bits from the operating system's
/// generator, in the alphabet RFC 7636 allows a verifier.
fn random_hex() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The S256 challenge of `verifier`: base64url(SHA-256), unpadded.
fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The tab's last page: a complete response, the connection closed after it.
fn page(title: &str, text: &str, japanese: &str) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} - Jobdeck</title>\
         <style>body{{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}</style>\
         </head><body><h1>{title}</h1><p id=\"outcome\">{}</p><p lang=\"ja\">{japanese}</p></body></html>",
        escape(text)
    );
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let verifier = random_hex();
        assert_eq!(verifier.len(), 64);
        assert_ne!(verifier, random_hex());
    }
}
