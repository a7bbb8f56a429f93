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
}

impl Function {
    /// Whether a call naming exactly `given` arguments fits this function.
    pub fn accepts(&self, given: &[&str]) -> bool {
        given
            .iter()
            .all(|name| self.arguments.iter().any(|a| a.name == *name))
            && self
                .arguments
                .iter()
                .all(|a| a.has_default || given.contains(&a.name.as_str()))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub relations: HashMap<String, Relation>,
    pub functions: HashMap<String, Vec<Function>>,
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
       coalesce(rc.relname::text, '')
  from pg_proc p
  join pg_type rt on rt.oid = p.prorettype
  left join pg_class rc on rc.oid = rt.typrelid
 where p.pronamespace = 'public'::regnamespace and p.prokind = 'f'";

impl Schema {
    pub async fn load(client: &Client) -> Result<Self, tokio_postgres::Error> {
        let mut schema = Schema::default();
        for row in client.query(RELATIONS, &[]).await? {
            let table: String = row.get(0);
            let relation = schema
                .relations
                .entry(table.clone())
                .or_insert_with(|| Relation {
                    name: table,
                    columns: Vec::new(),
                });
            relation.columns.push(Column {
                name: row.get(1),
                type_name: row.get(2),
            });
        }
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
            // A function with an unnamed argument cannot be called with named JSON keys.
            if arguments.iter().any(|a| a.name.is_empty()) {
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
                }
            };
            let returns = match (void, set, composite) {
                (true, _, _) => Returns::Void,
                (_, true, _) => Returns::Rows,
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
