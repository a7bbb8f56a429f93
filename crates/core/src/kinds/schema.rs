//! A kinds file's input JSON Schema: compiled once, and checked against each job's
//! input with the field-level messages the built-in kinds give.

use std::fmt;

use serde_json::Value;

use crate::worker::InvalidInput;

pub(crate) struct InputSchema {
    schema: Value,
    validator: jsonschema::Validator,
}

impl fmt::Debug for InputSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputSchema")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl InputSchema {
    /// Compiles `schema`, which must describe an object (the form shows its
    /// properties); without one, any object is accepted.
    pub(crate) fn new(schema: Option<Value>) -> Result<Self, String> {
        let schema = schema.unwrap_or_else(|| serde_json::json!({ "type": "object" }));
        if schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err("must describe an object (\"type\": \"object\")".into());
        }
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| format!("not a valid JSON Schema: {e}"))?;
        Ok(Self { schema, validator })
    }

    pub(crate) fn schema(&self) -> &Value {
        &self.schema
    }

    /// The first way `input` does not fit, with the field it concerns.
    pub(crate) fn validate(&self, input: &Value) -> Result<(), InvalidInput> {
        match self.validator.iter_errors(input).next() {
            None => Ok(()),
            Some(error) => Err(InvalidInput {
                field: field_path(&error.instance_path().to_string()),
                message: error.to_string(),
            }),
        }
    }
}

/// A JSON pointer (`/items/2/name`) as the built-in kinds name fields
/// (`items[2].name`).
fn field_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&segment);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_input_that_does_not_fit_names_its_field() {
        let schema = InputSchema::new(Some(json!({
            "type": "object",
            "properties": {
                "items": { "type": "array", "items": {
                    "type": "object", "properties": { "name": { "type": "string" } } } }
            }
        })))
        .expect("a valid schema");
        assert!(
            schema
                .validate(&json!({ "items": [{ "name": "a" }] }))
                .is_ok()
        );
        let invalid = schema
            .validate(&json!({ "items": [{ "name": "a" }, { "name": 3 }] }))
            .expect_err("a number where a name goes");
        assert_eq!(invalid.field, "items[1].name");
        assert!(invalid.message.contains("string"), "{}", invalid.message);
    }

    #[test]
    fn a_schema_that_is_not_one_is_refused() {
        assert!(InputSchema::new(Some(json!({ "type": "object", "properties": 3 }))).is_err());
        assert!(InputSchema::new(Some(json!({ "type": "string" }))).is_err());
        assert!(InputSchema::new(None).is_ok());
    }
}
