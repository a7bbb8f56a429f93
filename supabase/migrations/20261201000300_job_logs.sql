-- Each attempt's log: the lines a job printed (a command's standard output and error)
-- or logged (a built-in kind through its context), kept with the job and deleted with
-- it.
--
-- Only the job's owner reads them (row-level security on `uuid`, copied from the job so
-- no policy needs a join). Nobody inserts directly: the worker holding the job's lease
-- appends through append_job_logs, a batch per call. An attempt keeps at most 10,000
-- lines of at most 4,096 characters each (longer lines are cut); the worker stops
-- sending at the same cap and ends the attempt's log with a marker line saying how
-- many it dropped, which is the one line allowed past the cap.

create table if not exists public.job_logs (
  job_id bigint not null references public.jobs (id) on delete cascade,
  attempt integer not null,
  -- The line's place in its attempt's log, numbered by the worker from 0: a batch sent
  -- twice (an answer lost on the way back) is stored once.
  seq integer not null check (seq between 0 and 10000),
  uuid uuid not null references auth.users (id) on delete cascade,
  at timestamptz not null default now(),
  stream text not null check (stream in ('stdout', 'stderr', 'log')),
  level text not null default 'info' check (level in ('debug', 'info', 'warn', 'error')),
  line text not null check (char_length(line) <= 4096),
  primary key (job_id, attempt, seq)
);

alter table public.job_logs enable row level security;

revoke all on public.job_logs from anon, authenticated;
grant select on public.job_logs to authenticated;
grant all on public.job_logs to service_role;

drop policy if exists "owners read their jobs' logs" on public.job_logs;
create policy "owners read their jobs' logs" on public.job_logs
  for select to authenticated
  using (uuid = (select auth.uid()));

-- append_job_logs: appends `lines` (a JSON array of {seq, stream, level, line, at}) to
-- the log of job `id`'s attempt `attempt`, which must be running under `worker`'s live
-- lease and be that attempt; JD002 otherwise. A line already stored under its seq is
-- skipped, one past the cap is refused with 22023, and text past 4,096 characters is
-- cut. Answers how many lines were stored.
create or replace function public.append_job_logs(
  id bigint,
  worker text,
  attempt integer,
  lines jsonb
) returns integer
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := jobdeck_private.caller();
  v_owner uuid;
  v_stored integer;
begin
  if jsonb_typeof(lines) is distinct from 'array' then
    raise exception 'lines must be a JSON array' using errcode = '22023';
  end if;
  -- A share lock, not the update lock the state functions take: appending runs beside
  -- the job's heartbeats and progress, and only needs the lease to hold while it does.
  select j.uuid into v_owner
    from public.jobs j
   where j.id = append_job_logs.id
     and (v_uid is null or j.uuid = v_uid)
     and j.status = 'running'
     and j.locked_by = append_job_logs.worker
     and j.locked_until > now()
     and j.attempt = append_job_logs.attempt
     for share;
  if v_owner is null then
    raise exception 'job % attempt % is not leased to worker %', id, attempt, worker
      using errcode = 'JD002';
  end if;
  if exists (select from jsonb_array_elements(lines) l
              where jsonb_typeof(l -> 'seq') is distinct from 'number'
                 or (l ->> 'seq')::numeric not between 0 and 10000) then
    raise exception 'each line needs a seq between 0 and 10000' using errcode = '22023';
  end if;
  insert into public.job_logs (job_id, attempt, seq, uuid, at, stream, level, line)
  select append_job_logs.id, append_job_logs.attempt, l.seq, v_owner,
         coalesce(l.at, now()), coalesce(l.stream, 'log'), coalesce(l.level, 'info'),
         left(coalesce(l.line, ''), 4096)
    from jsonb_to_recordset(lines)
         as l(seq integer, stream text, level text, line text, at timestamptz)
  on conflict do nothing;
  get diagnostics v_stored = row_count;
  return v_stored;
end
$$;

revoke all on function public.append_job_logs(bigint, text, integer, jsonb) from public, anon;
grant execute on function public.append_job_logs(bigint, text, integer, jsonb)
  to authenticated, service_role;
