//! Builds one SQL statement per request from a parsed [`Query`].
//!
//! Injection-proof by construction: identifiers come from the schema cache (and are
//! quoted anyway), type names from the catalog or a strict allow-list, numbers are
//! Rust integers, and every value from the request is a bound parameter.
//!
//! Every statement answers one row, `(total, page_count, body)`, the way PostgREST's
//! own queries do: the JSON body is built by PostgreSQL, so rows never pass through
//! Rust values one by one.

use super::{
    error::RestError,
    query::{Arrow, Field, Filter, IsValue, Op, Operand, OrderTerm, Query, SelectItem},
    schema::{Function, Relation, Returns},
};

/// The alias of the rows a statement reads from.
const SOURCE: &str = "_s";

#[derive(Debug)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<String>,
}

/// Whether the body is every row (an array) or exactly one (an object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Array,
    Object,
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn table(name: &str) -> String {
    format!("\"public\".{}", quote_ident(name))
}

struct Builder<'a> {
    relation: &'a Relation,
    params: Vec<String>,
}

impl<'a> Builder<'a> {
    fn new(relation: &'a Relation) -> Self {
        Self {
            relation,
            params: Vec::new(),
        }
    }

    fn bind(&mut self, value: impl Into<String>) -> String {
        self.params.push(value.into());
        format!("${}", self.params.len())
    }

    /// The SQL of a field read from `qualifier`, and its type.
    fn field(&mut self, qualifier: &str, field: &Field) -> Result<(String, String), RestError> {
        let column =
            self.relation
                .column(&field.column)
                .ok_or_else(|| RestError::UnknownColumn {
                    relation: self.relation.name.clone(),
                    column: field.column.clone(),
                })?;
        let mut sql = format!("{qualifier}.{}", quote_ident(&column.name));
        let mut type_name = column.type_name.clone();
        if !field.path.is_empty() {
            // Both json and jsonb columns: navigate as jsonb.
            sql = format!("({sql})::jsonb");
            for (arrow, key) in &field.path {
                let key_sql = if key.parse::<i64>().is_ok() {
                    key.clone()
                } else {
                    self.bind(key.clone())
                };
                let (op, ty) = match arrow {
                    Arrow::Json => ("->", "jsonb"),
                    Arrow::Text => ("->>", "text"),
                };
                sql = format!("{sql}{op}{key_sql}");
                type_name = ty.to_string();
            }
        }
        Ok((sql, type_name))
    }

