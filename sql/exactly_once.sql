-- popularity_engine: the snapshot arithmetic behind exactly-once aggregation.
--
-- Every log row records the transaction that wrote it (writer_xid). A refresh reads the rows it
-- has not aggregated yet and captures pg_current_snapshot() in ONE statement, so the rows it
-- aggregates are exactly those visible in that snapshot, and it stores the snapshot. A row was
-- aggregated by an earlier refresh iff its writer_xid is visible in the stored snapshot: the next
-- refresh takes the rows with writer_xid >= xmax of that snapshot, plus those whose transaction
-- was still in progress in it (its xip list). A transaction that commits late, out of id order
-- or after several refreshes is picked up by the first refresh that can see it, and never
-- twice. Nothing waits for the oldest open transaction in the cluster.
--
-- Restores into another cluster: transaction ids restart there, so a stored snapshot means
-- nothing for new rows. The first tracking call or refresh in the new cluster re-anchors
-- (rebase_if_restored): rows that exist at that moment (ids up to a "legacy floor") keep the old
-- snapshot's meaning, later rows are judged against snapshots of the new cluster.
--
-- These functions are the whole of that arithmetic; tests/pg_regress/sql/09_exactly_once.sql
-- checks them case by case.

-- xip of a snapshot as an array. PL/pgSQL so that it is never inlined: called with a constant
-- snapshot, the planner evaluates it once while planning and the writer_xid indexes can serve
-- `writer_xid = ANY (...)`.
CREATE FUNCTION popularity_engine.snapshot_xip(snap pg_snapshot) RETURNS xid8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN ARRAY(SELECT x FROM pg_snapshot_xip(snap) AS x ORDER BY x);
END $$;
COMMENT ON FUNCTION popularity_engine.snapshot_xip(pg_snapshot) IS
  'Internal: the in-progress transaction ids of a snapshot, as a sorted array.';

-- Not aggregated yet by the refresh whose stored state is (snap, legacy, id_floor): rows above
-- the floor are judged by snap, rows at or below it by the legacy snapshot of a restore (none
-- pending when there is none). Inlined into the calling statement: with the state's values as
-- constants it becomes index conditions on writer_xid (>= xmax, = ANY (xip)).
CREATE FUNCTION popularity_engine.unaggregated(
    row_id bigint, writer_xid xid8, id_floor bigint, snap pg_snapshot, legacy pg_snapshot)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (row_id OPERATOR(pg_catalog.>) id_floor
            AND (writer_xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmax(snap)
                 OR writer_xid OPERATOR(pg_catalog.=) ANY (popularity_engine.snapshot_xip(snap))))
        OR (legacy IS NOT NULL AND row_id OPERATOR(pg_catalog.<=) id_floor
            AND (writer_xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmax(legacy)
                 OR writer_xid OPERATOR(pg_catalog.=) ANY (popularity_engine.snapshot_xip(legacy))))
$$;
COMMENT ON FUNCTION popularity_engine.unaggregated(bigint, xid8, bigint, pg_snapshot, pg_snapshot) IS
  'Internal: whether the log row (row_id, writer_xid) is not yet aggregated by the refresh that stored snapshot snap (and, after a restore, the legacy snapshot for ids up to id_floor).';

CREATE FUNCTION popularity_engine.row_aggregated(
    row_id bigint, writer_xid xid8, id_floor bigint, snap pg_snapshot, legacy pg_snapshot)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT NOT popularity_engine.unaggregated(row_id, writer_xid, id_floor, snap, legacy)
$$;
COMMENT ON FUNCTION popularity_engine.row_aggregated(bigint, xid8, bigint, pg_snapshot, pg_snapshot) IS
  'Internal: whether the log row was aggregated by the refresh that stored snapshot snap (the negation of unaggregated).';

-- The snapshot a refresh step stores after it read the rows visible in `snap`:
--  * cut at `bound` when the step stopped at a transaction boundary: transactions from bound on
--    were not read, so they must still count as not aggregated (xmax = bound, xip below it);
--  * with `own_xid` still running: a refresh inside a transaction that itself wrote to the log
--    leaves those rows for the first refresh after that transaction commits.
-- NULL bound or own_xid: no cut, no own transaction.
CREATE FUNCTION popularity_engine.stored_snapshot(snap pg_snapshot, bound xid8, own_xid xid8)
RETURNS pg_snapshot LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH cut AS (SELECT least(pg_snapshot_xmax(snap), bound) AS xmax),
    running AS (SELECT x FROM pg_snapshot_xip(snap) AS x, cut WHERE x < cut.xmax
                UNION SELECT own_xid FROM cut WHERE own_xid < cut.xmax)
    SELECT format('%s:%s:%s',
                  least(pg_snapshot_xmin(snap), cut.xmax, (SELECT min(x) FROM running)), cut.xmax,
                  (SELECT string_agg(x::text, ',' ORDER BY x) FROM running))::pg_snapshot
      FROM cut
$$;
COMMENT ON FUNCTION popularity_engine.stored_snapshot(pg_snapshot, xid8, xid8) IS
  'Internal: the snapshot a refresh step stores: snap cut at transaction bound (NULL: no cut), with transaction own_xid (NULL: none) treated as still running.';

-- Where a step of at most about max_rows rows stops: the first transaction after the one that
-- wrote the max_rows-th unaggregated row (so a step never splits a transaction), or NULL when
-- fewer rows are pending or max_rows is NULL. Rows at or below id_floor are never cut.
CREATE FUNCTION popularity_engine.step_bound(
    id_floor bigint, snap pg_snapshot, own_xid xid8, max_rows bigint)
