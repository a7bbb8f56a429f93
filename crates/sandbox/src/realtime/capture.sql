-- How the sandbox hears of changes: Supabase Realtime reads them from the write-ahead
-- log; the sandbox, which must run on any PostgreSQL (without wal_level = logical),
-- captures them with triggers instead, with the same outcome for a subscriber: every
-- committed change to a table of the `supabase_realtime` publication, in commit order.
--
-- Each statement on a published table notifies `_realtime`. PostgreSQL delivers
-- notifications at commit, in commit order (and within a transaction in the order
-- sent), once per transaction and payload, and never for a transaction that rolled
-- back. A statement of a few small rows (a job enqueued, claimed or finished) sends
-- them in the notification itself, so they reach the sandbox with no query of its
-- own. A larger one records its rows in _realtime.changes, tagged with its
-- transaction id, and notifies that id; so do the rest of its transaction's
-- statements, which keeps their order; the sandbox takes (and deletes) each notified
-- transaction's rows in one statement. Triggers follow the publication: they are
-- added and removed whenever it or a table changes.
--
-- Applied by the sandbox at every start, as a superuser; not a migration, since a real
-- project has Realtime itself. Safe to run again.

create schema if not exists _realtime;
revoke all on schema _realtime from public;

create table if not exists _realtime.changes (
  id bigint generated always as identity primary key,
  xid xid8 not null default pg_current_xact_id(),
  at timestamptz not null default now(),
  schema_name text not null,
  table_name text not null,
  type text not null,
  record jsonb not null
);
create index if not exists changes_xid on _realtime.changes (xid);
-- Changes no subscriber heard (the sandbox was not running) are of no use now.
truncate _realtime.changes;

-- capture: sends or records the statement's rows (their new version; for DELETE the
-- old one). A trigger with transition tables: one notification per statement however
-- many rows. An inline notification is a JSON object: its statement's number in the
-- transaction (`n`, which keeps two identical statements from being merged into
-- one), `at`, `schema`, `table`, `type` and the `records`.
create or replace function _realtime.capture() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  c_inline_rows constant int := 8;
  -- PostgreSQL's limit for a payload is 8000 bytes.
  c_inline_bytes constant int := 7900;
  v_xid text := pg_current_xact_id()::text;
  v_n int;
  v_rows int;
  v_records jsonb;
  v_payload text;
begin
  if current_setting('_realtime.tabled', true) is distinct from v_xid then
    if tg_op = 'DELETE' then
      select count(*), jsonb_agg(to_jsonb(o)) into v_rows, v_records
        from (select * from old_rows limit c_inline_rows + 1) o;
    else
      select count(*), jsonb_agg(to_jsonb(n)) into v_rows, v_records
        from (select * from new_rows limit c_inline_rows + 1) n;
    end if;
    if v_rows = 0 then
      return null;
    end if;
    if v_rows <= c_inline_rows then
      v_n := coalesce(nullif(current_setting('_realtime.n', true), '')::int, 0) + 1;
      perform set_config('_realtime.n', v_n::text, true);
      v_payload := jsonb_build_object(
        'n', v_n,
        'at', to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'schema', tg_table_schema, 'table', tg_table_name, 'type', tg_op,
        'records', v_records)::text;
      if octet_length(v_payload) <= c_inline_bytes then
        perform pg_notify('_realtime', v_payload);
        return null;
      end if;
    end if;
    perform set_config('_realtime.tabled', v_xid, true);
  end if;
  if tg_op = 'DELETE' then
    insert into _realtime.changes (schema_name, table_name, type, record)
    select tg_table_schema, tg_table_name, tg_op, to_jsonb(o) from old_rows o;
  else
    insert into _realtime.changes (schema_name, table_name, type, record)
    select tg_table_schema, tg_table_name, tg_op, to_jsonb(n) from new_rows n;
  end if;
  if found then
    perform pg_notify('_realtime', v_xid);
  end if;
  return null;
end
$$;

-- sync: gives every table of the publication the capture triggers, and takes them off
-- tables that left it.
create or replace function _realtime.sync() returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_table regclass;
  v_event text;
begin
  for v_table in
    select format('%I.%I', schemaname, tablename)::regclass
      from pg_catalog.pg_publication_tables
     where pubname = 'supabase_realtime'
       and not exists (
         select from pg_catalog.pg_trigger t
          where t.tgrelid = format('%I.%I', schemaname, tablename)::regclass
            and t.tgname = '_realtime_insert')
  loop
    foreach v_event in array array['insert', 'update', 'delete'] loop
      execute format(
        'create trigger %I after %s on %s referencing %s table as %s '
        'for each statement execute function _realtime.capture()',
        '_realtime_' || v_event, v_event, v_table,
        case v_event when 'delete' then 'old' else 'new' end,
        case v_event when 'delete' then 'old_rows' else 'new_rows' end);
    end loop;
  end loop;
  for v_table in
    select t.tgrelid::regclass
      from pg_catalog.pg_trigger t
     where t.tgname = '_realtime_insert'
       and t.tgrelid not in (
         select format('%I.%I', schemaname, tablename)::regclass
           from pg_catalog.pg_publication_tables where pubname = 'supabase_realtime')
  loop
    foreach v_event in array array['insert', 'update', 'delete'] loop
      execute format('drop trigger if exists %I on %s', '_realtime_' || v_event, v_table);
    end loop;
  end loop;
end
$$;

create or replace function _realtime.on_ddl() returns event_trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform _realtime.sync();
end
$$;

drop event trigger if exists _realtime_sync;
create event trigger _realtime_sync on ddl_command_end
  when tag in ('CREATE PUBLICATION', 'ALTER PUBLICATION', 'CREATE TABLE', 'CREATE TABLE AS')
  execute function _realtime.on_ddl();

select _realtime.sync();
