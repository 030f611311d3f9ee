-- popularity_engine: refresh_user_preferences(as_of), incremental per-user aggregation.
-- Exactly once like refresh_popularity (see popularity.sql), with its own stored snapshot.

CREATE FUNCTION popularity_engine.affinity_weights_signature() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT md5(string_agg(format('%s:%s', interaction_type, affinity_weight), ',' ORDER BY interaction_type))
      FROM popularity_engine.interaction_weights
$$;
COMMENT ON FUNCTION popularity_engine.affinity_weights_signature() IS
  'Internal: fingerprint of the affinity weights, to notice edits between preference refreshes.';

-- One transaction's worth of refresh_user_preferences (see refresh_popularity_step).
CREATE FUNCTION popularity_engine.refresh_user_preferences_step(
    as_of timestamptz, max_rows bigint,
    OUT processed bigint, OUT more boolean, OUT note text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $proc$
#variable_conflict use_variable
DECLARE
    v_state    popularity_engine.preference_state;
    v_floors   popularity_engine.refresh_state;
    v_snap     pg_snapshot;
    v_own_xid  xid8 := pg_current_xact_id_if_assigned();
    v_new      bigint;
    v_h        double precision := popularity_engine.preference_half_life_seconds();
    v_sig      text := popularity_engine.affinity_weights_signature();
    v_landmark timestamptz;
    v_rebuild  text;
    v_bound    xid8;
    v_log_clause text;
    v_waited_note text := '';
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'popularity_engine.refresh_user_preferences: as_of must be a finite timestamp'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM popularity_engine.rebase_if_restored();
    SELECT * INTO v_state FROM popularity_engine.preference_state FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        v_waited_note := clock_timestamp()::text;
        SELECT * INTO v_state FROM popularity_engine.preference_state FOR UPDATE;
        v_waited_note := format('waited %s s for a concurrent refresh; ',
            round(extract(epoch FROM clock_timestamp() - v_waited_note::timestamptz)::numeric, 3));
    END IF;
    SELECT * INTO v_floors FROM popularity_engine.refresh_state;

    CREATE TEMP TABLE pe_user_delta (
        user_id bigint, product_id bigint, occurred_at timestamptz, aw double precision,
        category text, brand text
    ) ON COMMIT DROP;

    v_log_clause := popularity_engine.unaggregated_rows_clause(v_floors.legacy_interaction_id_floor,
        v_state.aggregated_snapshot, v_state.legacy_snapshot, v_own_xid);

    -- New rows and the snapshot, in one statement, cut at a transaction boundary after about
    -- max_rows rows (see refresh_popularity_step).
    EXECUTE format($sql$
        WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
        %3$s,
        moved AS (
            INSERT INTO pg_temp.pe_user_delta
            SELECT t.user_id, t.product_id, t.occurred_at,
                   CASE WHEN t.interaction_type = 'wishlist' AND t.event_value <> 1 THEN 0
                        ELSE w.affinity_weight END,
                   c.category, c.brand
              FROM popularity_engine.product_interactions t
              JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
              LEFT JOIN popularity_engine.catalog c ON c.product_id = t.product_id
             WHERE t.user_id IS NOT NULL AND t.product_id IS NOT NULL AND (%1$s)
               AND (t.id <= %2$s OR t.writer_xid < (SELECT b FROM bound))
            RETURNING 1)
        SELECT (SELECT s FROM snap), (SELECT b FROM bound), (SELECT count(*) FROM moved)$sql$,
        v_log_clause, v_floors.legacy_interaction_id_floor,
        popularity_engine.step_bound_cte(v_log_clause, v_floors.legacy_interaction_id_floor))
    USING max_rows
    INTO v_snap, v_bound, v_new;
    more := v_bound < pg_snapshot_xmax(v_snap);
    v_snap := popularity_engine.snapshot_cut(v_snap, v_bound);
    v_snap := popularity_engine.snapshot_with_running(v_snap, v_own_xid);
    ANALYZE pg_temp.pe_user_delta;

    v_rebuild := CASE
        WHEN v_state.landmark IS NULL THEN NULL  -- first refresh: the delta is everything
        WHEN v_state.half_life IS DISTINCT FROM make_interval(secs => v_h) THEN 'preference_half_life changed'
        WHEN v_state.weights_signature IS DISTINCT FROM v_sig THEN 'affinity weights changed'
    END;
    v_landmark := coalesce(v_state.landmark, as_of);

    IF v_rebuild IS NULL AND extract(epoch FROM as_of - v_landmark) / v_h > 60 THEN
        -- move the landmark before 2^x loses range: a uniform rescale, no rescan
        UPDATE popularity_engine.user_affinity_sums
           SET fwd = fwd * power(2::float8, extract(epoch FROM v_landmark - as_of) / v_h);
        v_landmark := as_of;
    END IF;

    -- Profiles count every interaction with a product, whatever its weight.
    INSERT INTO popularity_engine.user_profiles AS p
           (user_id, interaction_count, first_interaction, last_interaction, updated_at)
    SELECT d.user_id, count(*), min(d.occurred_at), max(d.occurred_at), now()
      FROM pg_temp.pe_user_delta d GROUP BY 1
    ON CONFLICT (user_id) DO UPDATE
       SET interaction_count = p.interaction_count + excluded.interaction_count,
           first_interaction = least(p.first_interaction, excluded.first_interaction),
           last_interaction = greatest(p.last_interaction, excluded.last_interaction),
           updated_at = now();

    IF v_rebuild IS NOT NULL THEN
        -- weights or half-life changed: affinities and item weights from the retained log
        v_landmark := as_of;
        DELETE FROM popularity_engine.user_affinity_sums;
        DELETE FROM popularity_engine.user_item_weights;
        TRUNCATE pg_temp.pe_user_delta;
        INSERT INTO pg_temp.pe_user_delta
        SELECT t.user_id, t.product_id, t.occurred_at,
               CASE WHEN t.interaction_type = 'wishlist' AND t.event_value <> 1 THEN 0
                    ELSE w.affinity_weight END,
               c.category, c.brand
          FROM popularity_engine.product_interactions t
          JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
          LEFT JOIN popularity_engine.catalog c ON c.product_id = t.product_id
         WHERE t.user_id IS NOT NULL AND t.product_id IS NOT NULL
           AND popularity_engine.row_aggregated(t.id, t.writer_xid, v_snap,
                                                v_floors.legacy_interaction_id_floor, NULL);
        ANALYZE pg_temp.pe_user_delta;
    END IF;

    INSERT INTO popularity_engine.user_item_weights AS u (user_id, product_id, weight, events, last_at)
    SELECT d.user_id, d.product_id, sum(d.aw), count(*), max(d.occurred_at)
      FROM pg_temp.pe_user_delta d WHERE d.aw > 0 GROUP BY 1, 2
    ON CONFLICT (user_id, product_id) DO UPDATE
       SET weight = u.weight + excluded.weight, events = u.events + excluded.events,
           last_at = greatest(u.last_at, excluded.last_at);

    INSERT INTO popularity_engine.user_affinity_sums AS a (user_id, dimension, value, fwd, events, updated_at)
    SELECT x.user_id, x.dimension, x.value,
           sum(x.aw * power(2::float8, extract(epoch FROM x.occurred_at - v_landmark) / v_h)), count(*), now()
      FROM (SELECT d.user_id, 'category' AS dimension, d.category AS value, d.aw, d.occurred_at
              FROM pg_temp.pe_user_delta d WHERE d.category IS NOT NULL AND d.aw > 0
            UNION ALL
            SELECT d.user_id, 'brand', d.brand, d.aw, d.occurred_at
              FROM pg_temp.pe_user_delta d WHERE d.brand IS NOT NULL AND d.aw > 0) x
     GROUP BY 1, 2, 3
    ON CONFLICT (user_id, dimension, value) DO UPDATE
       SET fwd = a.fwd + excluded.fwd, events = a.events + excluded.events, updated_at = now();

    UPDATE popularity_engine.preference_state
       SET aggregated_snapshot = v_snap,
           legacy_snapshot = NULL,
           as_of = refresh_user_preferences_step.as_of,
           landmark = v_landmark,
           half_life = make_interval(secs => v_h),
           weights_signature = v_sig,
           last_refresh = clock_timestamp();

    processed := v_new;
    note := format('%s%s interactions aggregated into user preferences%s', v_waited_note, v_new,
                   coalesce('; rebuilt from the log (' || v_rebuild || ')', ''));
END
$proc$;
COMMENT ON FUNCTION popularity_engine.refresh_user_preferences_step(timestamptz, bigint) IS
  'Internal: one transaction of refresh_user_preferences.';

CREATE PROCEDURE popularity_engine.refresh_user_preferences(
    as_of timestamptz DEFAULT now(), max_rows bigint DEFAULT 1000000)
LANGUAGE plpgsql AS $proc$
BEGIN
    CALL popularity_engine.run_job('refresh_user_preferences',
        pg_catalog.format('popularity_engine.refresh_user_preferences_step(%L::pg_catalog.timestamptz, $1)', as_of), max_rows);
END
$proc$;
COMMENT ON PROCEDURE popularity_engine.refresh_user_preferences(timestamptz, bigint) IS
  'Aggregates every committed interaction exactly once into user_profiles, user_item_weights and the category/brand affinities of user_preferences (decayed with preference_half_life, evaluated at as_of). Incremental, in transactions of about max_rows rows when called on its own; an affinity-weight or half-life edit rebuilds from the retained log. Logs every run and error to job_runs.';
