-- How the sandbox hears of changes: Supabase Realtime reads them from the write-ahead
-- log; the sandbox, which must run on any PostgreSQL (without wal_level = logical),
-- captures them with triggers instead, with the same outcome for a subscriber: every
-- committed change to a table of the `supabase_realtime` publication, in commit order.
--
-- Each statement on a published table records its rows in _realtime.changes, tagged
-- with its transaction id, and notifies `_realtime` with that id. PostgreSQL delivers
-- notifications at commit, in commit order, once per transaction and payload, and
-- never for a transaction that rolled back. The sandbox takes (and deletes) each
-- notified transaction's rows in one statement. Triggers follow the publication: they
-- are added and removed whenever it or a table changes.
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

-- capture: records the statement's rows (their new version; for DELETE the old one).
-- A trigger with transition tables: one insert per statement however many rows.
create or replace function _realtime.capture() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    insert into _realtime.changes (schema_name, table_name, type, record)
    select tg_table_schema, tg_table_name, tg_op, to_jsonb(o) from old_rows o;
  else
    insert into _realtime.changes (schema_name, table_name, type, record)
    select tg_table_schema, tg_table_name, tg_op, to_jsonb(n) from new_rows n;
  end if;
  if found then
    perform pg_notify('_realtime', pg_current_xact_id()::text);
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
