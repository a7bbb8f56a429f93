//! The job kinds a worker can run, registered in one place.

use std::{collections::BTreeMap, fmt, sync::Arc};

use serde::Serialize;
use serde_json::Value;

use super::kind::{Handler, InvalidInput, JobKind, Typed};

/// A kind as the UI and `jobdeck kinds` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KindInfo {
    pub name: String,
    pub description: String,
    /// The input's JSON Schema.
    pub input_schema: Value,
}

#[derive(Clone, Default)]
pub struct Registry {
    handlers: BTreeMap<&'static str, Arc<dyn Handler>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.handlers.keys()).finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind; a second kind with the same name replaces the first.
    pub fn register<K: JobKind>(mut self, kind: K) -> Self {
        self.handlers
            .insert(K::NAME, Arc::new(Typed(Arc::new(kind))));
        self
    }

    pub fn names(&self) -> Vec<String> {
        self.handlers.keys().map(|k| k.to_string()).collect()
    }

    pub fn kinds(&self) -> Vec<KindInfo> {
        self.handlers
            .iter()
            .map(|(name, handler)| KindInfo {
                name: name.to_string(),
                description: handler.description().to_string(),
                input_schema: handler.schema(),
            })
            .collect()
    }

    /// Checks `input` against `kind`'s input type, field by field.
    pub fn validate(&self, kind: &str, input: &Value) -> Result<(), InvalidInput> {
        match self.handlers.get(kind) {
            Some(handler) => handler.validate(input),
            None => Err(InvalidInput {
                field: "kind".into(),
                message: format!(
                    "unknown job kind \"{kind}\" (known: {})",
                    self.names().join(", ")
                ),
            }),
        }
    }

    pub(crate) fn get(&self, kind: &str) -> Option<Arc<dyn Handler>> {
        self.handlers.get(kind).cloned()
    }
}
