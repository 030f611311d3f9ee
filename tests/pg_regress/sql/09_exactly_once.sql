-- The snapshot arithmetic of exactly-once aggregation (sql/exactly_once.sql), case by case,
-- and the job plumbing that must fail at install time rather than at run time.
CREATE EXTENSION IF NOT EXISTS popularity_engine;

-- stored_snapshot: no cut and no own transaction leaves the snapshot as it is
SELECT popularity_engine.stored_snapshot('100:200:120,150', NULL, NULL);
-- an empty in-progress list
SELECT popularity_engine.stored_snapshot('100:100:', NULL, NULL);
-- cut at a transaction boundary: xmax becomes the bound, xip keeps what is below it
SELECT popularity_engine.stored_snapshot('100:200:120,150', '150', NULL);
SELECT popularity_engine.stored_snapshot('100:200:120,150', '121', NULL);
-- a bound at or past xmax cuts nothing
SELECT popularity_engine.stored_snapshot('100:200:120,150', '200', NULL);
SELECT popularity_engine.stored_snapshot('100:200:120,150', '500', NULL);
-- a bound below xmin: nothing at or after it counts as aggregated
SELECT popularity_engine.stored_snapshot('100:200:120,150', '90', NULL);
-- the own transaction is treated as still running (and may lower xmin)
SELECT popularity_engine.stored_snapshot('100:200:120,150', NULL, '130');
SELECT popularity_engine.stored_snapshot('100:200:120,150', NULL, '95');
SELECT popularity_engine.stored_snapshot('100:200:', NULL, '120');
-- an own transaction at or past xmax already counts as not aggregated
SELECT popularity_engine.stored_snapshot('100:200:120', NULL, '200');
-- cut and own transaction together: own above the cut is dropped, below it kept
SELECT popularity_engine.stored_snapshot('100:200:120,150', '140', '145');
SELECT popularity_engine.stored_snapshot('100:200:120,150', '140', '130');
-- 64-bit transaction ids past the 32-bit wrap-around (epoch 1 and beyond)
SELECT popularity_engine.stored_snapshot('4294967290:4294967310:4294967295,4294967300', '4294967300', '4294967305');
SELECT popularity_engine.stored_snapshot('8589934590:8589934600:', NULL, '8589934595');

-- unaggregated: rows above the id floor are judged by the stored snapshot
SELECT x AS writer_xid,
       popularity_engine.unaggregated(10, x::text::xid8, 0, '100:200:120,150', NULL) AS pending,
       popularity_engine.row_aggregated(10, x::text::xid8, 0, '100:200:120,150', NULL) AS aggregated
  FROM unnest(ARRAY[50, 100, 119, 120, 121, 150, 199, 200, 300]) AS x;
-- rows at or below the floor (restored from another cluster) by the legacy snapshot, and all
-- aggregated when there is none
SELECT x AS writer_xid,
       popularity_engine.unaggregated(5, x::text::xid8, 5, '1:1:', '100:200:150') AS pending_legacy,
       popularity_engine.unaggregated(5, x::text::xid8, 5, '1:1:', NULL) AS pending_no_legacy,
       popularity_engine.unaggregated(6, x::text::xid8, 5, '1:1:', '100:200:150') AS pending_above_floor
  FROM unnest(ARRAY[99, 150, 160, 200]) AS x;
-- past the wrap-around
SELECT popularity_engine.unaggregated(1, '4294967300'::xid8, 0, '4294967290:4294967310:4294967295', NULL) AS done,
       popularity_engine.unaggregated(1, '4294967295'::xid8, 0, '4294967290:4294967310:4294967295', NULL) AS running,
       popularity_engine.unaggregated(1, '4294967310'::xid8, 0, '4294967290:4294967310:4294967295', NULL) AS later;

-- A restore rebase, end to end: rows that existed before keep the legacy snapshot's meaning.
BEGIN;
UPDATE popularity_engine.refresh_state
   SET legacy_snapshot = '100:200:150', legacy_interaction_id_floor = 5, aggregated_snapshot = '1:1:';
