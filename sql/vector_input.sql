-- Text input and output of the type vector, typmods, arrays of vectors, table columns.

-- accepted forms: integers, decimals, signs, exponents, whitespace anywhere between tokens
SELECT '[1,2,3]'::vector;
SELECT '[-1.5,+2.25,0]'::vector;
SELECT '[1.,.5,-.25]'::vector;
SELECT '[1e3,1E-3,-2.5e+2]'::vector;
SELECT '   [   4 ,5,   6   ]   '::vector;
SELECT E'\t[\n1,\r2\f,\x0b3]\n'::vector;
SELECT E'[1\v]'::vector;
SELECT '[0x1p3]'::vector;
SELECT '[-0,0]'::vector;
SELECT '[7]'::vector;

-- output: the shortest text that reads back as the same float4
SELECT '[0.1,0.2,0.3]'::vector;
SELECT '[1.23456789,3.14159265358979]'::vector;
SELECT '[123456789,1e7,1e-7,0.000001]'::vector;
SELECT '[1e21,1e22,12345678901234567890]'::vector;
SELECT '[3.4028235e38,-3.4028235e38]'::vector;
SELECT '[1.17549435e-38,1.4e-45]'::vector;
SELECT '[1.5e38,-1.5e38,1.5e-38,-1.5e-38]'::vector;
-- values below the smallest float4 round to zero
SELECT '[1e-46,-1e-46]'::vector;
SELECT '[1e-400]'::vector;
-- round trip through text
SELECT '[0.1,1e-7,3.4028235e38]'::vector::text::vector = '[0.1,1e-7,3.4028235e38]'::vector;
SELECT '[1,2,3]'::vector::text;
SELECT pg_typeof('[1,2,3]'::vector);
SELECT NULL::vector;

-- typmod
SELECT '[1,2,3]'::vector(3);
SELECT '[1]'::vector(1);
SELECT format_type('vector'::regtype, 3);
SELECT format_type('vector'::regtype, -1);
SELECT '[1,2]'::vector(2)::vector(2);
SELECT '[1,2]'::vector::vector(2);
SELECT vector_dims(('[' || repeat('1,', 15999) || '1]')::vector(16000));

-- 16000 dimensions is the maximum
SELECT vector_dims(('[' || repeat('1,', 15999) || '1]')::vector);
SELECT vector_dims(array_fill(1.5, ARRAY[16000])::vector);

-- arrays of vectors
SELECT '{"[1,2,3]","[4,5,6]"}'::vector[];
SELECT unnest('{"[1,2,3]","[4,5]"}'::vector[]);
SELECT ARRAY['[1,2]'::vector, '[3]'];
SELECT (ARRAY['[1,2]'::vector, '[3,4]'])[2];

-- table columns with and without typmod
CREATE TABLE vector_input_t (id int, v vector(3), w vector);
INSERT INTO vector_input_t VALUES (1, '[1,2,3]', '[1]'), (2, ' [4, 5, 6] ', '[1,2,3,4,5]'), (3, NULL, NULL);
INSERT INTO vector_input_t VALUES (4, '{7,8,9}'::real[], ARRAY[1,2]);
INSERT INTO vector_input_t VALUES (5, ARRAY[1.5,2.5,3.5], '{1.5}'::float8[]);
SELECT * FROM vector_input_t ORDER BY id;
SELECT id, vector_dims(v), vector_dims(w) FROM vector_input_t ORDER BY id;
UPDATE vector_input_t SET v = v + '[1,1,1]' WHERE id = 1;
SELECT v FROM vector_input_t WHERE id = 1;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
  WHERE attrelid = 'vector_input_t'::regclass AND attnum > 0 ORDER BY attnum;
CREATE TABLE vector_input_t2 AS SELECT v FROM vector_input_t;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'vector_input_t2'::regclass AND attname = 'v';
DROP TABLE vector_input_t, vector_input_t2;

-- large vectors are stored out of line (STORAGE external) and read back intact
CREATE TABLE vector_input_big (v vector(2000));
INSERT INTO vector_input_big SELECT array_agg(i * 0.5)::vector FROM generate_series(1, 2000) i;
SELECT vector_dims(v), v = (SELECT array_agg(i * 0.5)::vector FROM generate_series(1, 2000) i) FROM vector_input_big;
SELECT subvector(v, 1995, 6) FROM vector_input_big;
DROP TABLE vector_input_big;

-- the type as pgvector declares it
SELECT typname, typlen, typbyval, typalign, typstorage, typcategory FROM pg_type WHERE typname = 'vector';
