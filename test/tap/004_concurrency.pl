# Several clients inserting and searching at once (pgbench, 4 clients, ~10 s):
# no errors, then the index verifies, holds every row, and finds them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use S5VTest;

my $dim = 24;
my $node = PostgreSQL::Test::Cluster->new('conc');
$node->init;
$node->append_conf('postgresql.conf', "max_connections = 20\n");
$node->start;

$node->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id bigserial, v vector($dim));
INSERT INTO t (v) SELECT @{[ vec_sql('i', $dim, 20) ]} FROM generate_series(1, 200) i;
CREATE INDEX t_v_idx ON t USING s5vector (v vector_l2_ops) WITH (m = 8, ef_construction = 40);
});

my $dir = $node->basedir;
# insert: 2 rows per transaction, with random keys (pgbench's own PRNG).
PostgreSQL::Test::Utils::append_to_file("$dir/insert.sql", qq{
\\set k random(1, 100000000)
INSERT INTO t (v) SELECT @{[ vec_sql(':k + i', $dim, 20) ]} FROM generate_series(0, 1) i;
});
PostgreSQL::Test::Utils::append_to_file("$dir/search.sql", qq{
\\set k random(1, 100000000)
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> @{[ vec_sql(':k', $dim, 20) ]} LIMIT 10) s;
});

my ($out, $err) = ('', '');
my $ok = IPC::Run::run(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '10',
	  '-f', "$dir/insert.sql\@1", '-f', "$dir/search.sql\@1",
	  $node->connstr('postgres') ],
	'>', \$out, '2>', \$err);
note $out;
ok($ok, 'pgbench exited successfully');
is($err, '', 'pgbench reported no errors') or diag($err);
like($out, qr/number of failed transactions: 0 /, 'no failed transactions');
my ($ins) = $out =~ /SQL script 1: .*?\n\s*- weight: \d+ .*?\n\s*- (\d+) transactions/s;
my ($srch) = $out =~ /SQL script 2: .*?\n\s*- weight: \d+ .*?\n\s*- (\d+) transactions/s;
$ins //= 0;
$srch //= 0;
diag("pgbench: $ins insert and $srch search transactions in 10 s with 4 clients");
cmp_ok($ins, '>', 50, 'inserts ran');
cmp_ok($srch, '>', 50, 'searches ran');

ok(uses_index($node, 'SELECT id FROM t ORDER BY v <-> ' . vec_sql('1', $dim, 20) . ' LIMIT 10', 't_v_idx'),
	'the search plan uses the index');

my $count = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
# pgbench counts the transactions it finished inside -T; a client's last insert may commit as the clock runs out.
cmp_ok($count, '>=', 200 + 2 * $ins, 'every counted insert is in the table');
cmp_ok($count, '<=', 200 + 2 * ($ins + 4), 'no more rows than the clients could have inserted');
# Inserts keep the graph connected themselves (pruning never drops a node's only known in-link, list changes are
# atomic): every element is reachable right after concurrent inserts, without a VACUUM.
verify_all_ok($node, 't_v_idx', 's5vector_verify all ok (every element reachable) right after concurrent inserts');
$node->safe_psql('postgres', 'VACUUM t');
verify_all_ok($node, 't_v_idx', 's5vector_verify all ok after concurrent inserts, searches and VACUUM');
is(index_sweep_count($node, 't', 'v', rand_vec_literal(lcg_new(3), $dim)), $count,
	'index sweep returns every row');
is($node->safe_psql('postgres', 'SELECT count(*) FROM s5vector_index_stats(\'t_v_idx\') WHERE hot_elements = ' . $count),
	'1', 'stats count every row');

# Rows inserted concurrently are found by the index as their own nearest neighbour as often as after a fresh
# build of the same rows. The search is approximate: with m = 8 on this data a fresh build also misses about 1
# in 150 self-queries at ef_search 100, so the concurrent graph is compared with a rebuilt one.
my $self_query = qq{
SET enable_seqscan = off; SET enable_bitmapscan = off; SET s5vector.ef_search = 100;
SELECT count(*) FROM (SELECT * FROM t WHERE id > 200 ORDER BY id LIMIT 50) s
 WHERE (SELECT v <-> s.v FROM t ORDER BY v <-> s.v LIMIT 1) = 0};
my $found = $node->safe_psql('postgres', $self_query);
$node->safe_psql('postgres', 'REINDEX INDEX t_v_idx');
my $found_fresh = $node->safe_psql('postgres', $self_query);
diag("own nearest neighbour found for $found of 50 concurrently inserted rows ($found_fresh after REINDEX)");
cmp_ok($found, '>=', 45, 'concurrently inserted rows are found by an index search for their own vector');
cmp_ok($found, '>=', $found_fresh - 3, 'the concurrently built graph finds them about as well as a fresh build');

done_testing();