SELECT r.id, popularity_engine.unaggregated(r.id, r.xid::text::xid8, s.legacy_interaction_id_floor,
                                            s.aggregated_snapshot, s.legacy_snapshot) AS pending
  FROM (VALUES (4, 120), (5, 150), (6, 120)) AS r(id, xid), popularity_engine.refresh_state s
 ORDER BY r.id;
ROLLBACK;

-- run_step resolves every job's step function when the extension is installed: it depends on
-- each of them (a step cannot be dropped or renamed behind its back)
SELECT d.refobjid::regprocedure AS step_function
  FROM pg_depend d
 WHERE d.classid = 'pg_proc'::regclass
   AND d.objid = 'popularity_engine.run_step(popularity_engine.job, timestamptz, bigint, interval)'::regprocedure
   AND d.refclassid = 'pg_proc'::regclass
 ORDER BY 1::text;
SELECT unnest(enum_range(NULL::popularity_engine.job)) AS job;

-- The cron history cleanup removes old run details of the extension's own jobs only: run its
-- command against a stand-in for pg_cron's tables.
CREATE SCHEMA cron;
CREATE TABLE cron.job (jobid bigint PRIMARY KEY, jobname text);
CREATE TABLE cron.job_run_details (runid bigint PRIMARY KEY, jobid bigint, end_time timestamptz);
INSERT INTO cron.job VALUES (1, 'popularity_engine.refresh_popularity'), (2, 'nightly_backup'), (3, 'popularity_engineXrefresh');
INSERT INTO cron.job_run_details VALUES
    (10, 1, now() - interval '30 days'), (11, 1, now() - interval '1 day'),
    (20, 2, now() - interval '30 days'), (21, 2, now() - interval '1 day'),
    (30, 3, now() - interval '30 days');
DO $$ BEGIN
    EXECUTE (SELECT command FROM popularity_engine.job_definitions('a', 'b', 'c', 'd', 'e')
              WHERE job_name = 'popularity_engine.cron_history_cleanup');
END $$;
SELECT runid, jobid FROM cron.job_run_details ORDER BY runid;
DROP SCHEMA cron CASCADE;

-- Nothing new, known without reading the log: a refresh stores, with its snapshot, the ids last
-- drawn from both logs' sequences; while neither moves, no row can have been written since.
CALL popularity_engine.refresh_popularity();
SELECT interaction_id_mark = coalesce(pg_sequence_last_value('popularity_engine.product_interactions_id_seq'), 0) AS marked,
       (popularity_engine.logs_unchanged_since(aggregated_snapshot, interaction_id_mark, search_id_mark)).unchanged AS unchanged
  FROM popularity_engine.refresh_state;
-- marks are stored with a snapshot only when every transaction that had an id as they were read
-- (below next_xid), the refresh's own (and its subtransactions') aside, is below the snapshot's
-- xmax: finished, or listed as running; never for a step cut at a bound, nor for a transaction
-- that had an id before the step
BEGIN;
SELECT pg_current_xact_id()::text::bigint AS own \gset
SAVEPOINT inner_block;
CREATE TEMP TABLE pe_sub_write (x int);  -- gives the subtransaction an id of its own
SELECT popularity_engine.marks_fit_snapshot(format('%s:%s:', :own - 5, :own + 10)::pg_snapshot, :own + 3, NULL, NULL) AS all_below,
       popularity_engine.marks_fit_snapshot(format('%s:%s:', :own, :own)::pg_snapshot, :own + 1, NULL, NULL) AS own_at_xmax,
       popularity_engine.marks_fit_snapshot(format('%s:%s:', :own, :own)::pg_snapshot, :own + 2, NULL, NULL) AS own_and_sub_at_xmax,
       popularity_engine.marks_fit_snapshot(format('%s:%s:', :own - 1, :own - 1)::pg_snapshot, :own + 1, NULL, NULL) AS another_at_xmax,
       popularity_engine.marks_fit_snapshot(format('%s:%s:', :own - 5, :own + 10)::pg_snapshot, :own + 3, :'own'::xid8, NULL) AS cut_step,
       popularity_engine.marks_fit_snapshot(format('%s:%s:', :own - 5, :own + 10)::pg_snapshot, :own + 3, NULL, :'own'::xid8) AS id_before_step;
