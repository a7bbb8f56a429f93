"""supabase-py, as published on PyPI and used unchanged, against a running sandbox.

API_URL and ANON_KEY come from `jobdeck dev status -o env`.
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
