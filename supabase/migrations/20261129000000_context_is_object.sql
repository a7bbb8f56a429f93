-- A job's input (`context`) is a JSON object: every kind reads named fields from it.
-- Checked when a job is created, by enqueue_job or a direct insert alike, with the
-- contract's code for an invalid argument (22023) and words a client can show. Only
-- new rows: jobs adopted from a table of the original shape keep whatever they hold.

create or replace function jobdeck_private.check_new_job() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if jsonb_typeof(new.context) is distinct from 'object' then
    raise exception 'context must be a JSON object, not %',
      coalesce(jsonb_typeof(new.context), 'null')
      using errcode = '22023';
  end if;
  return new;
end;
$$;

drop trigger if exists jobs_check_new_job on public.jobs;
create trigger jobs_check_new_job before insert on public.jobs
  for each row execute function jobdeck_private.check_new_job();
