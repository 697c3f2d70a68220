-- Benchmark data: :users users and :tokens tokens, the same on every run
-- (setseed, one session, generated in row order, stored in created_at
-- order), into the empty tables of
-- db/1_create_tables.sql. For example, the L size:
--   psql -v users=100000 -v tokens=10000000 -f db/bench/generate.sql
--
-- The shape of a busy coworking space over the two years from 2023-01-02:
-- - tokens per user follow a power law (a few members come daily, most now
--   and then), and one user in twenty never had a token;
-- - the business grows: token density rises linearly over the weeks;
-- - weekdays carry 90 % of the tokens, Saturday 6 %, Sunday 4 %; hours from
--   07:00 to 19:00, peaking around 13:00;
-- - 60 % of the tokens are used, a few minutes after creation (exponential,
--   mean 20 minutes); users joined over the year before and the two years.
\set ON_ERROR_STOP on
BEGIN;
-- (\gset: the result goes to a variable instead of the output.)
SELECT setseed(0.5) \gset
-- Loading without the index and the foreign key, then building them, is
-- several times faster than maintaining them row by row; the end state is
-- the schema of db/1_create_tables.sql.
ALTER TABLE tokens DROP CONSTRAINT tokens_users_id_fk;
DROP INDEX tokens_user_id_token_used_at_index;

INSERT INTO users (first_name, last_name, joined_at, is_active)
SELECT (ARRAY['Ada', 'Ben', 'Chloe', 'Dmitri', 'Emma', 'Farid', 'Grace', 'Hugo',
              'Ines', 'Jonas', 'Kenji', 'Lena', 'Marta', 'Nils', 'Olga', 'Pablo'])
           [1 + floor(u_first * 16)::int],
       (ARRAY['Abbott', 'Baker', 'Costa', 'Dubois', 'Evans', 'Fischer', 'Garcia',
              'Hansen', 'Ivanova', 'Jensen', 'Kowalski', 'Lopez', 'Moyer', 'Novak'])
           [1 + floor(u_last * 14)::int],
       TIMESTAMP '2022-01-03 00:00' + u_joined * INTERVAL '1092 days',
       u_active < 0.9
FROM (SELECT random() AS u_first, random() AS u_last, random() AS u_joined,
             random() AS u_active
      FROM generate_series(1, :users)
      OFFSET 0) AS draws;

INSERT INTO tokens (user_id, token, created_at, used_at)
SELECT user_id, token, created_at,
       CASE WHEN u_used < 0.6
            THEN created_at + (1 - ln(1 - u_delay) * 20) * INTERVAL '1 minute'
       END
FROM (SELECT
        -- The rank of the user by activity, spread over the ids by a stride
        -- prime to the number of users (so the busiest are not ids 1, 2, ...).
        1 + (floor(0.95 * :users * power(u_user, 1.5))::bigint * 7919) % :users
          AS user_id,
        lpad(floor(u_token * 1000000)::int::text, 6, '0') AS token,
        TIMESTAMP '2023-01-02 00:00'
          + floor(104 * sqrt(u_week)) * INTERVAL '7 days'
          + CASE WHEN u_day < 0.9 THEN floor(u_day / 0.18)
                 WHEN u_day < 0.96 THEN 5
                 ELSE 6
            END * INTERVAL '1 day'
          + (7 + 4 * u_hour) * INTERVAL '1 hour'
          AS created_at,
        u_used, u_delay
      FROM (SELECT random() AS u_user, random() AS u_token, random() AS u_week,
                   random() AS u_day, random() + random() + random() AS u_hour,
                   random() AS u_used, random() AS u_delay
            FROM generate_series(1, :tokens)
            OFFSET 0) AS draws) AS tokens
-- In created_at order, as a table that the API appended to over two years.
ORDER BY created_at;

ALTER TABLE tokens ADD CONSTRAINT tokens_users_id_fk FOREIGN KEY (user_id) REFERENCES users;
CREATE INDEX tokens_user_id_token_used_at_index ON tokens (user_id, token, used_at);
COMMIT;

-- As on a database in service: statistics, and the visibility map that lets
-- index-only scans skip the heap.
VACUUM ANALYZE users;
VACUUM ANALYZE tokens;
