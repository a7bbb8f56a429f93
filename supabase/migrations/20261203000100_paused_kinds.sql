-- Kinds paused by their user: while a kind is paused, none of the user's workers (on
-- any device) starts a job of it; its waiting jobs stay waiting and new ones can still
-- be enqueued. Resuming lets the next claim take them. A row per paused kind, added
-- and removed by the user (INSERT to pause, DELETE to resume) under row-level security.
--
-- Decided in the database: claim_jobs and enqueue_and_start_job skip the caller's
-- paused kinds (for service_role, each job's owner's), so a worker that has not heard
-- of a pause yet cannot start what it pauses. A job of a paused kind whose lease ran
-- out waits too, still running in the table, until the kind is resumed; one out of
-- attempts or asked to cancel still ends as before.
--
-- State table change (see 20261201000200_jobs_functions.sql): claim_jobs and
-- enqueue_and_start_job move a job to `running` only when its kind is not paused for
-- its owner.

create table if not exists public.paused_kinds (
  uuid uuid not null default auth.uid() references auth.users (id) on delete cascade,
  kind text not null check (char_length(kind) between 1 and 100),
  paused_at timestamptz not null default now(),
  primary key (uuid, kind)
);

comment on table public.paused_kinds is
  'Kinds whose jobs none of the user''s workers starts until the row is deleted.';

alter table public.paused_kinds enable row level security;

revoke all on public.paused_kinds from anon, authenticated;
grant select, delete on public.paused_kinds to authenticated;
grant insert (kind) on public.paused_kinds to authenticated;
grant all on public.paused_kinds to service_role;

drop policy if exists "owners read their paused kinds" on public.paused_kinds;
create policy "owners read their paused kinds" on public.paused_kinds
  for select to authenticated
  using (uuid = (select auth.uid()));

drop policy if exists "owners pause their kinds" on public.paused_kinds;
create policy "owners pause their kinds" on public.paused_kinds
  for insert to authenticated
  with check (uuid = (select auth.uid()));

drop policy if exists "owners resume their kinds" on public.paused_kinds;
create policy "owners resume their kinds" on public.paused_kinds
  for delete to authenticated
  using (uuid = (select auth.uid()));

do $$
begin
  if exists (select from pg_publication where pubname = 'supabase_realtime')
     and not exists (
       select from pg_publication_tables
        where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'paused_kinds'
     ) then
    alter publication supabase_realtime add table public.paused_kinds;
  end if;
end
$$;

-- enqueue_and_start_job: enqueue_job for a worker in the enqueuing process that has a
-- free slot: a job due now is enqueued and started for `worker` in the same call (one
-- round trip instead of enqueue, wake-up and claim). Otherwise, and for a job enqueued
-- before under the same idempotency key that is no longer waiting, it answers what
-- enqueue_job answers. Arguments as enqueue_job's (no `owner`: a user's own worker
-- starts only the user's own jobs) and claim_jobs'. A job of a kind its owner paused
-- is enqueued and left waiting.
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
     and not exists (select from public.paused_kinds p where p.uuid = j.uuid and p.kind = j.kind)
  returning j.* into v_job;
  if not found then
    select * into v_job from public.jobs j where j.id = v_id;
  end if;
  return v_job;
end
$$;


-- claim_jobs: up to max_jobs jobs, now running under a lease for `worker`.
-- First the jobs whose lease expired (their worker was lost): a lost job with a
-- cancellation request ends cancelled, one with no attempts left ends failed, the rest
-- are taken back. Then due waiting jobs, highest priority first, then oldest. Jobs of
-- a kind their owner paused (paused_kinds) are neither taken back nor started.
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
       and not exists (select from public.paused_kinds p where p.uuid = j.uuid and p.kind = j.kind)
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
         and not exists (select from public.paused_kinds p where p.uuid = j.uuid and p.kind = j.kind)
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
         and not exists (select from public.paused_kinds p where p.uuid = j.uuid and p.kind = j.kind)
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

-- Both keep their plans between calls (20261201000500_cached_plans.sql).
alter function public.claim_jobs(text, text[], integer, integer)
  set plan_cache_mode = force_generic_plan;
alter function public.enqueue_and_start_job(text, text, jsonb, integer, integer, text, integer)
  set plan_cache_mode = force_generic_plan;
