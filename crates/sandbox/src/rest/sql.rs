//! Builds one SQL statement per request from a parsed [`Query`].
//!
//! Injection-proof by construction: identifiers come from the schema cache (and are
//! quoted anyway), type names from the catalog or a strict allow-list, numbers are
//! Rust integers, and every value from the request is a bound parameter.
//!
//! Every statement answers one row, `(total, page_count, body)` (writes add the
//! number of rows inserted), the way PostgREST's own queries do: the JSON body is
//! built by PostgreSQL, so rows never pass through Rust values one by one.
//!
//! An embedded resource is a `left join lateral` (an `inner` one for `!inner`) of a
//! subquery over the related relation, correlated by the foreign key's columns: one
//! `row_to_json` for a to-one relationship, one `json_agg` for a to-many one. It runs
//! in the caller's role like the rest, so row-level security filters embedded rows.

use super::{
    error::RestError,
    query::{
        Arrow, Embed, Field, Filter, IsValue, Level, Op, Operand, OrderTerm, Query, Search,
        SelectItem,
    },
    schema::{Function, Link, Relation, Relationship, Returns, Schema},
};

/// The alias of the rows a statement reads from.
const SOURCE: &str = "_s";

#[derive(Debug)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<String>,
    /// For a read: `EXPLAIN` of the rows it counts, with the same parameters, whose
    /// plan's row estimate is a planned count.
    pub explain: Option<String>,
}

/// What the body is: every row (a JSON array, or CSV) or exactly one (an object).
/// `strip_nulls` leaves out keys whose value is null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Array {
        strip_nulls: bool,
    },
    Object {
        strip_nulls: bool,
    },
    /// A header line of the columns' names, then each row's columns as PostgreSQL
    /// writes a record (quoted where needed), as PostgREST writes CSV.
    Csv,
}

impl Default for Shape {
    fn default() -> Self {
        Shape::Array { strip_nulls: false }
    }
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn table(name: &str) -> String {
    format!("\"public\".{}", quote_ident(name))
}

/// How an embed shows in its parent's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shows {
    /// An object, or null.
    One,
    /// An array, empty when nothing is related.
    Many,
    /// Its columns, inlined.
    Spread,
}

/// An embed joined at a level: its name in the response, the alias of its join.
struct Joined {
    name: String,
    alias: String,
    shows: Shows,
    /// `table()` selects nothing: joined to filter, not shown.
    shown: bool,
}

/// One level being read: the relation, the alias its rows have, its embeds.
struct Scope<'a> {
    relation: &'a Relation,
    qualifier: String,
    joined: Vec<Joined>,
}

impl<'a> Scope<'a> {
    fn plain(relation: &'a Relation, qualifier: &str) -> Self {
        Self {
            relation,
            qualifier: qualifier.to_string(),
            joined: Vec::new(),
        }
    }
}

/// A level's FROM item (with its embeds' joins), select list, and the conditions its
/// `!inner` embeds add.
struct Parts {
    from: String,
    select: String,
    conditions: Vec<String>,
}

struct Builder<'a> {
    schema: &'a Schema,
    /// The embedded levels the query string set, by path.
    nested: &'a [(Vec<String>, Level)],
    params: Vec<String>,
    aliases: usize,
    /// The embedded paths the select list has, to refuse levels of others.
    embedded: Vec<Vec<String>>,
}

impl<'a> Builder<'a> {
    fn new(schema: &'a Schema, query: &'a Query) -> Self {
        Self {
            schema,
            nested: &query.nested,
            params: Vec::new(),
            aliases: 0,
            embedded: Vec::new(),
        }
    }

    fn bind(&mut self, value: impl Into<String>) -> String {
        self.params.push(value.into());
        format!("${}", self.params.len())
    }

    fn finish(self, sql: String) -> Result<Statement, RestError> {
        if let Some((path, _)) = self
            .nested
            .iter()
            .find(|(path, _)| !self.embedded.contains(path))
        {
            return Err(RestError::NotEmbedded(path.join(".")));
        }
        Ok(Statement {
            sql,
            params: self.params,
            explain: None,
        })
    }

