-- Retention: how long a user keeps their ended jobs. One row per user, written by the
-- user (through set_retention, or the REST API under row-level security) and applied
-- by any of their running workers in small batches (apply_retention), so a policy set
-- on one device prunes wherever a worker runs, and a big backlog is removed without
-- holding locks for long.
--
-- A policy has two limits, each optional; a job that either says to remove goes:
--   keep_days  finished, failed and cancelled jobs that ended more than this many days
--              ago are removed;
--   keep_last  of each kind, only this many ended jobs are kept: the last enqueued.
-- Waiting and running jobs are never removed. A user without a row keeps everything.
--
-- State table change (see 20261201000200_jobs_functions.sql): apply_retention, like
-- prune_jobs, removes finished, failed and cancelled rows.

create table if not exists public.retention_policies (
  uuid uuid primary key default auth.uid() references auth.users (id) on delete cascade,
  keep_days integer check (keep_days between 1 and 36500),
  keep_last integer check (keep_last between 1 and 10000000),
  updated_at timestamptz not null default now()
);

comment on table public.retention_policies is
  'How long each user keeps their ended jobs; applied by their workers (apply_retention).';
comment on column public.retention_policies.keep_days is
  'Ended jobs older than this many days are removed; NULL: no limit by age.';
comment on column public.retention_policies.keep_last is
  'Of each kind, only this many ended jobs (the last enqueued) are kept; NULL: no limit by count.';

alter table public.retention_policies enable row level security;

revoke all on public.retention_policies from anon, authenticated;
grant select, delete on public.retention_policies to authenticated;
grant insert (keep_days, keep_last), update (keep_days, keep_last, updated_at)
  on public.retention_policies to authenticated;
grant all on public.retention_policies to service_role;

drop policy if exists "owners read their retention" on public.retention_policies;
create policy "owners read their retention" on public.retention_policies
  for select to authenticated
  using (uuid = (select auth.uid()));

drop policy if exists "owners set their retention" on public.retention_policies;
create policy "owners set their retention" on public.retention_policies
  for insert to authenticated
  with check (uuid = (select auth.uid()));

drop policy if exists "owners change their retention" on public.retention_policies;
create policy "owners change their retention" on public.retention_policies
  for update to authenticated
  using (uuid = (select auth.uid()))
  with check (uuid = (select auth.uid()));

drop policy if exists "owners clear their retention" on public.retention_policies;
create policy "owners clear their retention" on public.retention_policies
  for delete to authenticated
  using (uuid = (select auth.uid()));

-- Workers are woken by a policy changed on another device.
do $$
begin
  if exists (select from pg_publication where pubname = 'supabase_realtime')
     and not exists (
       select from pg_publication_tables
        where pubname = 'supabase_realtime' and schemaname = 'public'
          and tablename = 'retention_policies'
     ) then
    alter publication supabase_realtime add table public.retention_policies;
  end if;
end
$$;

-- The age limit walks the owner's ended jobs oldest first, not all of their rows.
create index if not exists jobs_owner_ended_idx on public.jobs (uuid, ended_at)
  where ended_at is not null;

-- set_retention: sets the caller's policy (both limits NULL clears it); answers it.
-- Runs as the caller under row-level security. 22023 for a limit out of range.
create or replace function public.set_retention(keep_days integer default null,
                                                keep_last integer default null)
returns public.retention_policies
language plpgsql volatile
security invoker
set search_path = ''
as $$
declare
  v_policy public.retention_policies;
begin
  if (select auth.uid()) is null then
    raise exception 'sign in to set a retention policy' using errcode = '42501';
  end if;
  if set_retention.keep_days is not null and set_retention.keep_days not between 1 and 36500 then
    raise exception 'keep_days must be between 1 and 36500' using errcode = '22023';
  end if;
  if set_retention.keep_last is not null and set_retention.keep_last not between 1 and 10000000 then
    raise exception 'keep_last must be between 1 and 10000000' using errcode = '22023';
  end if;
  if set_retention.keep_days is null and set_retention.keep_last is null then
    delete from public.retention_policies p where p.uuid = (select auth.uid());
    return null;
  end if;
  insert into public.retention_policies as p (keep_days, keep_last)
  values (set_retention.keep_days, set_retention.keep_last)
  on conflict (uuid) do update
     set keep_days = excluded.keep_days, keep_last = excluded.keep_last, updated_at = now()
  returning * into v_policy;
  return v_policy;
end
$$;

-- apply_retention: removes at most `batch` of the caller's jobs that their policy says
-- to remove (oldest by age first, then each kind's beyond its newest keep_last);
-- answers how many. A worker calls it until it answers less than `batch`. Runs as the
-- caller under row-level security. The DELETE states its conditions again on the row
-- it removes: a job retried while the batch waited for its row lock is read again
-- once the retry commits, and is waiting now, so it stays.
create or replace function public.apply_retention(batch integer default 500)
returns bigint
language plpgsql volatile
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_policy public.retention_policies;
  v_deleted bigint := 0;
  v_count bigint;
  v_kind text;
begin
  if v_uid is null then
    raise exception 'sign in to apply a retention policy' using errcode = '42501';
  end if;
  if batch is null or batch not between 1 and 10000 then
    raise exception 'batch must be between 1 and 10000' using errcode = '22023';
  end if;
  select * into v_policy from public.retention_policies p where p.uuid = v_uid;
  if not found then
    return 0;
  end if;

  if v_policy.keep_days is not null then
    delete from public.jobs j
     where j.id in (select o.id from public.jobs o
                     where o.uuid = v_uid and o.ended_at is not null
                       and o.ended_at < now() - make_interval(days => v_policy.keep_days)
                       and o.status in ('finished', 'failed', 'cancelled')
                     order by o.ended_at
                     limit batch)
       and j.status in ('finished', 'failed', 'cancelled')
       and j.ended_at < now() - make_interval(days => v_policy.keep_days);
    get diagnostics v_deleted = row_count;
  end if;

  if v_policy.keep_last is not null and v_deleted < batch then
    -- Kinds with more ended jobs than the limit, from the counts the tallies keep.
    for v_kind in
      select t.kind from public.job_tallies t
       where t.uuid = v_uid and t.status in ('finished', 'failed', 'cancelled')
       group by t.kind having sum(t.jobs) > v_policy.keep_last
       order by t.kind
    loop
      delete from public.jobs j
       where j.id in (select o.id from public.jobs o
                       where o.uuid = v_uid and o.kind = v_kind
                         and o.status in ('finished', 'failed', 'cancelled')
                       order by o.id desc
                       offset v_policy.keep_last
                       limit batch - v_deleted)
         and j.status in ('finished', 'failed', 'cancelled');
      get diagnostics v_count = row_count;
      v_deleted := v_deleted + v_count;
      exit when v_deleted >= batch;
    end loop;
  end if;
  return v_deleted;
end
$$;

revoke all on function public.set_retention(integer, integer) from public, anon;
grant execute on function public.set_retention(integer, integer) to authenticated;
revoke all on function public.apply_retention(integer) from public, anon;
grant execute on function public.apply_retention(integer) to authenticated;
