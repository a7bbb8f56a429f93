//! The `rpc` executor: calls a database function through the REST API as the user
//! (`POST /rest/v1/rpc/<function>`, the job's input as its named arguments), under
//! row-level security. The function's answer is the job's result.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Execute;
use crate::{
    Error,
    worker::{JobContext, JobError},
};

#[derive(Debug)]
pub(crate) struct Rpc {
    function: String,
}

impl Rpc {
    pub(crate) fn new(function: String) -> Result<Self, String> {
        let valid = !function.is_empty()
            && function.len() <= 63
            && function
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "\"{function}\" is not a function name (letters, digits and _, at most 63)"
            ));
        }
        Ok(Self { function })
    }
}

impl Execute for Rpc {
    async fn run(self: Arc<Self>, input: Value, ctx: JobContext) -> Result<Value, JobError> {
        ctx.jobs
            .call(&self.function, &input)
            .await
            .map_err(|error| refused(&self.function, error))
    }
}

/// A failed call as the attempt's failure: PostgreSQL's or PostgREST's code, message,
/// details and hint. One that cannot succeed on a retry (no permission, no such
/// function, invalid input) is permanent; the rest (a raised exception, a timeout, a
/// serialization failure, the server unreachable) are retried.
fn refused(function: &str, error: Error) -> JobError {
    match error {
        Error::Api {
            status,
            code,
            message,
            details,
            hint,
        } => {
            let failed = if permanent(&code) {
                JobError::permanent(message)
            } else {
                JobError::retry(message)
            };
            failed.with_code(code).with_details(
                json!({ "function": function, "status": status, "details": details, "hint": hint }),
            )
        }
        other => JobError::from(other),
    }
}

fn permanent(code: &str) -> bool {
    code == "42501"
        || code == "0A000"
        || code.starts_with("PGRST1")
        || code.starts_with("PGRST2")
        || code.starts_with("22")
        || code.starts_with("23")
        || (code.starts_with("42") && code.len() == 5)
}

#[cfg(test)]
mod tests {
    use super::permanent;

    #[test]
    fn only_failures_a_retry_cannot_mend_are_permanent() {
        for code in [
            "42501", "PGRST202", "PGRST100", "22023", "23505", "42883", "42P01",
        ] {
            assert!(permanent(code), "{code}");
        }
        for code in [
            "P0001", "57014", "40001", "40P01", "53300", "08006", "XX000",
        ] {
            assert!(!permanent(code), "{code}");
        }
    }
}
