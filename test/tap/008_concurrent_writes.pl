# Write paths side by side (issue 7.2, 7.4): concurrent inserts leave every element reachable (s5vector_verify),
# an INSERT issued while VACUUM repairs the graph does not wait for it, a VACUUM with nothing dead reads (almost)
# no index page, and a VACUUM cancelled in the middle leaves a consistent index that the next VACUUM finishes.
# Timing bounds are generous (the machine is shared); measurements go to bench/vacuum_insert_bench.sh.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);
use S5VTest;

my $dim = 32;
my $n = 3000;
my $node = PostgreSQL::Test::Cluster->new('conc_writes');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\nmax_connections = 20\n");
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id bigserial, v vector($dim));
INSERT INTO t (v) SELECT @{[ vec_sql('i', $dim, 20) ]} FROM generate_series(1, $n) i;
CREATE INDEX t_v_idx ON t USING s5vector (v vector_l2_ops) WITH (m = 8, ef_construction = 32);
});

verify_all_ok($node, 't_v_idx', 'the built index verifies (every element reachable)');

# 1. Four clients inserting at once (shared graph lock, atomic back-link updates): every element reachable.
my $dir = $node->basedir;
PostgreSQL::Test::Utils::append_to_file("$dir/insert.sql", qq{
\\set k random(1, 100000000)
INSERT INTO t (v) SELECT @{[ vec_sql(':k', $dim, 20) ]};
});
my ($out, $err) = ('', '');
my $ok = IPC::Run::run([ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '8', '-f', "$dir/insert.sql",
		$node->connstr('postgres') ], '>', \$out, '2>', \$err);
ok($ok, 'pgbench inserts ran') or diag($err);
my ($tps) = $out =~ /tps = ([\d.]+)/;
diag("4 clients inserting: $tps TPS");
verify_all_ok($node, 't_v_idx', 'after concurrent inserts every element is reachable and verify is clean');

# 2. An INSERT while VACUUM repairs the graph after 10% deletes. The cost delay stretches the VACUUM (it sleeps in
# every repair step) so that the inserts surely overlap it.
$node->safe_psql('postgres', 'DELETE FROM t WHERE id % 10 = 0');
my ($vout, $verr) = ('', '');
my $vac = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', "SET vacuum_cost_delay = '1ms'",
		'-c', 'SET vacuum_cost_limit = 1', '-c', 'VACUUM t' ], '>', \$vout, '2>', \$verr);
my $phase = '';
for (my $i = 0; $i < 600 && $phase ne 'vacuuming indexes'; $i++)
{
	usleep(50_000);
	$phase = $node->safe_psql('postgres', 'SELECT phase FROM pg_stat_progress_vacuum');
}
is($phase, 'vacuuming indexes', 'VACUUM reached the index');
my $worst = 0;
for my $i (1 .. 5)
{
	my $t0 = time;
	$node->safe_psql('postgres', "INSERT INTO t (v) SELECT @{[ vec_sql(9000000 + $i, $dim, 20) ]}");
	my $ms = (time - $t0) * 1000;
	$worst = $ms if $ms > $worst;
	usleep(100_000);
}
my $still = $node->safe_psql('postgres', 'SELECT count(*) FROM pg_stat_progress_vacuum');
is($still, '1', 'VACUUM was still running after the inserts (they overlapped it)');
diag(sprintf('slowest of 5 inserts during VACUUM: %.1f ms', $worst));
cmp_ok($worst, '<', 2000, 'an INSERT during VACUUM does not wait for it (< 2 s, generous)');
$vac->finish;
is($verr, '', 'VACUUM succeeded');
verify_all_ok($node, 't_v_idx', 'verify is clean after VACUUM beside inserts');
is(index_sweep_count($node, 't', 'v', '[' . join(',', (0) x $dim) . ']'),
	$node->safe_psql('postgres', 'SELECT count(*) FROM t'), 'an index sweep returns every row');

# 3. A VACUUM with nothing dead does not read the graph: index block accesses stay far below the index's size.
sub idx_blocks
{
	return $node->safe_psql('postgres',
		"SELECT pg_stat_force_next_flush(); SELECT idx_blks_hit + idx_blks_read FROM pg_statio_user_indexes WHERE indexrelname = 't_v_idx'");
}
my $pages = $node->safe_psql('postgres', "SELECT pg_relation_size('t_v_idx') / 8192");
my $before = idx_blocks();
$node->safe_psql('postgres', 'VACUUM t; SELECT pg_stat_force_next_flush()');
my $after = $before;
for (my $i = 0; $i < 40 && $after == $before; $i++)
{
	usleep(100_000);
	$after = idx_blocks();
}
my $delta = $after - $before;
diag("VACUUM with nothing dead: $delta index block accesses, index has $pages pages");
cmp_ok($delta, '>', 0, 'the statistics saw the VACUUM');
cmp_ok($delta, '<', $pages / 4, 'a VACUUM with nothing dead reads a small fraction of the index');

# 4. A VACUUM cancelled while it works on the index leaves a consistent index with every element reachable; the
# next VACUUM finishes the work.
$node->safe_psql('postgres', 'DELETE FROM t WHERE id % 10 = 1');
($vout, $verr) = ('', '');
$vac = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', "SET vacuum_cost_delay = '1ms'",
		'-c', 'SET vacuum_cost_limit = 1', '-c', 'VACUUM t' ], '>', \$vout, '2>', \$verr);
$phase = '';
for (my $i = 0; $i < 600 && $phase ne 'vacuuming indexes'; $i++)
{
	usleep(50_000);
	$phase = $node->safe_psql('postgres', 'SELECT phase FROM pg_stat_progress_vacuum');
}
is($phase, 'vacuuming indexes', 'the second VACUUM reached the index');
usleep(300_000);
$node->safe_psql('postgres', 'SELECT pg_cancel_backend(pid) FROM pg_stat_progress_vacuum');
$vac->finish;
like($verr, qr/canceling statement due to user request/, 'VACUUM cancelled while it works on the index');
like($verr, qr/while vacuuming index "t_v_idx"/, 'the cancel hit the index phase');
verify_all_ok($node, 't_v_idx', 'after the cancelled VACUUM the index is consistent, every element reachable');
$node->safe_psql('postgres', 'VACUUM t');
verify_all_ok($node, 't_v_idx', 'the next VACUUM leaves verify clean');
is(index_sweep_count($node, 't', 'v', '[' . join(',', (0) x $dim) . ']'),
	$node->safe_psql('postgres', 'SELECT count(*) FROM t'), 'an index sweep returns every row after both VACUUMs');

$node->stop;
done_testing();
