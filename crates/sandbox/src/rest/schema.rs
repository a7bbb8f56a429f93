//! What the `public` schema holds: tables and views with their columns, functions with
//! their arguments. Every identifier in a request is checked against this before any
//! SQL is built, and the column types give each bound value its cast.
//!
//! Loaded at start and again, as PostgREST does, on `NOTIFY pgrst, 'reload schema'`
//! ([`watch`]); the bootstrap's event triggers send that after every DDL statement,
//! so a table or function created while the sandbox runs is served without a restart.
//! A request keeps the schema it started with, so a reload never disturbs one in
//! flight.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// PostgREST's notification channel.
const CHANNEL: &str = "pgrst";
const RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// `format_type()` of the column: safe to splice into SQL as a cast target.
    pub type_name: String,
}

#[derive(Debug, Clone, Default)]
pub struct Relation {
    pub name: String,
    pub columns: Vec<Column>,
    /// The primary key's columns (empty for views and tables without one).
    pub primary_key: Vec<String>,
}

impl Relation {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    Void,
    /// One value, answered as that JSON value.
    Scalar,
    /// One row, answered as an object.
    Row,
    /// A set of rows, answered as an array.
    Rows,
    /// A set of values (`setof int`), answered as an array of them.
    Values,
}

#[derive(Debug, Clone)]
pub struct Argument {
    pub name: String,
    pub type_name: String,
    pub has_default: bool,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub arguments: Vec<Argument>,
    pub returns: Returns,
    /// The columns of the rows it returns (for `select`, filters and order).
    pub result: Relation,
    /// Stable or immutable: may be called with GET in a read-only transaction.
    pub read_only: bool,
    /// `format_type()` of what it returns.
    pub return_type: String,
}

impl Function {
    /// Whether this is `f(json)`, `f(jsonb)` or `f(text)` with its one argument
    /// unnamed: PostgREST passes such a function the request body itself.
    pub fn takes_body_as(&self) -> Option<&str> {
        match self.arguments.as_slice() {
            [only] if only.name.is_empty() => Some(only.type_name.as_str()),
            _ => None,
        }
    }

    /// Whether a call naming exactly `given` arguments fits this function.
    pub fn accepts(&self, given: &[&str]) -> bool {
        self.takes_body_as().is_none()
            && given
                .iter()
                .all(|name| self.arguments.iter().any(|a| a.name == *name))
            && self
                .arguments
                .iter()
                .all(|a| a.has_default || given.contains(&a.name.as_str()))
    }
}

/// How two relations are related, as PostgREST infers it from foreign keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Columns of the origin equal to columns of the target, through one foreign key
    /// (either's): `(origin column, target column)` pairs.
    Direct {
        constraint: String,
        columns: Vec<(String, String)>,
        cardinality: Cardinality,
    },
    /// Through a junction table whose primary key holds foreign keys to both.
    Junction {
        table: String,
        /// The junction's key to the origin: `(junction column, origin column)`.
        origin_constraint: String,
        origin_columns: Vec<(String, String)>,
        /// The junction's key to the target: `(junction column, target column)`.
        target_constraint: String,
        target_columns: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    ManyToOne,
    OneToMany,
    OneToOne,
}

/// A relationship from `origin` to `target`, which an embed may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    pub origin: String,
    pub target: String,
    pub link: Link,
}

impl Relationship {
    /// Embedded as one object (or null) rather than an array.
    pub fn to_one(&self) -> bool {
        matches!(
            self.link,
            Link::Direct {
                cardinality: Cardinality::ManyToOne | Cardinality::OneToOne,
                ..
            }
        )
    }

    pub fn is_self(&self) -> bool {
        self.origin == self.target
    }

