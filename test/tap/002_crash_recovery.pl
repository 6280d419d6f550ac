# Crash recovery: kill -9 the whole server (postmaster and every backend) while
# the index is being written, restart, and check that the index verifies, that
# an index sweep returns every row, and that no committed row is lost.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use S5VTest;

my $dim = 16;
my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
# Checkpoints only when we ask: recovery then has to replay every index record.
$node->append_conf('postgresql.conf', qq{
checkpoint_timeout = '1h'
max_wal_size = '1GB'
restart_after_crash = on
autovacuum = off
});
$node->start;

my $q = rand_vec_literal(lcg_new(7), $dim);

$node->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id int, v vector($dim));
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 2000) i;
CHECKPOINT;
CREATE INDEX t_v_idx ON t USING s5vector (v vector_l2_ops) WITH (m = 8, ef_construction = 32);
});

# kill -9 the postmaster and all its children at once, like a power cut for the
# server processes, then restart (crash recovery replays the WAL).
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

# Start psql in the background on a script file holding $sql (not on stdin:
# psql must notice the lost connection and exit); returns (handle, \$stdout, \$stderr).
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

sub check_index
{
	my ($label, $committed) = @_;
	verify_all_ok($node, 't_v_idx', "$label: s5vector_verify all ok");
	my $count = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
	is(index_sweep_count($node, 't', 'v', $q), $count, "$label: index sweep returns all $count rows");
	if ($committed && @$committed)
	{
		my $list = join(',', @$committed);
		is($node->safe_psql('postgres',
			"SELECT count(DISTINCT id) FROM t WHERE id = ANY('{$list}'::int[])"),
			scalar(@$committed), "$label: all " . scalar(@$committed) . " committed rows are there");
		# and through the index, each committed row is found as its own nearest neighbour
		my $sample = join(',', @$committed[ map { int($_ * $#$committed / 9) } 0 .. 9 ]);
		is($node->safe_psql('postgres', qq{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM t s WHERE s.id IN ($sample)
  AND s.id = (SELECT id FROM t ORDER BY v <-> s.v LIMIT 1)}), '10',
			"$label: sampled committed rows are found by the index");
	}
}

# Inserter: small committed transactions, each printing the ids it committed.
# With autocommit psql prints a statement's rows only after the commit.
sub inserter_sql
{
	my ($from, $batches, $per) = @_;
	my $sql = '';
	for my $b (0 .. $batches - 1)
	{
		my $lo = $from + $b * $per;
		my $hi = $lo + $per - 1;
		$sql .= "INSERT INTO t SELECT i, " . vec_sql('i', $dim)
		  . " FROM generate_series($lo, $hi) i RETURNING id;\n";
	}
	return $sql;
}

sub committed_ids
{
	my ($out) = @_;
	my @ids = grep { /^\d+$/ } split /\n/, $$out;
	# the last line may be partial
	pop @ids if length($$out) && substr($$out, -1) ne "\n";
	return \@ids;
}

# 1. kill during inserts (right after the build: no checkpoint since).
{
	my ($h, $out, $err) = start_psql(inserter_sql(100_001, 2000, 5));
	my $t0 = time;
	while (scalar(@{ committed_ids($out) }) < 400 && time - $t0 < 60)
	{
		$h->pump_nb;
		usleep(20_000);
	}
	# the kill must hit an INSERT at work, not the session between two statements
	my $activity = '';
	for (1 .. 200)
	{
		$activity = $node->safe_psql('postgres',
			"SELECT state || ' ' || left(query, 11) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE 'INSERT%'");
		last if $activity eq 'active INSERT INTO';
	}
	crash_and_restart('inserts');
	eval { $h->finish };
	is($activity, 'active INSERT INTO', 'inserts: the kill hit an insert in progress');
	my $ids = committed_ids($out);
	cmp_ok(scalar(@$ids), '>=', 400, 'inserts: the inserter committed rows before the kill');
	cmp_ok(scalar(@$ids), '<', 10_000, 'inserts: the kill came before the inserter finished');
	check_index('kill during inserts', $ids);
}

# 2. kill during VACUUM (index bulk delete and graph repair) after a delete.
{
	$node->safe_psql('postgres', 'DELETE FROM t WHERE id % 3 = 0');
	my ($h, $out, $err) = start_psql(
		"SET vacuum_cost_delay = 10; SET vacuum_cost_limit = 1; VACUUM t; SELECT 'vacuum done';\n");
	my $phase = '';
	my $t0 = time;
	while (time - $t0 < 60)
	{
		$h->pump_nb;
		$phase = $node->safe_psql('postgres',
			"SELECT phase FROM pg_stat_progress_vacuum WHERE relid = 't'::regclass");
		last if $phase eq 'vacuuming indexes' || $$out =~ /vacuum done/;
		usleep(20_000);
	}
	$h->pump_nb;
	usleep(200_000);    # let it modify some index pages
	$phase = $node->safe_psql('postgres',
		"SELECT phase FROM pg_stat_progress_vacuum WHERE relid = 't'::regclass");
	note "vacuum phase at the kill: '$phase'";
	crash_and_restart('vacuum');
	is($phase, 'vacuuming indexes', 'vacuum: the kill hit the index phase of VACUUM');
	eval { $h->finish };
	unlike($$out, qr/vacuum done/, 'vacuum: killed before VACUUM finished');
	check_index('kill during VACUUM', undef);
	# a VACUUM after the crash finishes the job
	$node->safe_psql('postgres', 'VACUUM t');
	check_index('VACUUM after the crash', undef);
	# inserts into pages that VACUUM freed, then crash again with no checkpoint
	my ($h2, $out2) = start_psql(inserter_sql(200_001, 2000, 5));
	$t0 = time;
	while (scalar(@{ committed_ids($out2) }) < 300 && time - $t0 < 60)
	{
		$h2->pump_nb;
		usleep(20_000);
	}
	crash_and_restart('inserts after vacuum');
	eval { $h2->finish };
	check_index('kill during inserts after VACUUM', committed_ids($out2));
}

# 3. kill during CREATE INDEX: the index must not exist after recovery, and a new
#    build on the same table works.
{
	$node->safe_psql('postgres', qq{
DROP INDEX t_v_idx;
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(300001, 320000) i;
CHECKPOINT;});
	my ($h, $out, $err) = start_psql(
		"CREATE INDEX t_v_idx ON t USING s5vector (v vector_l2_ops) WITH (m = 16, ef_construction = 200); SELECT 'build done';\n");
	my $t0 = time;
	my $phase = '';
	while (time - $t0 < 60)
	{
		$h->pump_nb;
		$phase = $node->safe_psql('postgres',
			"SELECT phase || ' ' || blocks_done || '/' || blocks_total || ' ' || tuples_done FROM pg_stat_progress_create_index");
		last if $phase =~ / [1-9]\d*$/ || $$out =~ /build done/;
		usleep(10_000);
	}
	$h->pump_nb;
	usleep(300_000);
	$phase = $node->safe_psql('postgres',
		"SELECT phase || ' ' || blocks_done || '/' || blocks_total || ' ' || tuples_done FROM pg_stat_progress_create_index");
	note "build progress at the kill: '$phase'";
	crash_and_restart('create index');
	like($phase, qr/^building index: (loading tuples|writing pages) .* [1-9]\d*$/,
		'create index: the kill hit the build while it was loading or writing the graph');
	eval { $h->finish };
	unlike($$out, qr/build done/, 'create index: killed before the build finished');
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 't_v_idx'"),
		'0', 'create index: no half-built index after recovery');
	$node->safe_psql('postgres',
		'CREATE INDEX t_v_idx ON t USING s5vector (v vector_l2_ops) WITH (m = 8, ef_construction = 32)');
	check_index('rebuild after a crashed build', undef);
}

done_testing();
