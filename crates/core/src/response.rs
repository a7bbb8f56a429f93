//! Reading Supabase's answers: a success's JSON body (an empty one as `null`), or the
//! error the service's own error format describes. The Auth and REST clients differ
//! only in that format.

use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::Error;

/// Decodes `response` (from `url`) as `T`, or answers `refused(status, body)` for a
/// status that is not a success.
pub(crate) async fn decode<T: DeserializeOwned>(
    response: Response,
    url: &str,
    refused: impl FnOnce(StatusCode, &[u8]) -> Error,
) -> Result<T, Error> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Error::network(url, &e))?;
    if !status.is_success() {
        return Err(refused(status, &bytes));
    }
    let bytes = if bytes.is_empty() {
        &b"null"[..]
    } else {
        &bytes[..]
    };
    serde_json::from_slice(bytes).map_err(|e| Error::Protocol {
        url: url.to_string(),
        reason: e.to_string(),
    })
}
