# kill -9 of the whole server in the middle of the cold tier's multi-step operations, and a standby after a
# rebalance:
#  1. during CREATE INDEX with a cold part (the kill must hit a cold phase): no half-built index, a rebuild works;
#  2. during s5vector_migrate, between the cold add and the removal from the graph (the migration waits there
#     for a scan held open by a cursor): no row lost, every row once, verify inconclusive until the next
#     migration finishes the batch, then clean;
#  3. during s5vector_rebalance, between the moves' adds and the removal of the old copies (same wait): no row
#     lost, every row once, verify inconclusive (a rebalance pending) until the next step, then clean;
#  4. a streaming standby after a rebalance answers like the primary, and refuses s5vector_rebalance (25006).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use S5VTest;

my $dim = 8;
my $node = PostgreSQL::Test::Cluster->new('cold_crash');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
restart_after_crash = on
autovacuum = off
maintenance_work_mem = '64MB'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION s5vector');

sub crash_and_restart
{
	my ($label) = @_;
	my $pid = $node->{_pid};
	my @kids = grep { /^\d+$/ } split /\s+/, `pgrep -P $pid`;
	note "$label: kill -9 postmaster $pid and " . scalar(@kids) . " children";
	kill 'KILL', $pid, @kids;
	for (1 .. 500)
	{
		last unless grep { kill 0, $_ } ($pid, @kids);
		usleep(10_000);
	}
	$node->{_pid} = undef;
	$node->start;
}

# Start psql in the background on a script file; returns (handle, \$stdout, \$stderr).
my $nscript = 0;
sub start_psql
{
	my ($sql) = @_;
	my $file = $node->basedir . '/script' . ++$nscript . '.sql';
	PostgreSQL::Test::Utils::append_to_file($file, $sql);
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-f', $file ],
		'<', \undef, '>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

# Wait until a backend running $pattern waits on a heavyweight lock (WaitForScans); returns its state line.
sub wait_for_lock_wait
{
	my ($pattern) = @_;
	my $state = '';
	for (1 .. 3000)
	{
		$state = $node->safe_psql('postgres', qq{
SELECT wait_event_type || ' ' || wait_event || ' ' || left(query, 40) FROM pg_stat_activity
 WHERE query LIKE '%$pattern%' AND query NOT LIKE '%pg_stat_activity%' AND wait_event_type = 'Lock'});
		last if $state ne '';
		usleep(10_000);
	}
	return $state;
}

sub sweep_ok
{
	my ($label) = @_;
	my $count = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
	is($node->safe_psql('postgres', qq{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) || '/' || count(DISTINCT id) FROM (SELECT id FROM t ORDER BY v <-> '[0,0,0,0,0,0,0,0]') s}),
		"$count/$count", "$label: an index scan returns every one of the $count rows once");
}

# 1. kill during a build with a cold part.
{
	$node->safe_psql('postgres', qq{
CREATE TABLE t (id int PRIMARY KEY, v vector($dim), ts timestamptz);
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, now() - i * interval '1 minute' FROM generate_series(1, 200000) i;
CHECKPOINT;});
	my ($h, $out, $err) = start_psql(
		"CREATE INDEX t_idx ON t USING s5vector (v, ts) WITH (hot_window = '0', lists = 400); SELECT 'build done';\n");
	my $phase = '';
	for (1 .. 6000)
	{
		$h->pump_nb;
		$phase = $node->safe_psql('postgres', 'SELECT phase FROM pg_stat_progress_create_index');
		last if $phase =~ /cold|training/ || $$out =~ /build done/;
		usleep(10_000);
	}
	note "build phase at the kill: '$phase'";
	crash_and_restart('build');
	like($phase, qr/cold|training/, 'build: the kill hit a cold phase of the build');
	eval { $h->finish };
	unlike($$out, qr/build done/, 'build: killed before the build finished');
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 't_idx'"), '0',
		'build: no half-built index after recovery');
	$node->safe_psql('postgres', qq{
DELETE FROM t WHERE id > 6000;
CREATE INDEX t_idx ON t USING s5vector (v, ts) WITH (hot_window = 'infinity', lists = 16);});
	verify_all_ok($node, 't_idx', 'build: the rebuilt index verifies');
	sweep_ok('build');
}

