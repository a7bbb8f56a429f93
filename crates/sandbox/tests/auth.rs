//! `/auth/v1` over real HTTP: what a Supabase client sees from GoTrue.

use jobdeck_sandbox::testing::{TestSandbox, email, send};
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
