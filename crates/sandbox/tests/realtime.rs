//! `/realtime/v1` under load and as the publication changes, with a raw WebSocket
//! client (supabase-js covers the protocol itself: tests/clients/realtime.test.mjs).

use futures::{SinkExt as _, StreamExt as _};
use jobdeck_sandbox::testing::{Session, TestSandbox, email, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async, tungstenite::Message};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const DEADLINE: Duration = Duration::from_secs(120);

/// A socket joined to `table`'s `event`s (`INSERT`, `*`, ...) as `session`, once the
/// server says it is subscribed.
async fn joined(sandbox: &TestSandbox, session: &Session, table: &str, event: &str) -> Socket {
    let url = format!(
        "{}/realtime/v1/websocket?apikey={}&vsn=2.0.0",
        sandbox.status.api_url.replace("http://", "ws://"),
        sandbox.status.anon_key
    );
    let (mut socket, _) = connect_async(url).await.expect("connects");
    let join = json!(["1", "1", "realtime:test", "phx_join", {
        "config": {"postgres_changes": [{"event": event, "schema": "public", "table": table}]},
        "access_token": session.access_token,
    }]);
    socket
        .send(Message::text(join.to_string()))
        .await
        .expect("joins");
    loop {
        let frame = next(&mut socket).await.expect("a frame");
        if frame[3] == "phx_reply" {
            assert_eq!(frame[4]["status"], "ok", "{frame}");
        }
        if frame[3] == "system" {
            assert_eq!(frame[4]["message"], "Subscribed to PostgreSQL");
            return socket;
        }
    }
}

/// The next text frame, or None once the socket closed.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("a frame before the deadline")
        {
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(&text).expect("JSON"));
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_burst_reaches_a_reader_whole_and_in_order_while_a_stalled_socket_is_closed() {
    let sandbox = TestSandbox::start().await;
    let session = sandbox.sign_up(&email("burst"), "correct horse").await;
    let mut reader = joined(&sandbox, &session, "jobs", "INSERT").await;
    // Joined, then never read: the server must not queue for it without bound.
    let mut stalled = joined(&sandbox, &session, "jobs", "INSERT").await;

    const JOBS: i64 = 20_000;
    sandbox
        .database
        .admin()
        .await
        .execute(
            "insert into public.jobs (uuid, kind, context)
             select $1::text::uuid, 'hello', jsonb_build_object('n', n) from generate_series(1, $2::int8) n",
            &[&session.user_id, &JOBS],
        )
        .await
        .expect("inserts");
    // The REST API answers meanwhile (its connections are not Realtime's).
    let (status, body) =
        send(sandbox.user(&session, Method::GET, "/rest/v1/jobs?select=id&limit=1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut seen = 0;
    while seen < JOBS {
        let frame = next(&mut reader).await.expect("the reader stays connected");
        if frame[3] != "postgres_changes" {
            continue;
        }
        seen += 1;
        assert_eq!(
            frame[4]["data"]["record"]["context"]["n"],
            json!(seen),
            "in commit order, none missed"
        );
    }

    // Changes go out one transaction after another, each to every subscriber (or its
    // socket closed) before the next: once the reader hears a later transaction, the
    // stalled socket has had its chance.
    sandbox
        .database
        .admin()
        .await
        .execute(
            "insert into public.jobs (uuid, kind, context) values ($1::text::uuid, 'hello', jsonb_build_object('n', $2::int8 + 1))",
            &[&session.user_id, &JOBS],
        )
        .await
        .expect("inserts");
    loop {
        let frame = next(&mut reader).await.expect("the reader stays connected");
        if frame[4]["data"]["record"]["context"]["n"] == json!(JOBS + 1) {
            break;
        }
    }

    let mut delivered = 0;
    while let Some(frame) = next(&mut stalled).await {
        if frame[3] == "postgres_changes" {
            delivered += 1;
        }
    }
    assert!(
        delivered < JOBS,
        "the stalled socket was closed ({delivered} changes reached it)"
    );
}

#[tokio::test]
async fn a_table_published_after_start_is_served() {
    let sandbox = TestSandbox::start().await;
    let session = sandbox.sign_up(&email("publish"), "correct horse").await;
    let admin = sandbox.database.admin().await;
    admin
        .batch_execute(
            "create table public.notes (id bigint generated always as identity primary key, title text);
             grant select on public.notes to authenticated;",
        )
        .await
        .expect("creates");
    let mut socket = joined(&sandbox, &session, "notes", "INSERT").await;
    admin
        .batch_execute("insert into public.notes (title) values ('unpublished')")
        .await
        .expect("inserts");
    admin
        .batch_execute(
            "alter publication supabase_realtime add table public.notes;
             insert into public.notes (title) values ('published');",
        )
        .await
        .expect("publishes");
    let change = loop {
        let frame = next(&mut socket).await.expect("connected");
        if frame[3] == "postgres_changes" {
            break frame;
        }
    };
    assert_eq!(
        change[4]["data"]["record"]["title"], "published",
        "the first change heard is after publishing"
    );
    assert_eq!(
        change[4]["data"]["columns"][0],
        json!({"name": "id", "type": "int8"})
    );
}

/// Small statements travel in their notifications, large ones through the change
/// table (see capture.sql); a subscriber sees one order either way.
#[tokio::test]
async fn small_and_large_statements_arrive_in_the_order_they_were_made() {
    let sandbox = TestSandbox::start().await;
    let session = sandbox.sign_up(&email("order"), "correct horse").await;
    let mut socket = joined(&sandbox, &session, "jobs", "*").await;
    let admin = sandbox.database.admin().await;
    let insert = |from: i64, to: i64, pad: usize| {
        format!(
            "insert into public.jobs (uuid, kind, context)
             select '{}', 'hello', jsonb_build_object('n', n, 'pad', repeat('x', {pad}))
               from generate_series({from}, {to}) n;",
            session.user_id
        )
    };
    admin
        .batch_execute(&format!(
            "begin; {} {} {} {} commit;
             begin; {} {} commit;
             begin; {} {} commit;",
            // One row, twenty, one, twenty: small and large by turns in one transaction.
            insert(1, 1, 0),
            insert(2, 21, 0),
            insert(22, 22, 0),
            insert(23, 42, 0),
            // One row too large for a notification, then a small one.
            insert(43, 43, 10_000),
            insert(44, 44, 0),
            insert(45, 45, 0),
            insert(46, 46, 0),
        ))
        .await
        .expect("inserts");
    // The same update twice in one transaction: two changes, though alike.
    admin
        .batch_execute(
            "begin;
             update public.jobs set priority = 7 where context->>'n' = '46';
             update public.jobs set priority = 7 where context->>'n' = '46';
             commit;",
        )
        .await
        .expect("updates");

    let mut heard = Vec::new();
    while heard.len() < 48 {
        let frame = next(&mut socket).await.expect("connected");
        if frame[3] != "postgres_changes" {
            continue;
        }
        let data = &frame[4]["data"];
        heard.push((
            data["type"].as_str().unwrap_or_default().to_string(),
            data["record"]["context"]["n"].as_i64().unwrap_or_default(),
        ));
    }
    let mut expected: Vec<(String, i64)> = (1..=46).map(|n| ("INSERT".into(), n)).collect();
    expected.extend([("UPDATE".into(), 46), ("UPDATE".into(), 46)]);
    assert_eq!(heard, expected);
}
