-- Searching jobs by their input: JSON containment (`context @> '{"customer": 42}'`,
-- PostgREST's `context=cs.{...}`) and the words of the input's values (the computed
-- field `input_words`, PostgREST's `input_words=wfts(simple).acme`), each backed by an
-- index so a search stays fast among a user's hundred thousand jobs. Row-level security
-- applies as to every read: the indexes find rows, the policy keeps them the owner's.

-- Containment: jsonb_path_ops is smaller and faster than the default opclass for @>.
create index if not exists jobs_context_idx on public.jobs using gin (context jsonb_path_ops);

-- input_words: the words of a job's input (its string, number and boolean values, not
-- its keys), as a text search vector in the `simple` configuration (no language's
-- stemming: inputs are names, ids and codes). A computed field of `jobs`, so the REST
-- API filters on it; a plain SQL function, so PostgreSQL inlines it and the expression
-- index below serves the filter. (No `set search_path`: that would stop the inlining;
-- every name is qualified instead.)
create or replace function public.input_words(job public.jobs) returns tsvector
language sql immutable parallel safe
as $$
  select pg_catalog.jsonb_to_tsvector('simple'::regconfig, job.context, '["string", "numeric", "boolean"]'::jsonb)
$$;

revoke all on function public.input_words(public.jobs) from public, anon;
grant execute on function public.input_words(public.jobs) to authenticated, service_role;

create index if not exists jobs_input_words_idx on public.jobs
  using gin (pg_catalog.jsonb_to_tsvector('simple'::regconfig, context, '["string", "numeric", "boolean"]'::jsonb));
