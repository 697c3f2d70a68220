-- Removes everything 001_report_rollups.up.sql created. Idempotent: running
-- it on a database without the rollups changes nothing. RESTRICT (the
-- default) on the schema: objects someone else put in `analytics` are kept,
-- and the rollback fails rather than dropping them.
BEGIN;
DROP TRIGGER IF EXISTS analytics_count_inserted_token ON tokens;
DROP TRIGGER IF EXISTS analytics_count_deleted_token ON tokens;
DROP TRIGGER IF EXISTS analytics_count_updated_token ON tokens;
DROP TRIGGER IF EXISTS analytics_forget_truncated_tokens ON tokens;
DROP TRIGGER IF EXISTS analytics_count_member ON users;
DROP TRIGGER IF EXISTS analytics_forget_truncated_members ON users;
DROP INDEX IF EXISTS analytics_tokens_created_at;
DROP FUNCTION IF EXISTS analytics.close_rollups();
DROP FUNCTION IF EXISTS analytics.move_rollup_boundary(timestamp);
DROP FUNCTION IF EXISTS analytics.install_rollup_triggers(regclass, timestamp);
DROP FUNCTION IF EXISTS analytics.count_inserted_token();
DROP FUNCTION IF EXISTS analytics.count_deleted_token();
DROP FUNCTION IF EXISTS analytics.count_updated_token();
DROP FUNCTION IF EXISTS analytics.forget_truncated_tokens();
DROP FUNCTION IF EXISTS analytics.forget_truncated_members();
DROP FUNCTION IF EXISTS analytics.count_member();
DROP FUNCTION IF EXISTS analytics.add_slot_tokens(timestamp, bigint, bigint);
DROP FUNCTION IF EXISTS analytics.add_slot_members(timestamp, bigint);
DROP FUNCTION IF EXISTS analytics.utc_slot(timestamp, text);
DROP FUNCTION IF EXISTS analytics.add_user_tokens(integer, bigint, bigint, timestamp);
DROP FUNCTION IF EXISTS analytics.add_user_tokens(integer, bigint);
DROP FUNCTION IF EXISTS analytics.find_last_used(integer);
DROP FUNCTION IF EXISTS analytics.find_last_used(integer, date);
DROP FUNCTION IF EXISTS analytics.add_used_tokens(date, bigint);
DROP TABLE IF EXISTS analytics.daily_used_tokens;
DROP TABLE IF EXISTS analytics.user_tokens;
DROP TABLE IF EXISTS analytics.member_months;
DROP TABLE IF EXISTS analytics.token_slots;
DROP TABLE IF EXISTS analytics.member_slots;
DROP TABLE IF EXISTS analytics.rollup_boundary;
DROP SCHEMA IF EXISTS analytics;
COMMIT;