    /// The SQL of a field of the scope's rows, and its type: a column (maybe with a
    /// JSON path) or a computed field.
    fn field(&mut self, scope: &Scope<'_>, field: &Field) -> Result<(String, String), RestError> {
        let qualifier = &scope.qualifier;
        let (mut sql, mut type_name) = match scope.relation.column(&field.column) {
            Some(column) => (
                format!("{qualifier}.{}", quote_ident(&column.name)),
                column.type_name.clone(),
            ),
            None => match self
                .schema
                .computed_field(&scope.relation.name, &field.column)
            {
                Some(function) => (
                    format!("{}({qualifier})", table(&function.name)),
                    function.return_type.clone(),
                ),
                None => {
                    return Err(RestError::UnknownColumn {
                        relation: scope.relation.name.clone(),
                        column: field.column.clone(),
                    });
                }
            },
        };
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

    fn filters(&mut self, scope: &Scope<'_>, filters: &[Filter]) -> Result<String, RestError> {
        if filters.is_empty() {
            return Ok("true".into());
        }
        let parts = filters
            .iter()
            .map(|f| self.filter(scope, f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(parts.join(" and "))
    }

    fn filter(&mut self, scope: &Scope<'_>, filter: &Filter) -> Result<String, RestError> {
        let (negated, sql) = match filter {
            Filter::Group {
                all,
                negated,
                filters,
            } => {
                let joiner = if *all { " and " } else { " or " };
                let parts = filters
                    .iter()
                    .map(|f| self.filter(scope, f))
                    .collect::<Result<Vec<_>, _>>()?;
                (*negated, format!("({})", parts.join(joiner)))
            }
            Filter::Condition {
                field,
                negated,
                op,
                operand,
            } => {
                if let Some(joined) = embedded_field(scope, field) {
                    // `embed=is.null` / `not.is.null`: whether anything is related.
                    return match (op, operand, joined.shows) {
                        (Op::Is, Operand::Is(IsValue::Null), Shows::One | Shows::Many) => {
                            let not = if *negated { "not " } else { "" };
                            Ok(format!("{}.v is {not}null", joined.alias))
                        }
                        _ => Err(RestError::UnacceptableFilter(joined.name.clone())),
                    };
                }
                let (lhs, type_name) = self.field(scope, field)?;
                (*negated, self.condition(&lhs, &type_name, *op, operand)?)
            }
        };
        Ok(if negated { format!("not ({sql})") } else { sql })
    }

    fn condition(
        &mut self,
        lhs: &str,
        type_name: &str,
        op: Op,
        operand: &Operand,
    ) -> Result<String, RestError> {
        let misfit = || RestError::Parse("operator and value do not fit".into());
        Ok(match (op, operand) {
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
                let items: Vec<String> = values.iter().map(|v| self.bind(v.clone())).collect();
                format!("{lhs} = any(array[{}]::{type_name}[])", items.join(","))
            }
            (Op::Fts(search), Operand::Search { language, query }) => {
                let function = match search {
                    Search::Query => "to_tsquery",
                    Search::Plain => "plainto_tsquery",
                    Search::Phrase => "phraseto_tsquery",
                    Search::Web => "websearch_to_tsquery",
                };
                let language = match language {
                    Some(language) => format!("{}::regconfig, ", self.bind(language.clone())),
                    None => String::new(),
                };
                let query = self.bind(query.clone());
                format!("{lhs} @@ {function}({language}{query})")
            }
            (_, Operand::Quantified { all, array }) => {
                let quantifier = if *all { "all" } else { "any" };
                let (symbol, text) = symbol(op).ok_or_else(misfit)?;
                let array = self.bind(if text {
                    array.replace('*', "%")
                } else {
                    array.clone()
                });
                if text {
                    format!("{lhs}::text {symbol} {quantifier}({array}::text[])")
                } else {
                    format!("{lhs} {symbol} {quantifier}({array}::{type_name}[])")
                }
            }
            (_, Operand::One(value)) => {
                let (symbol, text) = symbol(op).ok_or_else(misfit)?;
                if text {
                    let value = if matches!(op, Op::Like | Op::Ilike) {
                        value.replace('*', "%")
                    } else {
                        value.clone()
                    };
                    format!("{lhs}::text {symbol} {}", self.bind(value))
                } else {
                    format!("{lhs} {symbol} {}::{type_name}", self.bind(value.clone()))
                }
            }
            _ => return Err(misfit()),
        })
    }

    /// The level `path` (the scope's relation, read from `from` as
    /// `qualifier`): its embeds joined, its select list. `expand_star` lists the
    /// relation's columns for `*` (when the rows carry more, as a write's do).
    fn level<'r>(
        &mut self,
        relation: &'r Relation,
        qualifier: &str,
        from: String,
        items: &[SelectItem],
        path: &[String],
        expand_star: bool,
    ) -> Result<(Scope<'r>, Parts), RestError>
    where
        'a: 'r,
    {
        let mut scope = Scope::plain(relation, qualifier);
        let (mut joins, mut conditions) = (String::new(), Vec::new());
        for item in items {
            if let SelectItem::Embed(embed) = item {
                let (join, condition) = self.embed(&mut scope, embed, path)?;
                joins.push_str(&join);
                conditions.extend(condition);
            }
        }
        let select = self.select(&scope, items, expand_star)?;
        Ok((
            scope,
            Parts {
                from: format!("{from}{joins}"),
                select,
                conditions,
            },
        ))
    }

    /// The join of one embed under `scope`, and the condition `!inner` adds.
    fn embed(
        &mut self,
        scope: &mut Scope<'_>,
        embed: &Embed,
        path: &[String],
    ) -> Result<(String, Option<String>), RestError> {
        let schema = self.schema;
        let origin = &scope.relation.name;
        let relationship: &Relationship = match schema
            .relationships_to(origin, &embed.target, embed.hint.as_deref())
            .as_slice()
        {
            [] => {
                return Err(RestError::NoRelationship {
                    origin: origin.clone(),
                    target: embed.target.clone(),
                    hint: embed.hint.clone(),
                });
            }
            [only] => only,
            many => {
                return Err(RestError::AmbiguousRelationship {
                    origin: origin.clone(),
                    target: embed.target.clone(),
                    candidates: many.iter().map(|r| (*r).clone()).collect(),
                });
            }
        };
        let target = schema
            .relations
            .get(&relationship.target)
            .ok_or_else(|| RestError::UnknownRelation(relationship.target.clone()))?;
        let shows = match (embed.spread, relationship.to_one()) {
            (true, true) => Shows::Spread,
            (true, false) => {
                return Err(RestError::SpreadNotToOne {
                    origin: origin.clone(),
                    target: embed.target.clone(),
                });
            }
            (false, true) => Shows::One,
            (false, false) => Shows::Many,
        };
        self.aliases += 1;
        let n = self.aliases;
        let (child, junction, rows, join) = (
            format!("_c{n}"),
            format!("_x{n}"),
            format!("_e{n}"),
            format!("_j{n}"),
        );
        let parent = &scope.qualifier;
        let (from, link) = match &relationship.link {
            Link::Direct { columns, .. } => (
                format!("{} {child}", table(&target.name)),
                columns
                    .iter()
                    .map(|(o, t)| {
                        format!("{child}.{} = {parent}.{}", quote_ident(t), quote_ident(o))
                    })
                    .collect::<Vec<_>>(),
            ),
            Link::Junction {
                table: junction_table,
                origin_columns,
                target_columns,
                ..
            } => {
                let on: Vec<String> = target_columns
                    .iter()
                    .map(|(j, t)| {
                        format!("{junction}.{} = {child}.{}", quote_ident(j), quote_ident(t))
                    })
                    .collect();
                (
                    format!(
                        "{} {child} join {} {junction} on {}",
                        table(&target.name),
                        table(junction_table),
                        on.join(" and ")
                    ),
                    origin_columns
                        .iter()
                        .map(|(j, o)| {
                            format!(
                                "{junction}.{} = {parent}.{}",
                                quote_ident(j),
                                quote_ident(o)
                            )
                        })
                        .collect(),
                )
            }
        };
        let mut child_path = path.to_vec();
        child_path.push(embed.name().to_string());
        let level = self
            .nested
            .iter()
            .find(|(p, _)| *p == child_path)
            .map(|(_, level)| level.clone())
            .unwrap_or_default();
        let (child_scope, parts) =
            self.level(target, &child, from, &embed.select, &child_path, false)?;
        let mut conditions = link;
        conditions.push(self.filters(&child_scope, &level.filters)?);
        conditions.extend(parts.conditions);
        let order = self.order(&child_scope, &level.order)?;
        let rows_sql = format!(
            "select {} from {} where {}{order}{}",
            parts.select,
            parts.from,
            conditions.join(" and "),
            page(level.limit, level.offset)
        );
        let lateral = match shows {
            Shows::Spread => rows_sql,
            Shows::One => format!("select row_to_json({rows}) as v from ({rows_sql}) {rows}"),
            Shows::Many => format!("select json_agg({rows}) as v from ({rows_sql}) {rows}"),
        };
        // A to-many subquery always answers its one aggregate row: `!inner` asks
        // that it found something. A to-one one answers no row when nothing relates.
        let (kind, condition) = match (embed.inner, shows) {
            (true, Shows::Many) => ("left", Some(format!("{join}.v is not null"))),
            (true, _) => ("inner", None),
            (false, _) => ("left", None),
        };
        self.embedded.push(child_path);
        scope.joined.push(Joined {
            name: embed.name().to_string(),
            alias: join.clone(),
            shows,
            shown: !embed.select.is_empty(),
        });
        Ok((
            format!(" {kind} join lateral ({lateral}) {join} on true"),
            condition,
        ))
    }

    fn select(
        &mut self,
        scope: &Scope<'_>,
        items: &[SelectItem],
        expand_star: bool,
    ) -> Result<String, RestError> {
        let qualifier = &scope.qualifier;
        let mut parts = Vec::new();
        for item in items {
            match item {
                SelectItem::Star if expand_star && !scope.relation.columns.is_empty() => {
                    parts.extend(
                        scope
                            .relation
                            .columns
                            .iter()
                            .map(|c| format!("{qualifier}.{}", quote_ident(&c.name))),
                    );
                }
                SelectItem::Star => parts.push(format!("{qualifier}.*")),
                SelectItem::Field { alias, field, cast } => {
                    let (mut sql, _) = self.field(scope, field)?;
                    if let Some(cast) = cast {
                        sql = format!("({sql})::{cast}");
                    }
                    let name = alias.as_deref().unwrap_or_else(|| field.default_name());
                    parts.push(format!("{sql} as {}", quote_ident(name)));
                }
                SelectItem::Embed(embed) => {
                    let Some(joined) = scope
                        .joined
                        .iter()
                        .find(|j| j.name == embed.name() && j.shown)
                    else {
                        continue;
                    };
                    let (alias, name) = (&joined.alias, quote_ident(&joined.name));
                    parts.push(match joined.shows {
                        Shows::One => format!("{alias}.v as {name}"),
                        Shows::Many => format!("coalesce({alias}.v, '[]'::json) as {name}"),
                        Shows::Spread => format!("{alias}.*"),
                    });
                }
            }
        }
        Ok(parts.join(", "))
    }

    fn order(&mut self, scope: &Scope<'_>, terms: &[OrderTerm]) -> Result<String, RestError> {
        if terms.is_empty() {
            return Ok(String::new());
        }
        let parts = terms
            .iter()
            .map(|term| {
                let (sql, _) = self.field(scope, &term.field)?;
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

/// The embed a filter's field names, when it names one of the scope's.
fn embedded_field<'s>(scope: &'s Scope<'_>, field: &Field) -> Option<&'s Joined> {
    if !field.path.is_empty() || scope.relation.column(&field.column).is_some() {
        return None;
    }
    scope.joined.iter().find(|j| j.name == field.column)
}

/// An operator's SQL, and whether it compares the column as text.
fn symbol(op: Op) -> Option<(&'static str, bool)> {
    Some(match op {
        Op::Eq => ("=", false),
        Op::Neq => ("<>", false),
        Op::Gt => (">", false),
        Op::Gte => (">=", false),
        Op::Lt => ("<", false),
        Op::Lte => ("<=", false),
        Op::IsDistinct => ("is distinct from", false),
        Op::Contains => ("@>", false),
        Op::ContainedIn => ("<@", false),
        Op::Overlaps => ("&&", false),
        Op::StrictlyLeft => ("<<", false),
        Op::StrictlyRight => (">>", false),
        Op::NotExtendRight => ("&<", false),
        Op::NotExtendLeft => ("&>", false),
        Op::Adjacent => ("-|-", false),
        Op::Like => ("like", true),
        Op::Ilike => ("ilike", true),
        Op::Match => ("~", true),
        Op::Imatch => ("~*", true),
        Op::In | Op::Is | Op::Fts(_) => return None,
    })
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
        Shape::Array { strip_nulls: false } => "coalesce(json_agg(_r), '[]')::text",
        Shape::Array { strip_nulls: true } => {
            "coalesce(json_strip_nulls(json_agg(_r)), '[]')::text"
        }
        Shape::Object { strip_nulls: false } => "(json_agg(_r) -> 0)::text",
        Shape::Object { strip_nulls: true } => "json_strip_nulls(json_agg(_r) -> 0)::text",
        // The names from the first row; no rows, no names (PostgREST answers a lone
        // line break then too).
        Shape::Csv => {
            "coalesce((select string_agg(_k, ',') from json_object_keys(json_agg(_r) -> 0) _k), '') \
             || chr(10) || coalesce(string_agg(substring(_r::text, 2, length(_r::text) - 2), chr(10)), '')"
        }
    }
}

/// The outer query over the rows of `relation` in `source` (a FROM item aliased
/// `_s`), filtered and paged; and the rows it counts, `FROM ... WHERE ...` without
/// the page (for the planner's estimate of their number).
fn read(
    builder: &mut Builder<'_>,
    relation: &Relation,
    source: &str,
    query: &Query,
    count: bool,
    shape: Shape,
) -> Result<(String, String), RestError> {
    let (scope, parts) = builder.level(
        relation,
        SOURCE,
        source.to_string(),
        &query.select,
        &[],
        false,
    )?;
    let mut conditions = vec![builder.filters(&scope, &query.filters)?];
    let filters_use_embeds = filters_name_embeds(&scope, &query.filters);
    let inner = !parts.conditions.is_empty() || parts.from.contains(" inner join lateral ");
    conditions.extend(parts.conditions);
    let filters = conditions.join(" and ");
    let order = builder.order(&scope, &query.order)?;
    let counted = if inner || filters_use_embeds {
        format!("{} where {filters}", parts.from)
    } else {
        // Left joins of embeds neither add nor remove rows: count without them.
        format!("{source} where {filters}")
    };
    let total = if count {
        format!("(select count(*) from {counted})")
    } else {
        "null::bigint".into()
    };
    let sql = format!(
        "select {total}, count(*), {body} from (select {} from {} where {filters}{order}{page}) _r",
        parts.select,
        parts.from,
        body = body(shape),
        page = page(query.limit, query.offset),
    );
    Ok((sql, counted))
}

fn filters_name_embeds(scope: &Scope<'_>, filters: &[Filter]) -> bool {
    filters.iter().any(|filter| match filter {
        Filter::Group { filters, .. } => filters_name_embeds(scope, filters),
        Filter::Condition { field, .. } => embedded_field(scope, field).is_some(),
    })
}

/// GET on a table or view.
pub fn select(
    schema: &Schema,
    relation: &Relation,
    query: &Query,
    count: bool,
    shape: Shape,
) -> Result<Statement, RestError> {
    let mut builder = Builder::new(schema, query);
    let source = format!("{} {SOURCE}", table(&relation.name));
    let (sql, counted) = read(&mut builder, relation, &source, query, count, shape)?;
    let mut statement = builder.finish(sql)?;
    statement.explain = Some(format!("explain (format json) select 1 from {counted}"));
    Ok(statement)
}

/// What a write answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returning {
    Nothing,
    Rows(Shape),
}

/// The answer of `statements` (each `insert`/`update`/`delete` on `relation` as
/// `_t`, their rows together): `(null, rows written, body, rows inserted)`.
/// `inserted` tells an upsert's new rows from its updated ones.
fn write(
    builder: &mut Builder<'_>,
    relation: &Relation,
    statements: Vec<String>,
    inserted: &str,
    query: &Query,
    returning: Returning,
) -> Result<String, RestError> {
    let returned = match returning {
        Returning::Nothing => format!("{inserted} as _inserted"),
        Returning::Rows(_) => format!("_t.*, {inserted} as _inserted"),
    };
    let ctes = match statements.as_slice() {
        [only] => format!("{SOURCE} as ({only} returning {returned})"),
        many => {
            let mut ctes: Vec<String> = many
                .iter()
                .enumerate()
                .map(|(i, s)| format!("_w{i} as ({s} returning {returned})"))
                .collect();
            let union: Vec<String> = (0..many.len())
                .map(|i| format!("select * from _w{i}"))
                .collect();
            ctes.push(format!("{SOURCE} as ({})", union.join(" union all ")));
            ctes.join(", ")
        }
    };
    let counts = format!(
        "(select count(*) from {SOURCE}), {{body}}, (select count(*) from {SOURCE} where _inserted)"
    );
    Ok(match returning {
        Returning::Nothing => format!(
            "with {ctes} select null::bigint, {}",
            counts.replace("{body}", "null::text")
        ),
        Returning::Rows(shape) => {
            let (_, parts) = builder.level(
                relation,
                SOURCE,
                SOURCE.to_string(),
                &query.select,
                &[],
                true,
            )?;
            format!(
                "with {ctes} select null::bigint, {} from (select {} from {}) _r",
                counts.replace("{body}", body(shape)),
                parts.select,
                parts.from
            )
        }
    })
}

fn checked_columns(relation: &Relation, columns: &[String]) -> Result<Vec<String>, RestError> {
    columns
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
        .collect()
}

/// What an insert does with a row whose key is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Fail with 23505, as a plain insert does.
    Fail,
    /// `resolution=merge-duplicates`: update the existing row with the payload.
    Merge(Vec<String>),
    /// `resolution=ignore-duplicates`: keep the existing row.
    Ignore(Vec<String>),
}

/// The rows of an insert: groups of objects that give the same columns (one group
/// unless `missing=default` lets objects leave different columns to their defaults),
/// each a JSON array.
#[derive(Debug)]
pub struct Rows {
    pub groups: Vec<(Vec<String>, String)>,
}

/// POST on a table.
pub fn insert(
    schema: &Schema,
    relation: &Relation,
    query: &Query,
    rows: Rows,
    conflict: &Conflict,
    returning: Returning,
) -> Result<Statement, RestError> {
    let mut builder = Builder::new(schema, query);
    let table = table(&relation.name);
    let on_conflict = match conflict {
        Conflict::Fail => String::new(),
        Conflict::Merge(keys) | Conflict::Ignore(keys) => {
            let keys = checked_columns(relation, keys)?.join(", ");
            format!(" on conflict ({keys})")
        }
    };
    let mut statements = Vec::new();
    for (columns, payload) in rows.groups {
        let statement = if columns.is_empty() {
            // `{}`: every column its default.
            let json = builder.bind(payload);
            format!("insert into {table} as _t select from json_array_elements({json}::json)")
        } else {
            let names = checked_columns(relation, &columns)?;
            let json = builder.bind(payload);
            let resolution = match conflict {
                Conflict::Fail => String::new(),
                Conflict::Ignore(_) => format!("{on_conflict} do nothing"),
                Conflict::Merge(_) => {
                    let set: Vec<String> = names
                        .iter()
                        .map(|n| format!("{n} = excluded.{n}"))
                        .collect();
                    format!("{on_conflict} do update set {}", set.join(", "))
                }
            };
            let names = names.join(", ");
            format!(
                "insert into {table} as _t ({names}) select {names} from json_populate_recordset(null::{table}, {json}::json){resolution}"
            )
        };
        statements.push(statement);
    }
    // A row an upsert updated has the updating transaction's xmax; a new one has 0.
    let inserted = match conflict {
        Conflict::Merge(_) => "_t.xmax = 0",
        _ => "true",
    };
    let sql = write(
        &mut builder,
        relation,
        statements,
        inserted,
        query,
        returning,
    )?;
    builder.finish(sql)
}

/// PATCH on a table: the payload object's keys are the columns to set.
pub fn update(
    schema: &Schema,
    relation: &Relation,
    query: &Query,
    columns: &[String],
    payload: String,
    returning: Returning,
) -> Result<Statement, RestError> {
    let mut builder = Builder::new(schema, query);
    let table = table(&relation.name);
    checked_columns(relation, columns)?;
    let json = builder.bind(payload);
    let filters = builder.filters(&Scope::plain(relation, "_t"), &query.filters)?;
    let assignments: Vec<String> = columns
        .iter()
        .map(|c| format!("{0} = _p.{0}", quote_ident(c)))
        .collect();
    let statement = format!(
        "update {table} as _t set {} from json_populate_record(null::{table}, {json}::json) _p where {filters}",
        assignments.join(", ")
    );
    let sql = write(
        &mut builder,
        relation,
        vec![statement],
        "false",
        query,
        returning,
    )?;
    builder.finish(sql)
}

/// DELETE on a table.
pub fn delete(
    schema: &Schema,
    relation: &Relation,
    query: &Query,
    returning: Returning,
) -> Result<Statement, RestError> {
    let mut builder = Builder::new(schema, query);
    let filters = builder.filters(&Scope::plain(relation, "_t"), &query.filters)?;
    let statement = format!(
        "delete from {} as _t where {filters}",
        table(&relation.name)
    );
    let sql = write(
        &mut builder,
        relation,
        vec![statement],
        "false",
        query,
        returning,
    )?;
    builder.finish(sql)
}

/// A function's arguments.
#[derive(Debug)]
pub enum Arguments<'a> {
    /// Named, taken from a JSON object with these keys.
    Named { given: &'a [&'a str], json: String },
    /// The request body itself, for a function of one unnamed argument.
    Body(String),
}

/// A function call, as PostgREST makes it: `json_to_record` turns each key of the
/// arguments object into a typed value (arrays too).
pub fn call(
    schema: &Schema,
    function: &Function,
    arguments: Arguments<'_>,
    query: &Query,
    count: bool,
    shape: Shape,
) -> Result<Statement, RestError> {
    let mut builder = Builder::new(schema, query);
    let name = table(&function.name);
    let (from_args, named) = match arguments {
        Arguments::Named { given: [], .. } => (String::new(), String::new()),
        Arguments::Named { given, json } => {
            let json = builder.bind(json);
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
        }
        Arguments::Body(body) => {
            let type_name = function.takes_body_as().unwrap_or("text").to_string();
            (
                String::new(),
                format!("{}::{type_name}", builder.bind(body)),
            )
        }
    };
    let sql = match function.returns {
        Returns::Void => format!(
            "select null::bigint, 0::bigint, null::text from {from_args}lateral (select {name}({named})) _v"
        ),
        Returns::Scalar => format!(
            "select null::bigint, 1::bigint, to_json(_v.v)::text from {from_args}lateral (select {name}({named}) as v) _v"
        ),
        Returns::Values => {
            let total = if count {
                "(select count(*) from _call)"
            } else {
                "null::bigint"
            };
            // Each value alone in JSON; in CSV a column named as PostgREST names it.
            let body = match shape {
                Shape::Csv => body(shape),
                _ => "coalesce(json_agg(_r.pgrst_scalar), '[]')::text",
            };
            format!(
                "with _call as materialized (select _f.v from {from_args}lateral {name}({named}) _f(v)) \
                 select {total}, count(*), {body} from (select v as pgrst_scalar from _call{}) _r",
                page(query.limit, query.offset)
            )
        }
        Returns::Row | Returns::Rows => {
            let shape = match (function.returns, shape) {
                (Returns::Row, Shape::Array { strip_nulls }) => Shape::Object { strip_nulls },
                _ => shape,
            };
            // Materialized, so the count and the page read one call of the function.
            let (read, _) = read(
                &mut builder,
                &function.result,
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
    builder.finish(sql)
}
