//! A real sandbox over real HTTP for each test: its own database on the test cluster
//! (`jobdeck_postgres::testing`), its own data directory, a free port.

use jobdeck_postgres::testing::TestDatabase;
// The HTTP client these helpers take and answer, for tests of crates that use another.
pub use reqwest;

use crate::{Options, Status};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

#[derive(Debug)]
pub struct TestSandbox {
    pub status: Status,
    pub database: TestDatabase,
    pub http: Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// How it was started, to start it again on the same port and data.
    options: Options,
    _data_dir: tempfile::TempDir,
}

fn url_port(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in the API URL")
}

/// A signed-in user's session as the sandbox answered it.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub email: String,
}

impl Session {
    pub fn from_json(body: &Value) -> Session {
        Session {
            access_token: body["access_token"].as_str().expect("access_token").into(),
            refresh_token: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .into(),
            user_id: body["user"]["id"].as_str().expect("user.id").into(),
            email: body["user"]["email"].as_str().expect("user.email").into(),
        }
    }
}

impl TestSandbox {
    pub async fn start() -> TestSandbox {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Options)) -> TestSandbox {
        Self::start_on(TestDatabase::new().await, configure).await
    }

    /// A sandbox on a database prepared by the caller (for fixture tables).
    pub async fn start_on(
        database: TestDatabase,
        configure: impl FnOnce(&mut Options),
    ) -> TestSandbox {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let mut options = Options {
            data_dir: data_dir.path().to_path_buf(),
            db_url: Some(database.admin_url()),
            port: 0,
            jwt_expiry: 3600,
            refresh_reuse_interval: 10.0,
            redirect_urls: Vec::new(),
            seed_users: Vec::new(),
        };
        configure(&mut options);
        let (status, stop, server) = Self::serve(options.clone()).await;
        options.port = url_port(&status.api_url);
        TestSandbox {
            status,
            database,
            http: Client::new(),
            stop: Some(stop),
            server: Some(server),
            options,
            _data_dir: data_dir,
        }
    }

    async fn serve(options: Options) -> (Status, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let running = crate::start(options).await.expect("the sandbox starts");
        let status = running.status.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            running
                .serve(async {
                    let _ = stopped.await;
                })
                .await
                .expect("the sandbox serves");
        });
        (status, stop, server)
    }

    /// Stops serving (as a sandbox that was stopped), keeping its data.
    pub async fn stop_serving(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("the server task");
        }
    }

    /// Serves again on the same port, data and keys (as a sandbox started again).
    pub async fn serve_again(&mut self) {
        let (status, stop, server) = Self::serve(self.options.clone()).await;
        self.status = status;
        self.stop = Some(stop);
        self.server = Some(server);
    }

    /// Stops serving and waits until the server has finished.
    pub async fn stop(mut self) {
        self.stop_serving().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.status.api_url)
    }

    /// A request with the anon key, as a signed-out client sends it.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("apikey", &self.status.anon_key)
            .header("x-supabase-api-version", "2024-01-01")
    }

    /// A request as `session`'s user.
    pub fn user(&self, session: &Session, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path).bearer_auth(&session.access_token)
    }

    pub fn service(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("apikey", &self.status.service_role_key)
            .bearer_auth(&self.status.service_role_key)
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> Session {
        let (status, body) = send(
            self.anon(Method::POST, "/auth/v1/signup")
                .json(&json!({ "email": email, "password": password })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "sign-up: {body}");
        Session::from_json(&body)
    }

    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Session, (StatusCode, Value)> {
        let (status, body) = send(
            self.anon(Method::POST, "/auth/v1/token?grant_type=password")
                .json(&json!({ "email": email, "password": password })),
        )
        .await;
        if status == StatusCode::OK {
            Ok(Session::from_json(&body))
        } else {
            Err((status, body))
        }
    }

    pub async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        send(
            self.anon(Method::POST, "/auth/v1/token?grant_type=refresh_token")
                .json(&json!({ "refresh_token": refresh_token })),
        )
        .await
    }

    /// Does what a browser does with a sign-in's `authorize_url` (from
    /// `/auth/v1/authorize`): on the sandbox provider's consent page, signs in as
    /// `email`, or declines when it is `None`. Answers where the browser is sent at the
    /// end (the app's redirect URL, with the code or the error), not following it.
    pub async fn consent(&self, authorize_url: &str, email: Option<&str>) -> String {
        let browser = browser();
        let to_provider = browser.get(authorize_url).send().await.expect("authorize");
        let page_url = location(&to_provider);
        let page = browser
            .get(&page_url)
            .send()
            .await
            .expect("the consent page");
        assert_eq!(page.status(), StatusCode::OK, "the consent page opens");
        let state = page_url
            .split_once("state=")
            .map(|(_, s)| s.to_string())
            .expect("the page's state");
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("state", &state);
        match email {
            Some(email) => form
                .append_pair("email", email)
                .append_pair("decision", "allow"),
            None => form.append_pair("decision", "deny"),
        };
        let decided = browser
            .post(&page_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.finish())
            .send()
            .await
            .expect("the consent form");
        let callback = browser
            .get(location(&decided))
            .send()
            .await
            .expect("the callback");
        location(&callback)
    }

    /// The latest mail the sandbox "sent" to `email` (its code and link).
    pub async fn latest_mail(&self, email: &str) -> Value {
        let inbox: Value = self
            .http
            .get(self.url("/inbox"))
            .query(&[("email", email)])
            .send()
            .await
            .expect("the inbox")
            .json()
            .await
            .expect("the inbox as JSON");
        inbox
            .as_array()
            .and_then(|mail| mail.last())
            .cloned()
            .unwrap_or_else(|| panic!("no mail to {email}"))
    }

    /// Does what a browser does with an emailed sign-in link: answers where the sandbox
    /// sends it (the app's redirect URL, with a code, a session or an error).
    pub async fn follow_link(&self, link: &str) -> String {
        location(&browser().get(link).send().await.expect("the link"))
    }

    /// Calls a job function as `session`'s user.
    pub async fn rpc(&self, session: &Session, function: &str, args: Value) -> (StatusCode, Value) {
        send(
            self.user(session, Method::POST, &format!("/rest/v1/rpc/{function}"))
                .json(&args),
        )
        .await
    }
}

impl Drop for TestSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Sends a request; answers the status and the JSON body (`null` when empty).
pub async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response: Response = request.send().await.expect("the sandbox answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// A client that, like a browser the test watches, does not follow redirects.
fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// Where a redirect sends the browser.
fn location(response: &Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("a redirect, got {}", response.status()))
        .to_string()
}

/// The code an authenticator app shows now for a TOTP `secret` (base32).
pub fn totp_code(secret: &str) -> String {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).expect("a base32 secret"))
        .build()
        .expect("a TOTP")
        .generate_current()
        .to_string()
}

/// A unique email address for this test run.
pub fn email(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Writes an executable script at `path` (a test's program for a command kind).
pub fn write_program(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).expect("writes the program");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .expect("makes it executable");
}

/// Whether process `pid` (as a program wrote it, whitespace allowed) still runs; a
/// zombie waiting to be reaped does not.
pub fn process_alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Polls `check` until it holds; panics naming `what` if `deadline` passes first.
pub async fn eventually(
    deadline: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> bool,
) {
    let until = tokio::time::Instant::now() + deadline;
    while !check() {
        assert!(
            tokio::time::Instant::now() < until,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
