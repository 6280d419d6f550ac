-- Binary send/receive: int16 dim, int16 unused (0), then dim big-endian float4, as pgvector.

SELECT vector_send('[1,2,3]');
SELECT vector_send('[-0,1e-45,3.4028235e38]');
SELECT vector_send('[0.1]'::vector);
SELECT vector_send(array_fill(1, ARRAY[300])::vector) = ('\x012c0000'::bytea || decode(repeat('3f800000', 300), 'hex'));

-- COPY BINARY round trip
CREATE TABLE vector_binary_t (id int, v vector(3));
INSERT INTO vector_binary_t VALUES (1, '[0,0,0]'), (2, '[1,2,3]'), (3, '[1.5,-2.25,3e38]'), (4, NULL), (5, '[1e-45,-0,0.1]');
CREATE TABLE vector_binary_t2 (id int, v vector(3));
\copy vector_binary_t TO 'results/vector_binary.bin' WITH (FORMAT binary)
\copy vector_binary_t2 FROM 'results/vector_binary.bin' WITH (FORMAT binary)
SELECT * FROM vector_binary_t2 ORDER BY id;
SELECT count(*) FROM vector_binary_t a JOIN vector_binary_t2 b USING (id) WHERE a.v = b.v;
-- a column of another size rejects the rows
CREATE TABLE vector_binary_t4 (id int, v vector(4));
\copy vector_binary_t4 FROM 'results/vector_binary.bin' WITH (FORMAT binary)
DROP TABLE vector_binary_t, vector_binary_t2, vector_binary_t4;

-- hand-made payloads: a bytea column's binary COPY carries its bytes as they are, so a file written from
-- bytea values can be read back as vectors, exercising vector_recv on any input
CREATE TABLE vector_binary_raw (b bytea);
CREATE TABLE vector_binary_v (v vector);
CREATE TABLE vector_binary_v3 (v vector(3));

TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x00030000' || '\x3f8000004000000040400000'::bytea), ('\x00010000bf800000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)
SELECT * FROM vector_binary_v;
\copy vector_binary_v3 FROM 'results/vector_raw.bin' WITH (FORMAT binary)
SELECT * FROM vector_binary_v3;

-- zero dimensions
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x00000000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)

-- negative dimensions
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\xffff0000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)

-- 16001 dimensions
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x3e810000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)

-- unused field not zero
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x000100013f800000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)

-- truncated elements
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x000200003f800000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)

-- truncated header
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x0001');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)

-- empty payload
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)

-- trailing bytes
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x000100003f80000000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)

-- NaN, infinity, -infinity
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x000200003f8000007fc00000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x000100007f800000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x00010000ff800000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)

-- denormals and negative zero are accepted
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x000200000000000180000000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
TRUNCATE vector_binary_v;
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)
SELECT v, vector_send(v) FROM vector_binary_v;

-- the same errors with their SQLSTATEs
\set VERBOSITY sqlstate
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x00000000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x3e810000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x000100013f800000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x000200003f800000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x000100007f800000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v FROM 'results/vector_raw.bin' WITH (FORMAT binary)
TRUNCATE vector_binary_raw;
INSERT INTO vector_binary_raw VALUES ('\x000200003f8000004000000040400000');
\copy vector_binary_raw TO 'results/vector_raw.bin' WITH (FORMAT binary)
\copy vector_binary_v3 FROM 'results/vector_raw.bin' WITH (FORMAT binary)
\set VERBOSITY default

DROP TABLE vector_binary_raw, vector_binary_v, vector_binary_v3;