    fn filters(&mut self, qualifier: &str, filters: &[Filter]) -> Result<String, RestError> {
        if filters.is_empty() {
            return Ok("true".into());
        }
        let parts = filters
            .iter()
            .map(|f| self.filter(qualifier, f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(parts.join(" and "))
    }

    fn filter(&mut self, qualifier: &str, filter: &Filter) -> Result<String, RestError> {
        let (negated, sql) = match filter {
            Filter::Group {
                all,
                negated,
                filters,
            } => {
                let joiner = if *all { " and " } else { " or " };
                let parts = filters
                    .iter()
                    .map(|f| self.filter(qualifier, f))
                    .collect::<Result<Vec<_>, _>>()?;
                (*negated, format!("({})", parts.join(joiner)))
            }
            Filter::Condition {
                field,
                negated,
                op,
                operand,
            } => {
                let (lhs, type_name) = self.field(qualifier, field)?;
                let sql = match (op, operand) {
                    (Op::Is, Operand::Is(value)) => {
                        let word = match value {
                            IsValue::Null => "null",
                            IsValue::NotNull => "not null",
                            IsValue::True => "true",
                            IsValue::False => "false",
                            IsValue::Unknown => "unknown",
                        };
                        format!("{lhs} is {word}")
                    }
                    (Op::In, Operand::List(values)) if values.is_empty() => "false".into(),
                    (Op::In, Operand::List(values)) => {
                        let items: Vec<String> =
                            values.iter().map(|v| self.bind(v.clone())).collect();
                        format!("{lhs} = any(array[{}]::{type_name}[])", items.join(","))
                    }
                    (Op::Like | Op::Ilike, Operand::One(value)) => {
                        let word = if *op == Op::Like { "like" } else { "ilike" };
                        let pattern = self.bind(value.replace('*', "%"));
                        format!("{lhs}::text {word} {pattern}")
                    }
                    (_, Operand::One(value)) => {
                        let symbol = match op {
                            Op::Eq => "=",
                            Op::Neq => "<>",
                            Op::Gt => ">",
                            Op::Gte => ">=",
                            Op::Lt => "<",
                            Op::Lte => "<=",
                            _ => {
                                return Err(RestError::Parse(
                                    "operator and value do not fit".into(),
                                ));
                            }
                        };
                        let value = self.bind(value.clone());
                        format!("{lhs} {symbol} {value}::{type_name}")
                    }
                    _ => return Err(RestError::Parse("operator and value do not fit".into())),
                };
                (*negated, sql)
            }
        };
        Ok(if negated { format!("not ({sql})") } else { sql })
    }

    fn select(&mut self, qualifier: &str, items: &[SelectItem]) -> Result<String, RestError> {
        let parts = items
            .iter()
            .map(|item| match item {
                SelectItem::Star => Ok(format!("{qualifier}.*")),
                SelectItem::Field { alias, field, cast } => {
                    let (mut sql, _) = self.field(qualifier, field)?;
                    if let Some(cast) = cast {
                        sql = format!("({sql})::{cast}");
                    }
                    let name = alias.as_deref().unwrap_or_else(|| field.default_name());
                    Ok(format!("{sql} as {}", quote_ident(name)))
                }
            })
            .collect::<Result<Vec<_>, RestError>>()?;
        Ok(parts.join(", "))
    }

    fn order(&mut self, qualifier: &str, terms: &[OrderTerm]) -> Result<String, RestError> {
        if terms.is_empty() {
            return Ok(String::new());
        }
        let parts = terms
            .iter()
            .map(|term| {
                let (sql, _) = self.field(qualifier, &term.field)?;
                let direction = if term.descending { "desc" } else { "asc" };
                let nulls = match term.nulls_first {
                    Some(true) => " nulls first",
                    Some(false) => " nulls last",
                    None => "",
                };
                Ok(format!("{sql} {direction}{nulls}"))
            })
            .collect::<Result<Vec<_>, RestError>>()?;
        Ok(format!(" order by {}", parts.join(", ")))
    }
}

fn page(limit: Option<u64>, offset: Option<u64>) -> String {
    let mut sql = String::new();
    if let Some(limit) = limit {
        sql.push_str(&format!(" limit {limit}"));
    }
    if let Some(offset) = offset.filter(|o| *o > 0) {
        sql.push_str(&format!(" offset {offset}"));
    }
    sql
}

fn body(shape: Shape) -> &'static str {
    match shape {
        Shape::Array => "coalesce(json_agg(_r), '[]')::text",
        Shape::Object => "(json_agg(_r) -> 0)::text",
    }
}

/// The outer query over `source` (a FROM item aliased `_s`), filtered and paged.
fn read(
    builder: &mut Builder<'_>,
    source: &str,
    query: &Query,
    count: bool,
    shape: Shape,
) -> Result<String, RestError> {
    let select = builder.select(SOURCE, &query.select)?;
    let filters = builder.filters(SOURCE, &query.filters)?;
    let order = builder.order(SOURCE, &query.order)?;
    let total = if count {
        format!("(select count(*) from {source} where {filters})")
    } else {
        "null::bigint".into()
    };
    Ok(format!(
        "select {total}, count(*), {body} from (select {select} from {source} where {filters}{order}{page}) _r",
        body = body(shape),
        page = page(query.limit, query.offset),
    ))
}

/// GET on a table or view.
pub fn select(
    relation: &Relation,
    query: &Query,
    count: bool,
    shape: Shape,
) -> Result<Statement, RestError> {
    let mut builder = Builder::new(relation);
    let source = format!("{} {SOURCE}", table(&relation.name));
    let sql = read(&mut builder, &source, query, count, shape)?;
    Ok(Statement {
        sql,
        params: builder.params,
    })
}

/// What a write answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returning {
    Nothing,
    Rows(Shape),
}

fn write(
    builder: &mut Builder<'_>,
    statement: String,
    query: &Query,
    returning: Returning,
) -> Result<String, RestError> {
    Ok(match returning {
        Returning::Nothing => {
            format!(
                "with {SOURCE} as ({statement} returning 1) select null::bigint, count(*), null::text from {SOURCE}"
            )
        }
        Returning::Rows(shape) => {
            let select = builder.select(SOURCE, &query.select)?;
            format!(
                "with {SOURCE} as ({statement} returning *) select null::bigint, count(*), {body} from (select {select} from {SOURCE}) _r",
                body = body(shape)
            )
        }
    })
}

