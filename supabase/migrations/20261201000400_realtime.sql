-- Live changes: the jobs and their logs join the `supabase_realtime` publication, so
-- Supabase Realtime pushes their inserts, updates and deletes to subscribed clients
-- (the desktop app, workers on other machines). Realtime checks each change against
-- the subscriber's row-level security before sending it, so a user hears only of their
-- own jobs, exactly as a REST select would answer.
--
-- Every Supabase project has the publication (owned by `postgres`, who runs
-- migrations). A plain PostgreSQL may not: then nothing is added and the clients fall
-- back to polling, which works without it.

do $$
declare
  v_table text;
begin
  if not exists (select from pg_publication where pubname = 'supabase_realtime') then
    raise notice 'no supabase_realtime publication: jobs are not published to Realtime';
    return;
  end if;
  foreach v_table in array array['jobs', 'job_logs'] loop
    if not exists (
      select from pg_publication_tables
       where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = v_table
    ) then
      execute format('alter publication supabase_realtime add table public.%I', v_table);
    end if;
  end loop;
end
$$;
