-- bench/quality.sh, step 1 in a scratch database: the events and the catalog (already checked by
-- validate.py, copied into q.events and q.catalog), split into training events and held-out
-- targets by one protocol, and the users to evaluate.
--   :protocol      loo (leave each user's last new product out) or cut (hold out the last
--                  :holdout_days days of the whole log)
--   :max_users     how many users to evaluate at most (a fixed pseudo-random sample)
\set ON_ERROR_STOP on

-- held_out: the event is not training. In `loo`, each user's last new product is held out: the
-- events from its first interaction on (users with at least two products), so the target is the
-- next product the user discovered, not a repeat of one they had just viewed. In `cut`, every
-- event from the cut on.
CREATE TABLE q.split AS
SELECT e.line, e.user_id, e.product_id, e.type, e.occurred_at, e.value,
       CASE :'protocol'
           WHEN 'loo' THEN e.products >= 2 AND (e.occurred_at, e.line) >= (e.last_new_at, e.last_new_line)
           ELSE e.occurred_at >= (SELECT max(occurred_at) FROM q.events) - make_interval(days => :holdout_days)
       END AS held_out
  FROM (SELECT e.*, f.products, f.last_new_at, f.last_new_line
          FROM q.events e
          JOIN (SELECT DISTINCT ON (user_id) user_id, first_at AS last_new_at, first_line AS last_new_line,
                       count(*) OVER (PARTITION BY user_id) AS products
                  FROM (SELECT DISTINCT ON (user_id, product_id) user_id, product_id,
                               occurred_at AS first_at, line AS first_line
                          FROM q.events ORDER BY user_id, product_id, occurred_at, line) firsts
                 ORDER BY user_id, first_at DESC, first_line DESC) f USING (user_id)) e;
CREATE INDEX ON q.split (user_id) WHERE NOT held_out;

-- What each user is asked to find: the held-out products new to them (a product already in a
-- user's training history is masked for every method, so it could never be found).
CREATE TABLE q.targets AS
SELECT DISTINCT s.user_id, s.product_id
  FROM q.split s
 WHERE s.held_out
   AND EXISTS (SELECT 1 FROM q.split h WHERE NOT h.held_out AND h.user_id = s.user_id)
   AND NOT EXISTS (SELECT 1 FROM q.split h WHERE NOT h.held_out AND h.user_id = s.user_id
                                             AND h.product_id = s.product_id);
CREATE INDEX ON q.targets (user_id, product_id);

CREATE TABLE q.eval_users AS
SELECT user_id FROM (SELECT DISTINCT user_id FROM q.targets) u
 ORDER BY md5(user_id::text) LIMIT :max_users;

CREATE TABLE q.history AS
SELECT s.user_id, array_agg(DISTINCT s.product_id) AS products
  FROM q.split s JOIN q.eval_users u USING (user_id)
 WHERE NOT s.held_out
 GROUP BY 1;

CREATE TABLE q.train_end AS SELECT max(occurred_at) AS as_of FROM q.split WHERE NOT held_out;

SELECT format('split (%s): %s training events, %s held-out targets of %s users; evaluating %s users',
              :'protocol', (SELECT count(*) FROM q.split WHERE NOT held_out),
              (SELECT count(*) FROM q.targets), (SELECT count(DISTINCT user_id) FROM q.targets),
              (SELECT count(*) FROM q.eval_users)) AS split;
