-- Every way text input, typmods and operands can be wrong: the error and its SQLSTATE (shown by a second
-- pass with VERBOSITY sqlstate at the end of this file).

-- malformed literals
SELECT ''::vector;
SELECT ' '::vector;
SELECT '1,2,3'::vector;
SELECT 'abc'::vector;
SELECT '(1,2)'::vector;
SELECT '{1,2}'::vector;
SELECT '['::vector;
SELECT '[ '::vector;
SELECT '[1'::vector;
SELECT '[1,2,3'::vector;
SELECT '[1,'::vector;
SELECT '[1, '::vector;
SELECT '[,'::vector;
SELECT '[,]'::vector;
SELECT '[1,]'::vector;
SELECT '[,1]'::vector;
SELECT '[1,,3]'::vector;
SELECT '[1, ,3]'::vector;
SELECT '[1 2]'::vector;
SELECT '[1;2]'::vector;
SELECT '[1a]'::vector;
SELECT '[a1]'::vector;
SELECT '[hello,1]'::vector;
SELECT '[1e]'::vector;
SELECT '[--1]'::vector;
SELECT '[- 1]'::vector;
SELECT '[[1]]'::vector;
SELECT '[1,2]]'::vector;
SELECT '[1,2,3]9'::vector;
SELECT '[1,2,3]  x'::vector;
SELECT '[1,2,3] ]'::vector;
SELECT '[1][2]'::vector;

-- empty vectors
SELECT '[]'::vector;
SELECT '[ ]'::vector;
SELECT ' [  ] '::vector;

-- NaN and infinity
SELECT '[NaN,1]'::vector;
SELECT '[1,nan]'::vector;
SELECT '[Infinity,1]'::vector;
SELECT '[-Infinity,1]'::vector;
SELECT '[inf]'::vector;
SELECT '[-inf]'::vector;

-- out of range for float4
SELECT '[4e38,1]'::vector;
SELECT '[-4e38,1]'::vector;
SELECT '[1e39]'::vector;
SELECT '[3.4028236e38]'::vector;
SELECT '[1e400]'::vector;
SELECT '[1,-1e400]'::vector;

-- too many dimensions (the limit is checked before the rest of the literal is read)
SELECT ('[' || repeat('1,', 16000) || '1]')::vector;
SELECT ('[' || repeat('1,', 16000) || 'x]')::vector;
SELECT ('[' || repeat('1,', 16000))::vector;

-- typmods
SELECT '[1,2,3]'::vector(2);
SELECT '[1,2]'::vector(3);
SELECT '[1,2,3]'::vector(0);
SELECT '[1,2,3]'::vector(-1);
SELECT '[1,2,3]'::vector(16001);
SELECT '[1,2,3]'::vector(3, 2);
SELECT '[1,2,3]'::vector('a');
SELECT '[1,2]'::vector(2)::vector(3);
SELECT '{"[1,2,3]"}'::vector(2)[];
CREATE TABLE vector_errors_t (v vector(0));
CREATE TABLE vector_errors_t (v vector(16001));
CREATE TABLE vector_errors_t (v vector(3));
INSERT INTO vector_errors_t VALUES ('[1,2]');
INSERT INTO vector_errors_t VALUES ('[1,2,3,4]');
INSERT INTO vector_errors_t VALUES (ARRAY[1,2]);
INSERT INTO vector_errors_t VALUES ('{1,2,3,4}'::real[]);
INSERT INTO vector_errors_t VALUES ('[1,2,3]'::vector(3) || '[4]');
INSERT INTO vector_errors_t VALUES ('[1,2,NaN]');
INSERT INTO vector_errors_t VALUES ('[1,2,3]');
UPDATE vector_errors_t SET v = '[1,2]';
UPDATE vector_errors_t SET v = subvector(v, 1, 2);
SELECT * FROM vector_errors_t;
DROP TABLE vector_errors_t;

-- dimension mismatch between operands
SELECT '[1,2]'::vector + '[3]';
SELECT '[1,2]'::vector - '[3]';
SELECT '[1,2]'::vector * '[3]';
SELECT '[1,2]'::vector <-> '[3]';
SELECT '[1,2]'::vector <#> '[3]';
SELECT '[1,2]'::vector <=> '[3]';
SELECT '[1,2]'::vector <+> '[3]';
SELECT l2_distance('[1,2]'::vector, '[3]');
SELECT inner_product('[1,2]'::vector, '[3]');
SELECT cosine_distance('[1,2]'::vector, '[3]');
SELECT l1_distance('[1,2]'::vector, '[3]');
SELECT vector_l2_squared_distance('[1,2]'::vector, '[3]');
SELECT vector_negative_inner_product('[1,2]'::vector, '[3]');
SELECT vector_spherical_distance('[1,2]'::vector, '[3]');

-- overflow and underflow of element-wise arithmetic
SELECT '[3e38]'::vector + '[3e38]';
SELECT '[-3e38]'::vector - '[3e38]';
SELECT '[1e37]'::vector * '[1e37]';
SELECT '[1e-37]'::vector * '[1e-37]';
SELECT ('[' || repeat('1,', 15999) || '1]')::vector || '[1]';

-- the same errors, with their SQLSTATEs
\set VERBOSITY sqlstate
SELECT ''::vector;
SELECT '1,2,3'::vector;
SELECT '[1,2,3'::vector;
SELECT '[1,]'::vector;
SELECT '[1a]'::vector;
SELECT '[1,2,3]9'::vector;
SELECT '[]'::vector;
SELECT '[NaN]'::vector;
SELECT '[Infinity]'::vector;
SELECT '[1e39]'::vector;
SELECT ('[' || repeat('1,', 16000) || '1]')::vector;
SELECT '[1,2,3]'::vector(2);
SELECT '[1,2,3]'::vector(0);
SELECT '[1,2,3]'::vector(16001);
SELECT '[1,2,3]'::vector(3, 2);
SELECT '[1,2]'::vector + '[3]';
SELECT '[1,2]'::vector <-> '[3]';
SELECT '[3e38]'::vector + '[3e38]';
SELECT '[1e-37]'::vector * '[1e-37]';
SELECT ('[' || repeat('1,', 15999) || '1]')::vector || '[1]';
SELECT subvector('[1,2,3]'::vector, 1, 0);
SELECT '{NULL}'::real[]::vector;
SELECT '{{1}}'::real[]::vector;
SELECT '{}'::real[]::vector;
SELECT vector_avg('{}');
\set VERBOSITY default
