//! From PostgreSQL to the subscribers: listens for the changes `capture.sql` sends
//! (or records, taking those), in commit order, checks each against each subscriber's
//! row-level security and filters in PostgreSQL as that subscriber, and sends what
//! passes.
//!
//! Two connections as the sandbox's superuser: one only listens (it is never blocked
//! by a query), the other takes the changes. The row checks use their own small pool
//! as `authenticator`, so a burst of changes never takes the REST API's connections.
//! When the listening connection is lost, changes may be missed: every channel gets
//! `phx_error`, and joins are refused until listening again, so clients rejoin (and
//! catch up by their own cursors) only once nothing can be missed.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::{StreamExt as _, future::join_all};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json, value::RawValue};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};
use tokio_util::sync::CancellationToken;

use super::{
    bindings::{Binding, Op},
    hub::{Hub, Subscription},
    protocol,
};
use crate::{
    db::{ApiRequest, Db, Finish},
    rest::sql::quote_ident,
};

/// The notification channel `capture.sql` notifies.
const CHANNEL: &str = "_realtime";
/// Notifications handled in one go during a burst.
const BATCH: usize = 256;
/// Notifications waiting for the taker; beyond this PostgreSQL holds them.
const QUEUE: usize = 4096;
const RETRY: Duration = Duration::from_secs(1);
/// Rows taken between two VACUUMs of `_realtime.changes`. The table is a queue: every
/// row is deleted moments after it is written, and autovacuum, which looks at it once
/// a minute, would let a busy minute's dead rows (a job's whole row each, hundreds of
/// megabytes while a worker drains thousands of jobs a second) grow it past
/// PostgreSQL's shared buffers, slowing every query of the database, not only these.
/// Vacuumed this often, it stays at a few megabytes.
const VACUUM_EVERY: usize = 20_000;

