# Parallel CREATE INDEX (max_parallel_maintenance_workers): the same table built serially and with 1 and 2 workers
# (the DEBUG1 line proves workers launched; a build that silently stayed serial fails), each index clean, every row
# reachable, recall@10 within 0.02 of the serial build's; a NaN row seen by a worker gives the serial build's error
# and no index; a cancelled parallel build leaves no index and no worker; the documented fallbacks (too little
# maintenance_work_mem, a cold part, a temporary table) build serially; an unlogged table builds in parallel.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use S5VTest;

my $dim = 32;
my $rows = 15000;
my $node = PostgreSQL::Test::Cluster->new('parallel_build');
$node->init;
$node->append_conf('postgresql.conf', qq{
autovacuum = off
maintenance_work_mem = '256MB'
max_worker_processes = 8
max_parallel_workers = 8
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id int PRIMARY KEY, v vector($dim), ts timestamptz DEFAULT now());
INSERT INTO t (id, v) SELECT i, @{[ vec_sql('i', $dim, 200) ]} FROM generate_series(1, $rows) i;
ALTER TABLE t SET (parallel_workers = 2);
ANALYZE t;
});

# Run SQL with DEBUG1 messages on; returns (exit code, stderr).
sub run_debug
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSET client_min_messages = debug1;\n$sql",
		timeout => 120);
	return ($ret, $err);
}

sub launched
{
	my ($err) = @_;
	return $err =~ /s5vector: parallel build with (\d+) of \d+ planned workers/ ? $1 : 0;
}

# Queries (not rows of the table, drawn around the same centres) and their exact answers.
my @queries = split /\n/, $node->safe_psql('postgres',
	"SELECT (@{[ vec_sql('k', $dim, 200) ]})::text FROM generate_series(1000001, 1000030) k ORDER BY k");
my @exact = map { knn_ids($node, 't', 'v', '<->', $_, 10, 'exact') } @queries;

sub recall_of_index
{
	my @approx = map { knn_ids($node, 't', 'v', '<->', $_, 10, 'index', 'SET s5vector.ef_search = 10;') } @queries;
	return recall_at_k(\@exact, \@approx, 10);
}

my %recall;
for my $workers (0, 1, 2)
{
	my ($ret, $err) = run_debug(qq{SET max_parallel_maintenance_workers = $workers;
CREATE INDEX t_idx ON t USING s5vector (v) WITH (m = 16, ef_construction = 64);});
	is($ret, 0, "build with $workers workers succeeds") or diag($err);
	is(launched($err), $workers, "build with max_parallel_maintenance_workers = $workers launched $workers workers");
	verify_all_ok($node, 't_idx', "index built with $workers workers is clean");
	is(index_sweep_count($node, 't', 'v', $queries[0]), $rows, "every row reachable ($workers workers)");
	$recall{$workers} = recall_of_index();
	note("recall\@10 with $workers workers: $recall{$workers}");
	$node->safe_psql('postgres', 'DROP INDEX t_idx');
}
cmp_ok($recall{0}, '>=', 0.9, 'serial recall@10 is high');
cmp_ok($recall{1}, '>=', $recall{0} - 0.02, 'recall@10 with 1 worker within 0.02 of serial');
cmp_ok($recall{2}, '>=', $recall{0} - 0.02, 'recall@10 with 2 workers within 0.02 of serial');

# A cold part (age column and a finite hot_window): serial.
{
	my ($ret, $err) = run_debug(q{SET max_parallel_maintenance_workers = 2;
CREATE INDEX t_cold ON t USING s5vector (v, ts) WITH (hot_window = '1 hour', lists = 8);});
	is($ret, 0, 'build with a cold part succeeds') or diag($err);
	like($err, qr/building serially: parallel builds do not support a cold part/, 'cold part: serial, said so');
	is(launched($err), 0, 'cold part: no worker launched');
	$node->safe_psql('postgres', 'DROP INDEX t_cold');
}

# An age column with an infinite hot window (no cold part) builds in parallel and keeps the ages.
{
	my ($ret, $err) = run_debug(q{SET max_parallel_maintenance_workers = 1;
CREATE INDEX t_age ON t USING s5vector (v, ts) WITH (hot_window = 'infinity');});
	is($ret, 0, 'build with an age column succeeds') or diag($err);
	is(launched($err), 1, 'age column without a cold part: 1 worker launched');
	verify_all_ok($node, 't_age', 'index with ages built in parallel is clean');
	$node->safe_psql('postgres', 'DROP INDEX t_age');
}