# 2. kill during a migration, while it waits between the cold add and the removal from the graph.
{
	$node->safe_psql('postgres', "ALTER INDEX t_idx SET (hot_window = '1 hour')");
	my $cursor = $node->background_psql('postgres');
	$cursor->query_safe(qq{
SET enable_seqscan = off; BEGIN;
DECLARE c CURSOR FOR SELECT id FROM t ORDER BY v <-> '[1,1,1,1,1,1,1,1]';
FETCH 1 FROM c;});
	my ($h, $out, $err) = start_psql("SELECT s5vector_migrate('t_idx', 3000); SELECT 'migrate done';\n");
	my $state = wait_for_lock_wait('s5vector_migrate');
	note "migration at the kill: '$state'";
	crash_and_restart('migrate');
	like($state, qr/^Lock \w+ SELECT s5vector_migrate/, 'migrate: the kill hit the wait between add and remove');
	eval { $h->finish };
	eval { $cursor->quit };
	unlike($$out, qr/migrate done/, 'migrate: killed before the migration finished');
	my $stats = $node->safe_psql('postgres', "SELECT hot_elements || '/' || cold_rows FROM s5vector_index_stats('t_idx')");
	note "after the crash: hot/cold $stats";
	like($stats, qr{^6000/[1-9]\d*$}, 'migrate: the batch was added cold and is still in the graph');
	sweep_ok('migrate, after the crash');
	is($node->safe_psql('postgres', "SELECT ok IS NULL FROM s5vector_verify('t_idx') WHERE check_name = 'cold tier'"),
		't', 'migrate: verify reports the unfinished batch as inconclusive, not as corruption');
	$node->safe_psql('postgres', "SELECT s5vector_migrate('t_idx')");
	verify_all_ok($node, 't_idx', 'migrate: clean after the next migration');
	sweep_ok('migrate, finished');
}

# 3. kill during a rebalance, while it waits between the moves' adds and the removal of the old copies.
{
	# 3000 more old rows in one region: their list grows far past the mean.
	$node->safe_psql('postgres', qq{
INSERT INTO t SELECT 10000 + i, ('[' || (5 + sin(i)) || ',' || cos(i) || ',0,0,0,0,0,' || sin(i * 0.3) || ']')::vector,
  now() - interval '1 year' FROM generate_series(1, 3000) i;});
	my $lists_before = $node->safe_psql('postgres', "SELECT cold_lists FROM s5vector_index_stats('t_idx')");
	my $cursor = $node->background_psql('postgres');
	$cursor->query_safe(qq{
SET enable_seqscan = off; BEGIN;
DECLARE c CURSOR FOR SELECT id FROM t ORDER BY v <-> '[1,1,1,1,1,1,1,1]';
FETCH 1 FROM c;});
	my ($h, $out, $err) = start_psql("SELECT s5vector_rebalance('t_idx'); SELECT 'rebalance done';\n");
	my $state = wait_for_lock_wait('s5vector_rebalance');
	note "rebalance at the kill: '$state'";
	crash_and_restart('rebalance');
	like($state, qr/^Lock \w+ SELECT s5vector_rebalance/, 'rebalance: the kill hit the wait between add and remove');
	eval { $h->finish };
	eval { $cursor->quit };
	unlike($$out, qr/rebalance done/, 'rebalance: killed before the step finished');
	cmp_ok($node->safe_psql('postgres', "SELECT cold_lists FROM s5vector_index_stats('t_idx')"), '>', $lists_before,
		'rebalance: the split lists were installed before the kill');
	sweep_ok('rebalance, after the crash');
	my $v = $node->safe_psql('postgres',
		"SELECT coalesce(ok::text, 'null') || ' ' || detail FROM s5vector_verify('t_idx') WHERE check_name = 'cold tier'");
	note "verify after the crash: $v";
	like($v, qr/^null .*a rebalance did not finish/, 'rebalance: verify reports the moves in flight as inconclusive');
	$node->safe_psql('postgres', "SELECT s5vector_rebalance('t_idx')");
	verify_all_ok($node, 't_idx', 'rebalance: clean after the next step');
	sweep_ok('rebalance, finished');
}

# 4. a standby after a rebalance.
{
	$node->backup('bk');
	my $standby = PostgreSQL::Test::Cluster->new('cold_crash_standby');
	$standby->init_from_backup($node, 'bk', has_streaming => 1);
	$standby->start;
	$node->safe_psql('postgres', qq{
INSERT INTO t SELECT 20000 + i, ('[' || (-5 + sin(i)) || ',' || cos(i) || ',1,0,0,0,0,' || sin(i * 0.3) || ']')::vector,
  now() - interval '1 year' FROM generate_series(1, 3000) i;});
	cmp_ok($node->safe_psql('postgres', "SELECT s5vector_rebalance('t_idx')"), '>', 0, 'standby: the primary rebalanced');
	$node->wait_for_catchup($standby);
	my $ls = "SELECT string_agg(list || ':' || rows, ',' ORDER BY list) FROM s5vector_list_stats('t_idx')";
	is($standby->safe_psql('postgres', $ls), $node->safe_psql('postgres', $ls), 'standby: the same lists as the primary');
	my $knn = qq{SET enable_seqscan = off; SET s5vector.probes = 4;
SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '[5,0.5,0,0,0,0,0,0.2]' LIMIT 20) s};
	is($standby->safe_psql('postgres', $knn), $node->safe_psql('postgres', $knn),
		'standby: a query answers like the primary');
	my ($ret, $o, $e) = $standby->psql('postgres', "\\set VERBOSITY verbose\nSELECT s5vector_rebalance('t_idx')");
	my ($code, $msg) = sqlstate_of($e);
	is($code, '25006', 'standby: s5vector_rebalance is refused with SQLSTATE 25006');
	like($msg // '', qr/cannot rebalance an index during recovery/, 'standby: with its message');
	$standby->stop;
}

done_testing();
