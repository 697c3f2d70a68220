-- The service's PostgreSQL role: it logs in and reads users and tokens (and
-- the report rollups of the schema analytics, when a migration has created
-- it), nothing else, but for one write: analytics.close_rollups(), which the
-- CronJob rollups-close calls. Put its name in the ConfigMap postgres-config (DB_USERNAME)
-- and its password in the Secret postgres-password (DB_PASSWORD).
--
--   read -rs RO_PASSWORD && export RO_PASSWORD
--   psql -v ro_role=coworking_analytics -f readonly-role.sql
--
-- The password comes from the environment variable RO_PASSWORD, never from the
-- command line, where `ps` and the shell's history would show it (psql 15 or
-- later: \getenv). Run it as the owner of the tables (on RDS, the master user
-- when it created them), connected to the service's database (DB_NAME): the
-- grants are on current_database(). Idempotent: run it again after a migration
-- that adds tables to analytics, and to change the password.
\set ON_ERROR_STOP on

\getenv ro_password RO_PASSWORD
\if :{?ro_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'readonly-role.sql needs the role''s password in the environment variable RO_PASSWORD'; END $$;
\endif
-- An empty one would clear the role's password (PostgreSQL takes '' as none),
-- and the service could no longer log in, with nothing to say why.
SELECT :'ro_password' = '' AS ro_password_empty \gset
\if :ro_password_empty
DO $$ BEGIN RAISE EXCEPTION 'readonly-role.sql: RO_PASSWORD is empty'; END $$;
\endif
\if :{?ro_role}
\else
\set ro_role coworking_analytics
\endif

-- psql does not expand its variables inside the DO block below: hand the name
-- over in a session setting.
SET coworking.readonly_role TO :'ro_role';

DO $$
DECLARE
    role_name text := current_setting('coworking.readonly_role');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
        EXECUTE format('CREATE ROLE %I LOGIN', role_name);
    END IF;
    EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT', role_name);
    -- Belt and braces: even a query that slipped through could not write.
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', role_name);

    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), role_name);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', role_name);
    -- Exactly these two tables, whatever an earlier run or a hand granted.
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', role_name);
    EXECUTE format('GRANT SELECT ON TABLE public.users, public.tokens TO %I', role_name);

    -- The rollups of db/migrations, once they exist.
    IF EXISTS (SELECT FROM pg_namespace WHERE nspname = 'analytics') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA analytics TO %I', role_name);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA analytics FROM %I', role_name);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO %I', role_name);
        -- Its one write: the CronJob rollups-close moves the rollups' boundary
        -- to the previous hour, through this function only.
        IF to_regprocedure('analytics.close_rollups()') IS NOT NULL THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION analytics.close_rollups() TO %I', role_name);
        END IF;
    END IF;
END
$$;

ALTER ROLE :"ro_role" PASSWORD :'ro_password';
