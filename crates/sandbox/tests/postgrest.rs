//! PostgREST as apps use it, over real HTTP against a schema of the user's own
//! (`fixtures/blog.sql`): resource embedding of every shape, upserts, counts and
//! preferences on writes, the other filter operators, and rpc's finer points.

use jobdeck_postgres::testing::TestDatabase;
use jobdeck_sandbox::testing::{Session, TestSandbox, email, send};
use proptest::{prelude::*, strategy::ValueTree, test_runner::TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BLOG: &str = include_str!("fixtures/blog.sql");

async fn sandbox_with_blog() -> TestSandbox {
    let database = TestDatabase::new().await;
    database
        .admin()
        .await
        .batch_execute(BLOG)
        .await
        .expect("creating the blog schema");
    TestSandbox::start_on(database, |_| {}).await
}

/// Inserts `rows` into `table` as `session`, answering the rows created.
async fn insert(sandbox: &TestSandbox, session: &Session, table: &str, rows: Value) -> Value {
    let (status, body) = send(
        sandbox
            .user(session, Method::POST, &format!("/rest/v1/{table}"))
            .header("prefer", "return=representation")
            .json(&rows),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{table}: {body}");
    body
}

async fn get(sandbox: &TestSandbox, session: &Session, path: &str) -> (StatusCode, Value) {
    send(sandbox.user(session, Method::GET, &format!("/rest/v1/{path}"))).await
}

/// Alice's blog: two authors, three posts, topics, comments with a reply.
async fn alices_blog(sandbox: &TestSandbox) -> (Session, Value) {
    let alice = sandbox.sign_up(&email("alice"), "correct horse").await;
    let authors = insert(
        sandbox,
        &alice,
        "authors",
        json!([{ "name": "Ada" }, { "name": "Grace" }]),
    )
    .await;
    let (ada, grace) = (authors[0]["id"].clone(), authors[1]["id"].clone());
    insert(
        sandbox,
        &alice,
        "profiles",
        json!([{ "author_id": ada, "bio": "the first programmer" }]),
    )
    .await;
    let posts = insert(
        sandbox,
        &alice,
        "posts",
        json!([
            { "author_id": ada, "editor_id": grace, "title": "Notes", "body": "the analytical engine weaves algebraic patterns", "tags": ["math", "engines"], "pages": "[1,10)" },
            { "author_id": ada, "editor_id": null, "title": "Bernoulli", "body": "numbers computed by the engine", "tags": ["math"], "pages": "[10,20)" },
            { "author_id": grace, "editor_id": ada, "title": "Compilers", "body": "a compiler translates programs", "tags": ["cobol"], "pages": "[30,40)" }
        ]),
    )
    .await;
    let topics = insert(
        sandbox,
        &alice,
        "topics",
        json!([{ "label": "history" }, { "label": "languages" }]),
    )
    .await;
    insert(
        sandbox,
        &alice,
        "post_topics",
        json!([
            { "post_id": posts[0]["id"], "topic_id": topics[0]["id"] },
            { "post_id": posts[2]["id"], "topic_id": topics[0]["id"] },
            { "post_id": posts[2]["id"], "topic_id": topics[1]["id"] }
        ]),
    )
    .await;
    let first = insert(
        sandbox,
        &alice,
        "comments",
        json!([{ "post_id": posts[0]["id"], "text": "lovely" }]),
    )
    .await;
    insert(
        sandbox,
        &alice,
        "comments",
        json!([{ "post_id": posts[0]["id"], "parent_id": first[0]["id"], "text": "agreed" }]),
    )
    .await;
    (alice, posts)
}

fn titles(body: &Value) -> Vec<&str> {
    body.as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["title"].as_str())
        .collect()
}

#[tokio::test]
async fn embedding_follows_the_foreign_keys_of_every_shape() {
    let sandbox = sandbox_with_blog().await;
    let (alice, _) = alices_blog(&sandbox).await;

    // Two keys lead from posts to authors: PostgREST's 300 with both, and hints.
    let (status, body) = get(&sandbox, &alice, "posts?select=title,authors(name)").await;
    assert_eq!(status, StatusCode::MULTIPLE_CHOICES, "{body}");
    assert_eq!(body["code"], "PGRST201");
    assert_eq!(body["details"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["details"][0]["cardinality"], "many-to-one");
    assert!(
        body["hint"]
            .as_str()
            .is_some_and(|h| h.contains("'authors!posts_author_id_fkey'")),
        "{body}"
    );

    // Many-to-one, by the column as hint and by the constraint, aliased: an object.
    let (status, body) = get(
        &sandbox,
        &alice,
        "posts?select=title,author:authors!author_id(name),editor:authors!posts_editor_id_fkey(name)&order=id",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!([
            { "title": "Notes", "author": { "name": "Ada" }, "editor": { "name": "Grace" } },
            { "title": "Bernoulli", "author": { "name": "Ada" }, "editor": null },
            { "title": "Compilers", "author": { "name": "Grace" }, "editor": { "name": "Ada" } }
        ])
    );

    // One-to-many (an array, empty when nothing relates), with its own order and limit;
    // one-to-one (an object).
    let (status, body) = get(
        &sandbox,
        &alice,
        "authors?select=name,profiles(bio),posts!author_id(title)&posts.order=title.desc&posts.limit=1&order=id",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!([
            { "name": "Ada", "profiles": { "bio": "the first programmer" }, "posts": [{ "title": "Notes" }] },
            { "name": "Grace", "profiles": null, "posts": [{ "title": "Compilers" }] }
        ])
    );

    // Many-to-many through the junction, filtered inside the embed.
    let (status, body) = get(
        &sandbox,
        &alice,
        "posts?select=title,topics(label)&topics.order=label&order=id",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!([
            { "title": "Notes", "topics": [{ "label": "history" }] },
            { "title": "Bernoulli", "topics": [] },
            { "title": "Compilers", "topics": [{ "label": "history" }, { "label": "languages" }] }
        ])
    );

    // `!inner` keeps only the rows with a match, and its count says so.
    let (status, body) = send(
        sandbox
            .user(
                &alice,
                Method::GET,
                "/rest/v1/posts?select=title,topics!inner(label)&topics.label=eq.languages",
            )
            .header("prefer", "count=exact"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(titles(&body), ["Compilers"]);
    assert_eq!(body[0]["topics"], json!([{ "label": "languages" }]));

    // A to-one embed filtered by null-ness; a spread inlines the columns.
    let (_, body) = get(
        &sandbox,
        &alice,
        "posts?select=title,editor:authors!editor_id(name)&editor=is.null",
    )
    .await;
    assert_eq!(titles(&body), ["Bernoulli"]);
    let (status, body) = get(
        &sandbox,
        &alice,
        "posts?select=title,...authors!author_id(author:name)&order=id&limit=1",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([{ "title": "Notes", "author": "Ada" }]));

    // A self-reference: the parent by its column, the replies by the table's name;
    // nested two levels down.
    let (status, body) = get(
        &sandbox,
        &alice,
        "posts?select=title,comments(text,parent:parent_id(text),replies:comments(text))&title=eq.Notes&comments.order=id",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body[0]["comments"],
        json!([
            { "text": "lovely", "parent": null, "replies": [{ "text": "agreed" }] },
            { "text": "agreed", "parent": { "text": "lovely" }, "replies": [] }
        ])
    );

    // A computed field, selected and filtered.
    let (status, body) = get(
        &sandbox,
        &alice,
        "posts?select=title,title_length&title_length=gt.5&order=id",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!([{ "title": "Bernoulli", "title_length": 9 }, { "title": "Compilers", "title_length": 9 }])
    );

    // The errors PostgREST gives.
    for (path, status, code) in [
        (
            "posts?select=*,nothing(*)",
            StatusCode::BAD_REQUEST,
            "PGRST200",
        ),
        (
            "posts?select=title&topics.limit=1",
            StatusCode::BAD_REQUEST,
            "PGRST108",
        ),
        (
            "posts?select=title,topics(label)&topics=eq.1",
            StatusCode::BAD_REQUEST,
            "PGRST120",
        ),
        (
            "authors?select=name,...posts!author_id(title)",
            StatusCode::BAD_REQUEST,
            "PGRST119",
        ),
    ] {
        let (got, body) = get(&sandbox, &alice, path).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn embedded_rows_are_filtered_by_their_own_tables_policies() {
    let sandbox = sandbox_with_blog().await;
    let (alice, posts) = alices_blog(&sandbox).await;
    let bob = sandbox.sign_up(&email("bob"), "correct horse").await;
    // Bob comments on Alice's post (he knows its id; the foreign key check needs no
    // sight of the row).
    insert(
        &sandbox,
        &bob,
        "comments",
        json!([{ "post_id": posts[0]["id"], "text": "bob was here" }]),
    )
    .await;

    let (_, body) = get(
        &sandbox,
        &alice,
        "posts?select=title,comments(text)&title=eq.Notes",
    )
    .await;
    let texts: Vec<&str> = body[0]["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 2, "{body}");
    assert!(!texts.contains(&"bob was here"));

    // Bob sees his comment but not the post it embeds.
    let (_, body) = get(&sandbox, &bob, "comments?select=text,posts(title)").await;
    assert_eq!(body, json!([{ "text": "bob was here", "posts": null }]));
    let (_, body) = get(&sandbox, &bob, "comments?select=text,posts!inner(title)").await;
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn writes_answer_counts_ranges_and_the_preferences_applied() {
    let sandbox = sandbox_with_blog().await;
    let (alice, posts) = alices_blog(&sandbox).await;
    let notes = posts[0]["id"].as_i64().expect("an id");

    // PATCH returning the row: each key once, `select` naming a payload column.
    let response = sandbox
        .user(
            &alice,
            Method::PATCH,
            &format!("/rest/v1/posts?id=eq.{notes}&select=id,title,views"),
        )
        .header("prefer", "return=representation,count=exact")
        .json(&json!({ "title": "Notes, revised", "views": 7 }))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-range"], "0-0/1");
    assert_eq!(
        response.headers()["preference-applied"],
        "return=representation, count=exact"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!([{ "id": notes, "title": "Notes, revised", "views": 7 }])
    );

    // Counted deletes and inserts: `*/n`.
    let response = sandbox
        .user(&alice, Method::POST, "/rest/v1/topics")
        .header("prefer", "count=exact")
        .json(&json!([{ "label": "a" }, { "label": "b" }]))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["content-range"], "*/2");
    let response = sandbox
        .user(&alice, Method::DELETE, "/rest/v1/topics?label=in.(a,b)")
        .header("prefer", "count=exact")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()["content-range"], "*/2");

    // max-affected with handling=strict: refused, and nothing changed.
    let (status, body) = send(
        sandbox
            .user(&alice, Method::PATCH, "/rest/v1/posts?views=gte.0")
            .header("prefer", "handling=strict,max-affected=1")
            .json(&json!({ "views": 100 })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PGRST124"))
    );
    let (_, body) = get(&sandbox, &alice, "posts?views=eq.100").await;
    assert_eq!(body, json!([]));
    // Unknown preferences: ignored, unless handling=strict.
    let (status, body) = send(
        sandbox
            .user(&alice, Method::GET, "/rest/v1/posts")
            .header("prefer", "handling=strict, colour=blue"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PGRST122"))
    );
    assert_eq!(body["details"], "Invalid preferences: colour=blue");
}

#[tokio::test]
async fn csv_forms_stripped_nulls_and_planned_counts() {
    let sandbox = sandbox_with_blog().await;
    let (alice, posts) = alices_blog(&sandbox).await;
    let ada = posts[0]["author_id"].as_i64().expect("an id");

    // A CSV body: a header line, quoting, NULL as null; the database casts the text.
    let response = sandbox
        .user(
            &alice,
            Method::POST,
            "/rest/v1/posts?select=title,editor_id,views",
        )
        .header("content-type", "text/csv")
        .header("prefer", "return=representation")
        .body(format!(
            "author_id,title,editor_id,views\n{ada},\"Hello, world\",NULL,3\n"
        ))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!([{ "title": "Hello, world", "editor_id": null, "views": 3 }])
    );
    let (status, body) = send(
        sandbox
            .user(&alice, Method::POST, "/rest/v1/posts")
            .header("content-type", "text/csv")
            .body(format!("author_id,title\n{ada}\n")),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("All lines must have same number of fields")
        )
    );

    // Read back as CSV: the names, then each row as PostgreSQL writes a record.
    let response = sandbox
        .user(
            &alice,
            Method::GET,
            "/rest/v1/posts?select=title,views&order=title",
        )
        .header("accept", "text/csv")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        response.text().await.expect("text"),
        "title,views\nBernoulli,0\nCompilers,0\n\"Hello, world\",3\nNotes,0"
    );
    let response = sandbox
        .user(&alice, Method::GET, "/rest/v1/posts?id=eq.-1")
        .header("accept", "text/csv")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.text().await.expect("text"), "\n");

    // A form's fields, to a table and to a function.
    let response = sandbox
        .user(&alice, Method::POST, "/rest/v1/topics")
        .header("prefer", "return=representation")
        .form(&[("label", "from a form")])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body[0]["label"], "from a form");
    let response = sandbox
        .user(&alice, Method::POST, "/rest/v1/rpc/numbers")
        .form(&[("n", "3")])
        .send()
        .await
        .expect("answers");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!([1, 2, 3]));
    // A set of values as CSV: one column, named as PostgREST names it.
    let response = sandbox
        .user(&alice, Method::GET, "/rest/v1/rpc/numbers?n=2")
        .header("accept", "text/csv")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.text().await.expect("text"), "pgrst_scalar\n1\n2");

    // What PostgREST neither reads nor writes is refused, and nothing is written.
    let (status, body) = send(
        sandbox
            .user(&alice, Method::POST, "/rest/v1/topics")
            .header("content-type", "application/xml")
            .body("<label>x</label>"),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Content-Type not acceptable: application/xml")
        )
    );
    let (status, body) = send(
        sandbox
            .user(&alice, Method::GET, "/rest/v1/posts")
            .header("accept", "text/html, application/vnd.pgrst.plan+json"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(body["code"], "PGRST107");
    assert_eq!(
        body["message"],
        "None of these media types are available: text/html, application/vnd.pgrst.plan+json"
    );

    // Nulls stripped, for an array and for one object.
    let (_, body) = send(
        sandbox
            .user(
                &alice,
                Method::GET,
                "/rest/v1/posts?select=title,editor_id&title=eq.Bernoulli",
            )
            .header("accept", "application/vnd.pgrst.array+json;nulls=stripped"),
    )
    .await;
    assert_eq!(body, json!([{ "title": "Bernoulli" }]));
    let response = sandbox
        .user(
            &alice,
            Method::GET,
            "/rest/v1/posts?select=title,editor_id&title=eq.Bernoulli",
        )
        .header("accept", "application/vnd.pgrst.object+json;nulls=stripped")
        .send()
        .await
        .expect("answers");
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.pgrst.object+json; charset=utf-8"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({ "title": "Bernoulli" }));

    // Planned counts are the planner's guess, a number; estimated ones never less
    // than the rows there are.
    let total = |prefer: &'static str, range: &'static str| {
        let request = sandbox
            .user(&alice, Method::GET, "/rest/v1/posts?select=id")
            .header("prefer", prefer)
            .header("range", range);
        async move {
            let response = request.send().await.expect("answers");
            let range = response.headers()["content-range"]
                .to_str()
                .expect("text")
                .to_string();
            let (page, total) = range.split_once('/').expect("a total");
            (
                page.to_string(),
                total.parse::<i64>().expect("a number of rows"),
            )
        }
    };
    let (page, planned) = total("count=planned", "0-1").await;
    assert_eq!(page, "0-1");
    assert!(planned >= 0);
    let (_, estimated) = total("count=estimated", "0-1").await;
    assert!(estimated >= 4, "{estimated}");
    let (_, exact) = total("count=exact", "0-1").await;
    assert_eq!(exact, 4);
    // With the table's statistics fresh, the planner's guess is right.
    sandbox
        .database
        .admin()
        .await
        .batch_execute("analyze public.posts")
        .await
        .expect("analyzing");
    let (_, planned) = total("count=planned", "0-1").await;
    assert_eq!(planned, 4);
}

#[tokio::test]
async fn upserts_merge_or_ignore_duplicates_on_the_key_asked_for() {
    let sandbox = sandbox_with_blog().await;
    let (alice, _) = alices_blog(&sandbox).await;
    let upsert = |resolution: &str, rows: Value| {
        sandbox
            .user(
                &alice,
                Method::POST,
                "/rest/v1/topics?on_conflict=label&columns=label&select=label",
            )
            .header(
                "prefer",
                format!("resolution={resolution},return=representation"),
            )
            .json(&rows)
    };

    // Only existing rows: 200. A new one among them: 201.
    let response = upsert("merge-duplicates", json!([{ "label": "history" }]))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["preference-applied"],
        "resolution=merge-duplicates, return=representation"
    );
    let (status, body) = send(upsert(
        "merge-duplicates",
        json!([{ "label": "history" }, { "label": "poetry" }]),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body, json!([{ "label": "history" }, { "label": "poetry" }]));
    // Ignored duplicates answer only the rows inserted.
    let (status, body) = send(upsert(
        "ignore-duplicates",
        json!([{ "label": "poetry" }, { "label": "prose" }]),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body, json!([{ "label": "prose" }]));
    let (_, body) = get(&sandbox, &alice, "topics?select=label&order=label").await;
    assert_eq!(
        body,
        json!([{ "label": "history" }, { "label": "languages" }, { "label": "poetry" }, { "label": "prose" }])
    );

    // By the primary key, merging the payload's columns into the existing row.
    let (_, first) = get(
        &sandbox,
        &alice,
        "posts?select=id,author_id&order=id&limit=1",
    )
    .await;
    let (status, body) = send(
        sandbox
            .user(&alice, Method::POST, "/rest/v1/posts?select=title,views")
            .header("prefer", "resolution=merge-duplicates,return=representation")
            .json(&json!({ "id": first[0]["id"], "author_id": first[0]["author_id"], "title": "Merged", "views": 3 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([{ "title": "Merged", "views": 3 }]));

    // missing=default: a key an object leaves out takes the column's default.
    let (status, body) = send(
        sandbox
            .user(
                &alice,
                Method::POST,
                "/rest/v1/posts?columns=author_id,title,views&select=title,views",
            )
            .header("prefer", "missing=default,return=representation")
            .json(&json!([
                { "author_id": first[0]["author_id"], "title": "Defaulted" },
                { "author_id": first[0]["author_id"], "title": "Given", "views": 9 }
            ])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut rows = body.as_array().cloned().expect("rows");
    rows.sort_by_key(|r| r["title"].as_str().map(str::to_string));
    assert_eq!(
        rows,
        [
            json!({ "title": "Defaulted", "views": 0 }),
            json!({ "title": "Given", "views": 9 })
        ]
    );
    // Without it (supabase-js's default for arrays), the missing key is null: refused
    // here by the column's not-null constraint, with nothing inserted.
    let (status, body) = send(
        sandbox
            .user(
                &alice,
                Method::POST,
                "/rest/v1/posts?columns=author_id,title,views",
            )
            .json(&json!([{ "author_id": first[0]["author_id"], "title": "Nulled" }])),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("23502"))
    );
}

#[tokio::test]
async fn the_other_filter_operators() {
    let sandbox = sandbox_with_blog().await;
    let (alice, _) = alices_blog(&sandbox).await;
    for (filter, expected) in [
        ("tags=cs.{math}", vec!["Notes", "Bernoulli"]),
        ("tags=cd.{math,engines,extra}", vec!["Notes", "Bernoulli"]),
        ("tags=ov.{cobol,engines}", vec!["Notes", "Compilers"]),
        ("pages=sl.[20,30)", vec!["Notes", "Bernoulli"]),
        ("pages=sr.[5,9)", vec!["Bernoulli", "Compilers"]),
        ("pages=nxr.[1,15)", vec!["Notes"]),
        ("pages=nxl.[15,16)", vec!["Compilers"]),
        ("pages=adj.[20,30)", vec!["Bernoulli", "Compilers"]),
        ("body=fts.engine", vec!["Notes", "Bernoulli"]),
        ("body=plfts(english).analytical engines", vec!["Notes"]),
        ("body=phfts.translates programs", vec!["Compilers"]),
        ("body=wfts.engine -numbers", vec!["Notes"]),
        ("title=match.^[BC]", vec!["Bernoulli", "Compilers"]),
        ("title=imatch.^no", vec!["Notes"]),
        ("title=isdistinct.Notes", vec!["Bernoulli", "Compilers"]),
        ("title=like(any).{N*,*ers}", vec!["Notes", "Compilers"]),
        ("title=ilike(all).{*O*,*t*}", vec!["Notes"]),
        ("title=not.eq(any).{Notes,Compilers}", vec!["Bernoulli"]),
        (
            "or=(tags.cs.{cobol},title.match.^N)",
            vec!["Notes", "Compilers"],
        ),
    ] {
        let (status, body) = get(
            &sandbox,
            &alice,
            &format!("posts?select=title&{filter}&order=id"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{filter}: {body}");
        assert_eq!(titles(&body), expected, "{filter}");
    }
    let (status, body) = get(&sandbox, &alice, "posts?title=gt(any).a").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PGRST100"))
    );
}

#[tokio::test]
async fn rpc_with_unnamed_arguments_overloads_ranges_and_profiles() {
    let sandbox = sandbox_with_blog().await;
    let alice = sandbox.sign_up(&email("alice"), "correct horse").await;

    // One unnamed json argument: the whole body; text/plain for one unnamed text.
    let (status, body) = sandbox
        .rpc(&alice, "echo_json", json!({ "any": ["thing"] }))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "any": ["thing"] }))
    );
    let response = sandbox
        .user(&alice, Method::POST, "/rest/v1/rpc/shout")
        .header("content-type", "text/plain")
        .body("quiet")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.headers()["content-range"], "0-0/*");
    assert_eq!(response.json::<Value>().await.expect("json"), "QUIET");

    // Two overloads fit the same keys: PostgREST's 300, never a guess.
    let (status, body) = sandbox.rpc(&alice, "pick", json!({ "a": 1 })).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::MULTIPLE_CHOICES, Some("PGRST203"))
    );

    // A set function's rows are counted in Content-Range; max-affected holds there.
    let response = sandbox
        .user(&alice, Method::POST, "/rest/v1/rpc/numbers")
        .header("prefer", "count=exact")
        .header("range", "0-1")
        .json(&json!({ "n": 5 }))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.headers()["content-range"], "0-1/5");
    assert_eq!(response.json::<Value>().await.expect("json"), json!([1, 2]));
    let (status, body) = send(
        sandbox
            .user(&alice, Method::POST, "/rest/v1/rpc/numbers")
            .header("prefer", "handling=strict,max-affected=3")
            .json(&json!({ "n": 5 })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PGRST124"))
    );

    // Only `public` is exposed.
    for (method, header) in [
        (Method::GET, "accept-profile"),
        (Method::POST, "content-profile"),
    ] {
        let (status, body) = send(
            sandbox
                .user(&alice, method, "/rest/v1/posts")
                .header(header, "personal")
                .json(&json!({})),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");
        assert_eq!(body["code"], "PGRST106");
        assert_eq!(body["message"], "Invalid schema: personal");
    }
    let (status, _) = send(
        sandbox
            .user(&alice, Method::GET, "/rest/v1/posts")
            .header("accept-profile", "public"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// The embedding and operator grammar from a fuzzer, over HTTP, as a user who owns
/// nothing while Alice's blog is there: never a 5xx, never a row, every refusal a
/// clear error.
#[tokio::test]
async fn fuzzed_embeds_and_operators_get_a_clear_4xx_or_nothing_of_anyone_elses() {
    let sandbox = sandbox_with_blog().await;
    alices_blog(&sandbox).await;
    let bob = sandbox.sign_up(&email("bob"), "correct horse").await;

    let pieces = prop::sample::select(vec![
        "title",
        "tags",
        "pages",
        "body",
        "author_id",
        "authors",
        "posts",
        "topics",
        "comments",
        "profiles",
        "title_length",
        "parent_id",
        "(",
        ")",
        "*",
        ",",
        ".",
        ":",
        "::",
        "!",
        "!inner",
        "!author_id",
        "!posts_editor_id_fkey",
        "...",
        "select",
        "order",
        "limit",
        "cs.",
        "cd.",
        "ov.",
        "sl.",
        "adj.",
        "fts(",
        "english",
        "wfts.",
        "like(any).",
        "eq(all).",
        "match.",
        "isdistinct.",
        "is.null",
        "{",
        "}",
        "[1,5)",
        "\"",
        "'",
        ";",
        "drop table posts",
        "1",
        "🙂",
        " ",
    ]);
    let keys = prop::sample::select(vec![
        "select",
        "select",
        "title",
        "tags",
        "pages",
        "body",
        "authors",
        "topics.label",
        "comments.order",
        "comments.limit",
        "posts.title",
        "or",
        "order",
    ]);
    // Well-formed selects and filters too, so the fuzzer reaches the SQL (and the
    // policies) rather than only the grammar's refusals.
    let names = prop::sample::select(vec![
        "*",
        "*",
        "id",
        "owner",
        "owner",
        "title",
        "title_length",
    ]);
    let embeds = (
        prop::sample::select(vec!["", "", "...", "x:"]),
        prop::sample::select(vec![
            "authors",
            "posts",
            "topics",
            "comments",
            "profiles",
            "parent_id",
            "editor_id",
        ]),
        prop::sample::select(vec![
            "",
            "",
            "!inner",
            "!author_id",
            "!posts_author_id_fkey",
        ]),
        prop::collection::vec(names.clone(), 0..3),
    )
        .prop_map(|(prefix, target, hint, inner)| {
            format!("{prefix}{target}{hint}({})", inner.join(","))
        });
    let select = (
        prop::collection::vec(names, 1..3),
        prop::collection::vec(embeds, 0..3),
    )
        .prop_map(|(columns, embeds)| {
            let columns = columns.into_iter().map(str::to_string);
            columns.chain(embeds).collect::<Vec<_>>().join(",")
        });
    let filter = (
        prop::sample::select(vec![
            "eq.",
            "cs.",
            "ov.",
            "adj.",
            "fts.",
            "wfts(english).",
            "like(any).",
            "match.",
            "isdistinct.",
            "is.",
            "not.is.",
        ]),
        prop::sample::select(vec!["{math}", "[1,5)", "engine", "{N*}", "^N", "null", "1"]),
    )
        .prop_map(|(op, value)| format!("{op}{value}"));
    let case = prop_oneof![
        (
            keys,
            prop::collection::vec(pieces, 0..10).prop_map(|v| v.concat())
        ),
        (Just("select"), select),
        (
            prop::sample::select(vec![
                "title",
                "tags",
                "pages",
                "body",
                "authors",
                "topics.label"
            ]),
            filter
        ),
    ];
    let mut runner = TestRunner::deterministic();
    let cases: usize = std::env::var("JOBDECK_SOAK_FUZZ")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let (mut refused, mut answered) = (0, 0);
    for i in 0..cases {
        let (key, value) = case.new_tree(&mut runner).expect("a case").current();
        let table = ["posts", "authors", "comments"][i % 3];
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair(key, &value)
            .finish();
        let (status, body) = get(&sandbox, &bob, &format!("{table}?{query}")).await;
        assert!(
            !status.is_server_error(),
            "{table}?{key}={value}: {status} {body}"
        );
        if status.is_success() {
            answered += 1;
            assert_eq!(body, json!([]), "{table}?{key}={value} showed Alice's rows");
        } else {
            refused += 1;
            assert!(
                body["message"].is_string(),
                "{key}={value}: a clear error: {body}"
            );
        }
    }
    let admin = sandbox.database.admin().await;
    let posts: i64 = admin
        .query_one("select count(*) from posts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(posts, 3, "nothing was changed or dropped");
    println!("fuzz: {cases} embeds and operators: {answered} answered empty, {refused} refused");
}
