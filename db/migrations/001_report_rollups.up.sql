-- Report rollups: per-day used-token counts, per-user token counts and
-- per-15-minute token counts of the tokens created before a boundary (closed
-- time), and members per 15 minutes of joined_at, so that the analytics
-- reports read a few thousand (daily), one-per-user (user visits) or
-- one-per-quarter-hour (v2 usage) rows, plus the few tokens of open time (the
-- last hour or two), instead of scanning `tokens`. The boundary moves forward by analytics.close_rollups(), which a
-- CronJob calls (deployment/rollups-close.yaml); until it does, the open time
-- grows and the reports slow down, but they stay exact.
--
-- The common writes of the Coworking API (a token created now, used minutes
-- later) are in open time: the triggers' WHEN clauses, which compare
-- created_at with the boundary as a literal, are false for them, so they call
-- no function at all. Writes to closed time (rare: a late correction) fire the
-- triggers, which keep the counts exact in the writer's transaction and run as
-- the migration's owner (SECURITY DEFINER), so the API's role needs no rights
-- on the `analytics` schema. The API itself needs no change.
--
-- Idempotent: every object is created if missing or replaced, and the counts
-- are recomputed from `tokens` on every run, so running this file again also
-- repairs rollups that drifted (for instance after a restore with triggers
-- disabled). Rolled back by 001_report_rollups.down.sql.
BEGIN;

-- Writers wait while the counts are rebuilt, so that none is counted twice
-- (in the backfill and by a trigger) or missed. Readers are not blocked. This
-- is the lock CREATE TRIGGER takes anyway, taken first to avoid an upgrade.
LOCK TABLE tokens, users IN SHARE ROW EXCLUSIVE MODE;

CREATE SCHEMA IF NOT EXISTS analytics;