fn checked_columns(relation: &Relation, columns: &[String]) -> Result<String, RestError> {
    let names = columns
        .iter()
        .map(|name| {
            relation
                .column(name)
                .map(|c| quote_ident(&c.name))
                .ok_or_else(|| RestError::UnknownPayloadColumn {
                    relation: relation.name.clone(),
                    column: name.clone(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names.join(", "))
}

/// POST on a table: `payload` is a JSON array of objects with `columns` as keys.
pub fn insert(
    relation: &Relation,
    query: &Query,
    columns: &[String],
    payload: String,
    returning: Returning,
) -> Result<Statement, RestError> {
    let mut builder = Builder::new(relation);
    let table = table(&relation.name);
    let statement = if columns.is_empty() {
        // `{}`: one row, every column its default.
        format!("insert into {table} default values")
    } else {
        let names = checked_columns(relation, columns)?;
        let json = builder.bind(payload);
        format!(
            "insert into {table} ({names}) select {names} from json_populate_recordset(null::{table}, {json}::json)"
        )
    };
    let sql = write(&mut builder, statement, query, returning)?;
    Ok(Statement {
        sql,
        params: builder.params,
    })
}

/// PATCH on a table: the payload object's keys are the columns to set.
pub fn update(
    relation: &Relation,
    query: &Query,
    columns: &[String],
    payload: String,
    returning: Returning,
) -> Result<Statement, RestError> {
    let mut builder = Builder::new(relation);
    let table = table(&relation.name);
    checked_columns(relation, columns)?;
    let json = builder.bind(payload);
    let filters = builder.filters("_t", &query.filters)?;
    let assignments: Vec<String> = columns
        .iter()
        .map(|c| format!("{0} = _p.{0}", quote_ident(c)))
        .collect();
    let statement = format!(
        "update {table} as _t set {} from json_populate_record(null::{table}, {json}::json) _p where {filters}",
        assignments.join(", ")
    );
    let sql = write(&mut builder, statement, query, returning)?;
    Ok(Statement {
        sql,
        params: builder.params,
    })
}

/// DELETE on a table.
pub fn delete(
    relation: &Relation,
    query: &Query,
    returning: Returning,
) -> Result<Statement, RestError> {
    let mut builder = Builder::new(relation);
    let filters = builder.filters("_t", &query.filters)?;
    let statement = format!(
        "delete from {} as _t where {filters}",
        table(&relation.name)
    );
    let sql = write(&mut builder, statement, query, returning)?;
    Ok(Statement {
        sql,
        params: builder.params,
    })
}

/// A function call with named arguments taken from the JSON object `args`, as
/// PostgREST does: `json_to_record` turns each key into a typed value (arrays too).
pub fn call(
    function: &Function,
    given: &[&str],
    args: String,
    query: &Query,
    count: bool,
    shape: Shape,
) -> Result<Statement, RestError> {
    let mut builder = Builder::new(&function.result);
    let name = table(&function.name);
    let (from_args, named) = if given.is_empty() {
        (String::new(), String::new())
    } else {
        let json = builder.bind(args);
        let mut definitions = Vec::new();
        let mut named = Vec::new();
        for argument in function
            .arguments
            .iter()
            .filter(|a| given.contains(&a.name.as_str()))
        {
            let ident = quote_ident(&argument.name);
            definitions.push(format!("{ident} {}", argument.type_name));
            named.push(format!("{ident} => _a.{ident}"));
        }
        (
            format!(
                "json_to_record({json}::json) as _a({}), ",
                definitions.join(", ")
            ),
            named.join(", "),
        )
    };
    let sql = match function.returns {
        Returns::Void => format!(
            "select null::bigint, 0::bigint, null::text from {from_args}lateral (select {name}({named})) _v"
        ),
        Returns::Scalar => format!(
            "select null::bigint, 1::bigint, to_json(_v.v)::text from {from_args}lateral (select {name}({named}) as v) _v"
        ),
        Returns::Row | Returns::Rows => {
            let shape = if function.returns == Returns::Row {
                Shape::Object
            } else {
                shape
            };
            // Materialized, so the count and the page read one call of the function.
            let read = read(
                &mut builder,
                &format!("_call {SOURCE}"),
                query,
                count,
                shape,
            )?;
            format!(
                "with _call as materialized (select _f.* from {from_args}lateral {name}({named}) _f) {read}"
            )
        }
    };
    Ok(Statement {
        sql,
        params: builder.params,
    })
}
