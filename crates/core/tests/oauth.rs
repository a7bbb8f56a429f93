//! Sign-in through an OAuth provider, or an emailed link, against a real sandbox: the loopback listener
//! receives the redirect from a real HTTP client standing in for the browser, which
//! drives the sandbox provider's consent page.

mod support;

use std::{future::pending, sync::Arc, time::Duration};

use jobdeck_core::{
    EmailLinkFlow, ErrorCode, MemoryStore, OAuthFlow, SessionOwner, SessionState, SessionStore,
};
use jobdeck_sandbox::testing::{TestSandbox, email, reqwest};
use support::auth;

fn owner(sandbox: &TestSandbox) -> (Arc<SessionOwner>, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let owner = SessionOwner::new(auth(sandbox), store.clone()).expect("an owner");
    (owner, store)
}

/// The loopback redirect URL the flow's authorize URL carries.
fn redirect_to(flow: &OAuthFlow) -> String {
    let query = flow.url().split_once('?').expect("a query").1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "redirect_to")
        .map(|(_, v)| v.into_owned())
        .expect("a redirect_to")
}

/// What the browser shows once it has followed `url` to the loopback listener.
async fn browser_lands_on(url: &str) -> (reqwest::StatusCode, String) {
    let response = reqwest::get(url).await.expect("the listener answers");
    let status = response.status();
    (status, response.text().await.expect("a page"))
}

#[tokio::test]
async fn a_provider_sign_in_ends_signed_in_as_a_password_one_does() {
    let sandbox = TestSandbox::start().await;
    let (owner, store) = owner(&sandbox);
    assert_eq!(
        owner.auth().providers().await.expect("settings"),
        vec!["sandbox".to_string()]
    );

    let flow = OAuthFlow::start(owner.auth(), "sandbox")
        .await
        .expect("a flow");
    assert!(redirect_to(&flow).starts_with("http://127.0.0.1:"));
    assert!(
        !flow.url().contains(&sandbox.status.anon_key),
        "no key in the browser's URL"
    );
    let address = email("oauth");
    let url = flow.url().to_string();
    let stray = redirect_to(&flow).replace("/callback?", "/favicon.ico?");
    let browser = async {
        // A stray request first (a favicon): answered 404, the flow goes on.
        assert_eq!(
            browser_lands_on(&stray).await.0,
            reqwest::StatusCode::NOT_FOUND
        );
        let landed = sandbox.consent(&url, Some(&address)).await;
        browser_lands_on(&landed).await
    };
    let (signed_in, (status, page)) = tokio::join!(
        owner.sign_in_with_oauth(flow, Duration::from_secs(60), pending()),
        browser
    );
    let user = signed_in.expect("signed in");
    assert_eq!(user.email.as_deref(), Some(address.as_str()));
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(page.contains("You are signed in"), "{page}");
    assert!(matches!(
        *owner.watch().borrow(),
        SessionState::Active { .. }
    ));
    let kept = store.load().expect("loads").expect("the session is kept");
    assert_eq!(kept.user.email.as_deref(), Some(address.as_str()));
    // The session works for the API, as any other sign-in's.
    let token = owner.access_token().await.expect("a token");
    assert_eq!(
        owner
            .auth()
            .user(&token)
            .await
            .expect("the user")
            .email
            .as_deref(),
        Some(address.as_str())
    );
    assert!(!url.contains(kept.refresh_token.expose()));
}

