//! The `http` executor: sends the job's input as JSON to an endpoint, or to one of the
//! project's Edge Functions (`function = "name"`, `/functions/v1/<name>`).
//!
//! The user's access token goes only to the project's own origin, or to another only
//! when the kind says `send_user_token = true`: a token never leaks to a third party
//! by default. 2xx answers are the result (JSON, else the text); 408, 429 and 5xx are
//! retried; other answers fail the job for good. The body of a failure, cut to
//! [`MAX_BODY`], goes into its details.

use std::{collections::BTreeMap, sync::Arc};

use reqwest::{Method, Url};
use serde_json::{Value, json};

use super::Execute;
use crate::worker::{JobContext, JobError};

/// How much of a failed answer's body is kept.
const MAX_BODY: usize = 4096;
/// How much of a successful answer is read at most.
const MAX_RESULT: usize = 8 << 20;

#[derive(Debug)]
pub(crate) enum Target {
    Url(String),
    Function(String),
}

#[derive(Debug)]
pub(crate) struct Http {
    target: Target,
    method: Method,
    headers: BTreeMap<String, String>,
    send_user_token: bool,
    client: reqwest::Client,
}

impl Http {
    pub(crate) fn new(
        target: Target,
        method: Option<&str>,
        headers: BTreeMap<String, String>,
        send_user_token: bool,
    ) -> Result<Self, String> {
        match &target {
            Target::Url(url) => {
                let parsed = Url::parse(url).map_err(|e| format!("\"{url}\" is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("\"{url}\" is not an http or https URL"));
                }
            }
            Target::Function(name) => {
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !valid {
                    return Err(format!("\"{name}\" is not an Edge Function name"));
                }
            }
        }
        let method = match method {
            None => Method::POST,
            Some(method) => Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .map_err(|_| format!("\"{method}\" is not an HTTP method"))?,
        };
        for (name, value) in &headers {
            let lower = name.to_ascii_lowercase();
            if lower == "authorization" || lower == "apikey" {
                return Err(format!("the {name} header is Jobdeck's to set"));
            }
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("\"{name}\" is not a header name"))?;
            reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("the {name} header's value is not valid"))?;
        }
        Ok(Self {
            target,
            method,
            headers,
            send_user_token,
            client: reqwest::Client::new(),
        })
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl Execute for Http {
    async fn run(self: Arc<Self>, input: Value, ctx: JobContext) -> Result<Value, JobError> {
        let project = ctx.jobs.project();
        let url = match &self.target {
            Target::Url(url) => url.clone(),
            Target::Function(name) => format!("{}/functions/v1/{name}", project.url()),
        };
        let url = Url::parse(&url)
            .map_err(|e| JobError::permanent(format!("{url}: {e}")).with_code("invalid_url"))?;
        let own = Url::parse(project.url()).is_ok_and(|p| same_origin(&p, &url));
        let mut request = self
            .client
            .request(self.method.clone(), url.clone())
            .header("x-jobdeck-job-id", ctx.job.id.to_string());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if own {
            request = request.header("apikey", project.key().value());
        }
        if own || self.send_user_token {
            let token = ctx.jobs.session().access_token().await?;
            request = request.bearer_auth(token.expose());
        }
        if self.method != Method::GET && self.method != Method::HEAD {
            request = request.json(&input);
        }
        let response = request.send().await.map_err(|e| {
            JobError::retry(format!("cannot reach {url}: {e}")).with_code("http_unreachable")
        })?;
        let status = response.status();
        let body = read_bounded(
            response,
            if status.is_success() {
                MAX_RESULT
            } else {
                MAX_BODY
            },
        )
        .await
        .map_err(|e| {
            JobError::retry(format!("reading the answer of {url}: {e}"))
                .with_code("http_unreachable")
        })?;
        if status.is_success() {
            return Ok(serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())));
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        let message = format!("{url} answered {status}");
        let retried = status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error();
        let failed = if retried {
            JobError::retry(message)
        } else {
            JobError::permanent(message)
        };
        Err(failed
            .with_code(format!("http_{}", status.as_u16()))
            .with_details(json!({ "status": status.as_u16(), "body": text })))
    }
}

/// The body, cut at `limit` bytes.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Ok(body)
}
