-- The documented schema: every object exists, carries a COMMENT, and the weights match.
CREATE EXTENSION IF NOT EXISTS popularity_engine;

SELECT extversion, nspname AS schema, extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'popularity_engine';

-- all 20 interaction types, in declaration order
SELECT string_agg(t::text, ', ') FROM unnest(enum_range(NULL::popularity_engine.interaction_type)) t;

-- the default weight table
SELECT interaction_type, counter, popularity_weight, affinity_weight
  FROM popularity_engine.interaction_weights ORDER BY interaction_type;

-- every table, view, sequence, function and type of the extension has a comment
SELECT pg_describe_object(classid, objid, objsubid) AS object_without_comment
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'popularity_engine')
   AND d.deptype = 'e'
   AND obj_description(objid, (SELECT relname FROM pg_class WHERE oid = classid)) IS NULL
 ORDER BY 1;

-- tracking entry points are not executable by PUBLIC
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute,
       p.prosecdef AS security_definer, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'popularity_engine'::regnamespace AND p.proname LIKE 'track%'
 ORDER BY 1;

-- weights survive a restore: inserting an existing type updates it instead of failing
INSERT INTO popularity_engine.interaction_weights (interaction_type, counter, popularity_weight, affinity_weight)
VALUES ('view', 'view_count', 2.5, 1.0);
SELECT popularity_weight FROM popularity_engine.interaction_weights WHERE interaction_type = 'view';
UPDATE popularity_engine.interaction_weights SET popularity_weight = 2.0 WHERE interaction_type = 'view';

-- weights are validated
\set VERBOSITY terse
UPDATE popularity_engine.interaction_weights SET popularity_weight = -1 WHERE interaction_type = 'view';
UPDATE popularity_engine.interaction_weights SET counter = 'price' WHERE interaction_type = 'view';
