-- s5vector index: build, operator classes, options, errors, EXPLAIN
SET enable_seqscan = off;

CREATE TABLE items (id int PRIMARY KEY, embedding vector(3), uploaded_at timestamptz, day date, ts timestamp);
INSERT INTO items VALUES
	(1, '[1,1,1]', '2026-01-01 00:00+00', '2026-01-01', '2026-01-01'),
	(2, '[2,2,2]', '2026-01-02 00:00+00', '2026-01-02', '2026-01-02'),
	(3, '[1,1,2]', '2026-01-03 00:00+00', '2026-01-03', '2026-01-03'),
	(4, '[0,0,5]', '2026-01-04 00:00+00', '2026-01-04', '2026-01-04'),
	(5, '[-1,2,0]', '2026-01-05 00:00+00', '2026-01-05', '2026-01-05'),
	(6, '[3,0,1]', '2026-01-06 00:00+00', '2026-01-06', '2026-01-06'),
	(7, NULL, '2026-01-07 00:00+00', '2026-01-07', '2026-01-07'),
	(8, '[0,0,0]', NULL, NULL, NULL);

-- every operator class
CREATE INDEX items_l2 ON items USING s5vector (embedding vector_l2_ops);
SELECT id, round((embedding <-> '[1,1,1]')::numeric, 4) FROM items ORDER BY embedding <-> '[1,1,1]' LIMIT 4;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> '[1,1,1]' LIMIT 4;
DROP INDEX items_l2;

CREATE INDEX items_ip ON items USING s5vector (embedding vector_ip_ops);
SELECT id, embedding <#> '[1,1,1]' FROM items ORDER BY embedding <#> '[1,1,1]' LIMIT 4;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <#> '[1,1,1]' LIMIT 4;
DROP INDEX items_ip;

-- the zero vector is not indexed under cosine (its distance is NaN)
CREATE INDEX items_cos ON items USING s5vector (embedding vector_cosine_ops);
SELECT id, round((embedding <=> '[1,1,1]')::numeric, 4) FROM items ORDER BY embedding <=> '[1,1,1]' LIMIT 4;
SELECT count(*) FROM (SELECT id FROM items ORDER BY embedding <=> '[1,1,1]' LIMIT 100) s;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <=> '[1,1,1]' LIMIT 4;
DROP INDEX items_cos;

CREATE INDEX items_l1 ON items USING s5vector (embedding vector_l1_ops);
SELECT id, embedding <+> '[1,1,1]' FROM items ORDER BY embedding <+> '[1,1,1]' LIMIT 4;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <+> '[1,1,1]' LIMIT 4;
DROP INDEX items_l1;

-- the default operator class is L2
CREATE INDEX items_default ON items USING s5vector (embedding);
SELECT metric, dimensions, m, ef_construction, hot_window, hot_elements FROM s5vector_index_stats('items_default');
DROP INDEX items_default;

-- options
CREATE INDEX items_opts ON items USING s5vector (embedding) WITH (m = 4, ef_construction = 8, hot_window = '1 day', lists = 10);
SELECT m, ef_construction, hot_window, hot_elements FROM s5vector_index_stats('items_opts');
SELECT id FROM items ORDER BY embedding <-> '[2,2,2]' LIMIT 3;
DROP INDEX items_opts;
CREATE INDEX items_inf ON items USING s5vector (embedding) WITH (hot_window = 'infinity');
SELECT hot_window FROM s5vector_index_stats('items_inf');
DROP INDEX items_inf;
CREATE INDEX ON items USING s5vector (embedding) WITH (m = 1);
CREATE INDEX ON items USING s5vector (embedding) WITH (m = 101);
CREATE INDEX ON items USING s5vector (embedding) WITH (ef_construction = 3);
CREATE INDEX ON items USING s5vector (embedding) WITH (ef_construction = 1001);
CREATE INDEX ON items USING s5vector (embedding) WITH (m = 32, ef_construction = 63);
CREATE INDEX ON items USING s5vector (embedding) WITH (hot_window = 'soon');
CREATE INDEX ON items USING s5vector (embedding) WITH (hot_window = '-1 day');
CREATE INDEX ON items USING s5vector (embedding) WITH (lists = -1);
CREATE INDEX ON items USING s5vector (embedding) WITH (colour = 'blue');

