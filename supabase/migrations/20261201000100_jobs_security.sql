-- Jobdeck's baseline, part 2 of 3: row-level security and grants.
--
-- Users read and delete their own rows. They may insert a waiting job for themselves
-- (the original pattern inserts rows directly), but only the input columns are theirs
-- to set. Every other change goes through the functions of part 3, which check the
-- caller themselves. `anon` can do nothing; `service_role` can do everything.
--
-- Supabase's default privileges give anon, authenticated and service_role everything
-- on what is created in `public`: tables, sequences and functions. Each grant below
-- therefore starts by revoking what those defaults gave.

alter table public.jobs enable row level security;

revoke all on public.jobs from anon, authenticated;
grant select, delete on public.jobs to authenticated;
grant insert (kind, context, run_at, priority, max_attempts, idempotency_key)
  on public.jobs to authenticated;
grant all on public.jobs to service_role;

-- The id sequence: with SELECT a user reads how many jobs every user has made, with
-- UPDATE they `setval` it so that inserts collide. Nobody but service_role needs it
-- (an identity column's own default takes ids without a grant).
do $$
declare
  v_sequence text := pg_get_serial_sequence('public.jobs', 'id');
begin
  execute format('revoke all on sequence %s from public, anon, authenticated', v_sequence);
  execute format('grant usage, select on sequence %s to service_role', v_sequence);
end
$$;

drop policy if exists "owners read their jobs" on public.jobs;
create policy "owners read their jobs" on public.jobs
  for select to authenticated
  using (uuid = (select auth.uid()));

drop policy if exists "owners add their jobs" on public.jobs;
create policy "owners add their jobs" on public.jobs
  for insert to authenticated
  with check (uuid = (select auth.uid()) and status = 'waiting');

drop policy if exists "owners delete their jobs when not running" on public.jobs;
create policy "owners delete their jobs when not running" on public.jobs
  for delete to authenticated
  using (uuid = (select auth.uid()) and status <> 'running');

-- The private schema holds helpers the functions use; no API role may reach it.
revoke all on schema jobdeck_private from public, anon, authenticated, service_role;
