-- Batched successes, and one lock order for every call that changes many jobs.
--
-- finish_jobs lets a busy worker record its successes in batches. A worker's batch and
-- its heartbeat (or a user's bulk cancel) may name the same rows, so every function
-- that changes several jobs at once now locks them in id order first: two such calls
-- then wait for each other instead of deadlocking. (claim_jobs skips locked rows and
-- never waits; the single-job functions hold one row.)

-- plpgsql, not sql: PERFORM runs the query to the end, locking every row it names.
create or replace function jobdeck_private.lock_in_order(p_ids bigint[], p_uid uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform from public.jobs j
   where j.id = any (p_ids) and (p_uid is null or j.uuid = p_uid)
   order by j.id
     for update;
end
$$;

-- finish_jobs: finish_job for many jobs in one call. `jobs` is a JSON array of
-- {id, result}. Only jobs still leased to `worker` (the lease not yet run out) are
-- finished; the answer lists them, and a job missing from it was lost to another
-- worker, as finish_job's JD002 says for one job.
create or replace function public.finish_jobs(worker text, jobs jsonb)
returns setof public.jobs
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := jobdeck_private.caller();
  v_ids bigint[];
begin
  perform jobdeck_private.check_worker(worker);
  if jsonb_typeof(jobs) is distinct from 'array' or jsonb_array_length(jobs) > 1000 then
    raise exception 'jobs must be an array of at most 1000 {id, result}' using errcode = '22023';
  end if;
  select array_agg((e ->> 'id')::bigint) into v_ids from jsonb_array_elements(jobs) e;
  perform jobdeck_private.lock_in_order(v_ids, v_uid);
  return query
  with done as (
    select (e ->> 'id')::bigint as id, e -> 'result' as result
      from jsonb_array_elements(jobs) e
  )
  update public.jobs j
     set status = 'finished', result = done.result, ended_at = now(),
         progress = 1,
         history = j.history || jobdeck_private.history_entry(j, 'finished', null),
         locked_by = null, locked_until = null
    from done
   where j.id = done.id
     and (v_uid is null or j.uuid = v_uid)
     and j.status = 'running' and j.locked_by = finish_jobs.worker
     and j.locked_until > now()
  returning j.*;
end
$$;

revoke all on function public.finish_jobs(text, jsonb) from public, anon;
grant execute on function public.finish_jobs(text, jsonb) to authenticated, service_role;

-- The same functions as before, each now taking its locks in id order first.
create or replace function public.heartbeat_jobs(
  worker text,
  ids bigint[],
  lease_seconds integer default 30
) returns table (id bigint, cancel_requested boolean)
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := jobdeck_private.caller();
begin
  perform jobdeck_private.check_worker(worker);
  perform jobdeck_private.check_lease(lease_seconds);
  perform jobdeck_private.lock_in_order(ids, v_uid);
  return query
  update public.jobs j
     set locked_until = now() + make_interval(secs => lease_seconds)
   where j.id = any (ids)
     and (v_uid is null or j.uuid = v_uid)
     and j.status = 'running' and j.locked_by = heartbeat_jobs.worker
     and j.locked_until > now()
  returning j.id, j.cancel_requested_at is not null;
end
$$;

create or replace function public.release_jobs(worker text, ids bigint[])
returns setof public.jobs
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := jobdeck_private.caller();
begin
  perform jobdeck_private.check_worker(worker);
  perform jobdeck_private.lock_in_order(ids, v_uid);
  return query
  update public.jobs j
     set status = case when j.cancel_requested_at is not null then 'cancelled' else 'waiting' end,
         ended_at = case when j.cancel_requested_at is not null then now() end,
         attempt = case when j.cancel_requested_at is not null then j.attempt else greatest(j.attempt - 1, 0) end,
         run_at = now(),
         history = j.history || jobdeck_private.history_entry(j, 'released', null),
         progress = null, progress_message = null,
         locked_by = null, locked_until = null
   where j.id = any (ids)
     and (v_uid is null or j.uuid = v_uid)
     and j.status = 'running' and j.locked_by = release_jobs.worker
  returning j.*;
end
$$;

create or replace function public.cancel_jobs(ids bigint[]) returns bigint
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := jobdeck_private.caller();
  v_count bigint;
begin
  if cardinality(ids) > 10000 then
    raise exception 'at most 10000 jobs per call' using errcode = '22023';
  end if;
  perform jobdeck_private.lock_in_order(ids, v_uid);
  update public.jobs j
     set status = case when j.status = 'waiting' then 'cancelled' else j.status end,
         ended_at = case when j.status = 'waiting' then now() else j.ended_at end,
         cancel_requested_at = coalesce(j.cancel_requested_at, now())
   where j.id = any (ids)
     and (v_uid is null or j.uuid = v_uid)
     and (j.status = 'waiting' or (j.status = 'running' and j.cancel_requested_at is null));
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

revoke all on function jobdeck_private.lock_in_order(bigint[], uuid) from public;

-- enqueue_and_start_job: enqueue_job for a worker in the enqueuing process that has a
-- free slot: a job due now is enqueued and started for `worker` in the same call (one
-- round trip instead of enqueue, wake-up and claim). Otherwise, and for a job enqueued
-- before under the same idempotency key that is no longer waiting, it answers what
-- enqueue_job answers. Arguments as enqueue_job's (no `owner`: a user's own worker
-- starts only the user's own jobs) and claim_jobs'.
create or replace function public.enqueue_and_start_job(
  kind text,
  worker text,
  context jsonb default '{}',
  priority integer default 0,
  max_attempts integer default 3,
  idempotency_key text default null,
  lease_seconds integer default 30
) returns public.jobs
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_id bigint;
  v_job public.jobs;
begin
  perform jobdeck_private.check_worker(worker);
  perform jobdeck_private.check_lease(lease_seconds);
  v_job := public.enqueue_job(kind => kind, context => context, priority => priority,
                              max_attempts => max_attempts, idempotency_key => idempotency_key);
  v_id := v_job.id;
  -- As claim_jobs starts a due waiting job.
  update public.jobs j
     set status = 'running', attempt = j.attempt + 1,
         started_at = now(), ended_at = null,
         progress = null, progress_message = null,
         locked_by = enqueue_and_start_job.worker,
         locked_until = now() + make_interval(secs => lease_seconds)
   where j.id = v_id and j.status = 'waiting' and j.run_at <= now()
  returning j.* into v_job;
  if not found then
    select * into v_job from public.jobs j where j.id = v_id;
  end if;
  return v_job;
end
$$;

revoke all on function public.enqueue_and_start_job(text, text, jsonb, integer, integer, text, integer)
  from public, anon;
grant execute on function public.enqueue_and_start_job(text, text, jsonb, integer, integer, text, integer)
  to authenticated, service_role;

-- job_counts: as before, but without kinds the count is read from the owner's
-- (uuid, status) index alone; a filter on kind (not in that index) made every call
-- visit each of the caller's rows in the table too.
create or replace function public.job_counts(kinds text[] default null)
returns table (status text, count bigint)
language plpgsql stable
security invoker
set search_path = ''
as $$
begin
  if kinds is null then
    return query select j.status, count(*) from public.jobs j group by j.status;
  else
    return query select j.status, count(*) from public.jobs j
                  where j.kind = any (kinds) group by j.status;
  end if;
end
$$;
