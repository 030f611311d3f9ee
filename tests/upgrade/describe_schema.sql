-- Describes every object of the popularity_engine extension, one line each, in a stable order:
-- members with their full definitions, privileges and comments, plus what hangs off the member
-- tables (columns, constraints, indexes, triggers) and the extension's configuration-table
-- filters. tests/upgrade/run.sh diffs this between a database updated from an older release and
-- a fresh install: any difference is a change missing from an upgrade script.
WITH ext AS (
    SELECT oid FROM pg_extension WHERE extname = 'popularity_engine'
), members AS (
    SELECT d.classid, d.objid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), member_tables AS (
    SELECT c.oid FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
), lines AS (
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) AS line FROM members m
    UNION ALL
    SELECT 'comment ' || pg_describe_object(m.classid, m.objid, 0) || ': ' || d.description
      FROM members m JOIN pg_description d ON d.classoid = m.classid AND d.objoid = m.objid AND d.objsubid = 0
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || ' ' || pg_get_functiondef(p.oid)
           || ' acl=' || coalesce(p.proacl::text, 'default')
      FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
           || ' acl=' || coalesce(c.relacl::text, 'default') || ' options=' || coalesce(c.reloptions::text, '')
           || coalesce(' view=' || pg_get_viewdef(c.oid), '')
      FROM member_tables t JOIN pg_class c ON c.oid = t.oid
    UNION ALL
    SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
           || coalesce(' comment ' || col_description(a.attrelid, a.attnum), '')
      FROM member_tables t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    UNION ALL
    SELECT 'constraint ' || co.conrelid::regclass || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
      FROM member_tables t JOIN pg_constraint co ON co.conrelid = t.oid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM member_tables t JOIN pg_index i ON i.indrelid = t.oid
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(tg.oid)
      FROM member_tables t JOIN pg_trigger tg ON tg.tgrelid = t.oid AND NOT tg.tgisinternal
    UNION ALL
    SELECT 'enum ' || e.enumtypid::regtype || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
      FROM members m JOIN pg_enum e ON m.classid = 'pg_type'::regclass AND e.enumtypid = m.objid
     GROUP BY e.enumtypid
    UNION ALL
    SELECT 'config ' || cfg.rel::regclass || ' ' || coalesce(cfg.cond, '')
      FROM pg_extension x, unnest(x.extconfig, x.extcondition) AS cfg(rel, cond)
     WHERE x.extname = 'popularity_engine'
    UNION ALL
    SELECT 'event trigger ' || evtname || ' ' || evtevent || ' ' || evtfoid::regproc
      FROM pg_event_trigger et JOIN members m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = et.oid
)
SELECT line FROM lines ORDER BY line COLLATE "C";