/// Takes a batch of notified transactions' changes, deleting them.
const TAKE: &str = "
with taken as (
  delete from _realtime.changes where xid = any($1::text[]::xid8[]) returning *
)
select id, xid::text, to_char(at at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
       schema_name, table_name, type, record
  from taken";

/// A published table's columns as change messages describe them.
const COLUMNS: &str = "
select a.attname::text, t.typname::text, format_type(a.atttypid, a.atttypmod),
       coalesce(a.attnum = any(i.indkey), false)
  from pg_attribute a
  join pg_type t on t.oid = a.atttypid
  left join pg_index i on i.indrelid = a.attrelid and i.indisprimary
 where a.attrelid = format('%I.%I', $1::text, $2::text)::regclass
   and a.attnum > 0 and not a.attisdropped
 order by a.attnum";

#[derive(Debug)]
struct Change {
    order: (usize, i64),
    at: String,
    schema: String,
    table: String,
    kind: String,
    record: Value,
}

/// A statement's changes sent in its notification (see `capture.sql`).
#[derive(Debug, Deserialize)]
struct Inline {
    at: String,
    schema: String,
    table: String,
    #[serde(rename = "type")]
    kind: String,
    records: Vec<Value>,
}

impl Inline {
    /// Its changes, ordered as the `position`th notification of a batch.
    fn changes(self, position: usize) -> impl Iterator<Item = Change> {
        self.records
            .into_iter()
            .enumerate()
            .map(move |(index, record)| Change {
                order: (position, index as i64),
                at: self.at.clone(),
                schema: self.schema.clone(),
                table: self.table.clone(),
                kind: self.kind.clone(),
                record,
            })
    }
}

#[derive(Debug)]
struct Column {
    name: String,
    /// `pg_type.typname`, as change messages name types (`int8`, `timestamptz`).
    type_name: String,
    /// `format_type()`, a cast target.
    cast: String,
    key: bool,
}

#[derive(Debug)]
struct Table {
    columns: Vec<Column>,
}

impl Table {
    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn keys(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.key)
    }

    fn key_of(&self, record: &Value) -> Value {
        Value::Object(
            self.keys()
                .map(|c| {
                    (
                        c.name.clone(),
                        record.get(&c.name).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect::<Map<_, _>>(),
        )
    }

    /// Whether the record has exactly the columns known (else the table changed since).
    fn fits(&self, record: &Value) -> bool {
        record.as_object().is_some_and(|o| {
            o.len() == self.columns.len() && self.columns.iter().all(|c| o.contains_key(&c.name))
        })
    }
}

/// Runs until `stop`: listens, takes and delivers, reconnecting after a failure.
pub async fn run(
    config: tokio_postgres::Config,
    hub: Arc<Hub>,
    checks: Db,
    stop: CancellationToken,
) {
    loop {
        let session = listen(&config, &hub, &checks);
        let failed = tokio::select! {
            () = stop.cancelled() => return,
            result = session => result,
        };
        if let Err(error) = failed {
            tracing::warn!(%error, "Realtime lost its database connection; clients will rejoin");
        }
        hub.stopped_listening();
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

async fn listen(
    config: &tokio_postgres::Config,
    hub: &Hub,
    checks: &Db,
) -> Result<(), tokio_postgres::Error> {
    let (listener, mut connection) = config.connect(NoTls).await?;
    let (notified, mut transactions) = mpsc::channel::<String>(QUEUE);
    let driver = async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            if let AsyncMessage::Notification(n) = message?
                && notified.send(n.payload().to_string()).await.is_err()
            {
                break;
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    };
    let (taker, connection) = config.connect(NoTls).await?;
    let taker_driver = connection;
    let work = async {
        listener.batch_execute(&format!("listen {CHANNEL}")).await?;
        let take = taker.prepare(TAKE).await?;
        hub.started_listening();
        let mut tables: HashMap<(String, String), Arc<Table>> = HashMap::new();
        let mut batch = Vec::with_capacity(BATCH);
        let mut taken_since_vacuum = 0;
        loop {
            batch.clear();
            if transactions.recv_many(&mut batch, BATCH).await == 0 {
                return Ok(());
            }
            let mut changes = Vec::new();
            let mut recorded = Vec::new();
            for (position, payload) in batch.iter().enumerate() {
                match serde_json::from_str::<Inline>(payload) {
                    Ok(inline) => changes.extend(inline.changes(position)),
                    // Not an object: the id of a transaction whose changes were recorded.
                    Err(_) => recorded.push(payload.as_str()),
                }
            }
            if !recorded.is_empty() {
                let rows = taker.query(&take, &[&recorded]).await?;
                changes.extend(rows.iter().map(|row| {
                    let xid: String = row.get(1);
                    Change {
                        order: (
                            batch.iter().position(|x| *x == xid).unwrap_or(usize::MAX),
                            row.get(0),
                        ),
                        at: row.get(2),
                        schema: row.get(3),
                        table: row.get(4),
                        kind: row.get(5),
                        record: row.get(6),
                    }
                }));
            }
            changes.sort_by_key(|c| c.order);
            for change in &changes {
                let key = (change.schema.clone(), change.table.clone());
                let known = tables.get(&key).is_some_and(|t| t.fits(&change.record));
                if !known {
                    let table = describe(&taker, &change.schema, &change.table).await?;
                    tables.insert(key, Arc::new(table));
                }
            }
            deliver(hub, checks, &tables, &changes).await;
            taken_since_vacuum += changes.len();
            if taken_since_vacuum >= VACUUM_EVERY {
                taken_since_vacuum = 0;
                taker.batch_execute("vacuum _realtime.changes").await?;
            }
        }
    };
    tokio::select! {
        result = driver => result,
        result = taker_driver => result,
        result = work => result,
    }
}

async fn describe(
    client: &Client,
    schema: &str,
    table: &str,
) -> Result<Table, tokio_postgres::Error> {
    let columns = client
        .query(COLUMNS, &[&schema, &table])
        .await?
        .iter()
        .map(|row| Column {
            name: row.get(0),
            type_name: row.get(1),
            cast: row.get(2),
            key: row.get(3),
        })
        .collect();
    Ok(Table { columns })
}

async fn deliver(
    hub: &Hub,
    checks: &Db,
    tables: &HashMap<(String, String), Arc<Table>>,
    changes: &[Change],
) {
    let subscriptions = hub.snapshot();
    if subscriptions.is_empty() {
        return;
    }
    // Each change's `data` serialized once, whoever gets it.
    let data: Vec<Option<Box<RawValue>>> = changes
        .iter()
        .map(|change| {
            let info = tables.get(&(change.schema.clone(), change.table.clone()))?;
            info.keys().next()?;
            serde_json::value::to_raw_value(&data_of(change, info)).ok()
        })
        .collect();
    join_all(
        subscriptions
            .iter()
            .map(|subscription| deliver_to(subscription, checks, tables, changes, &data)),
    )
    .await;
}

/// A change as Realtime's `postgres_changes` payload describes it.
fn data_of(change: &Change, info: &Table) -> Value {
    let columns: Vec<Value> = info
        .columns
        .iter()
        .map(|c| json!({"name": c.name, "type": c.type_name}))
        .collect();
    let mut data = json!({
        "schema": change.schema,
        "table": change.table,
        "commit_timestamp": change.at,
        "type": change.kind,
        "columns": columns,
        "errors": null,
    });
    match change.kind.as_str() {
        "INSERT" => data["record"] = change.record.clone(),
        "UPDATE" => {
            data["record"] = change.record.clone();
            data["old_record"] = info.key_of(&change.record);
        }
        _ => data["old_record"] = info.key_of(&change.record),
    }
    data
}

/// Sends one subscriber the changes its bindings cover and its row-level security
/// and filters let through, in order; `data` is each change's payload (none for a
/// table without a primary key, which Realtime does not send).
async fn deliver_to(
    subscription: &Subscription,
    checks: &Db,
    tables: &HashMap<(String, String), Arc<Table>>,
    changes: &[Change],
    data: &[Option<Box<RawValue>>],
) {
    // The changes each binding might want, by table, before the rows are checked.
    let mut by_table: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (index, change) in changes.iter().enumerate() {
        let covered = subscription
            .bindings
            .iter()
            .any(|b| b.covers(&change.schema, &change.table, &change.kind));
        if covered && change.kind != "DELETE" {
            by_table
                .entry((&change.schema, &change.table))
                .or_default()
                .push(index);
        }
    }
    // For each change checked: which bindings' filters pass (visible rows only).
    let mut passed: HashMap<usize, Vec<bool>> = HashMap::new();
    for ((schema, table), indexes) in by_table {
        let Some(info) = tables.get(&(schema.to_string(), table.to_string())) else {
            continue;
        };
        match visible(subscription, checks, schema, table, info, changes, &indexes).await {
            Ok(rows) => passed.extend(rows),
            Err(error) => {
                // Most often the subscriber may not read the table at all (anon).
                tracing::debug!(%error, table, "a Realtime subscriber cannot see these rows");
            }
        }
    }
    #[derive(Serialize)]
    struct Payload<'a> {
        ids: Vec<u32>,
        data: &'a RawValue,
    }
    for (index, (change, data)) in changes.iter().zip(data).enumerate() {
        let Some(data) = data else {
            continue;
        };
        let ids: Vec<u32> = subscription
            .bindings
            .iter()
            .enumerate()
            .filter(|(_, b)| b.covers(&change.schema, &change.table, &change.kind))
            .filter(|(position, b)| {
                if change.kind == "DELETE" {
                    // Supabase's rule: deletes are not checked against row-level
                    // security, carry only the key, and cannot be filtered.
                    b.filter.is_none()
                } else {
                    passed.get(&index).is_some_and(|p| p[*position])
                }
            })
            .map(|(_, b)| b.id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        let frame = protocol::encode(
            subscription.outbox.vsn,
            subscription.join_ref.as_deref(),
            None,
            &subscription.topic,
            "postgres_changes",
            &Payload { ids, data },
        );
        subscription.outbox.deliver(frame).await;
    }
}

/// Which of these changed rows the subscriber can select now, as themselves, and which
/// of the subscription's bindings' filters each passes: change index → one flag per
/// binding. One query per table.
async fn visible(
    subscription: &Subscription,
    checks: &Db,
    schema: &str,
    table: &str,
    info: &Table,
    changes: &[Change],
    indexes: &[usize],
) -> Result<HashMap<usize, Vec<bool>>, crate::db::DbError> {
    let keys: Vec<Value> = indexes
        .iter()
        .map(|i| info.key_of(&changes[*i].record))
        .collect();
    let mut params = vec![Value::Array(keys).to_string()];
    let join = info
        .keys()
        .map(|c| {
            format!(
                "t.{} = (k.v ->> '{}')::{}",
                quote_ident(&c.name),
                c.name.replace('\'', "''"),
                c.cast
            )
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let flags: Vec<String> = subscription
        .bindings
        .iter()
        .map(|binding| filter_sql(binding, info, &mut params))
        .collect();
    let sql = format!(
        "select k.i::int8{}{} from jsonb_array_elements($1::jsonb) with ordinality as k(v, i) join {}.{} t on {join}",
        if flags.is_empty() { "" } else { ", " },
        flags.join(", "),
        quote_ident(schema),
        quote_ident(table),
    );
    let request = ApiRequest {
        caller: &subscription.caller,
        method: "GET",
        path: "/realtime/v1",
        read_only: true,
        finish: Finish::Commit,
        sql: &sql,
        params: &params,
        repeated: true,
    };
    let rows = checks.run(&request).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let ordinal: i64 = row.get(0);
            let flags = (1..=subscription.bindings.len())
                .map(|i| row.get::<_, bool>(i))
                .collect();
            (indexes[(ordinal - 1) as usize], flags)
        })
        .collect())
}

/// A binding's filter as a boolean SQL expression on the row `t` (true without one).
fn filter_sql(binding: &Binding, info: &Table, params: &mut Vec<String>) -> String {
    let Some(filter) = &binding.filter else {
        return "true".into();
    };
    let Some(column) = info.column(&filter.column) else {
        return "false".into();
    };
    let mut placeholder = |value: &str| {
        params.push(value.to_string());
        format!("${}::{}", params.len(), column.cast)
    };
    let expression = if filter.op == Op::In {
        let list: Vec<String> = filter.values.iter().map(|v| placeholder(v)).collect();
        format!("t.{} in ({})", quote_ident(&column.name), list.join(", "))
    } else {
        format!(
            "t.{} {} {}",
            quote_ident(&column.name),
            filter.op.sql(),
            placeholder(&filter.values[0])
        )
    };
    format!("coalesce({expression}, false)")
}
