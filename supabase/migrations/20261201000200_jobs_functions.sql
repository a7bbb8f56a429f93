-- Jobdeck's baseline, part 3 of 3: the functions that move a job between states, called
-- as `POST /rest/v1/rpc/<name>`. Their names and arguments are the contract.
--
-- States, and what moves a job in and out of each (every function below is listed):
--   waiting    in:  enqueue_job, enqueue_and_start_job (when it cannot start the job),
--                   a direct INSERT by the owner; fail_job (a retry with backoff);
--                   retry_job, retry_jobs (from failed or cancelled); release_jobs (a
--                   stopping worker hands a job back without using an attempt).
--              out: claim_jobs and enqueue_and_start_job (to running); cancel_job,
--                   cancel_jobs (to cancelled).
--   running    in:  claim_jobs (a due waiting job, or a lost one taken back),
--                   enqueue_and_start_job; both hold a lease (locked_by, locked_until)
--                   that heartbeat_jobs extends and report_progress needs.
--              out: finish_job, finish_jobs (to finished); fail_job (to waiting, failed
--                   or cancelled); release_jobs (to waiting, or cancelled if asked);
--                   claim_jobs, for a lease that ran out (to failed with no attempts
--                   left, cancelled if asked, else running again for a new worker).
--                   cancel_job and cancel_jobs only ask: the worker ends the job.
--   finished   in:  finish_job, finish_jobs, by the worker holding the lease.
--              out: none; prune_jobs or a direct DELETE removes the row.
--   failed     in:  fail_job once max_attempts is used up or the error is permanent;
--                   claim_jobs when a lost job has no attempts left.
--              out: retry_job, retry_jobs (to waiting); prune_jobs, DELETE.
--   cancelled  in:  cancel_job, cancel_jobs on a waiting job; fail_job and release_jobs
--                   on a running job asked to cancel; claim_jobs on a lost one.
--              out: retry_job, retry_jobs (to waiting); prune_jobs, DELETE.
--
-- Errors a client maps by SQLSTATE (never by message text):
--   JD001  job not found (or not the caller's)
--   JD002  lease lost: the job is not running under this worker's live lease
--   JD003  invalid transition (e.g. retry a waiting job, cancel a finished one)
--   22023  invalid argument (a negative lease, a progress outside 0..1, a new job's
--          context that is not a JSON object, ...)
--   42501  no signed-in user (or the role may not call the function at all)
--
-- The state-changing functions are SECURITY DEFINER because users hold no UPDATE grant
-- on the table; each one therefore scopes every statement to the caller itself: the
-- signed-in user's own rows, or every row when the caller's role is service_role.
-- search_path is empty so nothing a caller creates can shadow what they use.
-- A later migration that changes a function here carries its doc comment and updates
-- the table above.

-- ---------------------------------------------------------------------------------
-- Private helpers
-- ---------------------------------------------------------------------------------

-- caller: the caller's user id; NULL for service_role (all rows). Raises for anyone
-- else.
create or replace function jobdeck_private.caller() returns uuid
language plpgsql stable
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
begin
  -- Inside a SECURITY DEFINER function `role` still names the caller's role.
  if current_setting('role', true) = 'service_role' then
    return null;
  end if;
  if v_uid is null then
    raise exception 'sign in to manage jobs' using errcode = '42501';
  end if;
  return v_uid;
end
$$;

-- job_not_found: raises JD001 for job `p_id`.
create or replace function jobdeck_private.job_not_found(p_id bigint) returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'job % not found', p_id using errcode = 'JD001';
end
$$;

-- lock_job: the row of one job if the caller may act on it, locked for the caller's
-- update; JD001 otherwise.
create or replace function jobdeck_private.lock_job(p_id bigint) returns public.jobs
language plpgsql
set search_path = ''
as $$
declare
  v_uid uuid := jobdeck_private.caller();
  v_job public.jobs;
begin
  select * into v_job from public.jobs j
   where j.id = p_id and (v_uid is null or j.uuid = v_uid)
   for update;
  if not found then
    perform jobdeck_private.job_not_found(p_id);
  end if;
  return v_job;
end
$$;

-- lock_leased: the running job `p_id` leased to `p_worker` with a live lease, locked;
-- JD002 otherwise.
create or replace function jobdeck_private.lock_leased(p_id bigint, p_worker text) returns public.jobs
language plpgsql
set search_path = ''
as $$
declare
  v_job public.jobs := jobdeck_private.lock_job(p_id);
begin
  if v_job.status <> 'running' or v_job.locked_by is distinct from p_worker
     or v_job.locked_until <= now() then
    raise exception 'job % is not leased to worker %', p_id, p_worker
      using errcode = 'JD002',
            detail = format('status %s, locked by %s', v_job.status, coalesce(v_job.locked_by, 'nobody'));
  end if;
  return v_job;
end
$$;

-- lock_in_order: locks the caller's jobs among `p_ids` in id order. Every function that
-- changes several jobs at once calls it first: a worker's batch and its heartbeat (or a
-- user's bulk cancel) may name the same rows, and one lock order makes such calls wait
-- for each other instead of deadlocking. (claim_jobs skips locked rows and never
-- waits; the single-job functions hold one row.) plpgsql, not sql: PERFORM runs the
-- query to the end, locking every row it names.
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

-- history_entry: one entry of a job's history, for the attempt that is ending now.
create or replace function jobdeck_private.history_entry(p_job public.jobs, p_outcome text, p_error jsonb)
returns jsonb
language sql stable
set search_path = ''
as $$
  select jsonb_strip_nulls(jsonb_build_object(
    'attempt', p_job.attempt,
    'worker', p_job.locked_by,
    'started_at', p_job.started_at,
    'ended_at', now(),
    'outcome', p_outcome,
    'error', p_error))
$$;

-- check_worker: a worker's name is 1 to 200 characters; 22023 otherwise.
create or replace function jobdeck_private.check_worker(p_worker text) returns void
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_worker is null or char_length(p_worker) not between 1 and 200 then
    raise exception 'worker must be a name of 1 to 200 characters' using errcode = '22023';
  end if;
end
$$;

-- check_lease: a lease is 1 s to one day; 22023 otherwise.
create or replace function jobdeck_private.check_lease(p_lease_seconds integer) returns void
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_lease_seconds is null or p_lease_seconds not between 1 and 86400 then
    raise exception 'lease_seconds must be between 1 and 86400' using errcode = '22023';
  end if;
end
$$;

revoke all on function jobdeck_private.lock_in_order(bigint[], uuid) from public;

-- ---------------------------------------------------------------------------------
-- Creating jobs
-- ---------------------------------------------------------------------------------

-- enqueue_job: a new waiting job for the caller. With an idempotency key the caller
-- already used, the existing job comes back instead and nothing is added.
create or replace function public.enqueue_job(
  kind text,
  context jsonb default '{}',
  run_at timestamptz default null,
  priority integer default 0,
  max_attempts integer default 3,
  idempotency_key text default null,
  owner uuid default null
) returns public.jobs
language plpgsql volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_uid uuid := jobdeck_private.caller();
  v_job public.jobs;
begin
  if v_uid is null then
    -- service_role acts for a user it names.
    if owner is null then
      raise exception 'owner is required when enqueuing as service_role' using errcode = '22023';
    end if;
    v_uid := owner;
  elsif owner is not null and owner <> v_uid then
    raise exception 'jobs can only be enqueued for yourself' using errcode = '42501';
  end if;
  if kind is null or char_length(kind) not between 1 and 100 then
    raise exception 'kind must be a name of 1 to 100 characters' using errcode = '22023';
  end if;
  if priority is null or priority not between -32768 and 32767 then
    raise exception 'priority must be between -32768 and 32767' using errcode = '22023';
  end if;
  if max_attempts is null or max_attempts not between 1 and 100 then
    raise exception 'max_attempts must be between 1 and 100' using errcode = '22023';
  end if;
  if idempotency_key is not null and char_length(idempotency_key) not between 1 and 200 then
    raise exception 'idempotency_key must be 1 to 200 characters' using errcode = '22023';
  end if;

  insert into public.jobs as j (uuid, kind, context, run_at, priority, max_attempts, idempotency_key)
  values (v_uid, enqueue_job.kind, coalesce(enqueue_job.context, '{}'),
          coalesce(enqueue_job.run_at, now()), enqueue_job.priority,
          enqueue_job.max_attempts, enqueue_job.idempotency_key)
  on conflict (uuid, idempotency_key) where idempotency_key is not null do nothing
  returning * into v_job;

  if not found then
    select * into v_job from public.jobs j
     where j.uuid = v_uid and j.idempotency_key = enqueue_job.idempotency_key;
  end if;
  return v_job;
end
$$;

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

-- ---------------------------------------------------------------------------------
-- Running jobs: claims, leases, outcomes
-- ---------------------------------------------------------------------------------

-- claim_jobs: up to max_jobs jobs, now running under a lease for `worker`.
-- First the jobs whose lease expired (their worker was lost): a lost job with a
-- cancellation request ends cancelled, one with no attempts left ends failed, the rest
-- are taken back. Then due waiting jobs, highest priority first, then oldest.
-- SKIP LOCKED: concurrent claimers never wait on each other or get the same job.
create or replace function public.claim_jobs(
  worker text,
  kinds text[] default null,
  max_jobs integer default 1,
  lease_seconds integer default 30
) returns setof public.jobs
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := jobdeck_private.caller();
  v_lease interval;
  v_lost_error constant jsonb := jsonb_build_object(
    'code', 'worker_lost', 'message', 'the worker running this job stopped renewing its lease');
  v_taken integer := 0;
begin
  perform jobdeck_private.check_worker(worker);
  perform jobdeck_private.check_lease(lease_seconds);
  if max_jobs is null or max_jobs not between 1 and 1000 then
    raise exception 'max_jobs must be between 1 and 1000' using errcode = '22023';
  end if;
  v_lease := make_interval(secs => lease_seconds);

  -- Lost jobs that must not run again: cancelled on request, or out of attempts.
  with lost as (
    select j.id from public.jobs j
     where j.status = 'running' and j.locked_until < now()
       and (v_uid is null or j.uuid = v_uid)
       and (kinds is null or j.kind = any (kinds))
       and (j.cancel_requested_at is not null or j.attempt >= j.max_attempts)
     for update skip locked
  )
  update public.jobs j
     set status = case when j.cancel_requested_at is not null then 'cancelled' else 'failed' end,
         ended_at = now(),
         error = case when j.cancel_requested_at is not null then j.error
                      else v_lost_error || jsonb_build_object('attempt', j.attempt, 'worker', j.locked_by, 'at', now()) end,
         history = j.history || jobdeck_private.history_entry(j,
                      case when j.cancel_requested_at is not null then 'cancelled' else 'lost' end,
                      v_lost_error),
         locked_by = null, locked_until = null
    from lost where j.id = lost.id;

  -- Lost jobs with attempts left: taken back first.
  return query
  with lost as (
    select j.id from public.jobs j
     where j.status = 'running' and j.locked_until < now()
       and (v_uid is null or j.uuid = v_uid)
       and (kinds is null or j.kind = any (kinds))
       and j.cancel_requested_at is null and j.attempt < j.max_attempts
     order by j.locked_until
     limit max_jobs
     for update skip locked
  )
  update public.jobs j
     set attempt = j.attempt + 1,
         started_at = now(), ended_at = null,
         history = j.history || jobdeck_private.history_entry(j, 'lost', v_lost_error),
         error = v_lost_error || jsonb_build_object('attempt', j.attempt, 'worker', j.locked_by, 'at', now()),
         progress = null, progress_message = null,
         locked_by = claim_jobs.worker, locked_until = now() + v_lease
    from lost where j.id = lost.id
  returning j.*;
  get diagnostics v_taken = row_count;
  if v_taken >= max_jobs then
    return;
  end if;

  -- Due waiting jobs. Two statements, not an OR, so each can use its own index; the
  -- owner's branch is the one users take, in the order of jobs_claim_idx.
  if v_uid is not null then
    return query
    with due as (
      select j.id from public.jobs j
       where j.uuid = v_uid and j.status = 'waiting' and j.run_at <= now()
         and (kinds is null or j.kind = any (kinds))
       order by j.priority desc, j.run_at, j.id
       limit max_jobs - v_taken
       for update skip locked
    )
    update public.jobs j
       set status = 'running', attempt = j.attempt + 1,
           started_at = now(), ended_at = null,
           progress = null, progress_message = null,
           locked_by = claim_jobs.worker, locked_until = now() + v_lease
      from due where j.id = due.id
    returning j.*;
  else
    return query
    with due as (
      select j.id from public.jobs j
       where j.status = 'waiting' and j.run_at <= now()
         and (kinds is null or j.kind = any (kinds))
       order by j.priority desc, j.run_at, j.id
       limit max_jobs - v_taken
       for update skip locked
    )
    update public.jobs j
       set status = 'running', attempt = j.attempt + 1,
           started_at = now(), ended_at = null,
           progress = null, progress_message = null,
           locked_by = claim_jobs.worker, locked_until = now() + v_lease
      from due where j.id = due.id
    returning j.*;
  end if;
end
$$;

-- heartbeat_jobs: extends the leases `worker` still holds among `ids`. The answer lists
-- exactly those jobs, each with whether cancellation was requested; an id missing from
-- it is a job this worker has lost and must stop working on. Locks in id order first.
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

-- report_progress: `progress` is the fraction done (0 to 1), `message` says what is
-- happening. Answers whether cancellation was requested, so a busy job learns of it
-- without waiting for the next heartbeat.
create or replace function public.report_progress(
  id bigint,
  worker text,
  progress real,
  message text default null
) returns boolean
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_job public.jobs := jobdeck_private.lock_leased(report_progress.id, report_progress.worker);
begin
  if progress is null or progress not between 0 and 1 then
    raise exception 'progress must be between 0 and 1' using errcode = '22023';
  end if;
  update public.jobs j
     set progress = report_progress.progress, progress_message = report_progress.message
   where j.id = v_job.id;
  return v_job.cancel_requested_at is not null;
end
$$;

-- finish_job: the job succeeded with `result`.
create or replace function public.finish_job(id bigint, worker text, result jsonb default null)
returns public.jobs
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_job public.jobs := jobdeck_private.lock_leased(finish_job.id, finish_job.worker);
begin
  update public.jobs j
     set status = 'finished', result = finish_job.result, ended_at = now(),
         progress = 1,
         history = j.history || jobdeck_private.history_entry(j, 'finished', null),
         locked_by = null, locked_until = null
   where j.id = v_job.id
  returning * into v_job;
  return v_job;
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

-- fail_job: this attempt failed with `error` ({message, code, details}, or any JSON).
-- The job then ends `cancelled` if cancellation was requested, ends `failed` when the
-- error is permanent or no attempts are left, and otherwise waits for its next attempt:
-- `retry_in_seconds` if given, else 2^attempt seconds, capped at one hour.
create or replace function public.fail_job(
  id bigint,
  worker text,
  error jsonb,
  permanent boolean default false,
  retry_in_seconds double precision default null
) returns public.jobs
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_job public.jobs := jobdeck_private.lock_leased(fail_job.id, fail_job.worker);
  v_error jsonb;
  v_outcome text;
  v_delay double precision;
begin
  if retry_in_seconds is not null and retry_in_seconds not between 0 and 2592000 then
    raise exception 'retry_in_seconds must be between 0 and 2592000' using errcode = '22023';
  end if;
  v_error := case when jsonb_typeof(fail_job.error) = 'object' then fail_job.error
                  else jsonb_build_object('message', coalesce(fail_job.error #>> '{}', 'failed')) end;
  v_outcome := case when v_job.cancel_requested_at is not null then 'cancelled'
                    when permanent or v_job.attempt >= v_job.max_attempts then 'failed'
                    else 'retry' end;
  v_delay := coalesce(retry_in_seconds, least(power(2, v_job.attempt), 3600));

  update public.jobs j
     set status = case v_outcome when 'retry' then 'waiting' else v_outcome end,
         error = v_error || jsonb_build_object('attempt', j.attempt, 'worker', j.locked_by, 'at', now()),
         history = j.history || jobdeck_private.history_entry(j, v_outcome, v_error),
         ended_at = case v_outcome when 'retry' then null else now() end,
         run_at = case v_outcome when 'retry' then now() + make_interval(secs => v_delay) else j.run_at end,
         locked_by = null, locked_until = null
   where j.id = v_job.id
  returning * into v_job;
  return v_job;
end
$$;

-- release_jobs: a worker that stops (the app closes, Ctrl-C) hands its unfinished jobs
-- back. They wait again at once without using up an attempt, and the history says they
-- were released; a job that was asked to cancel ends cancelled instead. Only jobs still
-- leased to `worker` are touched (locked in id order first); the answer lists them.
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

-- ---------------------------------------------------------------------------------
-- The owner's actions
-- ---------------------------------------------------------------------------------

-- cancel_job: a waiting job ends `cancelled` at once; a running one gets a request its
-- worker acts on. Cancelling a job already asked to cancel changes nothing.
create or replace function public.cancel_job(id bigint) returns public.jobs
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_job public.jobs := jobdeck_private.lock_job(cancel_job.id);
begin
  if v_job.status = 'waiting' then
    update public.jobs j
       set status = 'cancelled', ended_at = now(), cancel_requested_at = now()
     where j.id = v_job.id
    returning * into v_job;
  elsif v_job.status = 'running' then
    if v_job.cancel_requested_at is null then
      update public.jobs j set cancel_requested_at = now()
       where j.id = v_job.id
      returning * into v_job;
    end if;
  else
    raise exception 'job % is % and cannot be cancelled', v_job.id, v_job.status
      using errcode = 'JD003', detail = format('status %s', v_job.status);
  end if;
  return v_job;
end
$$;

-- cancel_jobs: cancel_job for many jobs in one call (the dashboard's bulk action).
-- Waiting jobs end now; running ones are asked to stop (their worker sees the request
-- on its next heartbeat or progress report). Jobs in other states are skipped, not
-- refused, since a filtered set changes while the user looks at it. Answers how many
-- jobs it changed; at most 10,000 ids per call.
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

-- retry_job: a failed or cancelled job waits again, due now. Its history stays; if its
-- attempts were used up it gets one more.
create or replace function public.retry_job(id bigint) returns public.jobs
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_job public.jobs := jobdeck_private.lock_job(retry_job.id);
begin
  if v_job.status not in ('failed', 'cancelled') then
    raise exception 'job % is % and cannot be retried', v_job.id, v_job.status
      using errcode = 'JD003', detail = format('status %s', v_job.status);
  end if;
  update public.jobs j
     set status = 'waiting', run_at = now(), ended_at = null, result = null,
         progress = null, progress_message = null, cancel_requested_at = null,
         max_attempts = greatest(j.max_attempts, j.attempt + 1)
   where j.id = v_job.id
  returning * into v_job;
  return v_job;
end
$$;

-- retry_jobs: retry_job for many jobs in one call: every listed failed or cancelled
-- job of the caller waits again; the others are skipped. Answers how many it changed;
-- at most 10,000 ids per call.
create or replace function public.retry_jobs(ids bigint[]) returns bigint
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
  update public.jobs j
     set status = 'waiting', run_at = now(), ended_at = null, result = null,
         progress = null, progress_message = null, cancel_requested_at = null,
         max_attempts = greatest(j.max_attempts, j.attempt + 1)
   where j.id = any (ids)
     and (v_uid is null or j.uuid = v_uid)
     and j.status in ('failed', 'cancelled');
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

-- prune_jobs: deletes the caller's jobs that ended (in one of `statuses`) before
-- `older_than` ago; answers how many. Runs as the caller, so row-level security
-- decides which rows it can touch.
create or replace function public.prune_jobs(
  older_than interval default '30 days',
  statuses text[] default array['finished', 'cancelled']
) returns bigint
language plpgsql volatile
security invoker
set search_path = ''
as $$
declare
  v_deleted bigint;
begin
  if older_than is null or older_than < interval '0' then
    raise exception 'older_than must not be negative' using errcode = '22023';
  end if;
  if statuses is null or not statuses <@ array['finished', 'failed', 'cancelled'] then
    raise exception 'statuses may only name finished, failed or cancelled' using errcode = '22023';
  end if;
  delete from public.jobs j
   where j.status = any (statuses) and j.ended_at < now() - older_than;
  get diagnostics v_deleted = row_count;
  return v_deleted;
end
$$;

-- job_counts: how many of the caller's jobs are in each state (kinds optional), for the
-- dashboard's tabs. Runs as the caller under row-level security. Two statements, so
-- that without kinds the count is read from the owner's (uuid, status) index alone (a
-- filter on kind, not in that index, visits each of the caller's rows).
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

-- ---------------------------------------------------------------------------------
-- Who may call what
-- ---------------------------------------------------------------------------------
-- Signed-in users and service_role, never anon. Functions are executable by PUBLIC by
-- default, and Supabase's default privileges also grant them to anon.
do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure from pg_proc p
     where p.pronamespace = 'public'::regnamespace
       and p.proname in ('enqueue_job', 'enqueue_and_start_job', 'claim_jobs', 'heartbeat_jobs',
                         'report_progress', 'finish_job', 'finish_jobs', 'fail_job',
                         'release_jobs', 'cancel_job', 'cancel_jobs', 'retry_job',
                         'retry_jobs', 'prune_jobs', 'job_counts')
  loop
    execute format('revoke all on function %s from public, anon', f);
    execute format('grant execute on function %s to authenticated, service_role', f);
  end loop;
end
$$;
