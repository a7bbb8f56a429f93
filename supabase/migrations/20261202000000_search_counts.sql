-- The list's total for a search, from the tallies too.
--
-- The search box matches a job's kind (or its id). Its total was counted row by row,
-- 176 ms for a search matching 100,000 of a user's jobs; the kinds a pattern matches
-- are in the caller's tallies already, so job_counts takes the search's pattern and
-- the total is read without counting rows. (A job matched by its id alone is one
-- row, found by its key.)

-- The old signature goes: a second job_counts beside it would make a call with only
-- `kinds` ambiguous.
drop function if exists public.job_counts(text[]);

-- job_counts: how many of the caller's jobs are in each state, for the dashboard's tabs
-- and the list's total: of `kinds` only when given, and of the kinds matching
-- `kind_like` (an ILIKE pattern, the search box's) when given. Runs as the caller
-- under row-level security (service_role: every user's jobs). The sums of the
-- caller's tallies, so no row is counted; only states with jobs are listed.
create or replace function public.job_counts(kinds text[] default null, kind_like text default null)
returns table (status text, count bigint)
language sql stable
security invoker
set search_path = ''
as $$
  select t.status, sum(t.jobs)::bigint
    from public.job_tallies t
   where (kinds is null or t.kind = any (kinds))
     and (kind_like is null or t.kind ilike kind_like)
   group by t.status
  having sum(t.jobs) > 0;
$$;

revoke all on function public.job_counts(text[], text) from public, anon;
grant execute on function public.job_counts(text[], text) to authenticated, service_role;