RETURNS xid8 LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    v_last xid8;
BEGIN
    IF max_rows IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT t.writer_xid INTO v_last
      FROM popularity_engine.product_interactions t
     WHERE popularity_engine.unaggregated(t.id, t.writer_xid, id_floor, snap, NULL)
       AND t.writer_xid IS DISTINCT FROM own_xid
     ORDER BY t.writer_xid OFFSET greatest(max_rows - 1, 0) LIMIT 1;
    RETURN (SELECT min(t.writer_xid)
              FROM popularity_engine.product_interactions t
             WHERE popularity_engine.unaggregated(t.id, t.writer_xid, id_floor, snap, NULL)
               AND t.writer_xid IS DISTINCT FROM own_xid AND t.writer_xid > v_last);
END $$;
COMMENT ON FUNCTION popularity_engine.step_bound(bigint, pg_snapshot, xid8, bigint) IS
  'Internal: the transaction at which a refresh step of about max_rows rows stops (NULL: no cut).';

-- Nothing new without reading the log. Every tracking call gives its transaction an id before
-- it draws a log id (nextval), so a row whose id was drawn before the marks were read belongs to
-- a transaction that had an id by then. A refresh stores with its snapshot the ids last drawn
-- from both sequences (the marks), read before that snapshot was taken, but only when every
-- transaction that had an id at that moment, other than the refresh's own, is below the
-- snapshot's xmax: finished, or listed as running (marks_fit_snapshot). Later, while
--  * neither sequence has moved (no id drawn, so no row written since), and
--  * every transaction the stored snapshot listed as running is still running, or aborted,
-- no row is pending, and the probe over every partition of the log can be skipped. Any doubt (a
-- sequence moved, even by a rolled-back or refused insert; a cached sequence, whose ids are
-- drawn without moving it; a running transaction that committed) falls back to reading.

-- The ids last drawn from each log's sequence (0 when none yet), then the id the next
-- transaction will get (read after them). A refresh reads them in a statement of its own,
-- before the statement whose snapshot it stores.
CREATE FUNCTION popularity_engine.log_id_marks(
    OUT interactions bigint, OUT searches bigint, OUT next_xid bigint)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    WITH drawn AS MATERIALIZED (
        SELECT coalesce(pg_sequence_last_value('popularity_engine.product_interactions_id_seq'), 0) AS i,
               coalesce(pg_sequence_last_value('popularity_engine.search_interactions_id_seq'), 0) AS s)
    SELECT d.i, d.s, popularity_engine.next_transaction_id() FROM drawn d
$$;
COMMENT ON FUNCTION popularity_engine.log_id_marks() IS
  'Internal: the ids last drawn from the sequences of product_interactions and search_interactions (0: none yet), and the next transaction id, read after them.';

-- Whether marks followed by next_xid may be stored with snap, the snapshot a refresh step stores
-- after reading them: the step must run in READ COMMITTED (so snap was taken after the marks),
-- not be cut at a bound (snap covers all it saw), and its transaction must have had no id when
-- the step began (own_xid_at_start NULL: it wrote no log row before the marks); and every
-- transaction with an id below next_xid, other than this one and its subtransactions, must be
-- below snap's xmax, where a running one is listed in its xip.
CREATE FUNCTION popularity_engine.marks_fit_snapshot(
    snap pg_snapshot, next_xid bigint, bound xid8, own_xid_at_start xid8)
RETURNS boolean LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT bound IS NULL AND own_xid_at_start IS NULL
       AND current_setting('transaction_isolation') = 'read committed'
       AND (next_xid <= s.xmax
            OR (next_xid - s.xmax <= 64 AND popularity_engine.own_transaction_ids(s.xmax, next_xid)))
      FROM (SELECT pg_snapshot_xmax(snap)::text::bigint AS xmax) s
$$;
COMMENT ON FUNCTION popularity_engine.marks_fit_snapshot(pg_snapshot, bigint, xid8, xid8) IS
  'Internal: whether id marks followed by next_xid describe snapshot snap of the calling refresh step (READ COMMITTED, not cut at bound, no id before the step, every other transaction that had an id when they were read below its xmax).';

-- Whether no log row can have been written since the refresh that stored `stored` with these
-- marks (NULL marks: unknown, so false), judged in the snapshot it returns: the statement's own,
-- taken before the sequences are read. A refresh that finds nothing new stores that snapshot.
-- With it, from the same reading of the sequences, whether ids were drawn since the marks (NULL
-- marks: false): then rows were almost surely written, and a refresh reads without probing first.
CREATE FUNCTION popularity_engine.logs_unchanged_since(
    stored pg_snapshot, interaction_mark bigint, search_mark bigint,
    OUT snap pg_snapshot, OUT unchanged boolean, OUT drawn boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_current_snapshot(),
           coalesce(m.interactions = interaction_mark AND m.searches = search_mark, false)
       AND (SELECT bool_and(s.seqcache = 1) FROM pg_sequence s
             WHERE s.seqrelid IN ('popularity_engine.product_interactions_id_seq'::regclass,
                                  'popularity_engine.search_interactions_id_seq'::regclass))
       AND NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(stored) AS x
                        WHERE pg_visible_in_snapshot(x, pg_current_snapshot())
                          AND pg_xact_status(x) IS DISTINCT FROM 'aborted'),
           coalesce(m.interactions <> interaction_mark OR m.searches <> search_mark, false)
      FROM popularity_engine.log_id_marks() m
$$;
COMMENT ON FUNCTION popularity_engine.logs_unchanged_since(pg_snapshot, bigint, bigint) IS
  'Internal: whether no row can have been written to either log since a refresh stored snapshot `stored` with these id marks (no id drawn since, no cached sequence, every transaction running in `stored` still running or aborted), the snapshot that was judged in, and whether an id was drawn from either log''s sequence since the marks.';
