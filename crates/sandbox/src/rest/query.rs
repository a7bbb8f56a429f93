//! The PostgREST query-string grammar: `select` (with embedded resources
//! `alias:table!hint!inner(...)` and spreads `...table(...)`), filters
//! (`col=op.value`, `not.`, `or=(...)`, `and=(...)`), `order`, `limit`, `offset`, and
//! the same for an embedded resource under its name (`messages.order=id.desc`).
//!
//! Parsing only: names are checked against the schema and values are bound as
//! parameters when the SQL is built (`sql.rs`). Any malformed input is a
//! [`ParseError`], answered as 400 `PGRST100`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(message.into()))
}

/// A column, optionally followed by a JSON path: `data->a->>b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub column: String,
    pub path: Vec<(Arrow, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrow {
    /// `->`: JSON value.
    Json,
    /// `->>`: text.
    Text,
}

impl Field {
    /// The name a selected field gets in the response: the last path key, else the column.
    pub fn default_name(&self) -> &str {
        self.path.last().map_or(&self.column, |(_, key)| key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    Star,
    Field {
        alias: Option<String>,
        field: Field,
        cast: Option<String>,
    },
    Embed(Embed),
}

/// `[...][alias:]target[!hint][!inner|!left](select)`: rows of a related relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embed {
    pub alias: Option<String>,
    pub target: String,
    pub hint: Option<String>,
    /// `!inner`: only the rows that have a related row.
    pub inner: bool,
    /// `...`: the related row's columns inlined into this one.
    pub spread: bool,
    pub select: Vec<SelectItem>,
}

impl Embed {
    /// The name the embed has in the response and in filters on it.
    pub fn name(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.target)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    In,
    Is,
    /// `isdistinct`: `is distinct from`.
    IsDistinct,
    /// `match`, `imatch`: POSIX regular expressions.
    Match,
    Imatch,
    /// `cs`, `cd`, `ov`: contains, contained in, overlaps (arrays, ranges, jsonb).
    Contains,
    ContainedIn,
    Overlaps,
    /// `sl`, `sr`, `nxr`, `nxl`, `adj`: range comparisons.
    StrictlyLeft,
    StrictlyRight,
    NotExtendRight,
    NotExtendLeft,
    Adjacent,
    /// `fts`, `plfts`, `phfts`, `wfts`: full-text search with `to_tsquery`,
    /// `plainto_tsquery`, `phraseto_tsquery`, `websearch_to_tsquery`.
    Fts(Search),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    Query,
    Plain,
    Phrase,
    Web,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    One(String),
    List(Vec<String>),
    Is(IsValue),
    /// `op(any).{a,b}` / `op(all).{a,b}`: the value is a PostgreSQL array literal.
    Quantified {
        all: bool,
        array: String,
    },
    /// `fts(english).query`.
    Search {
        language: Option<String>,
        query: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Condition {
        field: Field,
        negated: bool,
        op: Op,
        operand: Operand,
    },
    Group {
        /// `and` (true) or `or` (false).
        all: bool,
        negated: bool,
        filters: Vec<Filter>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    pub field: Field,
    pub descending: bool,
    /// `Some(true)` nulls first, `Some(false)` nulls last.
    pub nulls_first: Option<bool>,
}

/// The filters, order and paging of one level: the top, or an embedded resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Level {
    pub filters: Vec<Filter>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// Everything a read or write request says in its query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub select: Vec<SelectItem>,
    pub filters: Vec<Filter>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    /// Each embedded resource's own level, by its path of names from the top.
    pub nested: Vec<(Vec<String>, Level)>,
    /// `on_conflict=a,b`: the key an upsert merges on.
    pub on_conflict: Option<Vec<String>>,
    /// `columns=a,b`: the columns an insert or upsert takes from each object.
    pub columns: Option<Vec<String>>,
    /// Query parameters that are not part of the grammar (RPC arguments on GET).
    pub other: Vec<(String, String)>,
}

/// What `key=value` sets at some level.
enum Setting {
    Order(Vec<OrderTerm>),
    Limit(u64),
    Offset(u64),
    Filter(Filter),
}

impl Level {
    fn set(&mut self, setting: Setting) {
        match setting {
            Setting::Order(terms) => self.order = terms,
            Setting::Limit(n) => self.limit = Some(n),
            Setting::Offset(n) => self.offset = Some(n),
            Setting::Filter(filter) => self.filters.push(filter),
        }
    }
}

/// `key=value` at a level: `order`, `limit`, `offset`, `or`/`and` groups or a filter.
fn parse_setting(key: &str, value: &str) -> Result<Setting, ParseError> {
    Ok(match key {
        "order" => Setting::Order(parse_order(value)?),
        "limit" => Setting::Limit(parse_count("limit", value)?),
        "offset" => Setting::Offset(parse_count("offset", value)?),
        "or" | "and" | "not.or" | "not.and" => Setting::Filter(Filter::Group {
            all: key.ends_with("and"),
            negated: key.starts_with("not."),
            filters: parse_group_body(value)?,
        }),
        _ => {
            let (negated, op, operand) = parse_condition(value)?;
            Setting::Filter(Filter::Condition {
                field: parse_field(key)?,
                negated,
                op,
                operand,
            })
        }
    })
}

/// Splits `a.b.order` into the embedded path `[a, b]` and the key `order`; `None`
/// for a key of the top level.
fn embedded_key(key: &str) -> Option<(Vec<String>, &str)> {
    // A JSON path may not hold dots, so every dot before the last part separates names.
    let (path, last) = match key.rsplit_once('.') {
        Some((path, "or" | "and")) if path.ends_with(".not") || path == "not" => {
            let path = path.strip_suffix(".not")?;
            (path, &key[path.len() + 1..])
        }
        Some(split) => split,
        None => return None,
    };
    if path.is_empty() || path.contains("->") {
        return None;
    }
    Some((path.split('.').map(str::to_string).collect(), last))
}

impl Query {
    /// Parses decoded `key=value` pairs. `other_keys` says whether a pair whose key is
    /// not reserved is an argument (RPC on GET, when the function has it) or a filter.
    pub fn parse(
        pairs: &[(String, String)],
        is_argument: impl Fn(&str) -> bool,
    ) -> Result<Self, ParseError> {
        let mut query = Query::default();
        let mut top = Level::default();
        for (key, value) in pairs {
            match key.as_str() {
                "select" => query.select = parse_select(value)?,
                "on_conflict" => query.on_conflict = Some(parse_names(value, "on_conflict")?),
                "columns" => query.columns = Some(parse_names(value, "columns")?),
                "apikey" => {}
                "order" | "limit" | "offset" | "or" | "and" | "not.or" | "not.and" => {
                    top.set(parse_setting(key, value)?)
                }
                _ if is_argument(key) => query.other.push((key.clone(), value.clone())),
                _ => match embedded_key(key) {
                    Some((path, last)) => {
                        let setting = parse_setting(last, value)?;
                        match query.nested.iter_mut().find(|(p, _)| *p == path) {
                            Some((_, level)) => level.set(setting),
                            None => {
                                let mut level = Level::default();
                                level.set(setting);
                                query.nested.push((path, level));
                            }
                        }
                    }
                    None => top.set(parse_setting(key, value)?),
                },
            }
        }
        if query.select.is_empty() {
            query.select.push(SelectItem::Star);
        }
        let Level {
            filters,
            order,
            limit,
            offset,
        } = top;
        (query.filters, query.order, query.limit, query.offset) = (filters, order, limit, offset);
        Ok(query)
    }

    /// The level of the embedded resource at `path` (empty when nothing was said).
    pub fn level(&self, path: &[String]) -> Level {
        self.nested
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, level)| level.clone())
            .unwrap_or_default()
    }
}

/// `a,b,c`: a list of plain names.
fn parse_names(text: &str, what: &str) -> Result<Vec<String>, ParseError> {
    text.split(',')
        .map(|name| parse_name(name.trim().trim_matches('"'), what))
        .collect()
}

fn parse_count(name: &str, value: &str) -> Result<u64, ParseError> {
    value.parse().or_else(|_| {
        err(format!(
            "\"{value}\" is not a valid {name}: expected a non-negative integer"
        ))
    })
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// A plain identifier: letters, digits, `_`, `$`.
fn parse_name(text: &str, what: &str) -> Result<String, ParseError> {
    if !text.is_empty() && text.chars().all(is_name_char) {
        Ok(text.to_string())
    } else {
        err(format!("\"{text}\" is not a valid {what}"))
    }
}

/// `col`, `col->key`, `col->>key`, `col->0->>name`.
pub fn parse_field(text: &str) -> Result<Field, ParseError> {
    let mut rest = text;
    let end = rest.find("->").unwrap_or(rest.len());
    let column = parse_name(&rest[..end], "column name")?;
    rest = &rest[end..];
    let mut path = Vec::new();
    while !rest.is_empty() {
        let (arrow, after) = if let Some(after) = rest.strip_prefix("->>") {
            (Arrow::Text, after)
        } else if let Some(after) = rest.strip_prefix("->") {
            (Arrow::Json, after)
        } else {
            return err(format!("unexpected \"{rest}\" in \"{text}\""));
        };
        let end = after.find("->").unwrap_or(after.len());
        let key = &after[..end];
        let key = parse_name(key.trim_start_matches('-'), "JSON key").map(|_| key.to_string())?;
        path.push((arrow, key));
        rest = &after[end..];
    }
    if path
        .iter()
        .take(path.len().saturating_sub(1))
        .any(|(a, _)| *a == Arrow::Text)
    {
        return err(format!(
            "\"{text}\": ->> gives text, so it can only come last"
        ));
    }
    Ok(Field { column, path })
}

/// Splits at top-level commas, keeping parentheses and double quotes together.
fn split_top_level(text: &str) -> Result<Vec<&str>, ParseError> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut start) = (0usize, false, false, 0usize);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = match depth.checked_sub(1) {
                    Some(d) => d,
                    None => return err(format!("unbalanced \")\" in \"{text}\"")),
                }
            }
            ',' if !quoted && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return err(format!("unclosed quote in \"{text}\""));
    }
    if depth != 0 {
        return err(format!("unbalanced \"(\" in \"{text}\""));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

/// `"quoted, value"` unquoted (with `\"` and `\\` escapes), or the text as it is.
fn unquote(text: &str) -> Result<String, ParseError> {
    let Some(inner) = text.strip_prefix('"') else {
        return Ok(text.to_string());
    };
    let Some(inner) = inner.strip_suffix('"') else {
        return err(format!("unclosed quote in {text}"));
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => out.push(next),
                None => return err(format!("dangling escape in {text}")),
            },
            '"' => return err(format!("unescaped quote inside {text}")),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `[not.]op[(modifier)].value` (the right-hand side of `col=...`).
fn parse_condition(text: &str) -> Result<(bool, Op, Operand), ParseError> {
    let (negated, rest) = match text.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let Some((op_text, value)) = split_operator(rest) else {
        return err(format!(
            "failed to parse filter ({text}): expected operator.value"
        ));
    };
    let (op_name, modifier) = match op_text.split_once('(') {
        Some((name, modifier)) => match modifier.strip_suffix(')') {
            Some(modifier) => (name, Some(modifier)),
            None => return err(format!("unclosed \"(\" in operator \"{op_text}\"")),
        },
        None => (op_text, None),
    };
    let op = match op_name {
        "eq" => Op::Eq,
        "neq" => Op::Neq,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "like" => Op::Like,
        "ilike" => Op::Ilike,
        "in" => Op::In,
        "is" => Op::Is,
        "isdistinct" => Op::IsDistinct,
        "match" => Op::Match,
        "imatch" => Op::Imatch,
        "cs" => Op::Contains,
        "cd" => Op::ContainedIn,
        "ov" => Op::Overlaps,
        "sl" => Op::StrictlyLeft,
        "sr" => Op::StrictlyRight,
        "nxr" => Op::NotExtendRight,
        "nxl" => Op::NotExtendLeft,
        "adj" => Op::Adjacent,
        "fts" => Op::Fts(Search::Query),
        "plfts" => Op::Fts(Search::Plain),
        "phfts" => Op::Fts(Search::Phrase),
        "wfts" => Op::Fts(Search::Web),
        other => return err(format!("unknown filter operator \"{other}\"")),
    };
    let operand = match (op, modifier) {
        (Op::Fts(_), language) => Operand::Search {
            language: language
                .map(|l| parse_name(l, "text search language"))
                .transpose()?,
            query: value.to_string(),
        },
        (
            Op::Eq
            | Op::Neq
            | Op::Gt
            | Op::Gte
            | Op::Lt
            | Op::Lte
            | Op::Like
            | Op::Ilike
            | Op::Match
            | Op::Imatch,
            Some(quantifier @ ("any" | "all")),
        ) => {
            if !(value.starts_with('{') && value.ends_with('}')) {
                return err(format!(
                    "\"{op_text}\" takes a list in braces, not \"{value}\""
                ));
            }
            Operand::Quantified {
                all: quantifier == "all",
                array: value.to_string(),
            }
        }
        (_, Some(modifier)) => {
            return err(format!("\"{op_name}\" takes no modifier \"({modifier})\""));
        }
        (Op::Is, None) => Operand::Is(match value.to_ascii_lowercase().as_str() {
            "null" => IsValue::Null,
            "not_null" => IsValue::NotNull,
            "true" => IsValue::True,
            "false" => IsValue::False,
            "unknown" => IsValue::Unknown,
            _ => {
                return err(format!(
                    "\"is\" takes null, not_null, true, false or unknown, not \"{value}\""
                ));
            }
        }),
        (Op::In, None) => {
            let Some(inner) = value.strip_prefix('(').and_then(|v| v.strip_suffix(')')) else {
                return err(format!(
                    "\"in\" takes a list in parentheses, not \"{value}\""
                ));
            };
            if inner.is_empty() {
                Operand::List(Vec::new())
            } else {
                Operand::List(
                    split_top_level(inner)?
                        .into_iter()
                        .map(|item| unquote(item.trim()))
                        .collect::<Result<_, _>>()?,
                )
            }
        }
        (_, None) => Operand::One(unquote(value)?),
    };
    Ok((negated, op, operand))
}

/// `op.value` or `op(modifier).value`: the operator ends at the first '.' outside
/// parentheses (a language or quantifier holds none).
fn split_operator(text: &str) -> Option<(&str, &str)> {
    let close = text.find(')');
    let dot = match close {
        Some(close) if text[..close].contains('(') && !text[..text.find('(')?].contains('.') => {
            close + 1 + text[close + 1..].find('.')?
        }
        _ => text.find('.')?,
    };
    Some((&text[..dot], &text[dot + 1..]))
}

/// The parenthesized body of `or=(...)` / `and=(...)`.
fn parse_group_body(text: &str) -> Result<Vec<Filter>, ParseError> {
    let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) else {
        return err(format!(
            "logic filters take a list in parentheses, not \"{text}\""
        ));
    };
    let mut filters = Vec::new();
    for item in split_top_level(inner)? {
        let item = item.trim();
        if item.is_empty() {
            return err(format!("empty condition in \"{text}\""));
        }
        let (negated, body) = match item.strip_prefix("not.") {
            Some(rest) if rest.starts_with("and(") || rest.starts_with("or(") => (true, rest),
            _ => (false, item),
        };
        if let Some(group) = body.strip_prefix("and").filter(|b| b.starts_with('(')) {
            filters.push(Filter::Group {
                all: true,
                negated,
                filters: parse_group_body(group)?,
            });
        } else if let Some(group) = body.strip_prefix("or").filter(|b| b.starts_with('(')) {
            filters.push(Filter::Group {
                all: false,
                negated,
                filters: parse_group_body(group)?,
            });
        } else {
            // `field.[not.]op.value`: the field ends at the first '.' outside a JSON path.
            let Some(dot) = item.find('.') else {
                return err(format!("failed to parse logic condition \"{item}\""));
            };
            let field = parse_field(&item[..dot])?;
            let (negated, op, operand) = parse_condition(&item[dot + 1..])?;
            filters.push(Filter::Condition {
                field,
                negated,
                op,
                operand,
            });
        }
    }
    Ok(filters)
}

/// `*`, `col`, `alias:col`, `col::type`, `alias:data->>key::int`.
fn parse_select(text: &str) -> Result<Vec<SelectItem>, ParseError> {
    let mut items = Vec::new();
    for item in split_top_level(text)? {
        let item = item.trim();
        if item == "*" {
            items.push(SelectItem::Star);
            continue;
        }
        if item.contains('(') {
            items.push(SelectItem::Embed(parse_embed(item)?));
            continue;
        }
        let (alias, rest) = match item.find(':') {
            Some(i) if !item[i..].starts_with("::") => {
                (Some(parse_name(&item[..i], "alias")?), &item[i + 1..])
            }
            _ => (None, item),
        };
        let (field_text, cast) = match rest.split_once("::") {
            Some((field, cast)) => (field, Some(parse_cast(cast)?)),
            None => (rest, None),
        };
        items.push(SelectItem::Field {
            alias,
            field: parse_field(field_text)?,
            cast,
        });
    }
    if items.is_empty() {
        return err("select is empty");
    }
    Ok(items)
}

/// `[...][alias:]target[!hint][!inner|!left](select)`.
fn parse_embed(item: &str) -> Result<Embed, ParseError> {
    let (Some(open), Some(inner)) = (item.find('('), item.strip_suffix(')')) else {
        return err(format!("\"{item}\": an embedded resource ends with \")\""));
    };
    let (head, inner) = (&item[..open], &inner[open + 1..]);
    let (spread, head) = match head.strip_prefix("...") {
        Some(head) => (true, head),
        None => (false, head),
    };
    let (alias, head) = match head.split_once(':') {
        Some((alias, head)) => (Some(parse_name(alias, "alias")?), head),
        None => (None, head),
    };
    let mut parts = head.split('!');
    let target = parse_name(parts.next().unwrap_or_default(), "embedded resource")?;
    let (mut hint, mut inner_join) = (None, false);
    for part in parts {
        match part {
            "inner" => inner_join = true,
            "left" => inner_join = false,
            _ if hint.is_none() => hint = Some(parse_name(part, "embedding hint")?),
            _ => return err(format!("\"{item}\": more than one embedding hint")),
        }
    }
    let select = if inner.trim().is_empty() {
        Vec::new()
    } else {
        parse_select(inner)?
    };
    Ok(Embed {
        alias,
        target,
        hint,
        inner: inner_join,
        spread,
        select,
    })
}

/// A cast target: a plain type name, optionally an array of it.
fn parse_cast(text: &str) -> Result<String, ParseError> {
    let base = text.strip_suffix("[]").unwrap_or(text);
    if !base.is_empty() && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(text.to_ascii_lowercase())
    } else {
        err(format!("\"{text}\" is not a valid type to cast to"))
    }
}

