-- The background worker without shared_preload_libraries (pg_regress does not preload): no worker runs and the
-- functions say so; its settings exist, are server-wide and range-checked. test/tap/014_worker.pl runs the worker.
CREATE TABLE wk (id int, v vector(3), ts timestamptz DEFAULT now());
INSERT INTO wk (id, v) VALUES (1, '[1,2,3]'), (2, '[4,5,6]');
CREATE INDEX wk_idx ON wk USING s5vector (v, ts) WITH (hot_window = '1 hour');
SELECT hot_elements, worker, last_error FROM s5vector_index_stats('wk_idx');
SELECT * FROM s5vector_worker_status();
SHOW s5vector.naptime;
SHOW s5vector.worker_enabled;
SHOW s5vector.max_rows_per_round;
SHOW s5vector.worker_lock_timeout;
SHOW s5vector.worker_cost_delay;
SHOW s5vector.worker_cost_limit;
-- Server-wide: not settable in a session.
SET s5vector.naptime = '10s';
SET s5vector.worker_enabled = off;
-- Ranges (ALTER SYSTEM checks the value before writing anything).
ALTER SYSTEM SET s5vector.naptime = 0;
ALTER SYSTEM SET s5vector.naptime = '2d';
ALTER SYSTEM SET s5vector.max_rows_per_round = 0;
ALTER SYSTEM SET s5vector.worker_lock_timeout = '20min';
ALTER SYSTEM SET s5vector.worker_enabled = 'sometimes';
ALTER SYSTEM SET s5vector.worker_cost_delay = '1s';
ALTER SYSTEM SET s5vector.worker_cost_limit = 20000;
-- The status names other databases' indexes: pg_read_all_stats only.
CREATE ROLE s5v_wk_user;
SET ROLE s5v_wk_user;
SELECT * FROM s5vector_worker_status();
RESET ROLE;
GRANT pg_read_all_stats TO s5v_wk_user;
SET ROLE s5v_wk_user;
SELECT count(*) FROM s5vector_worker_status();
RESET ROLE;
DROP ROLE s5v_wk_user;
DROP TABLE wk;
