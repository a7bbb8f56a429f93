//! Content negotiation, as PostgREST does it: what an answer is written as (from
//! `Accept`) and what a body is read as (from `Content-Type`).

use axum::body::Bytes;
use serde_json::{Map, Value};

use super::{error::RestError, sql::Shape};

/// The answer's form for an `Accept` header: the first of the client's media types,
/// most preferred first, that PostgREST writes; JSON for none given or `*/*`. None
/// of them written: the types asked for, for PGRST107.
pub fn negotiate(accept: Option<&str>) -> Result<Shape, Vec<String>> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Shape::Array { strip_nulls: false });
    };
    let mut types: Vec<Accepted<'_>> = accept.split(',').filter_map(Accepted::parse).collect();
    // Most preferred first; among equals, the more specific (as the HTTP library
    // PostgREST uses sorts them); otherwise in the client's order.
    types.sort_by(|a, b| {
        b.quality
            .total_cmp(&a.quality)
            .then(b.specificity().cmp(&a.specificity()))
    });
    types
        .iter()
        .find_map(Accepted::shape)
        .ok_or_else(|| types.iter().map(Accepted::text).collect())
}

/// One media type of an `Accept` header.
struct Accepted<'a> {
    kind: String,
    /// Its parameters other than `q`, lowercased names.
    parameters: Vec<(String, &'a str)>,
    quality: f32,
}

impl<'a> Accepted<'a> {
    fn parse(item: &'a str) -> Option<Self> {
        let mut parts = item.split(';');
        let kind = parts.next()?.trim().to_ascii_lowercase();
        if kind.is_empty() {
            return None;
        }
        let mut quality = 1.0;
        let mut parameters = Vec::new();
        for parameter in parts {
            let Some((name, value)) = parameter.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "q" {
                quality = value.parse().unwrap_or(1.0);
            } else {
                parameters.push((name, value.trim_matches('"')));
            }
        }
        Some(Self {
            kind,
            parameters,
            quality,
        })
    }

    fn specificity(&self) -> u8 {
        let base = match self.kind.as_str() {
            "*/*" => 0,
            kind if kind.ends_with("/*") => 1,
            _ => 2,
        };
        base + u8::from(!self.parameters.is_empty())
    }

    fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// What PostgREST writes for this type, if anything.
    fn shape(&self) -> Option<Shape> {
        let strip_nulls = self.parameter("nulls") == Some("stripped");
        match self.kind.as_str() {
            "*/*" | "application/json" => Some(Shape::Array { strip_nulls: false }),
            "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => {
                Some(Shape::Array { strip_nulls })
            }
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => {
                Some(Shape::Object { strip_nulls })
            }
            "text/csv" => Some(Shape::Csv),
            // Execution plans (`application/vnd.pgrst.plan`) are off, as in PostgREST's
            // and Supabase's defaults; GeoJSON needs PostGIS.
            _ => None,
        }
    }

    fn text(&self) -> String {
        let mut text = self.kind.clone();
        for (name, value) in &self.parameters {
            text.push_str(&format!(";{name}={value}"));
        }
        text
    }
}

/// The media type of an answer of this shape.
pub fn content_type(shape: Shape) -> &'static str {
    match shape {
        Shape::Array { .. } => "application/json; charset=utf-8",
        Shape::Object { .. } => "application/vnd.pgrst.object+json; charset=utf-8",
        Shape::Csv => "text/csv; charset=utf-8",
    }
}

/// What a request's body is, from its `Content-Type` (JSON when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    Json,
    /// A header line of column names, then a line per row; `NULL` is null.
    Csv,
    /// `application/x-www-form-urlencoded`: one object of text values.
    Form,
    /// `text/plain`: the argument of a function of one unnamed text parameter.
    Text,
    Other,
}

impl Payload {
    pub fn of(content_type: Option<&str>) -> Self {
        let kind = content_type
            .and_then(|c| c.split(';').next())
            .map(|k| k.trim().to_ascii_lowercase());
        match kind.as_deref() {
            None | Some("" | "application/json") => Payload::Json,
            Some("text/csv") => Payload::Csv,
            Some("application/x-www-form-urlencoded") => Payload::Form,
            Some("text/plain") => Payload::Text,
            Some(_) => Payload::Other,
        }
    }
}