ROLLBACK;
-- a rolled-back track still draws an id: the next refresh reads the log, and finds nothing
BEGIN;
SELECT popularity_engine.track(901, 9001, 'view') > 0 AS tracked;
ROLLBACK;
SELECT u.unchanged, u.drawn
  FROM popularity_engine.refresh_state,
       popularity_engine.logs_unchanged_since(aggregated_snapshot, interaction_id_mark, search_id_mark) u;
CALL popularity_engine.refresh_popularity();
SELECT count(*) AS rows_for_9001 FROM popularity_engine.product_popularity WHERE product_id = 9001;
-- unknown marks (NULL) are never taken for "unchanged"
SELECT u.unchanged, u.drawn
  FROM popularity_engine.refresh_state,
       popularity_engine.logs_unchanged_since(aggregated_snapshot, NULL, search_id_mark) u;
-- a transaction the stored snapshot saw running: once committed, the log must be read; once
-- aborted, it wrote nothing
BEGIN;
SELECT pg_current_xact_id() AS committed_xid \gset
COMMIT;
BEGIN;
SELECT pg_current_xact_id() AS aborted_xid \gset
ROLLBACK;
SELECT (popularity_engine.logs_unchanged_since(format('%s:%s:%s', :'committed_xid', :'committed_xid'::bigint + 1, :'committed_xid')::pg_snapshot,
                                              interaction_id_mark, search_id_mark)).unchanged AS committed_unchanged,
       (popularity_engine.logs_unchanged_since(format('%s:%s:%s', :'aborted_xid', :'aborted_xid'::bigint + 1, :'aborted_xid')::pg_snapshot,
                                              interaction_id_mark, search_id_mark)).unchanged AS aborted_unchanged
  FROM popularity_engine.refresh_state;
-- A cached sequence hands ids out of a session's cache without moving: the marks cannot vouch
-- for it, and every row is still counted once.
ALTER SEQUENCE popularity_engine.product_interactions_id_seq CACHE 10;
SELECT popularity_engine.track(901, 9001, 'view') > 0 AS tracked;
CALL popularity_engine.refresh_popularity();
SELECT popularity_engine.track(901, 9001, 'view') > 0 AS tracked;
SELECT u.drawn
  FROM popularity_engine.refresh_state,
       popularity_engine.logs_unchanged_since(aggregated_snapshot, interaction_id_mark, search_id_mark) u;
CALL popularity_engine.refresh_popularity();
SELECT view_count FROM popularity_engine.product_popularity WHERE product_id = 9001;
ALTER SEQUENCE popularity_engine.product_interactions_id_seq CACHE 1;
-- refresh_user_preferences keeps marks of its own: nothing new, nothing read; then one new view
CALL popularity_engine.refresh_user_preferences();
CALL popularity_engine.refresh_user_preferences();
SELECT p.interaction_id_mark = r.interaction_id_mark AS same_marks,
       (popularity_engine.logs_unchanged_since(p.aggregated_snapshot, p.interaction_id_mark, p.search_id_mark)).unchanged
  FROM popularity_engine.preference_state p, popularity_engine.refresh_state r;
SELECT interaction_count FROM popularity_engine.user_profiles WHERE user_id = 901;
SELECT popularity_engine.track(901, 9001, 'view') > 0 AS tracked;
CALL popularity_engine.refresh_user_preferences();
SELECT interaction_count FROM popularity_engine.user_profiles WHERE user_id = 901;
SELECT message FROM popularity_engine.job_runs WHERE job = 'refresh_user_preferences' ORDER BY id DESC LIMIT 3;