    /// PostgREST's name for the cardinality, as its errors show it.
    pub fn cardinality_name(&self) -> &'static str {
        match &self.link {
            Link::Junction { .. } => "many-to-many",
            Link::Direct { cardinality, .. } => match cardinality {
                Cardinality::ManyToOne => "many-to-one",
                Cardinality::OneToMany => "one-to-many",
                Cardinality::OneToOne => "one-to-one",
            },
        }
    }

    /// The name a hint uses to pick this relationship: the constraint, or the
    /// junction table.
    pub fn hint_name(&self) -> &str {
        match &self.link {
            Link::Direct { constraint, .. } => constraint,
            Link::Junction { table, .. } => table,
        }
    }

    /// `(origin column, target column)` of a single-column direct link.
    fn single_column(&self) -> Option<(&str, &str)> {
        match &self.link {
            Link::Direct { columns, .. } if columns.len() == 1 => {
                Some((columns[0].0.as_str(), columns[0].1.as_str()))
            }
            _ => None,
        }
    }

    /// Whether an embed of `target` (optionally `!hint`) means this relationship,
    /// by PostgREST's rules: the target is the table, or (tables only) the foreign
    /// key's constraint or single column; a hint names the constraint, a column of
    /// either side, or the junction. A self-reference is one-to-many by the table's
    /// name and many-to-one by its column.
    pub fn matches(&self, target: &str, hint: Option<&str>) -> bool {
        let constraint = matches!(self.link, Link::Direct { .. }) && self.hint_name() == target;
        let by_column = self.single_column().is_some_and(|(c, _)| c == target);
        let one_to_many = matches!(
            self.link,
            Link::Direct {
                cardinality: Cardinality::OneToMany,
                ..
            }
        );
        let many_to_one = matches!(
            self.link,
            Link::Direct {
                cardinality: Cardinality::ManyToOne,
                ..
            }
        );
        if self.is_self() {
            return match hint {
                None => (self.target == target && one_to_many) || (by_column && many_to_one),
                Some(hint) => {
                    self.target == target
                        && one_to_many
                        && self.single_column().is_some_and(|(_, t)| t == hint)
                }
            };
        }
        match hint {
            None => self.target == target || constraint || by_column,
            Some(hint) => {
                self.target == target
                    && (self.hint_name() == hint
                        || self
                            .single_column()
                            .is_some_and(|(o, t)| o == hint || t == hint))
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub relations: HashMap<String, Relation>,
    pub functions: HashMap<String, Vec<Function>>,
    /// Every relationship, by origin relation.
    pub relationships: HashMap<String, Vec<Relationship>>,
}

const RELATIONS: &str = "
select c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod)
  from pg_class c
  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
 where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v', 'm', 'f', 'p')
 order by c.relname, a.attnum";

const FUNCTIONS: &str = "
select p.proname::text,
       p.provolatile <> 'v',
       p.prorettype = 'void'::regtype,
       p.proretset,
       coalesce(rt.typrelid, 0) <> 0 or rt.oid = 'record'::regtype,
       p.pronargs::int,
       p.pronargdefaults::int,
       coalesce(p.proargnames, '{}')::text[],
       coalesce(p.proargmodes::text[], array_fill('i'::text, array[p.pronargs::int])),
       array(select format_type(t, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) t),
       coalesce(rc.relname::text, ''),
       format_type(p.prorettype, null)
  from pg_proc p
  join pg_type rt on rt.oid = p.prorettype
  left join pg_class rc on rc.oid = rt.typrelid
 where p.pronamespace = 'public'::regnamespace and p.prokind = 'f'";

/// Foreign keys between relations of `public`, their columns in key order.
const FOREIGN_KEYS: &str = "
select c.conname::text, src.relname::text, tgt.relname::text,
       array(select a.attname::text from unnest(c.conkey) with ordinality k(n, i)
               join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n order by k.i),
       array(select a.attname::text from unnest(c.confkey) with ordinality k(n, i)
               join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n order by k.i)
  from pg_constraint c
  join pg_class src on src.oid = c.conrelid
  join pg_class tgt on tgt.oid = c.confrelid
 where c.contype = 'f'
   and src.relnamespace = 'public'::regnamespace and tgt.relnamespace = 'public'::regnamespace
 order by src.relname, c.conname";

/// Primary keys and unique constraints of `public`'s tables.
const KEYS: &str = "
select r.relname::text, c.contype = 'p',
       array(select a.attname::text from unnest(c.conkey) k(n)
               join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n)
  from pg_constraint c
  join pg_class r on r.oid = c.conrelid
 where c.contype in ('p', 'u') and r.relnamespace = 'public'::regnamespace";

impl Schema {
    /// The function `relation` has as a computed field `name`: one argument of the
    /// relation's row type, one value back.
    pub fn computed_field(&self, relation: &str, name: &str) -> Option<&Function> {
        self.functions.get(name)?.iter().find(|f| {
            f.returns == Returns::Scalar
                && matches!(f.arguments.as_slice(), [only]
                    if only.type_name.trim_start_matches("public.") == relation)
        })
    }

    /// The relationships from `origin` an embed of `target!hint` may mean.
    pub fn relationships_to(
        &self,
        origin: &str,
        target: &str,
        hint: Option<&str>,
    ) -> Vec<&Relationship> {
        self.relationships
            .get(origin)
            .map(|all| all.iter().filter(|r| r.matches(target, hint)).collect())
            .unwrap_or_default()
    }

    /// Each foreign key gives a relationship both ways (one-to-one when its columns
    /// are a key of their table), and a table whose primary key holds two foreign
    /// keys joins their targets many-to-many.
    async fn load_relationships(&mut self, client: &Client) -> Result<(), tokio_postgres::Error> {
        let mut unique: HashMap<String, Vec<Vec<String>>> = HashMap::new();
        for row in client.query(KEYS, &[]).await? {
            let table: String = row.get(0);
            let primary: bool = row.get(1);
            let mut columns: Vec<String> = row.get(2);
            if primary && let Some(relation) = self.relations.get_mut(&table) {
                relation.primary_key = columns.clone();
            }
            columns.sort();
            unique.entry(table).or_default().push(columns);
        }
        let mut keys = Vec::new();
        for row in client.query(FOREIGN_KEYS, &[]).await? {
            let (constraint, origin, target): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let (from, to): (Vec<String>, Vec<String>) = (row.get(3), row.get(4));
            keys.push((constraint, origin, target, from, to));
        }
        let mut add = |r: Relationship| {
            self.relationships
                .entry(r.origin.clone())
                .or_default()
                .push(r)
        };
        for (constraint, origin, target, from, to) in &keys {
            let mut sorted = from.clone();
            sorted.sort();
            let one_to_one = unique
                .get(origin)
                .is_some_and(|keys| keys.contains(&sorted));
            let pairs: Vec<(String, String)> =
                from.iter().cloned().zip(to.iter().cloned()).collect();
            let (forward, backward) = if one_to_one {
                (Cardinality::OneToOne, Cardinality::OneToOne)
            } else {
                (Cardinality::ManyToOne, Cardinality::OneToMany)
            };
            add(Relationship {
                origin: origin.clone(),
                target: target.clone(),
                link: Link::Direct {
                    constraint: constraint.clone(),
                    columns: pairs.clone(),
                    cardinality: forward,
                },
            });
            add(Relationship {
                origin: target.clone(),
                target: origin.clone(),
                link: Link::Direct {
                    constraint: constraint.clone(),
                    columns: pairs.into_iter().map(|(a, b)| (b, a)).collect(),
                    cardinality: backward,
                },
            });
        }
        for (c1, junction, t1, from1, to1) in &keys {
            for (c2, j2, t2, from2, to2) in &keys {
                if j2 != junction || c1 == c2 {
                    continue;
                }
                let primary_key = self
                    .relations
                    .get(junction)
                    .map(|r| r.primary_key.clone())
                    .unwrap_or_default();
                if !from1.iter().chain(from2).all(|c| primary_key.contains(c)) {
                    continue;
                }
                add(Relationship {
                    origin: t1.clone(),
                    target: t2.clone(),
                    link: Link::Junction {
                        table: junction.clone(),
                        origin_constraint: c1.clone(),
                        origin_columns: from1.iter().cloned().zip(to1.iter().cloned()).collect(),
                        target_constraint: c2.clone(),
                        target_columns: from2.iter().cloned().zip(to2.iter().cloned()).collect(),
                    },
                });
            }
        }
        Ok(())
    }

    pub async fn load(client: &Client) -> Result<Self, tokio_postgres::Error> {
        let mut schema = Schema::default();
        for row in client.query(RELATIONS, &[]).await? {
            let table: String = row.get(0);
            let relation = schema
                .relations
                .entry(table.clone())
                .or_insert_with(|| Relation {
                    name: table,
                    ..Relation::default()
                });
            relation.columns.push(Column {
                name: row.get(1),
                type_name: row.get(2),
            });
        }
        schema.load_relationships(client).await?;
        for row in client.query(FUNCTIONS, &[]).await? {
            let name: String = row.get(0);
            let read_only: bool = row.get(1);
            let void: bool = row.get(2);
            let set: bool = row.get(3);
            let composite: bool = row.get(4);
            let n_in: i32 = row.get(5);
            let n_defaults: i32 = row.get(6);
            let names: Vec<String> = row.get(7);
            let modes: Vec<String> = row.get(8);
            let types: Vec<String> = row.get(9);
            let returns_table: String = row.get(10);
            let return_type: String = row.get(11);

            let mut arguments = Vec::new();
            let mut out_columns = Vec::new();
            for (i, mode) in modes.iter().enumerate() {
                let name = names.get(i).cloned().unwrap_or_default();
                let type_name = types.get(i).cloned().unwrap_or_default();
                match mode.as_str() {
                    "i" | "b" | "v" => arguments.push(Argument {
                        name: name.clone(),
                        type_name: type_name.clone(),
                        has_default: false,
                    }),
                    _ => {}
                }
                if matches!(mode.as_str(), "o" | "b" | "t") {
                    out_columns.push(Column { name, type_name });
                }
            }
            // Defaults belong to the last input arguments.
            let first_default = (n_in - n_defaults).max(0) as usize;
            for argument in arguments.iter_mut().skip(first_default) {
                argument.has_default = true;
            }
            // An unnamed argument can only be the one a whole body is passed to.
            if arguments.len() > 1 && arguments.iter().any(|a| a.name.is_empty()) {
                continue;
            }
            let result = if !returns_table.is_empty() {
                schema
                    .relations
                    .get(&returns_table)
                    .cloned()
                    .unwrap_or_default()
            } else {
                Relation {
                    name: name.clone(),
                    columns: out_columns,
                    primary_key: Vec::new(),
                }
            };
            let returns = match (void, set, composite) {
                (true, _, _) => Returns::Void,
                (_, true, true) => Returns::Rows,
                (_, true, false) => Returns::Values,
                (_, false, true) => Returns::Row,
                _ => Returns::Scalar,
            };
            schema
                .functions
                .entry(name.clone())
                .or_default()
                .push(Function {
                    name,
                    arguments,
                    returns,
                    result,
                    read_only,
                    return_type,
                });
        }
        Ok(schema)
    }
}

/// Runs until `stop`: listens on `pgrst` as the superuser and reloads the schema into
/// `state` for each `reload schema` (or empty) payload, one reload for a burst of
/// them. After a lost connection it reloads once listening again, since a
/// notification may have been missed meanwhile.
pub async fn watch(config: tokio_postgres::Config, state: Arc<AppState>, stop: CancellationToken) {
    loop {
        let failed = tokio::select! {
            () = stop.cancelled() => return,
            result = listen(&config, &state) => result,
        };
        if let Err(error) = failed {
            tracing::warn!(%error, "the schema cache lost its database connection");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

async fn listen(
    config: &tokio_postgres::Config,
    state: &AppState,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (notified, mut reloads) = mpsc::unbounded_channel::<()>();
    let driver = async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            if let AsyncMessage::Notification(n) = message?
                && matches!(n.payload(), "" | "reload schema")
                && notified.send(()).is_err()
            {
                break;
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    };
    let work = async {
        client.batch_execute(&format!("listen {CHANNEL}")).await?;
        loop {
            state.set_schema(Schema::load(&client).await?);
            tracing::debug!("schema cache loaded");
            if reloads.recv().await.is_none() {
                return Ok(());
            }
            // Every notification up to now is answered by the one load that follows.
            while reloads.try_recv().is_ok() {}
        }
    };
    tokio::select! {
        result = driver => result,
        result = work => result,
    }
}