/// The objects of a body to write: one object or an array of them in JSON, a CSV
/// table's rows, a form's fields. Any other media type is refused (PGRST102), as
/// PostgREST refuses it.
pub fn objects(
    payload: Payload,
    content_type: Option<&str>,
    body: &Bytes,
) -> Result<Vec<Map<String, Value>>, RestError> {
    match payload {
        Payload::Json => json_objects(body),
        Payload::Csv => csv_objects(body),
        Payload::Form => Ok(vec![form_object(body)]),
        Payload::Text | Payload::Other => Err(RestError::InvalidBody(format!(
            "Content-Type not acceptable: {}",
            content_type.unwrap_or_default()
        ))),
    }
}

fn json_objects(body: &Bytes) -> Result<Vec<Map<String, Value>>, RestError> {
    let shape_error =
        || RestError::InvalidBody("Expected a JSON object or an array of objects".into());
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RestError::InvalidBody(format!("Empty or invalid json: {e}")))?;
    let items = match value {
        Value::Object(map) => return Ok(vec![map]),
        Value::Array(items) => items,
        _ => return Err(shape_error()),
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(map) => Ok(map),
            _ => Err(shape_error()),
        })
        .collect()
}

/// A CSV table's rows as objects of text (the database casts each to its column's
/// type), `NULL` as null, as PostgREST reads them.
fn csv_objects(body: &Bytes) -> Result<Vec<Map<String, Value>>, RestError> {
    let mut reader = csv::ReaderBuilder::new().from_reader(body.as_ref());
    let invalid = |e: csv::Error| {
        RestError::InvalidBody(match e.kind() {
            csv::ErrorKind::UnequalLengths { .. } => {
                "All lines must have same number of fields".into()
            }
            _ => format!("Invalid CSV: {e}"),
        })
    };
    let headers = reader.headers().map_err(invalid)?.clone();
    reader
        .records()
        .map(|record| {
            let record = record.map_err(invalid)?;
            Ok(headers
                .iter()
                .zip(record.iter())
                .map(|(name, value)| {
                    let value = match value {
                        "NULL" => Value::Null,
                        text => Value::String(text.to_string()),
                    };
                    (name.to_string(), value)
                })
                .collect())
        })
        .collect()
}

/// A form's fields as one object of text values.
pub fn form_object(body: &Bytes) -> Map<String, Value> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_as_postgrest() {
        let json = Shape::Array { strip_nulls: false };
        assert_eq!(negotiate(None).ok(), Some(json));
        assert_eq!(negotiate(Some("text/csv")).ok(), Some(Shape::Csv));
        // A browser's header: nothing before `*/*` is written, so JSON.
        assert_eq!(
            negotiate(Some("text/html,application/xhtml+xml,*/*;q=0.8")).ok(),
            Some(json)
        );
        // Preference decides, not order.
        assert_eq!(
            negotiate(Some("application/json;q=0.5, text/csv")).ok(),
            Some(Shape::Csv)
        );
        assert_eq!(
            negotiate(Some("application/vnd.pgrst.object+json;nulls=stripped")).ok(),
            Some(Shape::Object { strip_nulls: true })
        );
        assert_eq!(
            negotiate(Some("text/html, application/vnd.pgrst.plan+json")),
            Err(vec![
                "text/html".to_string(),
                "application/vnd.pgrst.plan+json".to_string()
            ])
        );
    }

    #[test]
    fn reads_csv_and_forms() {
        let rows = csv_objects(&Bytes::from("name,age\nAko,3\n\"B, b\",NULL\n")).expect("a table");
        assert_eq!(
            Value::from(rows.into_iter().map(Value::Object).collect::<Vec<_>>()),
            serde_json::json!([{"name": "Ako", "age": "3"}, {"name": "B, b", "age": null}])
        );
        let Err(RestError::InvalidBody(message)) = csv_objects(&Bytes::from("a,b\n1\n")) else {
            panic!("a short line is refused");
        };
        assert_eq!(message, "All lines must have same number of fields");
        assert_eq!(
            Value::Object(form_object(&Bytes::from("name=A+b&n=1"))),
            serde_json::json!({"name": "A b", "n": "1"})
        );
    }
}