/// `col`, `col.desc`, `col.asc.nullslast`, comma-separated.
fn parse_order(text: &str) -> Result<Vec<OrderTerm>, ParseError> {
    let mut terms = Vec::new();
    for item in text.split(',') {
        let mut parts = item.trim().split('.');
        let field = parse_field(parts.next().unwrap_or_default())?;
        let mut term = OrderTerm {
            field,
            descending: false,
            nulls_first: None,
        };
        for modifier in parts {
            match modifier {
                "asc" => term.descending = false,
                "desc" => term.descending = true,
                "nullsfirst" => term.nulls_first = Some(true),
                "nullslast" => term.nulls_first = Some(false),
                other => return err(format!("unknown order modifier \"{other}\" in \"{item}\"")),
            }
        }
        terms.push(term);
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_of_every_form() {
        let query = Query::parse(
            &pairs(&[
                ("status", "in.(waiting,\"run,ning\")"),
                ("kind", "not.eq.hello"),
                ("context->>name", "ilike.*ada*"),
                ("ended_at", "is.null"),
                (
                    "or",
                    "(priority.gt.5,and(kind.eq.a,attempt.lt.2),not.or(id.eq.1))",
                ),
            ]),
            |_| false,
        )
        .expect("parses");
        assert_eq!(query.filters.len(), 5);
        assert_eq!(
            query.filters[0],
            Filter::Condition {
                field: parse_field("status").expect("field"),
                negated: false,
                op: Op::In,
                operand: Operand::List(vec!["waiting".into(), "run,ning".into()]),
            }
        );
        let Filter::Group { filters, .. } = &query.filters[4] else {
            panic!("a group")
        };
        assert_eq!(filters.len(), 3);
    }

    #[test]
    fn select_and_order() {
        let query = Query::parse(
            &pairs(&[
                ("select", "id,state:status,context->>name,n:attempt::text"),
                ("order", "priority.desc.nullslast,id"),
                ("limit", "10"),
            ]),
            |_| false,
        )
        .expect("parses");
        assert_eq!(query.select.len(), 4);
        assert!(query.order[0].descending);
        assert_eq!(query.order[0].nulls_first, Some(false));
        assert_eq!(query.limit, Some(10));
    }

    #[test]
    fn embeds_and_their_levels() {
        let query = Query::parse(
            &pairs(&[
                (
                    "select",
                    "id,writer:authors!posts_author_fkey(name),comments!inner(id,likes(*)),...topics(label)",
                ),
                ("comments.order", "id.desc"),
                ("comments.limit", "2"),
                ("comments.likes.kind", "eq.heart"),
                ("comments.not.or", "(id.eq.1,id.eq.2)"),
                ("tags", "cs.{a,b}"),
                ("title", "like(any).{A*,*b}"),
                ("body", "wfts(english).cat dog"),
            ]),
            |_| false,
        )
        .expect("parses");
        let SelectItem::Embed(writer) = &query.select[1] else {
            panic!("an embed")
        };
        assert_eq!(writer.name(), "writer");
        assert_eq!(writer.hint.as_deref(), Some("posts_author_fkey"));
        let SelectItem::Embed(comments) = &query.select[2] else {
            panic!("an embed")
        };
        assert!(comments.inner && !comments.spread);
        assert!(matches!(&comments.select[1], SelectItem::Embed(e) if e.target == "likes"));
        assert!(matches!(&query.select[3], SelectItem::Embed(e) if e.spread));
        let level = query.level(&["comments".to_string()]);
        assert_eq!((level.limit, level.filters.len()), (Some(2), 1));
        assert!(level.order[0].descending);
        assert_eq!(
            query
                .level(&["comments".into(), "likes".into()])
                .filters
                .len(),
            1
        );
        assert_eq!(query.filters.len(), 3);
        assert!(matches!(
            &query.filters[1],
            Filter::Condition {
                op: Op::Like,
                operand: Operand::Quantified { all: false, .. },
                ..
            }
        ));
        assert!(matches!(
            &query.filters[2],
            Filter::Condition { op: Op::Fts(Search::Web), operand: Operand::Search { language: Some(l), query }, .. }
                if l == "english" && query == "cat dog"
        ));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for (key, value) in [
            ("id", "eq"),
            ("id", "equals.1"),
            ("id", "in.1,2"),
            ("id", "in.(1,\"2)"),
            ("id", "is.maybe"),
            ("or", "(id.eq.1"),
            ("or", "id.eq.1"),
            ("or", "()"),
            ("a;drop table jobs", "eq.1"),
            ("select", "id,,kind"),
            ("select", "id::int;drop"),
            ("order", "id.sideways"),
            ("limit", "-1"),
            ("x->>a->b", "eq.1"),
            ("select", "id,authors(name"),
            ("select", "authors!a!b(name)"),
            ("select", "authors!(name)"),
            ("id", "eq(any).1"),
            ("id", "in(any).(1)"),
            ("id", "fts(eng;lish).x"),
            ("a.b.limit", "x"),
        ] {
            assert!(
                Query::parse(&pairs(&[(key, value)]), |_| false).is_err(),
                "{key}={value}"
            );
        }
    }
}
