-- Bulk actions for the dashboard: cancel or retry many jobs in one call. Each does what
-- cancel_job / retry_job do to one job, to every listed job of the caller that is in a
-- state the action applies to; the others are skipped, not refused, since a filtered
-- set changes while the user looks at it. Both answer how many jobs they changed.

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
  -- Waiting jobs end now; running ones are asked to stop (their worker sees the request
  -- on its next heartbeat or progress report, as with cancel_job).
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

revoke all on function public.cancel_jobs(bigint[]) from public, anon;
revoke all on function public.retry_jobs(bigint[]) from public, anon;
grant execute on function public.cancel_jobs(bigint[]) to authenticated, service_role;
grant execute on function public.retry_jobs(bigint[]) to authenticated, service_role;