-- wrong column types and dimensions
CREATE INDEX ON items USING s5vector (id);
CREATE INDEX ON items USING s5vector (embedding, id);
CREATE TABLE nodims (v vector);
CREATE INDEX ON nodims USING s5vector (v);
CREATE TABLE bigdims (v vector(2001));
CREATE INDEX ON bigdims USING s5vector (v);
CREATE TABLE okdims (v vector(2000));
CREATE INDEX okdims_idx ON okdims USING s5vector (v);
INSERT INTO okdims SELECT array_fill(1, ARRAY[2000])::vector;
INSERT INTO okdims SELECT array_fill(2, ARRAY[2000])::vector;
SELECT vector_dims(v) FROM okdims ORDER BY v <-> array_fill(2, ARRAY[2000])::vector LIMIT 1;
SELECT ok FROM s5vector_verify('okdims_idx') WHERE NOT ok;
DROP TABLE nodims, bigdims, okdims;

-- the planner uses the index for ORDER BY ... LIMIT only
RESET enable_seqscan;
CREATE INDEX items_idx ON items USING s5vector (embedding vector_l2_ops, uploaded_at);
EXPLAIN (COSTS OFF) SELECT id FROM items WHERE uploaded_at > '2026-01-03';
EXPLAIN (COSTS OFF) SELECT id FROM items WHERE embedding = '[1,1,1]';
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> '[1,1,1]' LIMIT 3;
-- an ORDER BY with another operator than the opclass's does not use it
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <=> '[1,1,1]' LIMIT 3;

-- a build that outgrows maintenance_work_mem goes on on disk; queries of that index run through it and find
-- what a sequential scan finds
CREATE TABLE disk (id int, v vector(64));
INSERT INTO disk SELECT i, (SELECT array_agg(sin(i * 64 + j)) FROM generate_series(1, 64) j)::vector
	FROM generate_series(1, 3000) i;
SET maintenance_work_mem = '1MB';
CREATE INDEX disk_idx ON disk USING s5vector (v);
RESET maintenance_work_mem;
SELECT check_name, ok FROM s5vector_verify('disk_idx') WHERE NOT ok;
SET s5vector.ef_search = 100;
EXPLAIN (COSTS OFF) SELECT id FROM disk ORDER BY v <-> (SELECT v FROM disk WHERE id = 17) LIMIT 5;
SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM disk ORDER BY v <-> (SELECT v FROM disk WHERE id = 17) LIMIT 5) s;
SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM disk ORDER BY v <-> (SELECT v FROM disk WHERE id = 2500) LIMIT 5) s;
SET enable_indexscan = off;
RESET enable_seqscan;
EXPLAIN (COSTS OFF) SELECT id FROM disk ORDER BY v <-> (SELECT v FROM disk WHERE id = 17) LIMIT 5;
SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM disk ORDER BY v <-> (SELECT v FROM disk WHERE id = 17) LIMIT 5) s;
SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM disk ORDER BY v <-> (SELECT v FROM disk WHERE id = 2500) LIMIT 5) s;
RESET enable_indexscan;
SET enable_seqscan = off;
RESET s5vector.ef_search;
DROP TABLE disk;

-- stats and verify functions reject what is not an s5vector index
SELECT * FROM s5vector_index_stats('items');
SELECT * FROM s5vector_index_stats('items_pkey');
SELECT * FROM s5vector_verify('items_pkey');
SELECT check_name, ok FROM s5vector_verify('items_idx');

DROP TABLE items;
