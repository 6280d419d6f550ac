-- avg(vector) and sum(vector): NULLs, no rows, mixed dimensions, overflow, GROUP BY, parallel plans.

SELECT avg(v) FROM unnest(ARRAY['[1,2,3]'::vector, '[3,5,7]']) v;
SELECT avg(v) FROM unnest(ARRAY['[1,2,3]'::vector, '[3,5,7]', NULL]) v;
SELECT avg(v) FROM unnest(ARRAY[]::vector[]) v;
SELECT avg(v) FROM unnest(ARRAY[NULL, NULL]::vector[]) v;
SELECT avg(v) FROM unnest(ARRAY['[1,2]'::vector, '[3]']) v;
SELECT avg(v) FROM unnest(ARRAY['[3e38]'::vector, '[3e38]']) v;
SELECT avg(v) FROM unnest(ARRAY['[1]'::vector, '[2]', '[4]']) v;
SELECT avg(v) FROM unnest(ARRAY['[-1.5,0.5]'::vector]) v;

SELECT sum(v) FROM unnest(ARRAY['[1,2,3]'::vector, '[3,5,7]']) v;
SELECT sum(v) FROM unnest(ARRAY['[1,2,3]'::vector, '[3,5,7]', NULL]) v;
SELECT sum(v) FROM unnest(ARRAY[]::vector[]) v;
SELECT sum(v) FROM unnest(ARRAY['[1,2]'::vector, '[3]']) v;
SELECT sum(v) FROM unnest(ARRAY['[3e38]'::vector, '[3e38]']) v;

-- the aggregate steps called directly: state is {count, sum_1, ..., sum_n}
SELECT vector_accum('{0}', '[1,2,3]');
SELECT vector_accum('{1,1,2,3}', '[1,2,3]');
SELECT vector_accum('{0,0,0,0}', '[1,2,3]');
SELECT vector_accum('{0,0}', '[1,2,3]');
SELECT vector_accum('{{0}}', '[1,2,3]');
SELECT vector_accum('{NULL}', '[1,2,3]');
SELECT vector_accum('{}', '[1,2,3]');
SELECT vector_accum('{1,1e308}', '[1e38]');
SELECT vector_accum('{1,1.7e308}', '[3e38]');
SELECT vector_avg('{2,2,4,6}');
SELECT vector_avg('{0}');
SELECT vector_avg('{1}');
SELECT vector_avg('{{2,2,4,6}}');
SELECT vector_avg('{NULL,2,4,6}');
SELECT vector_avg('{}');
SELECT vector_avg('{1,1e39}');
SELECT vector_avg(array_agg(n)) FROM generate_series(1, 16002) n;
SELECT vector_combine('{1,2}', '{3,4}');
SELECT vector_combine('{0}', '{2,4,6}');
SELECT vector_combine('{2,4,6}', '{0}');
SELECT vector_combine('{1,2}', '{1,2,3}');
SELECT vector_combine('{{1,2}}', '{3,4}');
SELECT vector_combine('{1,2}', '{{3,4}}');
SELECT vector_combine('{NULL,2}', '{3,4}');
SELECT vector_combine('{1,2}', '{3,NULL}');
SELECT vector_combine('{}', '{0}');
SELECT vector_combine('{0}', '{}');
-- two empty partial states stay empty (pgvector 0.8 raises here; an empty parallel partial is not an error)
SELECT vector_combine('{0}', '{0}');
SELECT vector_combine('{1,1.7e308}', '{1,1.7e308}');
SELECT vector_combine('{0}', (SELECT array_agg(n) FROM generate_series(1, 16002) n));
SELECT vector_combine((SELECT array_agg(n) FROM generate_series(1, 16002) n), '{0}');
SELECT vector_combine((SELECT array_agg(n) FROM generate_series(1, 16002) n), (SELECT array_agg(n) FROM generate_series(1, 16002) n));

-- over a table, grouped, and in parallel plans (partial aggregates combined)
CREATE TABLE vector_agg_t (g int, v vector(3));
INSERT INTO vector_agg_t SELECT i % 3, ARRAY[i, i * 2, -i]::vector FROM generate_series(1, 3000) i;
INSERT INTO vector_agg_t VALUES (0, NULL), (3, NULL);
SELECT g, avg(v), sum(v), count(v) FROM vector_agg_t GROUP BY g ORDER BY g;
SELECT avg(v), sum(v) FROM vector_agg_t;
SELECT avg(v) FILTER (WHERE g = 1), sum(v) FILTER (WHERE false) FROM vector_agg_t;
ANALYZE vector_agg_t;
-- avg and sum are parallel safe and have combine functions: the planner may aggregate in parallel workers
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM vector_agg_t;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
-- partial aggregates combined, deterministically: partitionwise aggregation
CREATE TABLE vector_agg_p (g int, v vector(3)) PARTITION BY LIST (g);
CREATE TABLE vector_agg_p0 PARTITION OF vector_agg_p FOR VALUES IN (0);
CREATE TABLE vector_agg_p1 PARTITION OF vector_agg_p FOR VALUES IN (1);
CREATE TABLE vector_agg_p2 PARTITION OF vector_agg_p FOR VALUES IN (2, 3);
INSERT INTO vector_agg_p SELECT g, v FROM vector_agg_t WHERE v < '[301]';
ANALYZE vector_agg_p;
SET enable_partitionwise_aggregate = on;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM vector_agg_p;
SELECT avg(v), sum(v) FROM vector_agg_p;
SELECT avg(v), sum(v) FROM vector_agg_p WHERE g <> 1;
SELECT avg(v), sum(v) FROM vector_agg_p WHERE g = 3;
SELECT avg(v), sum(v) FROM vector_agg_p WHERE v > '[150]' OR g = 3;
SELECT avg(v), sum(v) FROM vector_agg_p WHERE v < '[3]';
RESET enable_partitionwise_aggregate;
DROP TABLE vector_agg_p;
DROP TABLE vector_agg_t;

SELECT aggfnoid::regprocedure, aggtransfn, aggfinalfn, aggcombinefn, aggtranstype::regtype, agginitval
  FROM pg_aggregate WHERE aggfnoid IN ('avg(vector)'::regprocedure, 'sum(vector)'::regprocedure) ORDER BY 1::text;
SELECT proname, proparallel FROM pg_proc WHERE oid IN ('avg(vector)'::regprocedure, 'sum(vector)'::regprocedure) ORDER BY 1;
