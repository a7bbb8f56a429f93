-- Plans kept between calls for the functions a worker calls on every job.
--
-- PL/pgSQL prepares each statement of a function once per connection, and PostgreSQL
-- then chooses for every call between that statement's generic plan and a custom one
-- made for the call's values. The statements below scope themselves with
-- `(v_uid is null or j.uuid = v_uid)` (every row for service_role, the caller's own
-- otherwise), which a custom plan can simplify, so PostgreSQL judged the custom plan
-- cheaper and planned the statement again on every call: a quarter of PostgreSQL's
-- time while a worker drains short jobs (docs/benchmarks.md). The generic plans are
-- as good: each statement is led by an index that does not depend on the branch (the
-- primary key for a batch of ids, jobs_lease_idx for expired leases, jobs_claim_idx
-- for the owner's due jobs), with the owner test as a filter on the few rows found.
-- So these functions always use their generic plans.
--
-- What each function does, its arguments and its errors are unchanged; their doc
-- comments and the table of job states are in 20261201000200_jobs_functions.sql (and
-- 20261201000300_job_logs.sql for append_job_logs), which still hold as written.

-- claim_jobs: up to max_jobs jobs, now running under a lease for `worker`; lost jobs
-- first, then due waiting ones. Now with its plans cached.
alter function public.claim_jobs(text, text[], integer, integer)
  set plan_cache_mode = force_generic_plan;

-- finish_jobs: finish_job for many jobs in one call. Now with its plans cached.
alter function public.finish_jobs(text, jsonb)
  set plan_cache_mode = force_generic_plan;

-- heartbeat_jobs: extends the leases `worker` still holds among `ids`. Now with its
-- plans cached.
alter function public.heartbeat_jobs(text, bigint[], integer)
  set plan_cache_mode = force_generic_plan;

-- release_jobs: hands running jobs back to waiting without using an attempt. Now with
-- its plans cached.
alter function public.release_jobs(text, bigint[])
  set plan_cache_mode = force_generic_plan;

-- enqueue_and_start_job: enqueue_job, and the job started for `worker` in the same
-- call when it is due. Now with its plans cached.
alter function public.enqueue_and_start_job(text, text, jsonb, integer, integer, text, integer)
  set plan_cache_mode = force_generic_plan;

-- append_job_logs: appends a batch of lines to a running attempt's log. Now with its
-- plans cached.
alter function public.append_job_logs(bigint, text, integer, jsonb)
  set plan_cache_mode = force_generic_plan;

-- lock_in_order and lock_job: the row locks the functions above and the single-job
-- ones (finish_job, fail_job, report_progress) take first. Now with their plans
-- cached.
alter function jobdeck_private.lock_in_order(bigint[], uuid)
  set plan_cache_mode = force_generic_plan;
alter function jobdeck_private.lock_job(bigint)
  set plan_cache_mode = force_generic_plan;
