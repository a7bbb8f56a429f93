-- Activity: what the caller's jobs did over the last hour, day or week, counted in the
-- database so a chart never downloads rows.
--
-- job_activity(span) answers one JSON object:
--   {"span", "bucket_seconds", "from", "to",
--    "buckets": [{"at", "finished", "failed", "retried"}, ...],   oldest first, every
--                                                                   bucket, empty ones too
--    "kinds": [{"kind", "finished", "failed", "p50_ms", "p90_ms", "p99_ms", "max_ms"}]}
-- span 'hour' counts per minute (60 buckets), 'day' and 'week' per hour (24 and 168).
-- A bucket holds the jobs that finished or failed in it (their ended_at) and the
-- attempts that ended in it and were tried again (history entries with the outcome
-- `retry`, or `lost`: the lease ran out and the job ran again). A kind's durations are
-- those of its jobs that finished or failed in the span: from the start of their last
-- attempt to their end.
--
-- Every job that did any of this in the span was written in it, so one walk of the
-- owner's (uuid, updated_at) index finds them all. Runs as the caller under row-level
-- security: a user counts only their own jobs.

create or replace function public.job_activity(span text default 'hour')
returns jsonb
language plpgsql stable
security invoker
set search_path = ''
as $$
declare
  v_bucket interval;
  v_length interval;
  v_to timestamptz := now();
  v_from timestamptz;
  v_result jsonb;
begin
  if (select auth.uid()) is null and current_setting('role', true) <> 'service_role' then
    raise exception 'sign in to read activity' using errcode = '42501';
  end if;
  case span
    when 'hour' then v_bucket := interval '1 minute'; v_length := interval '1 hour';
    when 'day' then v_bucket := interval '1 hour'; v_length := interval '1 day';
    when 'week' then v_bucket := interval '1 hour'; v_length := interval '7 days';
    else raise exception 'span must be hour, day or week' using errcode = '22023';
  end case;
  -- Whole buckets, the current one last.
  v_from := date_bin(v_bucket, v_to, timestamptz '2000-01-01 00:00:00+00') - v_length + v_bucket;

  with touched as (
    select j.kind, j.status, j.started_at, j.ended_at, j.history
      from public.jobs j
     where j.updated_at >= v_from
  ),
  ended as (
    select t.kind, t.status, t.ended_at,
           extract(epoch from (t.ended_at - t.started_at)) * 1000 as ms
      from touched t
     where t.status in ('finished', 'failed') and t.ended_at >= v_from
  ),
  retried as (
    select (h ->> 'ended_at')::timestamptz as at
      from touched t, jsonb_array_elements(t.history) h
     where h ->> 'outcome' in ('retry', 'lost')
       and jsonb_typeof(h -> 'ended_at') = 'string'
  ),
  marks as (
    select date_bin(v_bucket, e.ended_at, timestamptz '2000-01-01 00:00:00+00') as at,
           (e.status = 'finished')::int as finished, (e.status = 'failed')::int as failed,
           0 as retried
      from ended e
    union all
    select date_bin(v_bucket, r.at, timestamptz '2000-01-01 00:00:00+00'), 0, 0, 1
      from retried r
     where r.at >= v_from
  ),
  buckets as (
    select b.at,
           coalesce(sum(m.finished), 0) as finished,
           coalesce(sum(m.failed), 0) as failed,
           coalesce(sum(m.retried), 0) as retried
      from generate_series(v_from, v_to, v_bucket) as b(at)
      left join marks m on m.at = b.at
     group by b.at
  ),
  kinds as (
    select e.kind,
           count(*) filter (where e.status = 'finished') as finished,
           count(*) filter (where e.status = 'failed') as failed,
           percentile_cont(0.5) within group (order by e.ms) as p50,
           percentile_cont(0.9) within group (order by e.ms) as p90,
           percentile_cont(0.99) within group (order by e.ms) as p99,
           max(e.ms) as max
      from ended e
     group by e.kind
  )
  select jsonb_build_object(
           'span', span,
           'bucket_seconds', extract(epoch from v_bucket)::int,
           'from', v_from,
           'to', v_to,
           'buckets', coalesce((select jsonb_agg(jsonb_build_object(
                                  'at', b.at, 'finished', b.finished, 'failed', b.failed,
                                  'retried', b.retried) order by b.at)
                                 from buckets b), '[]'),
           'kinds', coalesce((select jsonb_agg(jsonb_build_object(
                                'kind', k.kind, 'finished', k.finished, 'failed', k.failed,
                                'p50_ms', round(k.p50::numeric, 1), 'p90_ms', round(k.p90::numeric, 1),
                                'p99_ms', round(k.p99::numeric, 1), 'max_ms', round(k.max::numeric, 1))
                                order by k.kind)
                               from kinds k), '[]'))
    into v_result;
  return v_result;
end
$$;

revoke all on function public.job_activity(text) from public, anon;
grant execute on function public.job_activity(text) to authenticated, service_role;