# Unlogged table: parallel; temporary table: PostgreSQL never builds those in parallel.
{
	$node->safe_psql('postgres', q{CREATE UNLOGGED TABLE u AS SELECT id, v FROM t WHERE id <= 6000;
ALTER TABLE u SET (parallel_workers = 1); ANALYZE u;});
	my ($ret, $err) = run_debug(q{SET max_parallel_maintenance_workers = 1;
CREATE INDEX u_idx ON u USING s5vector (v);});
	is($ret, 0, 'unlogged table: build succeeds') or diag($err);
	is(launched($err), 1, 'unlogged table: 1 worker launched');
	verify_all_ok($node, 'u_idx', 'unlogged table: index is clean');
	is(index_sweep_count($node, 'u', 'v', $queries[0]), 6000, 'unlogged table: every row reachable');

	($ret, $err) = run_debug(q{CREATE TEMP TABLE tt AS SELECT id, v FROM t WHERE id <= 3000;
ALTER TABLE tt SET (parallel_workers = 2); ANALYZE tt; SET max_parallel_maintenance_workers = 2;
CREATE INDEX tt_idx ON tt USING s5vector (v);
SELECT count(*) FROM s5vector_verify('tt_idx') WHERE NOT ok;});
	is($ret, 0, 'temporary table: build succeeds') or diag($err);
	is(launched($err), 0, 'temporary table: no worker');
}

# maintenance_work_mem too small for the shared graph (6000 x 32 needs about 2 MB): a NOTICE, then the serial
# build (which goes on disk).
{
	my ($ret, $err) = run_debug(q{SET max_parallel_maintenance_workers = 1; SET maintenance_work_mem = '1MB';
CREATE INDEX u_small ON u USING s5vector (v);});
	is($ret, 0, 'build with too little maintenance_work_mem succeeds');
	like($err, qr/does not fit into maintenance_work_mem for a parallel build, building serially/,
		'too little maintenance_work_mem: the documented NOTICE');
	is(launched($err), 0, 'too little maintenance_work_mem: no worker launched');
	verify_all_ok($node, 'u_small', 'serial fallback index is clean');
	$node->safe_psql('postgres', 'DROP INDEX u_small');
}

# More rows than the estimate: ANALYZE saw 1000 live rows on pages full of dead ones, 8000 more went to new pages,
# so the planner's density says about 1400. The shared graph fills up; the build starts again serially and is
# complete.
{
	$node->safe_psql('postgres', qq{CREATE TABLE grow (id int, v vector($dim));
INSERT INTO grow SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 20000) i;
DELETE FROM grow WHERE id > 1000; ANALYZE grow;
INSERT INTO grow SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(20001, 28000) i;
ALTER TABLE grow SET (parallel_workers = 1);});
	my ($ret, $err) = run_debug(q{SET max_parallel_maintenance_workers = 1; CREATE INDEX grow_idx ON grow USING s5vector (v);});
	is($ret, 0, 'more rows than estimated: build succeeds') or diag($err);
	is(launched($err), 1, 'more rows than estimated: the parallel attempt launched 1 worker');
	like($err, qr/more rows than the parallel build's shared graph was sized for/,
		'more rows than estimated: the documented NOTICE, then a serial build');
	verify_all_ok($node, 'grow_idx', 'more rows than estimated: index is clean');
	is(index_sweep_count($node, 'grow', 'v', $queries[0]), 9000, 'more rows than estimated: every row reachable');
}

