-- Counts kept as jobs change, so the dashboard's tabs and totals need not count rows.
--
-- Counting a user's jobs per state visits every one of their index entries: 26 ms at
-- 100,000 jobs (docs/benchmarks.md), on every opening of the dashboard and after every
-- burst of changes. Instead, every statement that inserts, deletes or changes the
-- owner, kind or state of jobs adds one row per (owner, kind, state) it changed to
-- `public.job_tallies`, holding how many jobs that statement added there (negative for
-- those it took away). A user's counts are the sums of their rows.
--
-- Only inserts, never an update of a shared counter row: concurrent workers of one
-- user would otherwise queue on that row until each transaction commits (and could
-- deadlock, locking counters in different orders). Now and then (one statement in 32)
-- the statement that adds a user's rows also folds all of them into one row per kind
-- and state, under an advisory lock that other folders skip rather than wait on; rows
-- added by transactions not yet committed are not seen by the fold and stay, so no
-- count is lost or taken twice. A folded row may hold 0: it is kept, and is harmless.
--
-- Rows of deleted users are not removed with them (no foreign key: the deletion of the
-- user deletes their jobs, and the rows that takes away would refer to a user already
-- gone); their sums are 0 and nobody can read them.
--
-- The table of job states in 20261201000200_jobs_functions.sql is unchanged: the
-- tallies follow the states, they do not move jobs.
--
-- With the counts kept, the list filtered by kind is the one dashboard query left
-- that walks many rows: its page came from the owner's newest-first index with every
-- other kind skipped on the way, so it gets an index of its own.

create index if not exists jobs_owner_kind_idx on public.jobs (uuid, kind, id desc);

create table if not exists public.job_tallies (
  uuid uuid not null,
  kind text not null,
  status text not null,
  jobs bigint not null
);

comment on table public.job_tallies is
  'How many jobs each statement added to (or, negative, took from) an owner, kind and state; counts are the sums. Kept by triggers on jobs.';

create index if not exists job_tallies_owner_idx on public.job_tallies (uuid, kind, status);

alter table public.job_tallies enable row level security;

revoke all on public.job_tallies from anon, authenticated;
grant select on public.job_tallies to authenticated;
grant all on public.job_tallies to service_role;

drop policy if exists "owners read their tallies" on public.job_tallies;
create policy "owners read their tallies" on public.job_tallies
  for select to authenticated
  using (uuid = (select auth.uid()));

-- fold_tallies: folds the rows of each owner in `owners` into one per kind and state.
-- SECURITY DEFINER: it runs inside the trigger below, for users who may not write the
-- table themselves.
create or replace function jobdeck_private.fold_tallies(owners uuid[]) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_owner uuid;
begin
  foreach v_owner in array owners loop
    -- One folder per owner at a time; another skips instead of waiting for it.
    continue when not pg_try_advisory_xact_lock(hashtext('jobdeck.job_tallies'),
                                                 hashtext(v_owner::text));
    with folded as (
      delete from public.job_tallies t where t.uuid = v_owner
      returning t.kind, t.status, t.jobs
    )
    insert into public.job_tallies (uuid, kind, status, jobs)
    select v_owner, f.kind, f.status, sum(f.jobs) from folded f group by f.kind, f.status;
  end loop;
end
$$;

revoke all on function jobdeck_private.fold_tallies(uuid[]) from public;

-- tally_jobs: the statement-level trigger on jobs that adds what a statement changed,
-- one row per (owner, kind, state) with a non-zero change; then, one statement in 32,
-- folds the rows of the owners it touched. Updates that leave owner, kind and state
-- alone (heartbeats, progress) add nothing. SECURITY DEFINER, as fold_tallies.
create or replace function jobdeck_private.tally_jobs() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_owners uuid[];
begin
  if tg_op = 'INSERT' then
    insert into public.job_tallies (uuid, kind, status, jobs)
    select r.uuid, r.kind, r.status, count(*) from new_rows r group by r.uuid, r.kind, r.status;
  elsif tg_op = 'DELETE' then
    insert into public.job_tallies (uuid, kind, status, jobs)
    select r.uuid, r.kind, r.status, -count(*) from old_rows r group by r.uuid, r.kind, r.status;
  else
    insert into public.job_tallies (uuid, kind, status, jobs)
    select c.uuid, c.kind, c.status, sum(c.jobs)
      from old_rows o
      join new_rows n on n.id = o.id
     cross join lateral (values (o.uuid, o.kind, o.status, -1), (n.uuid, n.kind, n.status, 1))
                     as c (uuid, kind, status, jobs)
     where (o.uuid, o.kind, o.status) is distinct from (n.uuid, n.kind, n.status)
     group by c.uuid, c.kind, c.status
    having sum(c.jobs) <> 0;
  end if;
  if random() < 1.0 / 32 then
    if tg_op = 'DELETE' then
      select array_agg(distinct r.uuid) into v_owners from old_rows r;
    else
      select array_agg(distinct r.uuid) into v_owners from new_rows r;
    end if;
    perform jobdeck_private.fold_tallies(coalesce(v_owners, '{}'));
  end if;
  return null;
end
$$;

-- untally_all: TRUNCATE of jobs leaves no job to count.
create or replace function jobdeck_private.untally_all() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from public.job_tallies;
  return null;
end
$$;

-- The tallies start from the jobs there are, with writers held off (readers are not)
-- until the triggers are in place, so no change falls between the count and them.
lock table public.jobs in share row exclusive mode;

delete from public.job_tallies;
insert into public.job_tallies (uuid, kind, status, jobs)
select j.uuid, j.kind, j.status, count(*) from public.jobs j group by j.uuid, j.kind, j.status;

drop trigger if exists jobs_tally_inserts on public.jobs;
create trigger jobs_tally_inserts after insert on public.jobs
  referencing new table as new_rows
  for each statement execute function jobdeck_private.tally_jobs();
drop trigger if exists jobs_tally_updates on public.jobs;
create trigger jobs_tally_updates after update on public.jobs
  referencing old table as old_rows new table as new_rows
  for each statement execute function jobdeck_private.tally_jobs();
drop trigger if exists jobs_tally_deletes on public.jobs;
create trigger jobs_tally_deletes after delete on public.jobs
  referencing old table as old_rows
  for each statement execute function jobdeck_private.tally_jobs();
drop trigger if exists jobs_untally_truncate on public.jobs;
create trigger jobs_untally_truncate after truncate on public.jobs
  for each statement execute function jobdeck_private.untally_all();

-- job_counts: how many of the caller's jobs are in each state (kinds optional), for the
-- dashboard's tabs and the list's total. Runs as the caller under row-level security
-- (service_role: every user's jobs). Now the sums of the caller's tallies instead of a
-- count of their rows; only states with jobs are listed, as before.
create or replace function public.job_counts(kinds text[] default null)
returns table (status text, count bigint)
language sql stable
security invoker
set search_path = ''
as $$
  select t.status, sum(t.jobs)::bigint
    from public.job_tallies t
   where kinds is null or t.kind = any (kinds)
   group by t.status
  having sum(t.jobs) > 0;
$$;