#[tokio::test]
async fn a_declined_foreign_timed_out_or_cancelled_sign_in_saves_nothing() {
    let sandbox = TestSandbox::start().await;
    let (owner, store) = owner(&sandbox);

    // Declined on the provider's page.
    let flow = OAuthFlow::start(owner.auth(), "sandbox")
        .await
        .expect("a flow");
    let url = flow.url().to_string();
    let browser = async {
        let landed = sandbox.consent(&url, None).await;
        browser_lands_on(&landed).await
    };
    let (outcome, (_, page)) = tokio::join!(
        owner.sign_in_with_oauth(flow, Duration::from_secs(60), pending()),
        browser
    );
    let error = outcome.expect_err("declined");
    assert_eq!(
        (error.code(), error.server_code()),
        (ErrorCode::Cancelled, Some("access_denied"))
    );
    assert!(page.contains("Not signed in"), "{page}");

    // A redirect that does not carry this flow's state.
    let flow = OAuthFlow::start(owner.auth(), "sandbox")
        .await
        .expect("a flow");
    let forged = redirect_to(&flow)
        .split_once("state=")
        .map(|(base, _)| format!("{base}state=someone-else&code=stolen"))
        .expect("a state");
    let (outcome, (_, page)) = tokio::join!(
        owner.sign_in_with_oauth(flow, Duration::from_secs(60), pending()),
        browser_lands_on(&forged)
    );
    let error = outcome.expect_err("not this flow's");
    assert_eq!(
        (error.code(), error.server_code()),
        (ErrorCode::Forbidden, Some("state_mismatch"))
    );
    assert!(page.contains("did not start"), "{page}");

    // A code that is not a real one: Auth refuses the exchange.
    let flow = OAuthFlow::start(owner.auth(), "sandbox")
        .await
        .expect("a flow");
    let bogus = format!(
        "{}&code=00000000-0000-0000-0000-000000000000",
        redirect_to(&flow)
    );
    let (outcome, _) = tokio::join!(
        owner.sign_in_with_oauth(flow, Duration::from_secs(60), pending()),
        browser_lands_on(&bogus)
    );
    assert_eq!(
        outcome.expect_err("no such code").server_code(),
        Some("flow_state_not_found")
    );

    // Nobody comes back, and the user gives up.
    let flow = OAuthFlow::start(owner.auth(), "sandbox")
        .await
        .expect("a flow");
    let error = owner
        .sign_in_with_oauth(flow, Duration::from_millis(200), pending())
        .await
        .expect_err("timed out");
    assert_eq!(
        (error.code(), error.server_code()),
        (ErrorCode::Cancelled, Some("timeout"))
    );
    let flow = OAuthFlow::start(owner.auth(), "sandbox")
        .await
        .expect("a flow");
    let port_url = redirect_to(&flow);
    let error = owner
        .sign_in_with_oauth(flow, Duration::from_secs(60), async {})
        .await
        .expect_err("cancelled");
    assert_eq!(error.server_code(), Some("cancelled"));
    assert!(
        reqwest::get(&port_url).await.is_err(),
        "the listener is gone with its flow"
    );

    assert!(store.load().expect("loads").is_none(), "nothing was saved");
    assert!(matches!(*owner.watch().borrow(), SessionState::SignedOut));
}

#[tokio::test]
async fn an_emailed_link_signs_in_through_the_loopback_once() {
    let sandbox = TestSandbox::start().await;
    let (signer, store) = owner(&sandbox);
    let address = email("link");
    let flow = EmailLinkFlow::start(signer.auth(), &address, true)
        .await
        .expect("the mail is sent");
    let mail = sandbox.latest_mail(&address).await;
    let link = mail["link"].as_str().expect("a link").to_string();
    let browser = async {
        let landed = sandbox.follow_link(&link).await;
        assert!(landed.starts_with("http://127.0.0.1:"), "{landed}");
        browser_lands_on(&landed).await
    };
    let (signed_in, (status, page)) = tokio::join!(
        signer.sign_in_with_email_link(flow, Duration::from_secs(60), pending()),
        browser
    );
    assert_eq!(
        signed_in.expect("signed in").email.as_deref(),
        Some(address.as_str())
    );
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(page.contains("You are signed in"), "{page}");
    assert!(
        store.load().expect("loads").is_some(),
        "the session is kept"
    );

    // A link answers once: followed again it lands with Auth's error, not a code.
    let again = sandbox.follow_link(&link).await;
    assert!(again.contains("error_code=otp_expired"), "{again}");
    let query = again.split_once('?').map_or("", |(_, q)| q);
    assert!(
        !form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "code"),
        "{again}"
    );

    // A link never followed: the wait ends with the timeout and nothing is saved.
    let (third, third_store) = owner(&sandbox);
    let flow = EmailLinkFlow::start(third.auth(), &address, false)
        .await
        .expect("the mail is sent");
    let error = third
        .sign_in_with_email_link(flow, Duration::from_millis(200), pending())
        .await
        .expect_err("timed out");
    assert_eq!(error.code(), ErrorCode::Cancelled);
    assert!(third_store.load().expect("loads").is_none());
}
