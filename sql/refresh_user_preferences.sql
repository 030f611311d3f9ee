-- popularity_engine: refresh_user_preferences(as_of), incremental per-user aggregation, as named
-- steps: read the delta, count it in the profiles, add it to the item weights and the
-- category/brand sums. Exactly once like refresh_popularity (exactly_once.sql), with its own
-- stored snapshot in preference_state.

-- The weights' text, not a hash of it, for the reason weights_signature() gives.
CREATE FUNCTION popularity_engine.affinity_weights_signature() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT string_agg(format('%s:%s', interaction_type, affinity_weight), ',' ORDER BY interaction_type)
      FROM popularity_engine.interaction_weights
$$;
COMMENT ON FUNCTION popularity_engine.affinity_weights_signature() IS
  'Internal: fingerprint of the affinity weights, to notice edits between preference refreshes.';

-- Copies into pg_temp.pe_user_delta the log rows (with a user and a product) that the state has
-- not aggregated (own transaction aside, only transactions before `bound` when given), or, with
-- `rebuild`, every row the statement sees; is_new marks the rows not aggregated before, which
-- are the only ones the all-time profile counts take. Returns the statement's snapshot.
CREATE FUNCTION popularity_engine.read_user_delta(
    state popularity_engine.preference_state, id_floor bigint, own_xid xid8, bound xid8, rebuild boolean,
    OUT snap pg_snapshot, OUT interactions bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $fn$
BEGIN
    CREATE TEMP TABLE pe_user_delta (
        user_id bigint, product_id bigint, occurred_at timestamptz, aw double precision,
        category text, brand text, is_new boolean
    ) ON COMMIT DROP;
    WITH taken AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
    moved AS (
        INSERT INTO pg_temp.pe_user_delta
        SELECT t.user_id, t.product_id, t.occurred_at,
               CASE WHEN popularity_engine.counts_for_popularity(t.interaction_type, t.event_value)
                    THEN w.affinity_weight ELSE 0 END,
               c.category, c.brand,
               popularity_engine.unaggregated(t.id, t.writer_xid, id_floor, state.aggregated_snapshot, state.legacy_snapshot)
          FROM popularity_engine.product_interactions t
          JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
          LEFT JOIN popularity_engine.catalog c ON c.product_id = t.product_id
         WHERE t.user_id IS NOT NULL AND t.product_id IS NOT NULL AND t.writer_xid IS DISTINCT FROM own_xid
           AND (rebuild OR (popularity_engine.unaggregated(t.id, t.writer_xid, id_floor,
                                                           state.aggregated_snapshot, state.legacy_snapshot)
                            AND (bound IS NULL OR t.id <= id_floor OR t.writer_xid < bound)))
        RETURNING is_new)
    SELECT (SELECT s FROM taken), (SELECT count(*) FILTER (WHERE is_new) FROM moved)
      INTO snap, interactions;
    ANALYZE pg_temp.pe_user_delta;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.read_user_delta(popularity_engine.preference_state, bigint, xid8, xid8, boolean) IS
  'Internal: copies the log rows refresh_user_preferences has not aggregated (or, to rebuild, all of them) into pe_user_delta and returns the snapshot of the statement that read them.';

-- Profiles count every new interaction with a product, whatever its weight; item weights and
-- decayed category/brand sums add the delta's weighted rows.
CREATE FUNCTION popularity_engine.apply_user_delta(landmark timestamptz, half_life_seconds double precision)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    INSERT INTO popularity_engine.user_profiles AS p
           (user_id, interaction_count, first_interaction, last_interaction, updated_at)
    SELECT d.user_id, count(*), min(d.occurred_at), max(d.occurred_at), now()
      FROM pg_temp.pe_user_delta d WHERE d.is_new GROUP BY 1
    ON CONFLICT (user_id) DO UPDATE
       SET interaction_count = p.interaction_count + excluded.interaction_count,
           first_interaction = least(p.first_interaction, excluded.first_interaction),
           last_interaction = greatest(p.last_interaction, excluded.last_interaction),
           updated_at = now();

    INSERT INTO popularity_engine.user_item_weights AS u (user_id, product_id, weight, events, last_at)
    SELECT d.user_id, d.product_id, sum(d.aw), count(*), max(d.occurred_at)
      FROM pg_temp.pe_user_delta d WHERE d.aw > 0 GROUP BY 1, 2
    ON CONFLICT (user_id, product_id) DO UPDATE
       SET weight = u.weight + excluded.weight, events = u.events + excluded.events,
           last_at = greatest(u.last_at, excluded.last_at);

    INSERT INTO popularity_engine.user_preference_sums AS a (user_id, dimension, value, fwd, events, updated_at)
    SELECT x.user_id, x.dimension, x.value,
           sum(x.aw * popularity_engine.decay_factor(x.occurred_at, landmark, half_life_seconds)), count(*), now()
      FROM (SELECT d.user_id, 'category' AS dimension, d.category AS value, d.aw, d.occurred_at
              FROM pg_temp.pe_user_delta d WHERE d.category IS NOT NULL AND d.aw > 0
            UNION ALL
            SELECT d.user_id, 'brand', d.brand, d.aw, d.occurred_at
              FROM pg_temp.pe_user_delta d WHERE d.brand IS NOT NULL AND d.aw > 0) x
     GROUP BY 1, 2, 3
    ON CONFLICT (user_id, dimension, value) DO UPDATE
       SET fwd = a.fwd + excluded.fwd, events = a.events + excluded.events, updated_at = now();
END
$fn$;
COMMENT ON FUNCTION popularity_engine.apply_user_delta(timestamptz, double precision) IS
  'Internal: adds pe_user_delta to user_profiles (new rows only), user_item_weights and user_preference_sums.';

-- One transaction's worth of refresh_user_preferences (see refresh_popularity_step). An edit of
-- the affinity weights or the half-life rebuilds item weights and sums from the retained log,
-- in one step.
CREATE FUNCTION popularity_engine.refresh_user_preferences_step(
    as_of timestamptz, max_rows bigint,
    OUT processed bigint, OUT more boolean, OUT note text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $proc$
#variable_conflict use_variable
DECLARE
    v_state    popularity_engine.preference_state;
    v_floor    bigint;
    v_snap     pg_snapshot;
    v_own_xid  xid8 := pg_current_xact_id_if_assigned();
    v_h        double precision := popularity_engine.preference_half_life_seconds();
    v_sig      text := popularity_engine.affinity_weights_signature();
    v_landmark timestamptz;
    v_rebuild  text;
    v_bound    xid8;
    v_waited   text;
    v_marks    record;
    v_read     boolean;
BEGIN
    PERFORM popularity_engine.check_as_of('refresh_user_preferences', as_of);
    PERFORM popularity_engine.rebase_if_restored();
    v_waited := popularity_engine.lock_state_row('popularity_engine.preference_state');
    -- before any statement whose snapshot may be stored (see logs_unchanged_since)
    SELECT * INTO v_marks FROM popularity_engine.log_id_marks();
    SELECT * INTO v_state FROM popularity_engine.preference_state;
    v_floor := (SELECT legacy_interaction_id_floor FROM popularity_engine.refresh_state);
    v_rebuild := CASE
        WHEN v_state.landmark IS NULL THEN NULL  -- first refresh: the delta is everything
        WHEN v_state.half_life IS DISTINCT FROM make_interval(secs => v_h) THEN 'preference_half_life changed'
        WHEN v_state.weights_signature IS DISTINCT FROM v_sig THEN 'affinity weights changed'
    END;
    v_landmark := coalesce(v_state.landmark, as_of);
    IF v_rebuild IS NOT NULL THEN
        v_landmark := as_of;
        DELETE FROM popularity_engine.user_preference_sums;
        DELETE FROM popularity_engine.user_item_weights;
    ELSE
        SELECT u.snap INTO v_snap  -- nothing new: this snapshot is stored and the log is not read
          FROM popularity_engine.logs_unchanged_since(v_state.aggregated_snapshot, v_state.interaction_id_mark,
                                                      v_state.search_id_mark) u
         WHERE u.unchanged AND v_state.legacy_snapshot IS NULL;
        v_bound := CASE WHEN v_snap IS NULL THEN
            popularity_engine.step_bound(v_floor, v_state.aggregated_snapshot, v_own_xid, max_rows) END;
    END IF;
    v_read := v_snap IS NULL;
    processed := 0;
    IF v_read THEN
        SELECT * INTO v_snap, processed
          FROM popularity_engine.read_user_delta(v_state, v_floor, v_own_xid, v_bound, v_rebuild IS NOT NULL);
    END IF;
    more := v_bound IS NOT NULL AND v_bound < pg_snapshot_xmax(v_snap);
    v_snap := popularity_engine.stored_snapshot(v_snap, v_bound, v_own_xid);

    IF v_rebuild IS NULL AND extract(epoch FROM as_of - v_landmark) / v_h > 60 THEN
        -- move the landmark before 2^x loses range: a uniform rescale, no rescan
        UPDATE popularity_engine.user_preference_sums
           SET fwd = fwd * popularity_engine.decay_factor(v_landmark, as_of, v_h);
        v_landmark := as_of;
    END IF;
    IF v_read THEN
        PERFORM popularity_engine.apply_user_delta(v_landmark, v_h);
    END IF;

    UPDATE popularity_engine.preference_state
       SET aggregated_snapshot = v_snap, legacy_snapshot = NULL,
           as_of = refresh_user_preferences_step.as_of, landmark = v_landmark,
           half_life = make_interval(secs => v_h), weights_signature = v_sig,
           last_refresh = clock_timestamp(),
           -- the marks, when they describe the stored snapshot (NULL: unknown)
           (interaction_id_mark, search_id_mark) = (SELECT v_marks.interactions, v_marks.searches
                WHERE popularity_engine.marks_fit_snapshot(v_snap, v_marks.next_xid, v_bound, v_own_xid));
    note := format('%s%s interactions aggregated into user preferences%s', v_waited, processed,
                   coalesce('; rebuilt from the log (' || v_rebuild || ')', ''));
END
$proc$;
COMMENT ON FUNCTION popularity_engine.refresh_user_preferences_step(timestamptz, bigint) IS
  'Internal: one transaction of refresh_user_preferences.';

CREATE PROCEDURE popularity_engine.refresh_user_preferences(
    as_of timestamptz DEFAULT now(), max_rows bigint DEFAULT 1000000)
LANGUAGE plpgsql AS $proc$
BEGIN
    CALL popularity_engine.run_job('refresh_user_preferences', as_of, max_rows, NULL);
END
$proc$;
COMMENT ON PROCEDURE popularity_engine.refresh_user_preferences(timestamptz, bigint) IS
  'Aggregates every committed interaction exactly once into user_profiles, user_item_weights and the category/brand affinities of user_preferences (decayed with preference_half_life, evaluated at as_of). Incremental, in transactions of about max_rows rows when called on its own; an affinity-weight or half-life edit rebuilds from the retained log. Logs every run and error to job_runs.';
