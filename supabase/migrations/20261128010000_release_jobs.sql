-- release_jobs: a worker that stops (the app closes, Ctrl-C) hands its unfinished jobs
-- back. They wait again at once without using up an attempt, and the history says they
-- were released; a job that was asked to cancel ends cancelled instead. Only jobs still
-- leased to `worker` are touched; the answer lists them.
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

revoke all on function public.release_jobs(text, bigint[]) from public, anon;
grant execute on function public.release_jobs(text, bigint[]) to authenticated, service_role;
