//! `/auth/v1` over real HTTP: what a Supabase client sees from GoTrue.

use jobdeck_sandbox::testing::{TestSandbox, email, send, totp_code};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn sign_up_sign_in_get_and_update_the_user() {
    let sandbox = TestSandbox::start().await;
    let address = email("ada");
    let session = sandbox.sign_up(&address, "correct horse").await;
    assert_eq!(session.email, address);

    let (status, body) = send(
        sandbox
            .anon(Method::POST, "/auth/v1/signup")
            .json(&json!({ "email": address, "password": "correct horse" })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("user_already_exists")
        )
    );

    let (status, body) = send(
        sandbox
            .anon(Method::POST, "/auth/v1/signup")
            .json(&json!({ "email": email("weak"), "password": "123" })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("weak_password"))
    );
    assert_eq!(body["weak_password"]["reasons"], json!(["length"]));

    let (status, body) = sandbox
        .sign_in(&address, "wrong horse")
        .await
        .expect_err("a wrong password");
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_credentials"))
    );
    let (_, unknown) = sandbox
        .sign_in(&email("nobody"), "whatever")
        .await
        .expect_err("an unknown user");
    assert_eq!(
        unknown, body,
        "an unknown user is indistinguishable from a wrong password"
    );

    let signed_in = sandbox
        .sign_in(&address, "correct horse")
        .await
        .expect("signs in");
    assert_eq!(signed_in.user_id, session.user_id);
    let (status, user) = send(sandbox.user(&signed_in, Method::GET, "/auth/v1/user")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["email"], address.as_str());
    assert_eq!(user["role"], "authenticated");
    assert!(user["email_confirmed_at"].is_string(), "auto-confirmed");

    let (status, user) = send(
        sandbox
            .user(&signed_in, Method::PUT, "/auth/v1/user")
            .json(&json!({ "data": { "theme": "dark" } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["user_metadata"]["theme"], "dark");
}

#[tokio::test]
async fn errors_come_in_the_format_the_client_asks_for() {
    let sandbox = TestSandbox::start().await;
    let body = json!({ "email": email("x"), "password": "nope-nope" });
    let old = sandbox
        .http
        .post(sandbox.url("/auth/v1/token?grant_type=password"))
        .header("apikey", &sandbox.status.anon_key)
        .json(&body)
        .send()
        .await
        .expect("an answer");
    assert_eq!(old.headers()["x-sb-error-code"], "invalid_credentials");
    let old: serde_json::Value = old.json().await.expect("json");
    assert_eq!(
        old,
        json!({ "code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials" })
    );

    let (_, new) = send(
        sandbox
            .anon(Method::POST, "/auth/v1/token?grant_type=password")
            .json(&body),
    )
    .await;
    assert_eq!(
        new,
        json!({ "code": "invalid_credentials", "message": "Invalid login credentials" })
    );

    let (status, body) = send(sandbox.http.get(sandbox.url("/auth/v1/settings"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no API key: {body}");
    let (status, _) = send(
        sandbox
            .http
            .get(sandbox.url("/auth/v1/settings"))
            .header("apikey", "not-a-key"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(sandbox.http.get(sandbox.url("/auth/v1/health"))).await;
    assert_eq!(status, StatusCode::OK, "health needs no key");
    let (status, jwks) = send(
        sandbox
            .http
            .get(sandbox.url("/auth/v1/.well-known/jwks.json")),
    )
    .await;
    assert_eq!(
        (status, jwks),
        (StatusCode::OK, json!({ "keys": [] })),
        "HS256 keys are never published"
    );
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_old_token_revokes_the_session() {
    // No reuse interval, so the test need not wait one out.
    let sandbox = TestSandbox::start_with(|o| o.refresh_reuse_interval = 0.0).await;
    let address = email("rot");
    let first = sandbox.sign_up(&address, "correct horse").await;

    let (status, body) = sandbox.refresh(&first.refresh_token).await;
    assert_eq!(status, StatusCode::OK);
    let second = jobdeck_sandbox::testing::Session::from_json(&body);
    assert_ne!(second.refresh_token, first.refresh_token, "rotated");

    // The parent of the active token may be presented again (a client that lost the
    // answer): it gets the active token, and nothing is revoked.
    let (status, body) = sandbox.refresh(&first.refresh_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["refresh_token"], second.refresh_token.as_str());

    let (_, body) = sandbox.refresh(&second.refresh_token).await;
    let third = jobdeck_sandbox::testing::Session::from_json(&body);

    // The first token is now two generations old: someone else may hold it.
    let (status, body) = sandbox.refresh(&first.refresh_token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("refresh_token_already_used"))
    );
    let (status, body) = send(sandbox.user(&third, Method::GET, "/auth/v1/user")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("session_not_found"))
    );
    let (status, _) = sandbox.refresh(&third.refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the whole session is gone");

    // Signing in again starts a new session.
    assert!(sandbox.sign_in(&address, "correct horse").await.is_ok());
}

#[tokio::test]
async fn within_the_reuse_interval_an_old_token_gets_the_current_one() {
    let sandbox = TestSandbox::start().await;
    let first = sandbox.sign_up(&email("reuse"), "correct horse").await;
    let (_, body) = sandbox.refresh(&first.refresh_token).await;
    let second = jobdeck_sandbox::testing::Session::from_json(&body);
    let (_, body) = sandbox.refresh(&second.refresh_token).await;
    let third = jobdeck_sandbox::testing::Session::from_json(&body);
    let (status, body) = sandbox.refresh(&first.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["refresh_token"], third.refresh_token.as_str());
}

#[tokio::test]
async fn sign_out_scopes_end_the_right_sessions() {
    let sandbox = TestSandbox::start().await;
    let address = email("out");
    let laptop = sandbox.sign_up(&address, "correct horse").await;
    let phone = sandbox
        .sign_in(&address, "correct horse")
        .await
        .expect("signs in");
    let tablet = sandbox
        .sign_in(&address, "correct horse")
        .await
        .expect("signs in");

    let (status, _) =
        send(sandbox.user(&laptop, Method::POST, "/auth/v1/logout?scope=local")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        sandbox.refresh(&laptop.refresh_token).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        sandbox.refresh(&phone.refresh_token).await.0,
        StatusCode::OK,
        "other sessions stay"
    );

    let (status, _) = send(sandbox.user(&tablet, Method::POST, "/auth/v1/logout")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(sandbox.user(&tablet, Method::GET, "/auth/v1/user")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("session_not_found"))
    );
    let (status, _) = send(sandbox.user(&phone, Method::GET, "/auth/v1/user")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "global sign-out ended every session"
    );
}

#[tokio::test]
async fn sign_in_with_an_emailed_code_from_the_local_inbox() {
    let sandbox = TestSandbox::start().await;
    let address = email("otp");
    let (status, _) = send(
        sandbox
            .anon(Method::POST, "/auth/v1/otp")
            .json(&json!({ "email": address })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, inbox) = send(
        sandbox
            .http
            .get(sandbox.url(&format!("/inbox?email={address}"))),
    )
    .await;
    let code = inbox[0]["code"]
        .as_str()
        .expect("a code in the inbox")
        .to_string();
    assert!(inbox[0]["body"].as_str().is_some_and(|b| b.contains(&code)));

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = send(
        sandbox
            .anon(Method::POST, "/auth/v1/verify")
            .json(&json!({ "type": "email", "email": address, "token": wrong })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("otp_expired"))
    );

    let (status, body) = send(
        sandbox
            .anon(Method::POST, "/auth/v1/verify")
            .json(&json!({ "type": "email", "email": address, "token": code })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = jobdeck_sandbox::testing::Session::from_json(&body);
    assert_eq!(session.email, address);

    let (status, _) = send(
        sandbox
            .anon(Method::POST, "/auth/v1/verify")
            .json(&json!({ "type": "email", "email": address, "token": code })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a code works once");
}

#[tokio::test]
async fn admin_endpoints_need_the_service_role_key() {
    let sandbox = TestSandbox::start().await;
    let address = email("admin");
    let (status, body) = send(
        sandbox
            .anon(Method::POST, "/auth/v1/admin/users")
            .json(&json!({ "email": address, "password": "correct horse" })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_admin"))
    );

    let (status, user) =
        send(sandbox.service(Method::POST, "/auth/v1/admin/users").json(
            &json!({ "email": address, "password": "correct horse", "email_confirm": true }),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    let session = sandbox
        .sign_in(&address, "correct horse")
        .await
        .expect("the new user signs in");
    sandbox
        .rpc(&session, "enqueue_job", json!({ "kind": "hello" }))
        .await;

    let (_, list) = send(sandbox.service(Method::GET, "/auth/v1/admin/users")).await;
    assert!(
        list["users"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["email"] == address.as_str()))
    );

    let id = user["id"].as_str().expect("an id");
    let (status, _) =
        send(sandbox.service(Method::DELETE, &format!("/auth/v1/admin/users/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(sandbox.sign_in(&address, "correct horse").await.is_err());
    let admin = sandbox.database.admin().await;
    let jobs: i64 = admin
        .query_one("select count(*) from jobs", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(jobs, 0, "the user's jobs went with the user");
}

/// A PKCE verifier and its S256 challenge, made as a client makes them.
fn pkce_pair() -> (String, String) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn query_value(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn oauth_with_pkce_signs_in_through_the_sandbox_provider_once_per_code() {
    let sandbox = TestSandbox::start().await;
    let (_, settings) = send(sandbox.anon(Method::GET, "/auth/v1/settings")).await;
    assert_eq!(settings["external"]["sandbox"], true, "{settings}");

    // An existing password user signs in through the provider with the same address:
    // one user, the provider's identity linked to them.
    let address = email("oauth");
    let existing = sandbox.sign_up(&address, "correct horse").await;

    let (verifier, challenge) = pkce_pair();
    let redirect = "http://127.0.0.1:9/callback?state=app-nonce";
    let authorize = |challenge: &str, redirect: &str| {
        let mut url = format!("{}?", sandbox.url("/auth/v1/authorize"));
        url.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .append_pair("provider", "sandbox")
                .append_pair("redirect_to", redirect)
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "s256")
                .finish(),
        );
        url
    };
    let landed = sandbox
        .consent(
            &authorize(&challenge, redirect),
            Some(&address.to_uppercase()),
        )
        .await;
    assert!(
        landed.starts_with("http://127.0.0.1:9/callback?"),
        "{landed}"
    );
    assert_eq!(query_value(&landed, "state").as_deref(), Some("app-nonce"));
    let code = query_value(&landed, "code").expect("a code in the redirect");

    let exchange = |code: &str, verifier: &str| {
        sandbox
            .anon(Method::POST, "/auth/v1/token?grant_type=pkce")
            .json(&json!({ "auth_code": code, "code_verifier": verifier }))
    };
    let (status, body) = send(exchange(
        &code,
        "not-the-verifier-not-the-verifier-not-the-ver",
    ))
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_code_verifier"))
    );
    let (status, session) = send(exchange(&code, &verifier)).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(
        session["user"]["id"].as_str(),
        Some(existing.user_id.as_str())
    );
    let providers: Vec<&str> = session["user"]["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .filter_map(|i| i["provider"].as_str())
        .collect();
    assert!(
        providers.contains(&"sandbox") && providers.contains(&"email"),
        "{providers:?}"
    );
    let claims = sandbox_claims(session["access_token"].as_str().expect("a token"));
    assert_eq!(claims["amr"][0]["method"], "oauth");
    assert_eq!(claims["aal"], "aal1");
    let (status, _) = send(sandbox.user(
        &jobdeck_sandbox::testing::Session::from_json(&session),
        Method::GET,
        "/auth/v1/user",
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "the session is a real one");

    let (status, body) = send(exchange(&code, &verifier)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("flow_state_not_found")),
        "a code is used once"
    );
    let (status, body) = send(exchange("", &verifier)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("validation_failed"))
    );

    // A code exchanged after the flow's five minutes is refused.
    let (verifier, challenge) = pkce_pair();
    let landed = sandbox
        .consent(&authorize(&challenge, redirect), Some(&email("late")))
        .await;
    let code = query_value(&landed, "code").expect("a code");
    sandbox
        .database
        .admin()
        .await
        .execute(
            "update auth.flow_state set auth_code_issued_at = now() - interval '301 seconds'
              where auth_code = $1",
            &[&code],
        )
        .await
        .expect("ages the flow");
    let (status, body) = send(exchange(&code, &verifier)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("flow_state_expired"))
    );

    // Declining on the provider's page comes back as GoTrue's OAuth error.
    let (_, challenge) = pkce_pair();
    let landed = sandbox
        .consent(&authorize(&challenge, redirect), None)
        .await;
    assert_eq!(
        query_value(&landed, "error").as_deref(),
        Some("access_denied")
    );
    assert!(
        query_value(&landed, "error_description").is_some(),
        "{landed}"
    );
    assert_eq!(query_value(&landed, "code"), None);

    // A redirect the project does not allow ends at the site URL, never there.
    let (_, challenge) = pkce_pair();
    let landed = sandbox
        .consent(
            &authorize(&challenge, "https://elsewhere.example/steal"),
            Some(&email("redirected")),
        )
        .await;
    assert!(
        landed.starts_with(&format!("{}?code=", sandbox.status.api_url)),
        "{landed}"
    );

    // Providers the project has not enabled, and malformed challenges, are refused.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let (status, body) = send(
        browser.get(authorize(&challenge, redirect).replace("provider=sandbox", "provider=github")),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("validation_failed")),
        "{body}"
    );
    let (status, _) = send(browser.get(authorize("too-short", redirect))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn oauth_without_pkce_puts_the_session_in_the_fragment() {
    let sandbox = TestSandbox::start().await;
    let url = format!(
        "{}?provider=sandbox&redirect_to=http%3A%2F%2F127.0.0.1%3A9%2Fdone",
        sandbox.url("/auth/v1/authorize")
    );
    let address = email("implicit");
    let landed = sandbox.consent(&url, Some(&address)).await;
    let fragment = landed
        .strip_prefix("http://127.0.0.1:9/done#")
        .unwrap_or_else(|| panic!("the session in the fragment: {landed}"));
    let values: std::collections::HashMap<String, String> =
        form_urlencoded::parse(fragment.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(values["token_type"], "bearer");
    let (status, user) = send(
        sandbox
            .anon(Method::GET, "/auth/v1/user")
            .bearer_auth(&values["access_token"]),
    )
    .await;
    assert_eq!(
        (status, user["email"].as_str()),
        (StatusCode::OK, Some(address.as_str()))
    );
    assert_eq!(user["app_metadata"]["provider"], "sandbox");
    let (status, _) = sandbox.refresh(&values["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK);
}

/// An access token's claims, read as a client reads them (not verified).
fn sandbox_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Challenges `factor` and answers with `code`.
async fn answer(
    sandbox: &TestSandbox,
    session: &jobdeck_sandbox::testing::Session,
    factor: &str,
    code: &str,
) -> (StatusCode, serde_json::Value) {
    let (status, challenge) = send(sandbox.user(
        session,
        Method::POST,
        &format!("/auth/v1/factors/{factor}/challenge"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    send(
        sandbox
            .user(
                session,
                Method::POST,
                &format!("/auth/v1/factors/{factor}/verify"),
            )
            .json(&json!({ "challenge_id": challenge["id"], "code": code })),
    )
    .await
}

#[tokio::test]
async fn a_totp_factor_makes_sessions_aal2_and_only_aal2_removes_it() {
    let sandbox = TestSandbox::start().await;
    let address = email("mfa");
    let first = sandbox.sign_up(&address, "correct horse").await;
    let other_device = sandbox
        .sign_in(&address, "correct horse")
        .await
        .expect("signs in");

    let (status, enrolled) = send(
        sandbox
            .user(&first, Method::POST, "/auth/v1/factors")
            .json(&json!({ "factor_type": "totp", "friendly_name": "phone" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    let factor = enrolled["id"].as_str().expect("a factor id").to_string();
    let secret = enrolled["totp"]["secret"].as_str().expect("a secret");
    let uri = enrolled["totp"]["uri"].as_str().expect("a URI");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(
        enrolled["totp"]["qr_code"]
            .as_str()
            .expect("a QR code")
            .contains("<svg")
    );
    let (_, user) = send(sandbox.user(&first, Method::GET, "/auth/v1/user")).await;
    assert_eq!(user["factors"][0]["status"], "unverified");

    // One name per factor; an unknown factor or another user's is not found.
    let (status, body) = send(
        sandbox
            .user(&first, Method::POST, "/auth/v1/factors")
            .json(&json!({ "factor_type": "totp", "friendly_name": "phone" })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("mfa_factor_name_conflict")
        )
    );
    let stranger = sandbox.sign_up(&email("stranger"), "correct horse").await;
    let (status, body) = send(sandbox.user(
        &stranger,
        Method::POST,
        &format!("/auth/v1/factors/{factor}/challenge"),
    ))
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("mfa_factor_not_found"))
    );

    let (status, body) = answer(&sandbox, &first, &factor, "000000").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("mfa_verification_failed")
        )
    );
    let (status, body) = answer(&sandbox, &first, &factor, &totp_code(secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let elevated = jobdeck_sandbox::testing::Session::from_json(&body);
    let claims = sandbox_claims(&elevated.access_token);
    assert_eq!(claims["aal"], "aal2");
    let methods: Vec<&str> = claims["amr"]
        .as_array()
        .expect("an amr list")
        .iter()
        .map(|entry| entry["method"].as_str().expect("a method"))
        .collect();
    assert_eq!(methods, ["totp", "password"], "most recent first");
    assert_eq!(body["user"]["factors"][0]["status"], "verified");

    // The aal1 refresh token cannot reach the aal2 session; the other device's aal1
    // session is over; a refresh keeps aal2.
    let (status, body) = sandbox.refresh(&first.refresh_token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("refresh_token_not_found"))
    );
    let (status, body) = send(sandbox.user(&other_device, Method::GET, "/auth/v1/user")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("session_not_found"))
    );
    let (status, body) = sandbox.refresh(&elevated.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let elevated = jobdeck_sandbox::testing::Session::from_json(&body);
    assert_eq!(sandbox_claims(&elevated.access_token)["aal"], "aal2");

    // A new sign-in is aal1 until its own challenge is answered: it can neither
    // remove the factor nor add one.
    let later = sandbox
        .sign_in(&address, "correct horse")
        .await
        .expect("signs in");
    assert_eq!(sandbox_claims(&later.access_token)["aal"], "aal1");
    let (status, body) = send(sandbox.user(
        &later,
        Method::DELETE,
        &format!("/auth/v1/factors/{factor}"),
    ))
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("insufficient_aal"))
    );
    let (status, body) = send(
        sandbox
            .user(&later, Method::POST, "/auth/v1/factors")
            .json(&json!({ "factor_type": "totp", "friendly_name": "laptop" })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_aal"))
    );

    // A challenge answers once, and not after five minutes.
    let (status, challenge) = send(sandbox.user(
        &later,
        Method::POST,
        &format!("/auth/v1/factors/{factor}/challenge"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    let expires_in =
        challenge["expires_at"].as_i64().expect("a time") - claims["iat"].as_i64().expect("a time");
    assert!((299..=330).contains(&expires_in), "{expires_in}");
    let admin = sandbox.database.admin().await;
    admin
        .execute(
            "update auth.mfa_challenges set created_at = now() - interval '301 seconds'
              where id = $1::text::uuid",
            &[&challenge["id"].as_str().expect("a challenge id")],
        )
        .await
        .expect("ages the challenge");
    let verify = |challenge: &serde_json::Value| {
        sandbox
            .user(
                &later,
                Method::POST,
                &format!("/auth/v1/factors/{factor}/verify"),
            )
            .json(&json!({ "challenge_id": challenge["id"], "code": totp_code(secret) }))
    };
    let (status, body) = send(verify(&challenge)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("mfa_challenge_expired")
        )
    );
    let (_, challenge) = send(sandbox.user(
        &later,
        Method::POST,
        &format!("/auth/v1/factors/{factor}/challenge"),
    ))
    .await;
    let (status, body) = send(verify(&challenge)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let later = jobdeck_sandbox::testing::Session::from_json(&body);
    let (status, body) = send(verify(&challenge)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("mfa_ip_address_mismatch")
        ),
        "answered already"
    );

    // Removed from an aal2 session: sessions go back to aal1 and the user has none.
    let (status, body) = send(sandbox.user(
        &later,
        Method::DELETE,
        &format!("/auth/v1/factors/{factor}"),
    ))
    .await;
    assert_eq!(
        (status, body["id"].as_str()),
        (StatusCode::OK, Some(factor.as_str()))
    );
    let (status, body) = sandbox.refresh(&elevated.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = sandbox_claims(body["access_token"].as_str().expect("a token"));
    assert_eq!(
        (claims["aal"].as_str(), claims["amr"][0]["method"].as_str()),
        (Some("aal1"), Some("password"))
    );
    assert!(body["user"].get("factors").is_none(), "{}", body["user"]);
}

#[tokio::test]
async fn an_emailed_link_ends_a_pkce_flow_once_or_carries_the_session() {
    let sandbox = TestSandbox::start().await;
    let address = email("link");
    let redirect = "http://127.0.0.1:9/callback?state=app-nonce";
    let (verifier, challenge) = pkce_pair();
    let (status, body) = send(
        sandbox
            .anon(Method::POST, "/auth/v1/otp")
            .query(&[("redirect_to", redirect)])
            .json(&json!({ "email": address, "code_challenge": challenge,
                            "code_challenge_method": "s256" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mail = sandbox.latest_mail(&address).await;
    let link = mail["link"].as_str().expect("a link").to_string();
    assert!(link.contains("token=pkce_"), "{link}");

    let landed = sandbox.follow_link(&link).await;
    assert!(
        landed.starts_with("http://127.0.0.1:9/callback?"),
        "{landed}"
    );
    assert_eq!(query_value(&landed, "state").as_deref(), Some("app-nonce"));
    let code = query_value(&landed, "code").expect("a code in the redirect");
    let (status, session) = send(
        sandbox
            .anon(Method::POST, "/auth/v1/token?grant_type=pkce")
            .json(&json!({ "auth_code": code, "code_verifier": verifier })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["user"]["email"], address.as_str());
    let claims = sandbox_claims(session["access_token"].as_str().expect("a token"));
    assert_eq!(claims["amr"][0]["method"], "magiclink");

    // The link is spent: followed again, it lands with GoTrue's error.
    let again = sandbox.follow_link(&link).await;
    assert!(again.starts_with("http://127.0.0.1:9/callback?"), "{again}");
    assert_eq!(
        query_value(&again, "error_code").as_deref(),
        Some("otp_expired")
    );
    assert!(query_value(&again, "code").is_none());

    // Without a challenge the link carries the session in the fragment; a redirect
    // that is not allowed lands on the site URL.
    send(
        sandbox
            .anon(Method::POST, "/auth/v1/otp")
            .query(&[("redirect_to", "https://evil.example.com/")])
            .json(&json!({ "email": address })),
    )
    .await;
    let mail = sandbox.latest_mail(&address).await;
    let landed = sandbox
        .follow_link(mail["link"].as_str().expect("a link"))
        .await;
    let (base, fragment) = landed.split_once('#').expect("a fragment");
    assert_eq!(base, sandbox.status.api_url);
    let values: std::collections::HashMap<String, String> =
        form_urlencoded::parse(fragment.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(values.get("type").map(String::as_str), Some("magiclink"));
    let (status, user) = send(
        sandbox
            .anon(Method::GET, "/auth/v1/user")
            .bearer_auth(&values["access_token"]),
    )
    .await;
    assert_eq!(
        (status, user["email"].as_str()),
        (StatusCode::OK, Some(address.as_str()))
    );

    // With PKCE asked for, the six-digit code in the same mail still signs in.
    let (_, challenge) = pkce_pair();
    send(
        sandbox
            .anon(Method::POST, "/auth/v1/otp")
            .json(&json!({ "email": address, "code_challenge": challenge,
                            "code_challenge_method": "s256" })),
    )
    .await;
    let mail = sandbox.latest_mail(&address).await;
    let (status, body) = send(
        sandbox
            .anon(Method::POST, "/auth/v1/verify")
            .json(&json!({ "type": "email", "email": address, "token": mail["code"] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
