-- Functions: distances, norms, dims, normalisation, subvector, quantisation.

SELECT l2_distance('[0,0]'::vector, '[3,4]');
SELECT l2_distance('[0,0]'::vector, '[0,1]');
SELECT l2_distance('[1,1,1,1,1,1,1,1,1]'::vector, '[1,1,1,1,1,1,1,4,5]');
SELECT l2_distance('[3e38]'::vector, '[-3e38]');
SELECT vector_l2_squared_distance('[0,0]'::vector, '[3,4]');
SELECT vector_l2_squared_distance('[1,2]'::vector, '[1,2]');

SELECT inner_product('[1,2]'::vector, '[3,4]');
SELECT inner_product('[1,1,1,1,1,1,1,1,1]'::vector, '[1,2,3,4,5,6,7,8,9]');
SELECT inner_product('[0.5,0.25]'::vector, '[-2,8]');
SELECT inner_product('[3e38]'::vector, '[3e38]');
SELECT vector_negative_inner_product('[1,2]'::vector, '[3,4]');

SELECT cosine_distance('[1,2]'::vector, '[2,4]');
SELECT cosine_distance('[1,2]'::vector, '[0,0]');
SELECT cosine_distance('[0,0]'::vector, '[0,0]');
SELECT cosine_distance('[1,1]'::vector, '[1,1]');
SELECT cosine_distance('[1,0]'::vector, '[0,2]');
SELECT cosine_distance('[1,1]'::vector, '[-1,-1]');
SELECT cosine_distance('[1,1]'::vector, '[1.1,1.1]');
SELECT cosine_distance('[1,1]'::vector, '[-1.1,-1.1]');
SELECT cosine_distance('[3e38]'::vector, '[3e38]');
SELECT cosine_distance('[1,2,3,4,5,6,7,8,9]'::vector, '[1,2,3,4,5,6,7,8,9]');
SELECT cosine_distance('[1,2,3,4,5,6,7,8,9]'::vector, '[-1,-2,-3,-4,-5,-6,-7,-8,-9]');
SELECT cosine_distance('[3,4]'::vector, '[4,3]');

SELECT l1_distance('[0,0]'::vector, '[3,4]');
SELECT l1_distance('[0,0]'::vector, '[0,1]');
SELECT l1_distance('[3e38]'::vector, '[-3e38]');
SELECT l1_distance('[1,2,3,4,5,6,7,8,9]'::vector, '[1,2,3,4,5,6,7,8,9]');
SELECT l1_distance('[1,2,3,4,5,6,7,8,9]'::vector, '[0,3,2,5,4,7,6,9,8]');

SELECT vector_spherical_distance('[1,0]'::vector, '[0,1]');
SELECT vector_spherical_distance('[1,0]'::vector, '[1,0]');
SELECT vector_spherical_distance('[1,0]'::vector, '[-1,0]');
SELECT vector_spherical_distance('[2,0]'::vector, '[3,0]');

-- long vectors with exactly representable sums (the same on every kernel set)
SELECT l2_distance(array_fill(1, ARRAY[1536])::vector, array_fill(3, ARRAY[1536])::vector);
SELECT inner_product(array_fill(0.5, ARRAY[768])::vector, array_fill(2, ARRAY[768])::vector);
SELECT cosine_distance(array_fill(1, ARRAY[100])::vector, array_fill(-2, ARRAY[100])::vector);
SELECT l1_distance(array_fill(1, ARRAY[1000])::vector, array_fill(-1.5, ARRAY[1000])::vector);
SELECT a <-> b, a <#> b, a <+> b FROM (SELECT array_agg(i % 7)::vector a, array_agg(i % 5)::vector b FROM generate_series(1, 70) i) s;

