-- popularity_engine: partitions of the log, retention, and erasure of a user.

-- Weekly partitions (Monday 00:00 UTC to the next) from `since` to `weeks_ahead` weeks after
-- this one. Rows already in the default partition for a new week are moved into it.
CREATE FUNCTION popularity_engine.ensure_partitions(
    since timestamptz DEFAULT NULL, weeks_ahead integer DEFAULT 4)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_week    timestamptz;
    v_name    text;
    v_created integer := 0;
    v_moved   bigint;
    v_moving  boolean;
BEGIN
    IF weeks_ahead IS NULL OR weeks_ahead < 1 OR weeks_ahead > 52 THEN
        RAISE EXCEPTION 'popularity_engine.ensure_partitions: weeks_ahead = % is not allowed: expected 1 to 52', weeks_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_week IN
        SELECT w FROM generate_series(
                   date_trunc('week', coalesce(since, now()), 'UTC'),
                   -- in hours: weeks would be added in the session's time zone, an hour short
                   -- or long across a daylight-saving change
                   date_trunc('week', now(), 'UTC') + make_interval(hours => 168 * weeks_ahead),
                   interval '168 hours') AS w
    LOOP
        v_name := 'product_interactions_p' || to_char(v_week AT TIME ZONE 'UTC', 'YYYYMMDD');
        CONTINUE WHEN to_regclass('popularity_engine.' || quote_ident(v_name)) IS NOT NULL;
        -- rows of that week already in the default partition must leave it before the week's
        -- partition can exist; they are moved with writer_xid and ids unchanged, so aggregation
        -- is unaffected
        v_moving := EXISTS (SELECT 1 FROM popularity_engine.product_interactions_default
                             WHERE occurred_at >= v_week AND occurred_at < v_week + interval '168 hours');
        IF v_moving THEN
            LOCK TABLE popularity_engine.product_interactions IN ACCESS EXCLUSIVE MODE;
            CREATE TEMP TABLE pe_moving ON COMMIT DROP AS
                SELECT * FROM popularity_engine.product_interactions_default
                 WHERE occurred_at >= v_week AND occurred_at < v_week + interval '168 hours';
            DELETE FROM popularity_engine.product_interactions_default
             WHERE occurred_at >= v_week AND occurred_at < v_week + interval '168 hours';
        END IF;
        EXECUTE format('CREATE TABLE popularity_engine.%I PARTITION OF popularity_engine.product_interactions
                        FOR VALUES FROM (%L) TO (%L)', v_name, v_week, v_week + interval '168 hours');
        IF v_moving THEN
            INSERT INTO popularity_engine.product_interactions SELECT * FROM pg_temp.pe_moving;
            GET DIAGNOSTICS v_moved = ROW_COUNT;
            DROP TABLE pg_temp.pe_moving;
            RAISE NOTICE 'popularity_engine: moved % rows from the default partition into %', v_moved, v_name;
        END IF;
        PERFORM popularity_engine.index_log_partition(('popularity_engine.' || quote_ident(v_name))::regclass);
        EXECUTE format('COMMENT ON TABLE popularity_engine.%I IS %L', v_name,
                       'Interactions of the week from ' || to_char(v_week AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ' (UTC).');
        v_created := v_created + 1;
    END LOOP;
    RETURN v_created;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.ensure_partitions(timestamptz, integer) IS
  'Creates the weekly partitions of product_interactions from the week of `since` (default: this week) to weeks_ahead weeks ahead; rows already in the default partition for a new week are moved into it. Returns how many partitions it created. cleanup_interactions() calls it.';

-- Rows of one partition of the log that refresh_popularity or refresh_user_preferences has not
-- aggregated yet (a partition with any is kept). The partition is the only dynamic part.
CREATE FUNCTION popularity_engine.pending_in_partition(
    part regclass, refresh popularity_engine.refresh_state, prefs popularity_engine.preference_state)
RETURNS bigint LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_pending bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s t
                     WHERE popularity_engine.unaggregated(t.id, t.writer_xid, $1, $2, $3)
                        OR popularity_engine.unaggregated(t.id, t.writer_xid, $1, $4, $5)', part)
       INTO v_pending
      USING refresh.legacy_interaction_id_floor, refresh.aggregated_snapshot, refresh.legacy_snapshot,
            prefs.aggregated_snapshot, prefs.legacy_snapshot;
    RETURN v_pending;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.pending_in_partition(regclass, popularity_engine.refresh_state, popularity_engine.preference_state) IS
  'Internal: how many rows of a partition of product_interactions a refresh has not aggregated yet.';

CREATE FUNCTION popularity_engine.cleanup_interactions_step(
    retention interval, OUT processed bigint, OUT more boolean, OUT note text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $proc$
#variable_conflict use_variable
DECLARE
    v_keep      interval;
    v_cutoff    timestamptz;
    v_part      record;
    v_pending   bigint;
    v_dropped   integer := 0;
    v_kept      text[] := '{}';
    v_rows      bigint := 0;
    v_n         bigint;
    v_created   integer;
    v_refresh   popularity_engine.refresh_state;
    v_prefs     popularity_engine.preference_state;
BEGIN
    -- one cleanup at a time (two would race to create the same partitions); a second one waits
    PERFORM pg_advisory_xact_lock(hashtext('popularity_engine.cleanup_interactions'));
    v_keep := coalesce(retention, make_interval(secs => popularity_engine.retention_seconds()));
    IF v_keep < interval '0' THEN
        RAISE EXCEPTION 'popularity_engine.cleanup_interactions: retention % is not allowed: expected a positive interval', v_keep
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- trending reads the raw events of its window: never drop those
    v_keep := greatest(v_keep, make_interval(secs => popularity_engine.trending_window_seconds()) + interval '1 day');
    v_cutoff := now() - v_keep;
    v_created := popularity_engine.ensure_partitions(v_cutoff, 4);
    SELECT * INTO v_refresh FROM popularity_engine.refresh_state;
    SELECT * INTO v_prefs FROM popularity_engine.preference_state;

    -- whole weekly partitions that end before the cutoff, once everything in them is aggregated
    FOR v_part IN
        SELECT c.oid::regclass AS rel, c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'popularity_engine.product_interactions'::regclass
           AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
         ORDER BY 3
    LOOP
        CONTINUE WHEN v_part.upper_bound IS NULL OR v_part.upper_bound > v_cutoff;
        v_pending := popularity_engine.pending_in_partition(v_part.rel, v_refresh, v_prefs);
        IF v_pending > 0 THEN
            v_kept := v_kept || format('%s (%s rows not aggregated yet)', v_part.relname, v_pending);
            CONTINUE;
        END IF;
        EXECUTE format('SELECT count(*) FROM %s', v_part.rel) INTO v_n;
        EXECUTE format('DROP TABLE %s', v_part.rel);
        v_rows := v_rows + v_n;
        v_dropped := v_dropped + 1;
    END LOOP;

    -- old rows in the default partition, and old searches, once aggregated
    DELETE FROM popularity_engine.product_interactions_default t
     WHERE t.occurred_at < v_cutoff
       AND popularity_engine.row_aggregated(t.id, t.writer_xid, v_refresh.legacy_interaction_id_floor,
                                            v_refresh.aggregated_snapshot, v_refresh.legacy_snapshot)
       AND popularity_engine.row_aggregated(t.id, t.writer_xid, v_refresh.legacy_interaction_id_floor,
                                            v_prefs.aggregated_snapshot, v_prefs.legacy_snapshot);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_rows := v_rows + v_n;
    DELETE FROM popularity_engine.search_interactions t
     WHERE t.occurred_at < v_cutoff
       AND popularity_engine.row_aggregated(t.id, t.writer_xid, v_refresh.legacy_search_id_floor,
                                            v_refresh.aggregated_snapshot, v_refresh.legacy_snapshot);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_rows := v_rows + v_n;
    DELETE FROM popularity_engine.interaction_event_ids WHERE recorded_at < v_cutoff;
    DELETE FROM popularity_engine.popularity_hourly WHERE bucket_hour < v_cutoff;
    DELETE FROM popularity_engine.search_hourly WHERE bucket_hour < v_cutoff;
    PERFORM popularity_engine.trim_window_lists(v_cutoff);
    DELETE FROM popularity_engine.job_runs WHERE started_at < now() - greatest(v_keep, interval '30 days');

    processed := v_rows;
    more := false;
    note := format('kept %s; dropped %s partitions, %s rows older than %s; created %s partitions%s',
                   v_keep, v_dropped, v_rows, v_cutoff, v_created,
                   CASE WHEN cardinality(v_kept) > 0 THEN '; waiting for a refresh: ' || array_to_string(v_kept, ', ') ELSE '' END);
END
$proc$;
COMMENT ON FUNCTION popularity_engine.cleanup_interactions_step(interval) IS
  'Internal: the work of cleanup_interactions, in one transaction.';

CREATE PROCEDURE popularity_engine.cleanup_interactions(retention interval DEFAULT NULL)
LANGUAGE plpgsql AS $proc$
BEGIN
    CALL popularity_engine.run_job('cleanup_interactions', NULL, NULL, retention);
END
$proc$;
COMMENT ON PROCEDURE popularity_engine.cleanup_interactions(interval) IS
  'Retention: creates the partitions of the coming weeks, drops whole weekly partitions of product_interactions older than retention (default: the retention setting; never less than the trending window plus a day) once every row in them is aggregated, and deletes old aggregated searches, idempotency keys and hourly buckets. Aggregates keep their totals. Logs to job_runs.';

CREATE FUNCTION popularity_engine.forget_user(user_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_variable
DECLARE
    v_state   popularity_engine.refresh_state;
    v_removed bigint := 0;
    v_n       bigint;
    v_table   text;
BEGIN
    IF user_id IS NULL OR user_id <= 0 THEN
        RAISE EXCEPTION 'popularity_engine.forget_user: user_id % is not allowed: expected a positive id', user_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- serialise with refresh_popularity, whose trending sums still count this user's events
    SELECT * INTO v_state FROM popularity_engine.refresh_state FOR UPDATE;
    IF v_state.as_of IS NOT NULL THEN
        -- take the user's aggregated events out of the trending sums now: once deleted, the
        -- refresh could not subtract them when they leave the window
        UPDATE popularity_engine.product_stats s
           SET trend_events = s.trend_events - d.n,
               trend_fwd = CASE WHEN s.trend_events - d.n = 0 THEN 0 ELSE s.trend_fwd - d.c END
          FROM (SELECT t.product_id, count(*) AS n,
                       sum(w.popularity_weight * popularity_engine.decay_factor(t.occurred_at, v_state.landmark,
                               extract(epoch FROM v_state.trending_half_life)::float8)) AS c
                  FROM popularity_engine.product_interactions t
                  JOIN popularity_engine.interaction_weights w ON w.interaction_type = t.interaction_type
                 WHERE t.user_id = forget_user.user_id AND t.product_id IS NOT NULL
                   AND w.popularity_weight > 0
                   AND popularity_engine.counts_for_popularity(t.interaction_type, t.event_value)
                   AND t.occurred_at BETWEEN v_state.as_of - v_state.trending_window AND v_state.as_of
                   AND popularity_engine.row_aggregated(t.id, t.writer_xid, v_state.legacy_interaction_id_floor,
                                                        v_state.aggregated_snapshot, v_state.legacy_snapshot)
                 GROUP BY 1) d
         WHERE s.product_id = d.product_id;
    END IF;
    DELETE FROM popularity_engine.interaction_event_ids k
     USING popularity_engine.product_interactions t
     WHERE t.user_id = forget_user.user_id AND k.event_id = t.event_id AND k.interaction_id = t.id;
    GET DIAGNOSTICS v_n = ROW_COUNT; v_removed := v_removed + v_n;
    FOREACH v_table IN ARRAY ARRAY['product_interactions', 'search_interactions', 'user_cart',
                                   'user_wishlist', 'purchase_history', 'user_profiles',
                                   'user_item_weights', 'user_preference_sums'] LOOP
        EXECUTE format('DELETE FROM popularity_engine.%I WHERE user_id = $1', v_table) USING forget_user.user_id;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_removed := v_removed + v_n;
    END LOOP;
    RETURN v_removed;
END
$fn$;
COMMENT ON FUNCTION popularity_engine.forget_user(bigint) IS
  'Erases a user: interactions, searches, cart, wishlist, purchases, profile, item weights and affinities. Returns how many rows it removed. Product aggregates keep their totals (trending drops the user''s events at once).';
