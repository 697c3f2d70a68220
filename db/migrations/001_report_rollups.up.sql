-- Report rollups: per-day used-token counts and per-user token counts, kept
-- exact by triggers on `tokens`, so that the analytics reports read a few
-- thousand (daily) or one-per-user (user visits) rows instead of scanning
-- `tokens`. The Coworking API needs no change: its writes fire the triggers,
-- which run as the migration's owner (SECURITY DEFINER), so its role needs no
-- rights on the `analytics` schema.
--
-- Idempotent: every object is created if missing or replaced, and the counts
-- are recomputed from `tokens` on every run, so running this file again also
-- repairs rollups that drifted (for instance after a restore with triggers
-- disabled). Rolled back by 001_report_rollups.down.sql.
BEGIN;

-- Writers wait while the counts are rebuilt, so that none is counted twice
-- (in the backfill and by a trigger) or missed. Readers are not blocked. This
-- is the lock CREATE TRIGGER takes anyway, taken first to avoid an upgrade.
LOCK TABLE tokens IN SHARE ROW EXCLUSIVE MODE;

CREATE SCHEMA IF NOT EXISTS analytics;

-- Used tokens per day of created_at. A day's count is spread over `slot`
-- stripes (the writing backend's pid modulo 8): concurrent sessions marking
-- tokens of the same day (today, in practice) as used mostly update different
-- rows instead of queuing on one hot row. The report sums
-- the stripes. A count may be negative in one stripe (a token counted in
-- one session and uncounted in another); only the sum is meaningful.
CREATE TABLE IF NOT EXISTS analytics.daily_used_tokens (
    day    date     NOT NULL,
    slot   smallint NOT NULL,
    visits bigint   NOT NULL,
    CONSTRAINT daily_used_tokens_pk PRIMARY KEY (day, slot)
) WITH (fillfactor = 50);

-- Tokens per tokens.user_id, whether or not the user row exists (the report
-- joins `users` when read, so users changes need no trigger). Not striped: one
-- user's tokens are rarely written by concurrent sessions, and striping would
-- multiply the rows the user visits report reads.
CREATE TABLE IF NOT EXISTS analytics.user_tokens (
    user_id integer NOT NULL,
    visits  bigint  NOT NULL,
    CONSTRAINT user_tokens_pk PRIMARY KEY (user_id)
) WITH (fillfactor = 50);

-- Rows whose count fell to zero stay (deleting them would race with a
-- concurrent increment); the reports skip them.

-- Row-level AFTER triggers: the Coworking API writes one token per
-- statement, and for such a write one indexed update per changed count is the
-- cheapest way (statement-level triggers with transition tables measured two to
-- three times the write overhead: a tuplestore and a grouped query per
-- statement). AFTER, not BEFORE: a row that another trigger cancels or that
-- INSERT ... ON CONFLICT diverts is never counted.
--
-- The functions run as their owner (SECURITY DEFINER), so the API's role needs
-- no rights here. They have no `SET search_path` (measured: it costs each write
-- a few microseconds of GUC save and restore) and so must not depend on one:
-- every table, function, operator and type is schema-qualified, and pg_temp is
-- never searched for qualified names.

-- Add `delta` to the tokens of `user_id`. An UPDATE first, the cheap path of
-- every write but a user's first token; ON CONFLICT covers two first tokens at once.
CREATE OR REPLACE FUNCTION analytics.add_user_tokens(user_id integer, delta bigint)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    UPDATE analytics.user_tokens AS r
    SET visits = r.visits OPERATOR(pg_catalog.+) delta
    WHERE r.user_id OPERATOR(pg_catalog.=) add_user_tokens.user_id;
    IF NOT FOUND THEN
        INSERT INTO analytics.user_tokens AS r VALUES (add_user_tokens.user_id, delta)
        ON CONFLICT ON CONSTRAINT user_tokens_pk
        DO UPDATE SET visits = r.visits OPERATOR(pg_catalog.+) delta;
    END IF;
END
$$;

-- Add `delta` to the used tokens of `day`, in this backend's stripe.
CREATE OR REPLACE FUNCTION analytics.add_used_tokens(day date, delta bigint)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    stripe smallint := pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 8;
BEGIN
    UPDATE analytics.daily_used_tokens AS r
    SET visits = r.visits OPERATOR(pg_catalog.+) delta
    WHERE r.day OPERATOR(pg_catalog.=) add_used_tokens.day
      AND r.slot OPERATOR(pg_catalog.=) stripe;
    IF NOT FOUND THEN
        INSERT INTO analytics.daily_used_tokens AS r VALUES (add_used_tokens.day, stripe, delta)
        ON CONFLICT ON CONSTRAINT daily_used_tokens_pk
        DO UPDATE SET visits = r.visits OPERATOR(pg_catalog.+) delta;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION analytics.count_inserted_token() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    PERFORM analytics.add_user_tokens(NEW.user_id, 1);
    IF NEW.used_at IS NOT NULL THEN
        PERFORM analytics.add_used_tokens(NEW.created_at::pg_catalog.date, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION analytics.count_deleted_token() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    PERFORM analytics.add_user_tokens(OLD.user_id, -1);
    IF OLD.used_at IS NOT NULL THEN
        PERFORM analytics.add_used_tokens(OLD.created_at::pg_catalog.date, -1);
    END IF;
    RETURN NULL;
END
$$;

-- Called only for updates that move a count (see the trigger's WHEN): the
-- counts of the new row version minus those of the old one.
CREATE OR REPLACE FUNCTION analytics.count_updated_token() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    old_day date := OLD.created_at::pg_catalog.date;
    new_day date := NEW.created_at::pg_catalog.date;
BEGIN
    IF OLD.user_id OPERATOR(pg_catalog.<>) NEW.user_id THEN
        PERFORM analytics.add_user_tokens(OLD.user_id, -1);
        PERFORM analytics.add_user_tokens(NEW.user_id, 1);
    END IF;
    IF OLD.used_at IS NOT NULL
       AND (NEW.used_at IS NULL OR old_day OPERATOR(pg_catalog.<>) new_day) THEN
        PERFORM analytics.add_used_tokens(old_day, -1);
    END IF;
    IF NEW.used_at IS NOT NULL
       AND (OLD.used_at IS NULL OR old_day OPERATOR(pg_catalog.<>) new_day) THEN
        PERFORM analytics.add_used_tokens(new_day, 1);
    END IF;
    RETURN NULL;
END
$$;

-- TRUNCATE, not DELETE: TRUNCATE is not MVCC-safe (a snapshot taken before it
-- commits sees the table empty afterwards), and the rollups must look exactly
-- like `tokens` to every snapshot.
CREATE OR REPLACE FUNCTION analytics.forget_truncated_tokens() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    TRUNCATE analytics.user_tokens, analytics.daily_used_tokens;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER analytics_count_inserted_token
    AFTER INSERT ON tokens
    FOR EACH ROW EXECUTE FUNCTION analytics.count_inserted_token();
CREATE OR REPLACE TRIGGER analytics_count_deleted_token
    AFTER DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION analytics.count_deleted_token();
-- Updates that move no count (the `token` column, a new used_at on a used
-- token, a created_at within the same day) queue no trigger event at all.
CREATE OR REPLACE TRIGGER analytics_count_updated_token
    AFTER UPDATE OF user_id, created_at, used_at ON tokens
    FOR EACH ROW
    WHEN (OLD.user_id <> NEW.user_id
          OR OLD.created_at::date <> NEW.created_at::date
          OR (OLD.used_at IS NULL) <> (NEW.used_at IS NULL))
    EXECUTE FUNCTION analytics.count_updated_token();
CREATE OR REPLACE TRIGGER analytics_forget_truncated_tokens
    AFTER TRUNCATE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION analytics.forget_truncated_tokens();

-- Backfill (or rebuild) from the current rows, all in stripe 0.
DELETE FROM analytics.user_tokens;
DELETE FROM analytics.daily_used_tokens;
INSERT INTO analytics.user_tokens (user_id, visits)
SELECT user_id, count(*) FROM tokens GROUP BY user_id;
INSERT INTO analytics.daily_used_tokens (day, slot, visits)
SELECT created_at::date, 0, count(*) FROM tokens
WHERE used_at IS NOT NULL GROUP BY 1;

-- The report queries plan with fresh statistics from the first read.
ANALYZE analytics.user_tokens;
ANALYZE analytics.daily_used_tokens;

COMMIT;