-- short vectors with inexact sums: the same bits as pgvector
SELECT '[0.1,0.2,0.3]'::vector <-> '[1.5,-2.25,3.1]', '[0.1,0.2,0.3]'::vector <#> '[1.5,-2.25,3.1]', '[0.1,0.2,0.3]'::vector <=> '[1.5,-2.25,3.1]', '[0.1,0.2,0.3]'::vector <+> '[1.5,-2.25,3.1]';
SELECT '[1.1,2.2,3.3,4.4,5.5]'::vector <-> '[0.7,-1.3,2.9,8.1,-4.2]', '[1.1,2.2,3.3,4.4,5.5]'::vector <#> '[0.7,-1.3,2.9,8.1,-4.2]', '[1.1,2.2,3.3,4.4,5.5]'::vector <=> '[0.7,-1.3,2.9,8.1,-4.2]', '[1.1,2.2,3.3,4.4,5.5]'::vector <+> '[0.7,-1.3,2.9,8.1,-4.2]';
SELECT a <-> b, a <#> b, a <=> b, a <+> b, vector_norm(a), l2_normalize(a) FROM (SELECT '[0.11,-2.5,3.75,9.01,-0.3,6.6,7.7,1.9,0.01,-5.5,4.4]'::vector a, '[8.8,0.3,-1.7,2.2,5.05,-6.1,0.9,3.3,-7.25,1.1,0.6]'::vector b) s;
SELECT cosine_distance('[1,2]'::vector, '[0.3,0.4]'), inner_product('[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9]'::vector, '[0.9,0.8,0.7,0.6,0.5,0.4,0.3,0.2,0.1]');
SELECT vector_spherical_distance(l2_normalize('[1,2,3]'::vector), l2_normalize('[3,-2,1]'::vector));

SELECT vector_dims('[1,2,3]'::vector);
SELECT vector_dims('[1]'::vector);
SELECT vector_dims(NULL::vector);

SELECT round(vector_norm('[1,1]')::numeric, 5);
SELECT vector_norm('[3,4]');
SELECT vector_norm('[0,1]');
SELECT vector_norm('[3e37,4e37]')::real;
SELECT vector_norm('[3e38,3e38]') > 3e38;
SELECT vector_norm('[0,0]');
SELECT vector_norm('[2]');
SELECT vector_norm('[-2,0,0]');

SELECT l2_normalize('[3,4]'::vector);
SELECT l2_normalize('[3,0]'::vector);
SELECT l2_normalize('[0,0.1]'::vector);
SELECT l2_normalize('[0,0]'::vector);
SELECT l2_normalize('[3e38]'::vector);
SELECT l2_normalize('[1e-40]'::vector);
SELECT l2_normalize('[-2,0,0,0]'::vector);
SELECT vector_norm(l2_normalize('[1,2,2]'::vector));

SELECT subvector('[1,2,3,4,5]'::vector, 1, 3);
SELECT subvector('[1,2,3,4,5]'::vector, 3, 2);
SELECT subvector('[1,2,3,4,5]'::vector, 5, 1);
SELECT subvector('[1,2,3,4,5]'::vector, -1, 3);
SELECT subvector('[1,2,3,4,5]'::vector, 3, 9);
SELECT subvector('[1,2,3,4,5]'::vector, 0, 2);
SELECT subvector('[1,2,3,4,5]'::vector, 1, 0);
SELECT subvector('[1,2,3,4,5]'::vector, 3, -1);
SELECT subvector('[1,2,3,4,5]'::vector, -1, 2);
SELECT subvector('[1,2,3,4,5]'::vector, 0, 1);
SELECT subvector('[1,2,3,4,5]'::vector, 6, 1);
SELECT subvector('[1,2,3,4,5]'::vector, 2147483647, 10);
SELECT subvector('[1,2,3,4,5]'::vector, 3, 2147483647);
SELECT subvector('[1,2,3,4,5]'::vector, -2147483644, 2147483647);
SELECT subvector('[1,2,3,4,5]'::vector, -2147483648, 2147483647);
SELECT subvector('[1,2,3,4,5]'::vector, -2147483648, -2147483648);
SELECT subvector('[1,2,3,4,5]'::vector, NULL, 1);

SELECT binary_quantize('[1,0,-1]'::vector);
SELECT binary_quantize('[0,0.1,-0.2,-0.3,0.4,0.5,0.6,-0.7,0.8,-0.9,1]'::vector);
SELECT binary_quantize('[1,2,3,-4,5,6,-7,8,1,-2,-3,4,5,-6,7,8,-1,2,3]'::vector);
SELECT binary_quantize('[1,1,1,1,1,1,1,1]'::vector);
SELECT length(binary_quantize(array_fill(1, ARRAY[16000])::vector));

-- every function is IMMUTABLE STRICT PARALLEL SAFE, as in pgvector
SELECT p.oid::regprocedure, provolatile, proisstrict, proparallel FROM pg_proc p
  WHERE p.proname IN ('l2_distance', 'inner_product', 'cosine_distance', 'l1_distance', 'vector_dims', 'vector_norm',
    'l2_normalize', 'binary_quantize', 'subvector', 'vector_spherical_distance', 'vector_l2_squared_distance',
    'vector_negative_inner_product', 'vector_cmp', 'vector_accum', 'vector_combine', 'vector_avg')
    AND p.proargtypes[0] IN ('vector'::regtype, 'double precision[]'::regtype)
  ORDER BY 1::text;
