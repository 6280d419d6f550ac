-- Casts between vector and arrays, and the typmod coercion.

SELECT ARRAY[1,2,3]::vector;
SELECT ARRAY[1.0,2.0,3.0]::vector;
SELECT ARRAY[1,2,3]::float4[]::vector;
SELECT ARRAY[1,2,3]::float8[]::vector;
SELECT ARRAY[1,2,3]::numeric[]::vector;
SELECT ARRAY[2147483647,-2147483648]::integer[]::vector;
SELECT ARRAY[0.1,0.2]::float8[]::vector;
SELECT ARRAY[1.23456789012]::numeric[]::vector;
SELECT '{1e-50}'::numeric[]::vector;
SELECT '{1e-46,-1e-46}'::double precision[]::vector;

SELECT '{1,2,3}'::real[]::vector;
SELECT '{1,2,3}'::real[]::vector(3);
SELECT '{1,2,3}'::real[]::vector(2);
SELECT '{NULL}'::real[]::vector;
SELECT '{1,NULL}'::integer[]::vector;
SELECT '{NaN}'::real[]::vector;
SELECT '{Infinity}'::real[]::vector;
SELECT '{-Infinity}'::real[]::vector;
SELECT '{}'::real[]::vector;
SELECT '{{1}}'::real[]::vector;
SELECT '{{1,2},{3,4}}'::integer[]::vector;
SELECT '[0:2]={1,2,3}'::real[]::vector;

SELECT '{1,2,3}'::double precision[]::vector;
SELECT '{1,2,3}'::double precision[]::vector(3);
SELECT '{1,2,3}'::double precision[]::vector(2);
SELECT '{4e38,-4e38}'::double precision[]::vector;
SELECT '{NaN}'::double precision[]::vector;

SELECT '{1,2,3}'::numeric[]::vector(2);
SELECT '{NaN}'::numeric[]::vector;
SELECT '{Infinity}'::numeric[]::vector;
SELECT '{1e39}'::numeric[]::vector;
SELECT '{1,NaN,1e39}'::numeric[]::vector;

SELECT '{1,2}'::bigint[]::vector;
SELECT '{1,2}'::smallint[]::vector;
SELECT '{1,2}'::text[]::vector;

SELECT array_agg(n)::vector FROM generate_series(1, 16001) n;
SELECT array_to_vector(array_agg(n), 16001, false) FROM generate_series(1, 16001) n;
SELECT vector_dims(array_agg(n)::vector) FROM generate_series(1, 16000) n;

-- the cast functions called directly
SELECT array_to_vector('{1,2}'::real[], -1, false);
SELECT array_to_vector('{1,2}'::real[], 2, true);
SELECT array_to_vector('{1,2}'::real[], 3, false);
SELECT array_to_vector('{1,2}'::integer[], -1, false);
SELECT array_to_vector('{1,2}'::numeric[], -1, false);
SELECT array_to_vector('{1,2}'::double precision[], -1, false);
SELECT vector('[1,2]'::vector, 2, false);
SELECT vector('[1,2]'::vector, -1, false);
SELECT vector('[1,2]'::vector, 3, false);
SELECT vector_to_float4('[1,2]'::vector, -1, false);

-- vector to arrays
SELECT '[1,2,3]'::vector::real[];
SELECT '[1.5,-2.25,1e-7]'::vector::real[];
SELECT '[1,2,3]'::vector::double precision[];
SELECT '[1,2,3]'::vector::integer[];
SELECT '[1.5,2.5]'::vector::numeric[];
SELECT '[1,2,3]'::vector::real[]::vector;
SELECT array_length('[1,2,3,4]'::vector::real[], 1);
SELECT ('[1,2,3]'::vector::real[])[2];

-- casts are assignment casts from arrays and an implicit cast to real[]
CREATE TABLE vector_casts_t (v vector(3), r real[]);
INSERT INTO vector_casts_t (v) VALUES (ARRAY[1,2,3]);
INSERT INTO vector_casts_t (v) VALUES ('{4,5,6}'::real[]);
INSERT INTO vector_casts_t (v) VALUES ('{7,8,9}'::float8[]);
INSERT INTO vector_casts_t (v) VALUES ('{1.5,2.5,3.5}'::numeric[]);
INSERT INTO vector_casts_t (r) VALUES ('[1,2]'::vector);
SELECT * FROM vector_casts_t;
DROP TABLE vector_casts_t;
SELECT '[1,2,3]'::vector = ARRAY[1,2,3]::real[];
SELECT array_dims('[1,2,3]'::vector);
SELECT castsource::regtype, casttarget::regtype, castfunc::regprocedure, castcontext, castmethod FROM pg_cast
  WHERE (castsource = 'vector'::regtype AND casttarget IN ('vector'::regtype, 'real[]'::regtype))
     OR (casttarget = 'vector'::regtype AND castsource IN ('vector'::regtype, 'integer[]'::regtype, 'real[]'::regtype,
         'double precision[]'::regtype, 'numeric[]'::regtype))
  ORDER BY 1::text, 2::text;

-- the ensure-no-interference check: array equality still works
SELECT ARRAY[1,2,3] = ARRAY[1,2,3];