-- Replaced by a function of four arguments (an earlier version's).
DROP FUNCTION IF EXISTS analytics.add_user_tokens(integer, bigint);
-- Replaced by a function of two arguments (all time, or a month).
DROP FUNCTION IF EXISTS analytics.find_last_used(integer);

-- Used tokens of closed time per day of created_at. A day's count is spread
-- over `slot` stripes (the writing backend's pid modulo 8): concurrent sessions
-- correcting tokens of the same day mostly update different rows instead of
-- queuing on one hot row. The report sums the stripes. A count may be negative
-- in one stripe (a token counted in one session and uncounted in another);
-- only the sum is meaningful.
CREATE TABLE IF NOT EXISTS analytics.daily_used_tokens (
    day    date     NOT NULL,
    slot   smallint NOT NULL,
    visits bigint   NOT NULL,
    CONSTRAINT daily_used_tokens_pk PRIMARY KEY (day, slot)
) WITH (fillfactor = 50);

-- Tokens of closed time per tokens.user_id, whether or not the user row exists
-- (the report joins `users` when read, so users changes need no trigger). Not
-- striped: one user's tokens are rarely written by concurrent sessions, and
-- striping would multiply the rows the user visits report reads. `visits`
-- counts every token (the legacy user visits report's measure); `used` the
-- used ones (v2's visits), and `last_used` is the latest created_at of a used
-- one, NULL when there is none: the v2 member list over a range that starts
-- before every token reads these instead of `tokens` (src/v2/members_sql.rs).
CREATE TABLE IF NOT EXISTS analytics.user_tokens (
    user_id integer NOT NULL,
    visits  bigint  NOT NULL,
    CONSTRAINT user_tokens_pk PRIMARY KEY (user_id)
) WITH (fillfactor = 50);
-- Added to a table of an earlier version.
ALTER TABLE analytics.user_tokens
    ADD COLUMN IF NOT EXISTS used bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS last_used timestamp;
-- The members with the most visits first, as the v2 member list over all time
-- reads its leaders (src/v2/members_sql.rs): the first page of 95,000 members
-- without sorting them all. Only corrections and the hourly closing write it.
CREATE INDEX IF NOT EXISTS user_tokens_by_used
    ON analytics.user_tokens (used DESC, user_id) WHERE visits <> 0;

-- The same counts per calendar month of created_at, as written (the v2 member
-- list of a month reads its leaders from them, src/v2/members_sql.rs): `visits`
-- every token, `used` the used ones, `last_used` the latest created_at of a
-- used one in the month. Written only by corrections of closed time
-- (add_user_tokens) and the hourly closing, which changes `used` (in the
-- index): no HOT updates to leave room for. Zero counts stay, as in
-- user_tokens.
CREATE TABLE IF NOT EXISTS analytics.member_months (
    month     date      NOT NULL,
    user_id   integer   NOT NULL,
    visits    bigint    NOT NULL,
    used      bigint    NOT NULL,
    last_used timestamp,
    CONSTRAINT member_months_pk PRIMARY KEY (month, user_id)
);
CREATE INDEX IF NOT EXISTS member_months_by_used
    ON analytics.member_months (month, used DESC, user_id) WHERE visits <> 0;

-- The v2 usage report's counts, per 15 minutes of UTC: tokens of closed time
-- (issued, and used) and members (by joined_at, all of them: members are
-- written rarely, so their triggers have no boundary). `slot` is the UTC time
-- at which the quarter hour starts, from the timestamp read in the zone the
-- API writes in (rollup_boundary.db_timezone), as the report reads it. Every
-- zone's offset and midnight in use today is a whole quarter hour from UTC, so
-- a report in any zone adds up whole slots; where it cannot (a zone's local
-- mean time before 1900, a midnight that is repeated after a jump back), the
-- report reads `tokens` and `users` instead (src/v2/usage.rs). Not striped:
-- only corrections and the hourly closing write them. The counts are in the
-- primary key's index, so that a report reads them by an index-only scan (on
-- the pages that VACUUM marked all-visible: autovacuum does it within minutes
-- of the backfill, and of each hour's few new slots).
CREATE TABLE IF NOT EXISTS analytics.token_slots (
    slot          timestamp NOT NULL,
    tokens_issued bigint    NOT NULL,
    visits        bigint    NOT NULL,
    CONSTRAINT token_slots_pk PRIMARY KEY (slot) INCLUDE (tokens_issued, visits)
) WITH (fillfactor = 50);

CREATE TABLE IF NOT EXISTS analytics.member_slots (
    slot        timestamp NOT NULL,
    new_members bigint    NOT NULL,
    CONSTRAINT member_slots_pk PRIMARY KEY (slot) INCLUDE (new_members)
) WITH (fillfactor = 50);

-- Small tables that must stay all-visible: vacuumed after every 200 changed
-- or inserted rows (a fraction of a millisecond's work), not after a fifth of
-- the table as by default.
ALTER TABLE analytics.token_slots SET (
    autovacuum_vacuum_threshold = 200, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 200, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE analytics.member_slots SET (
    autovacuum_vacuum_threshold = 200, autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 200, autovacuum_vacuum_insert_scale_factor = 0);

-- Rows whose count fell to zero stay (deleting them would race with a
-- concurrent increment); the reports skip them.

-- Where closed time ends: the rollups count exactly the tokens whose
-- created_at is before `closed_before`, and the reports read the others from
-- `tokens` (through analytics_tokens_created_at). One row. The triggers carry
-- the same boundary as a literal; analytics.move_rollup_boundary changes both
-- in one transaction, so that every snapshot sees them agree. `tokens_table`
-- is the API's table as this migration found it, so that the functions below
-- need no search_path to find it.
CREATE TABLE IF NOT EXISTS analytics.rollup_boundary (
    only_row      boolean   PRIMARY KEY DEFAULT true CHECK (only_row),
    tokens_table  regclass  NOT NULL,
    closed_before timestamp NOT NULL CHECK (closed_before <> TIMESTAMP 'infinity')
);
-- The API's `users` table, and the zone in which the API writes its
-- timestamps: the session's TimeZone when this file runs (run it with PGTZ set
-- to the service's db_timezone). The v2 usage report reads the slots only
-- when its db_timezone is this zone. Added to a table of an earlier version.
ALTER TABLE analytics.rollup_boundary
    ADD COLUMN IF NOT EXISTS users_table regclass NOT NULL DEFAULT 'users'::regclass,
    ADD COLUMN IF NOT EXISTS db_timezone text NOT NULL DEFAULT current_setting('TimeZone');
ALTER TABLE analytics.rollup_boundary
    ALTER COLUMN users_table DROP DEFAULT, ALTER COLUMN db_timezone DROP DEFAULT;

-- Open time is read by created_at, through a BRIN index: tokens are appended
-- in created_at order, so the open hours are in the last few block ranges,
-- and an append costs the index next to nothing (a B-tree entry for every
-- token version measured +9 % server CPU on the API's writes, and twice the
-- cost of a correction of an old token, whose entry lands on a random leaf).
-- 32 pages a range: an hour of a busy space is one or two ranges to recheck.
-- autosummarize: a range is summarized as soon as the next one is written
-- (close_rollups does it too), so that open time is not a growing tail of
-- unsummarized ranges.
CREATE INDEX IF NOT EXISTS analytics_tokens_created_at ON tokens
    USING brin (created_at) WITH (pages_per_range = 32, autosummarize = on);

-- Row-level AFTER triggers: one indexed update per changed count is the
-- cheapest way for a one-token write (statement-level triggers with transition
-- tables measured two to three times the overhead: a tuplestore and a grouped
-- query per statement). AFTER, not BEFORE: a row that another trigger cancels
-- or that INSERT ... ON CONFLICT diverts is never counted.
--
-- The trigger functions run as their owner (SECURITY DEFINER), so the API's
-- role needs no rights here. They have no `SET search_path` (measured: it costs
-- each write a few microseconds of GUC save and restore) and so must not
-- depend on one: every table, function, operator and type is schema-qualified,
-- and pg_temp is never searched for qualified names.

-- Add `issued` tokens, `used` of them used, to the tokens of `user_id`, and
-- to its count of their month; `created_at` is theirs (one token's: `used` is
-- -1, 0 or 1). An UPDATE first, the cheap path of every write but a user's
-- first token (of the month); ON CONFLICT covers two first tokens at once. A
-- used token added can only move last_used later; one taken away that was the
-- latest makes find_last_used look again. The two tables get the same
-- statements, written out for each: one function over either table would
-- need EXECUTE, planned anew on every call of a trigger.
CREATE OR REPLACE FUNCTION analytics.add_user_tokens(
    user_id integer, issued bigint, used bigint, created_at timestamp)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    latest timestamp;
    token_month date := pg_catalog.date_trunc('month', add_user_tokens.created_at)::pg_catalog.date;
BEGIN
    UPDATE analytics.user_tokens AS r
    SET visits = r.visits OPERATOR(pg_catalog.+) issued,
        used = r.used OPERATOR(pg_catalog.+) add_user_tokens.used,
        last_used = CASE WHEN add_user_tokens.used OPERATOR(pg_catalog.>) 0
                         THEN GREATEST(r.last_used, add_user_tokens.created_at)
                         ELSE r.last_used END
    WHERE r.user_id OPERATOR(pg_catalog.=) add_user_tokens.user_id
    RETURNING r.last_used INTO latest;
    IF NOT FOUND THEN
        INSERT INTO analytics.user_tokens AS r (user_id, visits, used, last_used)
        VALUES (add_user_tokens.user_id, issued, add_user_tokens.used,
                CASE WHEN add_user_tokens.used OPERATOR(pg_catalog.>) 0
                     THEN add_user_tokens.created_at END)
        ON CONFLICT ON CONSTRAINT user_tokens_pk
        DO UPDATE SET visits = r.visits OPERATOR(pg_catalog.+) excluded.visits,
                      used = r.used OPERATOR(pg_catalog.+) excluded.used,
                      last_used = GREATEST(r.last_used, excluded.last_used)
        RETURNING r.last_used INTO latest;
    END IF;
    IF add_user_tokens.used OPERATOR(pg_catalog.<) 0
       AND latest OPERATOR(pg_catalog.=) add_user_tokens.created_at THEN
        PERFORM analytics.find_last_used(add_user_tokens.user_id, NULL);
    END IF;
    UPDATE analytics.member_months AS r
    SET visits = r.visits OPERATOR(pg_catalog.+) issued,
        used = r.used OPERATOR(pg_catalog.+) add_user_tokens.used,
        last_used = CASE WHEN add_user_tokens.used OPERATOR(pg_catalog.>) 0
                         THEN GREATEST(r.last_used, add_user_tokens.created_at)
                         ELSE r.last_used END
    WHERE r.month OPERATOR(pg_catalog.=) token_month
      AND r.user_id OPERATOR(pg_catalog.=) add_user_tokens.user_id
    RETURNING r.last_used INTO latest;
    IF NOT FOUND THEN
        INSERT INTO analytics.member_months AS r (month, user_id, visits, used, last_used)
        VALUES (token_month, add_user_tokens.user_id, issued, add_user_tokens.used,
                CASE WHEN add_user_tokens.used OPERATOR(pg_catalog.>) 0
                     THEN add_user_tokens.created_at END)
        ON CONFLICT ON CONSTRAINT member_months_pk
        DO UPDATE SET visits = r.visits OPERATOR(pg_catalog.+) excluded.visits,
                      used = r.used OPERATOR(pg_catalog.+) excluded.used,
                      last_used = GREATEST(r.last_used, excluded.last_used)
        RETURNING r.last_used INTO latest;
    END IF;
    IF add_user_tokens.used OPERATOR(pg_catalog.<) 0
       AND latest OPERATOR(pg_catalog.=) add_user_tokens.created_at THEN
        PERFORM analytics.find_last_used(add_user_tokens.user_id, token_month);
    END IF;
END
$$;

-- Sets last_used of `user_id` from `tokens`, after its latest used token was
-- taken away (by a correction: rare): over all time when `month` is NULL,
-- else in that month. The user's row is locked by the caller,
-- and this is a statement of its own, so (read committed) it sees every
-- change committed before that lock, and this transaction's own, the
-- current statement's included (it runs in an AFTER trigger); a change not
-- yet committed waits for the lock and then moves last_used itself.
CREATE OR REPLACE FUNCTION analytics.find_last_used(user_id integer, month date)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tokens regclass;
    closed_before timestamp;
    latest timestamp;
BEGIN
    SELECT b.tokens_table, b.closed_before INTO STRICT tokens, closed_before
    FROM analytics.rollup_boundary AS b;
    EXECUTE format(
        'SELECT max(created_at) FROM %s
         WHERE user_id = $1 AND used_at IS NOT NULL AND created_at < $2
           AND ($3 IS NULL OR created_at >= $3)', tokens)
    INTO latest
    USING find_last_used.user_id,
          LEAST(closed_before, find_last_used.month + interval '1 month'), find_last_used.month;
    IF find_last_used.month IS NULL THEN
        UPDATE analytics.user_tokens AS r SET last_used = latest
        WHERE r.user_id = find_last_used.user_id;
    ELSE
        UPDATE analytics.member_months AS r SET last_used = latest
        WHERE r.user_id = find_last_used.user_id AND r.month = find_last_used.month;
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

-- The slot of token_slots and member_slots for a timestamp written in `zone`:
-- the start of its quarter hour in UTC. Within a day of PostgreSQL's limits
-- (where the conversion could leave its range) and at infinity, the timestamp
-- itself: no report's range reaches there through the slots. A plain SQL
-- function, so that the bulk counts below inline it.
CREATE OR REPLACE FUNCTION analytics.utc_slot(written timestamp, zone text)
RETURNS timestamp LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
    WHEN written OPERATOR(pg_catalog.>=) '4713-01-03 00:00:00 BC'::pg_catalog.timestamp
     AND written OPERATOR(pg_catalog.<) '294276-12-30 00:00:00'::pg_catalog.timestamp
    THEN pg_catalog.date_bin('00:15:00'::pg_catalog.interval,
                             pg_catalog.timezone('UTC', pg_catalog.timezone(zone, written)),
                             '2000-01-01 00:00:00'::pg_catalog.timestamp)
    ELSE written
END
$$;

-- Add `issued` tokens, `used` of them used, to the token slot `slot`.
CREATE OR REPLACE FUNCTION analytics.add_slot_tokens(slot timestamp, issued bigint, used bigint)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    UPDATE analytics.token_slots AS r
    SET tokens_issued = r.tokens_issued OPERATOR(pg_catalog.+) issued,
        visits = r.visits OPERATOR(pg_catalog.+) used
    WHERE r.slot OPERATOR(pg_catalog.=) add_slot_tokens.slot;
    IF NOT FOUND THEN
        INSERT INTO analytics.token_slots AS r VALUES (add_slot_tokens.slot, issued, used)
        ON CONFLICT ON CONSTRAINT token_slots_pk
        DO UPDATE SET tokens_issued = r.tokens_issued OPERATOR(pg_catalog.+) issued,
                      visits = r.visits OPERATOR(pg_catalog.+) used;
    END IF;
END
$$;

-- Add `delta` members to the member slot `slot`.
CREATE OR REPLACE FUNCTION analytics.add_slot_members(slot timestamp, delta bigint)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    UPDATE analytics.member_slots AS r
    SET new_members = r.new_members OPERATOR(pg_catalog.+) delta
    WHERE r.slot OPERATOR(pg_catalog.=) add_slot_members.slot;
    IF NOT FOUND THEN
        INSERT INTO analytics.member_slots AS r VALUES (add_slot_members.slot, delta)
        ON CONFLICT ON CONSTRAINT member_slots_pk
        DO UPDATE SET new_members = r.new_members OPERATOR(pg_catalog.+) delta;
    END IF;
END
$$;

-- Called only for a token of closed time (see the trigger's WHEN). TG_ARGV[0]
-- is the zone the API writes in.
CREATE OR REPLACE FUNCTION analytics.count_inserted_token() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    used boolean := NEW.used_at IS NOT NULL;
BEGIN
    PERFORM analytics.add_user_tokens(NEW.user_id, 1, used::pg_catalog.int4, NEW.created_at);
    IF used THEN
        PERFORM analytics.add_used_tokens(NEW.created_at::pg_catalog.date, 1);
    END IF;
    PERFORM analytics.add_slot_tokens(analytics.utc_slot(NEW.created_at, TG_ARGV[0]),
                                      1, used::pg_catalog.int4);
    RETURN NULL;
END
$$;

-- Called only for a token of closed time (see the trigger's WHEN). TG_ARGV[0]
-- is the zone the API writes in.
CREATE OR REPLACE FUNCTION analytics.count_deleted_token() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    used boolean := OLD.used_at IS NOT NULL;
BEGIN
    PERFORM analytics.add_user_tokens(OLD.user_id, -1,
                                      OPERATOR(pg_catalog.-) used::pg_catalog.int4, OLD.created_at);
    IF used THEN
        PERFORM analytics.add_used_tokens(OLD.created_at::pg_catalog.date, -1);
    END IF;
    PERFORM analytics.add_slot_tokens(analytics.utc_slot(OLD.created_at, TG_ARGV[0]),
                                      -1, OPERATOR(pg_catalog.-) used::pg_catalog.int4);
    RETURN NULL;
END
$$;

-- Called for updates of a token of closed time, before or after (see the
-- trigger's WHEN): the counts of the new row version minus those of the old
-- one, where each version counts only if it is in closed time; nothing when
-- they are the same. TG_ARGV[0] is the boundary, the same value as the WHEN's
-- literal, in ISO format (which every DateStyle reads); TG_ARGV[1] the zone
-- the API writes in.
CREATE OR REPLACE FUNCTION analytics.count_updated_token() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    closed_before timestamp := TG_ARGV[0]::pg_catalog.timestamp;
    old_closed boolean := OLD.created_at OPERATOR(pg_catalog.<) closed_before;
    new_closed boolean := NEW.created_at OPERATOR(pg_catalog.<) closed_before;
    old_used boolean := old_closed AND OLD.used_at IS NOT NULL;
    new_used boolean := new_closed AND NEW.used_at IS NOT NULL;
    old_day date := OLD.created_at::pg_catalog.date;
    new_day date := NEW.created_at::pg_catalog.date;
    same_user boolean := OLD.user_id OPERATOR(pg_catalog.=) NEW.user_id;
    same_day boolean := old_day OPERATOR(pg_catalog.=) new_day;
    same_month boolean := pg_catalog.date_trunc('month', OLD.created_at)
                          OPERATOR(pg_catalog.=) pg_catalog.date_trunc('month', NEW.created_at);
    same_time boolean := OLD.created_at IS NOT DISTINCT FROM NEW.created_at;
BEGIN
    IF old_closed AND new_closed AND same_time THEN
        IF old_used OPERATOR(pg_catalog.<>) new_used THEN
            PERFORM analytics.add_slot_tokens(analytics.utc_slot(NEW.created_at, TG_ARGV[1]),
                0, new_used::pg_catalog.int4 OPERATOR(pg_catalog.-) old_used::pg_catalog.int4);
        END IF;
    ELSE
        IF old_closed THEN
            PERFORM analytics.add_slot_tokens(analytics.utc_slot(OLD.created_at, TG_ARGV[1]),
                -1, OPERATOR(pg_catalog.-) old_used::pg_catalog.int4);
        END IF;
        IF new_closed THEN
            PERFORM analytics.add_slot_tokens(analytics.utc_slot(NEW.created_at, TG_ARGV[1]),
                1, new_used::pg_catalog.int4);
        END IF;
    END IF;
    IF old_closed AND new_closed AND same_user AND same_month
       AND (same_time OR NOT (old_used OR new_used)) THEN
        IF old_used OPERATOR(pg_catalog.<>) new_used THEN
            PERFORM analytics.add_user_tokens(NEW.user_id, 0,
                new_used::pg_catalog.int4 OPERATOR(pg_catalog.-) old_used::pg_catalog.int4,
                NEW.created_at);
        END IF;
    ELSE
        IF old_closed THEN
            PERFORM analytics.add_user_tokens(OLD.user_id, -1,
                OPERATOR(pg_catalog.-) old_used::pg_catalog.int4, OLD.created_at);
        END IF;
        IF new_closed THEN
            PERFORM analytics.add_user_tokens(NEW.user_id, 1, new_used::pg_catalog.int4,
                                              NEW.created_at);
        END IF;
    END IF;
    IF old_used AND NOT (new_used AND same_day) THEN
        PERFORM analytics.add_used_tokens(old_day, -1);
    END IF;
    IF new_used AND NOT (old_used AND same_day) THEN
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
    TRUNCATE analytics.user_tokens, analytics.member_months, analytics.daily_used_tokens,
        analytics.token_slots;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION analytics.forget_truncated_members() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    TRUNCATE analytics.member_slots;
    RETURN NULL;
END
$$;

-- Members, for every write of joined_at. TG_ARGV[0] is the zone the API writes in.
CREATE OR REPLACE FUNCTION analytics.count_member() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN
        PERFORM analytics.add_slot_members(analytics.utc_slot(OLD.joined_at, TG_ARGV[0]), -1);
    END IF;
    IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN
        PERFORM analytics.add_slot_members(analytics.utc_slot(NEW.joined_at, TG_ARGV[0]), 1);
    END IF;
    RETURN NULL;
END
$$;

-- (Re)creates the row triggers with `boundary` as their literal. Only
-- move_rollup_boundary calls it, under its lock. The WHEN clauses are
-- evaluated by the executor without calling any function, so that a write to
-- open time queues no trigger event. They are as short as they can be: the
-- executor parses and prepares a trigger's WHEN anew for every statement, and
-- a WHEN that also skipped the updates that move no count (four comparisons
-- more) cost the API's `UPDATE ... SET used_at` a third of its server time,
-- measured; count_updated_token finds those and does nothing. Updates of the
-- `token` column alone queue nothing (UPDATE OF).
-- The members' triggers (every write of joined_at) are recreated with them,
-- with the zone of analytics.rollup_boundary as their argument.
CREATE OR REPLACE FUNCTION analytics.install_rollup_triggers(tokens regclass, boundary timestamp)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO, YMD' AS $$
DECLARE
    members regclass;
    zone text;
BEGIN
    SELECT b.users_table, b.db_timezone INTO STRICT members, zone
    FROM analytics.rollup_boundary AS b;
    EXECUTE format(
        'CREATE OR REPLACE TRIGGER analytics_count_inserted_token AFTER INSERT ON %s
         FOR EACH ROW WHEN (NEW.created_at < %L::timestamp)
         EXECUTE FUNCTION analytics.count_inserted_token(%L)', tokens, boundary, zone);
    EXECUTE format(
        'CREATE OR REPLACE TRIGGER analytics_count_deleted_token AFTER DELETE ON %s
         FOR EACH ROW WHEN (OLD.created_at < %L::timestamp)
         EXECUTE FUNCTION analytics.count_deleted_token(%L)', tokens, boundary, zone);
    EXECUTE format(
        'CREATE OR REPLACE TRIGGER analytics_count_updated_token
         AFTER UPDATE OF user_id, created_at, used_at ON %1$s
         FOR EACH ROW WHEN (OLD.created_at < %2$L::timestamp OR NEW.created_at < %2$L::timestamp)
         EXECUTE FUNCTION analytics.count_updated_token(%2$L, %3$L)', tokens, boundary, zone);
    EXECUTE format(
        'CREATE OR REPLACE TRIGGER analytics_count_member
         AFTER INSERT OR DELETE OR UPDATE OF joined_at ON %s
         FOR EACH ROW EXECUTE FUNCTION analytics.count_member(%L)', members, zone);
END
$$;

-- Moves the boundary to `target`, forward (counting the tokens created in
-- between into the rollups) or back (taking them out again), and the triggers'
-- literal with it, in the caller's transaction (read committed). It waits for the writers of
-- `tokens` and holds them off meanwhile (the lock CREATE TRIGGER takes), so
-- that no token is counted twice or missed; readers are not blocked.
CREATE OR REPLACE FUNCTION analytics.move_rollup_boundary(target timestamp)
RETURNS timestamp LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tokens regclass;
    zone text;
    boundary timestamp;
    sign bigint;
    low timestamp;
    high timestamp;
BEGIN
    IF target IS NULL OR target = TIMESTAMP 'infinity' THEN
        RAISE EXCEPTION 'the rollup boundary must be a timestamp before infinity, not %', target;
    END IF;
    -- The counting below must see every token committed before the lock,
    -- which an older snapshot (repeatable read, serializable) would not.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'move the rollup boundary in a read committed transaction'
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    SELECT b.tokens_table, b.db_timezone INTO STRICT tokens, zone
    FROM analytics.rollup_boundary AS b;
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', tokens);
    SELECT b.closed_before INTO STRICT boundary FROM analytics.rollup_boundary AS b FOR UPDATE;
    IF target = boundary THEN
        RETURN boundary;
    ELSIF target > boundary THEN
        sign := 1; low := boundary; high := target;
    ELSE
        sign := -1; low := target; high := boundary;
    END IF;
    -- Forward, the latest used token can only become later; back, the users
    -- whose latest is taken out of closed time look for the one before.
    EXECUTE format(
        'INSERT INTO analytics.user_tokens AS r (user_id, visits, used, last_used)
         SELECT user_id, $1 * count(*), $1 * count(used_at),
                max(created_at) FILTER (WHERE used_at IS NOT NULL) FROM %s
         WHERE created_at >= $2 AND created_at < $3 GROUP BY user_id
         ON CONFLICT ON CONSTRAINT user_tokens_pk
         DO UPDATE SET visits = r.visits + excluded.visits, used = r.used + excluded.used,
                       last_used = CASE WHEN $1 > 0 THEN GREATEST(r.last_used, excluded.last_used)
                                        ELSE r.last_used END', tokens)
    USING sign, low, high;
    EXECUTE format(
        'INSERT INTO analytics.member_months AS r (month, user_id, visits, used, last_used)
         SELECT date_trunc(''month'', created_at)::date, user_id, $1 * count(*), $1 * count(used_at),
                max(created_at) FILTER (WHERE used_at IS NOT NULL)
         FROM %s WHERE created_at >= $2 AND created_at < $3 GROUP BY 1, 2
         ON CONFLICT ON CONSTRAINT member_months_pk
         DO UPDATE SET visits = r.visits + excluded.visits, used = r.used + excluded.used,
                       last_used = CASE WHEN $1 > 0 THEN GREATEST(r.last_used, excluded.last_used)
                                        ELSE r.last_used END', tokens)
    USING sign, low, high;
    IF sign < 0 THEN
        EXECUTE format(
            'UPDATE analytics.user_tokens AS r
             SET last_used = (SELECT max(t.created_at) FROM %s AS t
                              WHERE t.user_id = r.user_id AND t.used_at IS NOT NULL
                                AND t.created_at < $1)
             WHERE r.last_used >= $1', tokens)
        USING low;
        EXECUTE format(
            'UPDATE analytics.member_months AS r
             SET last_used = (SELECT max(t.created_at) FROM %s AS t
                              WHERE t.user_id = r.user_id AND t.used_at IS NOT NULL
                                AND t.created_at >= r.month AND t.created_at < $1)
             WHERE r.last_used >= $1', tokens)
        USING low;
    END IF;
    EXECUTE format(
        'INSERT INTO analytics.daily_used_tokens AS r (day, slot, visits)
         SELECT created_at::date, 0, $1 * count(*) FROM %s
         WHERE created_at >= $2 AND created_at < $3 AND used_at IS NOT NULL GROUP BY 1
         ON CONFLICT ON CONSTRAINT daily_used_tokens_pk
         DO UPDATE SET visits = r.visits + excluded.visits', tokens)
    USING sign, low, high;
    EXECUTE format(
        'INSERT INTO analytics.token_slots AS r (slot, tokens_issued, visits)
         SELECT analytics.utc_slot(created_at, $4), $1 * count(*), $1 * count(used_at) FROM %s
         WHERE created_at >= $2 AND created_at < $3 GROUP BY 1
         ON CONFLICT ON CONSTRAINT token_slots_pk
         DO UPDATE SET tokens_issued = r.tokens_issued + excluded.tokens_issued,
                       visits = r.visits + excluded.visits', tokens)
    USING sign, low, high, zone;
    UPDATE analytics.rollup_boundary SET closed_before = target;
    PERFORM analytics.install_rollup_triggers(tokens, target);
    RETURN target;
END
$$;

-- What the CronJob calls: summarizes the index's new block ranges, and closes
-- time up to the start of the previous hour of the session's time zone (set PGTZ to the zone in which the API writes), so
-- that tokens are used within open time, minutes after they were created. Does
-- nothing when that is not later than the boundary. Gives up after 5 s of
-- waiting for the writers' lock rather than queue them for longer; the next
-- run catches up.
CREATE OR REPLACE FUNCTION analytics.close_rollups()
RETURNS timestamp LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    target timestamp := date_trunc('hour', localtimestamp) - interval '1 hour';
    boundary timestamp;
    tokens regclass;
BEGIN
    SELECT b.closed_before, b.tokens_table INTO STRICT boundary, tokens
    FROM analytics.rollup_boundary AS b;
    PERFORM brin_summarize_new_values(i.indexrelid)
    FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
    WHERE i.indrelid = tokens AND c.relname = 'analytics_tokens_created_at';
    IF target <= boundary THEN
        RETURN boundary;
    END IF;
    RETURN analytics.move_rollup_boundary(target);
END
$$;

-- Only the owner may move the counts; close_rollups is granted to the
-- service's role by deployment/postgres/readonly-role.sql.
REVOKE EXECUTE ON FUNCTION analytics.add_user_tokens(integer, bigint, bigint, timestamp),
    analytics.find_last_used(integer, date),
    analytics.add_used_tokens(date, bigint),
    analytics.add_slot_tokens(timestamp, bigint, bigint),
    analytics.add_slot_members(timestamp, bigint),
    analytics.install_rollup_triggers(regclass, timestamp),
    analytics.move_rollup_boundary(timestamp),
    analytics.close_rollups() FROM PUBLIC;

CREATE OR REPLACE TRIGGER analytics_forget_truncated_tokens
    AFTER TRUNCATE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION analytics.forget_truncated_tokens();
CREATE OR REPLACE TRIGGER analytics_forget_truncated_members
    AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION analytics.forget_truncated_members();

-- Backfill (or rebuild): nothing closed, then close time up to the previous
-- hour, which counts every token created before it; every member.
DELETE FROM analytics.user_tokens;
DELETE FROM analytics.member_months;
DELETE FROM analytics.daily_used_tokens;
DELETE FROM analytics.token_slots;
DELETE FROM analytics.member_slots;
INSERT INTO analytics.rollup_boundary (tokens_table, closed_before, users_table, db_timezone)
VALUES ('tokens'::regclass, TIMESTAMP '-infinity', 'users'::regclass, current_setting('TimeZone'))
ON CONFLICT (only_row) DO UPDATE
SET tokens_table = excluded.tokens_table, closed_before = excluded.closed_before,
    users_table = excluded.users_table, db_timezone = excluded.db_timezone;
INSERT INTO analytics.member_slots (slot, new_members)
SELECT analytics.utc_slot(joined_at, current_setting('TimeZone')), count(*) FROM users GROUP BY 1;
SELECT analytics.install_rollup_triggers('tokens'::regclass, TIMESTAMP '-infinity');
SELECT analytics.close_rollups();

-- The report queries plan with fresh statistics from the first read.
ANALYZE analytics.user_tokens;
ANALYZE analytics.member_months;
ANALYZE analytics.daily_used_tokens;
ANALYZE analytics.token_slots;
ANALYZE analytics.member_slots;
ANALYZE analytics.rollup_boundary;

COMMIT;
