//! The keys new Supabase projects hand out, `sb_publishable_…` and `sb_secret_…`, at the
//! gateway: each stands for its legacy JWT, a user's token still wins, a secret key is
//! refused from a browser, and a key of another project is refused.

use jobdeck_sandbox::testing::{Session, TestSandbox, email, send};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::json;

/// A request as supabase-js sends it with `key`: `apikey`, and the key as the bearer
/// while no user is signed in.
fn with_key(sandbox: &TestSandbox, key: &str, method: Method, path: &str) -> RequestBuilder {
    sandbox
        .http
        .request(method, sandbox.url(path))
        .header("apikey", key)
        .header("x-supabase-api-version", "2024-01-01")
        .bearer_auth(key)
}

#[tokio::test]
async fn the_publishable_key_alone_signs_in_and_reaches_rest_under_rls() {
    let sandbox = TestSandbox::start().await;
    let key = sandbox.status.publishable_key.clone();
    assert!(key.starts_with("sb_publishable_"), "{key}");
    let address = email("pk");
    let (status, body) = send(
        with_key(&sandbox, &key, Method::POST, "/auth/v1/signup")
            .json(&json!({ "email": address, "password": "correct horse" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = Session::from_json(&body);

    // Signed out, REST runs as anon, which the project grants nothing on jobs.
    let (status, body) = send(with_key(
        &sandbox,
        &key,
        Method::GET,
        "/rest/v1/jobs?select=id",
    ))
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("42501")),
        "{body}"
    );
    // Signed in, the user's token is the bearer: their own job, through RLS.
    let as_user = |method, path: &str| {
        sandbox
            .http
            .request(method, sandbox.url(path))
            .header("apikey", &key)
            .bearer_auth(&session.access_token)
    };
    let (status, job) =
        send(as_user(Method::POST, "/rest/v1/rpc/enqueue_job").json(&json!({ "kind": "noop" })))
            .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let (status, jobs) = send(as_user(Method::GET, "/rest/v1/jobs?select=id,uuid")).await;
    assert_eq!(status, StatusCode::OK, "{jobs}");
    assert_eq!(jobs, json!([{ "id": job["id"], "uuid": session.user_id }]));
    let (status, user) = send(as_user(Method::GET, "/auth/v1/user")).await;
    assert_eq!(
        (status, user["email"].as_str()),
        (StatusCode::OK, Some(address.as_str()))
    );

    // The publishable key is not an admin.
    let (status, body) = send(with_key(
        &sandbox,
        &key,
        Method::GET,
        "/auth/v1/admin/users",
    ))
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_admin"))
    );
}

#[tokio::test]
async fn the_secret_key_is_the_service_role_except_in_a_browser() {
    let sandbox = TestSandbox::start().await;
    let key = sandbox.status.secret_key.clone();
    assert!(key.starts_with("sb_secret_"), "{key}");
    sandbox.sign_up(&email("listed"), "correct horse").await;
    let (status, users) = send(with_key(
        &sandbox,
        &key,
        Method::GET,
        "/auth/v1/admin/users",
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{users}");
    assert_eq!(users["users"].as_array().map(Vec::len), Some(1));
    // Only `apikey`, no bearer: the gateway supplies it.
    let (status, _) = send(
        sandbox
            .http
            .get(sandbox.url("/rest/v1/jobs?select=id"))
            .header("apikey", &key),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = send(
        with_key(&sandbox, &key, Method::GET, "/rest/v1/jobs?select=id").header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["message"],
        "Forbidden use of secret API key in browser"
    );

    for wrong in [
        "sb_publishable_AAAAAAAAAAAAAAAAAAAAAA_AAAAAAAA",
        "sb_secret_nope",
    ] {
        let (status, body) =
            send(with_key(&sandbox, wrong, Method::GET, "/auth/v1/settings")).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("Invalid API key")),
            "{wrong}"
        );
    }
}
