"""supabase-py, as published on PyPI and used unchanged, against a running sandbox.

API_URL, ANON_KEY and PUBLISHABLE_KEY come from `jobdeck dev status -o env`.
"""

import os
import uuid

import pytest
from supabase import create_client
from supabase_auth.errors import AuthApiError
from postgrest.exceptions import APIError

API_URL = os.environ["API_URL"]
ANON_KEY = os.environ["ANON_KEY"]


def signed_up(name):
    client = create_client(API_URL, ANON_KEY)
    email = f"{name}-{uuid.uuid4().hex}@example.com"
    response = client.auth.sign_up({"email": email, "password": "correct horse"})
    assert response.session is not None, "auto-confirm gives a session"
    return client, email


def test_sign_in_refresh_and_sign_out():
    _, email = signed_up("py-auth")
    client = create_client(API_URL, ANON_KEY)
    with pytest.raises(AuthApiError) as wrong:
        client.auth.sign_in_with_password({"email": email, "password": "wrong horse"})
    assert wrong.value.code == "invalid_credentials"

    session = client.auth.sign_in_with_password({"email": email, "password": "correct horse"}).session
    assert client.auth.get_user().user.email == email
    refreshed = client.auth.refresh_session().session
    assert refreshed.refresh_token != session.refresh_token
    client.auth.sign_out()
    with pytest.raises(AuthApiError):
        create_client(API_URL, ANON_KEY).auth.refresh_session(refreshed.refresh_token)


def test_jobs_through_rest_under_rls():
    alice, _ = signed_up("py-alice")
    bob, _ = signed_up("py-bob")
    for name, priority in [("Ada", 1), ("Grace", 5), ("Alan", 3)]:
        alice.rpc("enqueue_job", {"kind": "hello", "context": {"name": name}, "priority": priority}).execute()

    page = (
        alice.table("jobs")
        .select("id, context", count="exact")
        .eq("kind", "hello")
        .order("priority", desc=True)
        .range(0, 1)
        .execute()
    )
    assert page.count == 3
    assert [job["context"]["name"] for job in page.data] == ["Grace", "Alan"]

    inserted = alice.table("jobs").insert({"kind": "sleep", "context": {"seconds": 1}}).execute()
    job_id = inserted.data[0]["id"]
    assert bob.table("jobs").select("*", count="exact").execute().count == 0
    assert bob.table("jobs").delete().eq("id", job_id).execute().data == []
    with pytest.raises(APIError) as refused:
        bob.table("jobs").update({"status": "finished"}).eq("id", job_id).execute()
    assert refused.value.code == "42501"

    claimed = alice.rpc("claim_jobs", {"worker": "py", "max_jobs": 10, "kinds": ["hello"]}).execute()
    assert len(claimed.data) == 3
    finished = alice.rpc("finish_job", {"id": claimed.data[0]["id"], "worker": "py", "result": {"ok": True}}).execute()
    assert finished.data["status"] == "finished"
    with pytest.raises(APIError) as lost:
        alice.rpc("finish_job", {"id": claimed.data[0]["id"], "worker": "py"}).execute()
    assert lost.value.code == "JD002"


def test_embedding_upserts_and_updates_on_a_schema_of_ones_own():
    """The blog schema of crates/sandbox/tests/fixtures/blog.sql, which `./x test-clients` loads."""
    alice, _ = signed_up("py-blog")
    ada, grace = alice.table("authors").insert([{"name": "Ada"}, {"name": "Grace"}]).execute().data
    post = alice.table("posts").insert({"author_id": ada["id"], "editor_id": grace["id"], "title": "Notes"}).execute().data[0]
    # Topic labels are unique across users: this run's carry a suffix.
    history, poetry = f"history-{uuid.uuid4().hex}", f"poetry-{uuid.uuid4().hex}"
    topic = alice.table("topics").insert({"label": history}).execute().data[0]
    alice.table("post_topics").insert({"post_id": post["id"], "topic_id": topic["id"]}).execute()

    rows = alice.table("posts").select("title, editor:authors!editor_id(name), topics(label)").execute().data
    assert rows == [{"title": "Notes", "editor": {"name": "Grace"}, "topics": [{"label": history}]}]
    with pytest.raises(APIError) as ambiguous:
        alice.table("posts").select("title, authors(name)").execute()
    assert ambiguous.value.code == "PGRST201"

    upserted = (
        alice.table("topics")
        .upsert([{"label": history}, {"label": poetry}], on_conflict="label", ignore_duplicates=True)
        .execute()
    )
    assert [t["label"] for t in upserted.data] == [poetry]

    updated = alice.table("posts").update({"title": "Notes, revised"}).eq("id", post["id"]).execute()
    assert updated.data[0]["title"] == "Notes, revised"
    assert list(updated.data[0]).count("title") == 1
    assert updated.data[0]["author_id"] == ada["id"], "no column comes back null"


def test_csv_and_planned_counts():
    alice, _ = signed_up("py-csv")
    ada = alice.table("authors").insert({"name": "Ada"}).execute().data[0]
    alice.table("posts").insert([{"author_id": ada["id"], "title": t} for t in ("Notes", "Bernoulli")]).execute()

    csv = alice.table("posts").select("title, views").order("title").csv().execute()
    assert csv.data == "title,views\nBernoulli,0\nNotes,0"

    planned = alice.table("posts").select("id", count="planned").limit(1).execute()
    assert isinstance(planned.count, int)
    assert len(planned.data) == 1
    assert alice.table("posts").select("id", count="estimated").execute().count >= 2


def test_the_publishable_key_alone():
    key = os.environ["PUBLISHABLE_KEY"]
    assert key.startswith("sb_publishable_")
    client = create_client(API_URL, key)
    with pytest.raises(APIError) as refused:
        client.table("jobs").select("id").execute()
    assert refused.value.code == "42501", "signed out is anon, granted nothing on jobs"
    email = f"py-pk-{uuid.uuid4().hex}@example.com"
    user = client.auth.sign_up({"email": email, "password": "correct horse"}).user
    job = client.rpc("enqueue_job", {"kind": "hello", "context": {"name": "Ada"}}).execute().data
    rows = client.table("jobs").select("id, uuid").execute().data
    assert rows == [{"id": job["id"], "uuid": user.id}]