# A NaN in a stored vector (the type refuses it, so only corruption puts it there): the serial build and a worker
# both give the type's error (22000), and no index is left.
{
	$node->safe_psql('postgres', qq{CREATE TABLE bad (id int, v vector($dim));
INSERT INTO bad SELECT i, CASE WHEN i % 100 = 0 THEN array_fill(777.0::real, ARRAY[$dim])::vector
	ELSE @{[ vec_sql('i', $dim) ]} END FROM generate_series(1, 4000) i;
ALTER TABLE bad SET (parallel_workers = 2); ANALYZE bad; CHECKPOINT;});
	my $file = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('bad')});
	$node->stop;
	my $marker = pack('f<', 777.0) x $dim;
	my $data = do { local $/; open(my $fh, '<', $file) or die "open $file: $!"; binmode $fh; <$fh> };
	my $edits = 0;
	my $pos = 0;
	while (($pos = index($data, $marker, $pos)) >= 0)
	{
		poke_file($file, $pos, pack('f<', 'NaN' + 0));
		$pos += length $marker;
		$edits++;
	}
	is($edits, 40, 'NaN written into 40 stored vectors spread over the heap');
	$node->start;

	my ($ret, $err) = run_debug(q{SET max_parallel_maintenance_workers = 0; CREATE INDEX bad_idx ON bad USING s5vector (v);});
	my ($state, $msg) = sqlstate_of($err);
	is($state, '22000', 'serial build over a NaN row: data exception');
	like($msg // '', qr/NaN not allowed in vector/, 'serial build: the vector type\'s message');

	# Only the workers scan (the leader does not participate), so the error must come from a worker.
	($ret, $err) = run_debug(q{SET max_parallel_maintenance_workers = 2; SET parallel_leader_participation = off;
CREATE INDEX bad_idx ON bad USING s5vector (v);});
	($state, $msg) = sqlstate_of($err);
	is($state, '22000', 'parallel build over a NaN row: data exception');
	like($msg // '', qr/NaN not allowed in vector/, 'parallel build: the same message');
	like($err, qr/parallel worker/, 'parallel build: the error came from a worker');
	like($err, qr/parallel build with 2 of 2 planned workers/, 'parallel build: 2 workers were launched');
	is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname = 'bad_idx'}), '0',
		'no index left after the worker error');
	ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'parallel worker'}),
		'no parallel worker left after the worker error');
}

# Cancel the leader of a slow parallel build while its workers insert: no index, no worker left, and the next
# build works. Progress (pg_stat_progress_create_index) counts the rows of every participant.
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres'),
			'-c', q{SET max_parallel_maintenance_workers = 2; SET application_name = 'pbuild';
CREATE INDEX t_slow ON t USING s5vector (v) WITH (m = 32, ef_construction = 800)} ],
		'>', \$out, '2>', \$err);
	ok($node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM pg_stat_activity
WHERE backend_type = 'parallel worker' AND leader_pid =
	(SELECT pid FROM pg_stat_activity WHERE application_name = 'pbuild' AND backend_type = 'client backend')}),
		'slow build: 2 parallel workers run');
	ok($node->poll_query_until('postgres', q{SELECT tuples_done > 200 AND tuples_total > 0
FROM pg_stat_progress_create_index p JOIN pg_stat_activity a USING (pid)
WHERE a.application_name = 'pbuild' AND a.backend_type = 'client backend'}),
		'slow build: progress counts tuples done');
	$node->safe_psql('postgres', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
WHERE application_name = 'pbuild' AND backend_type = 'client backend'});
	$h->finish;
	my ($state) = sqlstate_of($err);
	is($state, '57014', 'cancelled parallel build: query_canceled') or diag($err);
	is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname = 't_slow'}), '0',
		'no index left after the cancel');
	ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'parallel worker'}),
		'no parallel worker left after the cancel');
	my ($ret, $err2) = run_debug(q{SET max_parallel_maintenance_workers = 2;
CREATE INDEX t_after ON t USING s5vector (v);});
	is($ret, 0, 'the next parallel build works');
	is(launched($err2), 2, 'the next parallel build launched 2 workers');
	verify_all_ok($node, 't_after', 'the next parallel build is clean');
}

# REINDEX builds in parallel too.
{
	my ($ret, $err) = run_debug(q{SET max_parallel_maintenance_workers = 1; REINDEX INDEX t_after;});
	is($ret, 0, 'REINDEX succeeds');
	is(launched($err), 1, 'REINDEX launched 1 worker');
	is(index_sweep_count($node, 't', 'v', $queries[1]), $rows, 'REINDEX: every row reachable');
	$node->safe_psql('postgres', 'DROP INDEX t_after');
	# CONCURRENTLY: the scan runs under an MVCC snapshot, the workers take the weaker locks.
	($ret, $err) = run_debug(q{SET max_parallel_maintenance_workers = 1;
CREATE INDEX CONCURRENTLY t_cic ON t USING s5vector (v);});
	is($ret, 0, 'CREATE INDEX CONCURRENTLY succeeds') or diag($err);
	is(launched($err), 1, 'CREATE INDEX CONCURRENTLY launched 1 worker');
	verify_all_ok($node, 't_cic', 'CREATE INDEX CONCURRENTLY: index is clean');
	is(index_sweep_count($node, 't', 'v', $queries[2]), $rows, 'CREATE INDEX CONCURRENTLY: every row reachable');
}

$node->stop;
done_testing();
