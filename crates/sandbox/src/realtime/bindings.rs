//! What a channel subscribes to: its `postgres_changes` entries, each with the id the
//! join reply gives it and the change messages carry.

use serde_json::{Value, json};

/// The most values an `in` filter may list, as Supabase allows.
const MAX_IN: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    All,
    Insert,
    Update,
    Delete,
}

impl Event {
    fn parse(text: &str) -> Option<Event> {
        match text.to_ascii_uppercase().as_str() {
            "*" => Some(Event::All),
            "INSERT" => Some(Event::Insert),
            "UPDATE" => Some(Event::Update),
            "DELETE" => Some(Event::Delete),
            _ => None,
        }
    }

    pub fn matches(self, change_type: &str) -> bool {
        match self {
            Event::All => true,
            Event::Insert => change_type == "INSERT",
            Event::Update => change_type == "UPDATE",
            Event::Delete => change_type == "DELETE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
}

impl Op {
    /// The SQL comparison (`In` compares with each listed value).
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq | Op::In => "=",
            Op::Neq => "<>",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Gt => ">",
            Op::Gte => ">=",
        }
    }
}

/// `column=op.value`, e.g. `uuid=eq.8c1…` or `id=in.(1,2,3)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub column: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        let invalid = || format!("invalid filter {text:?}: expected column=op.value");
        let (column, rest) = text.split_once('=').ok_or_else(invalid)?;
        let (op, value) = rest.split_once('.').ok_or_else(invalid)?;
        let op = match op {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "in" => Op::In,
            other => {
                return Err(format!(
                    "invalid filter {text:?}: operator {other:?} (eq, neq, lt, lte, gt, gte and in are served)"
                ));
            }
        };
        let values = if op == Op::In {
            let list = value
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| format!("invalid filter {text:?}: in takes a list, in.(a,b)"))?;
            let values: Vec<String> = list
                .split(',')
                .map(|v| v.trim().trim_matches('"').to_string())
                .collect();
            if values.len() > MAX_IN {
                return Err(format!(
                    "invalid filter {text:?}: at most {MAX_IN} values in a list"
                ));
            }
            values
        } else {
            vec![value.to_string()]
        };
        if column.is_empty() {
            return Err(invalid());
        }
        Ok(Filter {
            column: column.to_string(),
            op,
            values,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub id: u32,
    pub event: Event,
    pub schema: String,
    /// `None`: every published table of the schema.
    pub table: Option<String>,
    pub filter: Option<Filter>,
    /// The entry as the join reply echoes it.
    pub reply: Value,
}

impl Binding {
    /// One entry of a join's `config.postgres_changes`.
    pub fn parse(id: u32, entry: &Value) -> Result<Binding, String> {
        let field = |name: &str| entry.get(name).and_then(Value::as_str);
        let event_text = field("event").unwrap_or("*");
        let event = Event::parse(event_text)
            .ok_or_else(|| format!("invalid event {event_text:?} (*, INSERT, UPDATE or DELETE)"))?;
        let schema = field("schema").unwrap_or("public").to_string();
        let table = field("table").filter(|t| *t != "*").map(str::to_string);
        let filter = field("filter").map(Filter::parse).transpose()?;
        let mut reply = json!({"id": id, "event": event_text, "schema": schema});
        if let Some(table) = field("table") {
            reply["table"] = json!(table);
        }
        if let Some(filter) = field("filter") {
            reply["filter"] = json!(filter);
        }
        Ok(Binding {
            id,
            event,
            schema,
            table,
            filter,
            reply,
        })
    }

    /// Whether a change to `schema.table` of this type is for this binding, before the
    /// row itself is looked at.
    pub fn covers(&self, schema: &str, table: &str, change_type: &str) -> bool {
        self.schema == schema
            && self.table.as_deref().is_none_or(|t| t == table)
            && self.event.matches(change_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_as_supabase_writes_them() {
        let f = Filter::parse("uuid=eq.8c1f").expect("parses");
        assert_eq!(
            (f.column.as_str(), f.op, f.values),
            ("uuid", Op::Eq, vec!["8c1f".into()])
        );
        let f = Filter::parse("id=in.(1, 2,\"3\")").expect("parses");
        assert_eq!(f.values, vec!["1", "2", "3"]);
        assert!(
            Filter::parse("id=like.x")
                .expect_err("refused")
                .contains("like")
        );
        assert!(Filter::parse("id").is_err());
        assert!(Filter::parse("id=in.1").is_err());
        let many = format!("id=in.({})", vec!["1"; 101].join(","));
        assert!(Filter::parse(&many).is_err());
    }

    #[test]
    fn a_binding_echoes_what_the_client_sent() {
        let entry =
            json!({"event": "INSERT", "schema": "public", "table": "jobs", "filter": "id=gt.3"});
        let binding = Binding::parse(7, &entry).expect("parses");
        assert_eq!(
            binding.reply,
            json!({"id": 7, "event": "INSERT", "schema": "public", "table": "jobs", "filter": "id=gt.3"})
        );
        assert!(binding.covers("public", "jobs", "INSERT"));
        assert!(!binding.covers("public", "jobs", "UPDATE"));
        assert!(!binding.covers("public", "job_logs", "INSERT"));
        assert!(Binding::parse(1, &json!({"event": "TRUNCATE"})).is_err());
    }
}
