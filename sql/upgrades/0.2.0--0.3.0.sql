-- popularity_engine 0.2.0 -> 0.3.0 (ALTER EXTENSION popularity_engine UPDATE TO '0.3.0')
--
-- The DDL of this step only: new, renamed and dropped tables, columns, indexes and types, views
-- whose columns change, DROP FUNCTION of routines whose signature or result changed or that are
-- gone, data migrations. scripts/compose_upgrades.py puts every routine of 0.3.0's install
-- script at the marker below (what comes after it runs once they exist), then its privileges.

-- @routines
