-- Operators: arithmetic, concatenation, distances, comparisons and the btree operator class.

-- element-wise arithmetic
SELECT '[1,2,3]'::vector + '[4,5,6]';
SELECT '[1,2,3]'::vector - '[4,5,6]';
SELECT '[1,2,3]'::vector * '[4,5,6]';
SELECT '[0.5,-2,0]'::vector * '[4,0.25,1e30]';
SELECT '[1.5,2.5]'::vector + '[-1.5,-2.5]';
SELECT '[1]'::vector + NULL;
SELECT NULL::vector - '[1]';
-- results that reach the float4 limits without crossing them
SELECT '[1.7e38]'::vector + '[1.7e38]';
SELECT '[1e19]'::vector * '[3e19]';
SELECT '[1e-19]'::vector * '[1e-19]';
SELECT '[0]'::vector * '[1e-38]';

-- concatenation
SELECT '[1,2,3]'::vector || '[4,5]';
SELECT '[1]'::vector || '[2]'::vector || '[3]';
SELECT '[1,2]'::vector(2) || '[3]'::vector(1);
SELECT vector_dims(array_fill(0, ARRAY[15999])::vector || '[1]');

-- distance operators
SELECT '[0,0]'::vector <-> '[3,4]';
SELECT '[1,2,3]'::vector <-> '[1,2,3]';
SELECT '[1,2]'::vector <#> '[3,4]';
SELECT '[1,2]'::vector <#> '[-3,-4]';
SELECT '[1,2]'::vector <=> '[2,4]';
SELECT '[1,0]'::vector <=> '[0,2]';
SELECT '[1,1]'::vector <=> '[-1,-1]';
SELECT '[1,2]'::vector <=> '[0,0]';
SELECT '[0,0]'::vector <+> '[3,4]';
SELECT '[1,-2,3]'::vector <+> '[-1,2,-3]';
SELECT NULL::vector <-> '[1]';
-- operators are commutative
SELECT '[3,4]'::vector <-> '[0,0]', '[3,4]'::vector <#> '[1,2]', '[2,4]'::vector <=> '[1,2]', '[3,4]'::vector <+> '[0,0]';

-- comparisons: element by element, then by length (like arrays)
SELECT '[1,2,3]'::vector < '[1,2,3]';
SELECT '[1,2,3]'::vector < '[1,2,4]';
SELECT '[1,2,3]'::vector < '[1,2]';
SELECT '[1,2]'::vector < '[1,2,3]';
SELECT '[1,2,3]'::vector <= '[1,2,3]';
SELECT '[1,2,3]'::vector <= '[1,2]';
SELECT '[1,2,3]'::vector = '[1,2,3]';
SELECT '[1,2,3]'::vector = '[1,2]';
SELECT '[-0]'::vector = '[0]';
SELECT '[1,2,3]'::vector != '[1,2,3]';
SELECT '[1,2,3]'::vector <> '[1,2]';
SELECT '[1,2,3]'::vector >= '[1,2,3]';
SELECT '[1,2,3]'::vector >= '[1,2]';
SELECT '[1,2,3]'::vector > '[1,2,3]';
SELECT '[1,2,3]'::vector > '[1,2]';
SELECT '[2]'::vector > '[1,5]';
SELECT '[1,2]'::vector IS DISTINCT FROM '[1,2]';
SELECT '[1,2]'::vector IN ('[1]', '[1,2]');
SELECT vector_cmp('[1,2,3]', '[1,2,3]');
SELECT vector_cmp('[1,2,3]', '[0,0,0]');
SELECT vector_cmp('[0,0,0]', '[1,2,3]');
SELECT vector_cmp('[1,2]', '[1,2,3]');
SELECT vector_cmp('[1,2,3]', '[1,2]');
SELECT vector_cmp('[1,2]', '[2,3,4]');
SELECT vector_cmp('[2,3]', '[1,2,3]');
SELECT vector_lt('[1]', '[2]'), vector_le('[1]', '[1]'), vector_eq('[1]', '[1]'), vector_ne('[1]', '[1]'), vector_ge('[1]', '[2]'), vector_gt('[2]', '[1]');

-- ORDER BY, DISTINCT, GROUP BY, min/max-free sorting through the btree opclass
CREATE TABLE vector_ops_t (id int, v vector);
INSERT INTO vector_ops_t VALUES (1, '[1,2,3]'), (2, '[0,0,0]'), (3, '[1,1,1]'), (4, NULL), (5, '[1,2]'), (6, '[1,2,3]'), (7, '[-1,5]'), (8, '[1,2,3,0]');
SELECT v FROM vector_ops_t ORDER BY v, id;
SELECT v FROM vector_ops_t ORDER BY v DESC NULLS LAST, id;
SELECT DISTINCT v FROM vector_ops_t ORDER BY v;
SELECT v, count(*) FROM vector_ops_t GROUP BY v ORDER BY v;
SELECT id, v <-> '[1,1,1]' AS d FROM vector_ops_t WHERE vector_dims(v) = 3 ORDER BY d, id;
SELECT id FROM vector_ops_t WHERE vector_dims(v) = 3 ORDER BY v <=> '[1,1,1]', id LIMIT 2;
SELECT id FROM vector_ops_t WHERE vector_dims(v) = 3 ORDER BY v <#> '[1,1,1]', id;
SELECT id FROM vector_ops_t WHERE vector_dims(v) = 3 ORDER BY v <+> '[1,1,1]', id;

-- btree index: equality and ordered scans, unique constraint
SET enable_seqscan = off;
CREATE INDEX vector_ops_t_idx ON vector_ops_t (v);
SELECT id FROM vector_ops_t WHERE v = '[1,2,3]' ORDER BY id;
SELECT v FROM vector_ops_t WHERE v > '[1]' ORDER BY v;
SELECT v FROM vector_ops_t ORDER BY v;
RESET enable_seqscan;
CREATE TABLE vector_ops_u (v vector(2) UNIQUE);
INSERT INTO vector_ops_u VALUES ('[1,2]'), ('[2,1]');
INSERT INTO vector_ops_u VALUES ('[1,2]');
SELECT a.v FROM vector_ops_u a JOIN vector_ops_u b ON a.v = b.v ORDER BY a.v;
DROP TABLE vector_ops_t, vector_ops_u;

-- operator metadata as pgvector declares it
SELECT oprname, oprleft::regtype, oprright::regtype, oprresult::regtype, oprcode::regprocedure, oprcom::regoperator, oprnegate::regoperator
  FROM pg_operator WHERE oprleft = 'vector'::regtype ORDER BY oprname;
SELECT amopstrategy, amopopr::regoperator FROM pg_amop
  WHERE amopfamily = (SELECT opcfamily FROM pg_opclass WHERE opcname = 'vector_ops') ORDER BY amopstrategy;
