# WAL replay of the s5vector index on a streaming standby: the standby answers
# nearest-neighbour queries exactly like the primary, after a build, inserts
# after the build, deletes and VACUUM.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S5VTest;

my $dim = 16;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "maintenance_work_mem = '64MB'\n");
$primary->start;
$primary->backup('bk');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id int PRIMARY KEY, v vector($dim), ts timestamptz);
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, now() - i * interval '1 second'
  FROM generate_series(1, 3000) i;
CREATE INDEX t_v_idx ON t USING s5vector (v vector_l2_ops, ts) WITH (m = 16, ef_construction = 64);
});

# Inserts after the build go through the per-tuple WAL path.
$primary->safe_psql('postgres', qq{
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, now() - i * interval '1 second'
  FROM generate_series(3001, 4000) i;
});
# Deletes and VACUUM: graph repair and page reuse are WAL-logged as well.
$primary->safe_psql('postgres', 'DELETE FROM t WHERE id % 5 = 0 OR id BETWEEN 100 AND 300');
$primary->safe_psql('postgres', 'VACUUM t');
$primary->safe_psql('postgres', qq{
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, now() FROM generate_series(4001, 4300) i;
});

$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT count(*) FROM t'),
	$primary->safe_psql('postgres', 'SELECT count(*) FROM t'),
	'standby has the same row count');

my $rng = lcg_new(1);
my @queries = map { rand_vec_literal($rng, $dim) } 1 .. 20;

my $sql0 = "SELECT id FROM t ORDER BY v <-> '$queries[0]' LIMIT 10";
ok(uses_index($primary, $sql0, 't_v_idx'), 'primary plan uses the index');
ok(uses_index($standby, $sql0, 't_v_idx'), 'standby plan uses the index');

my $same = 0;
for my $i (0 .. $#queries)
{
	my $sql = "SET enable_seqscan = off; SELECT id FROM t ORDER BY v <-> '$queries[$i]' LIMIT 10";
	my $p = $primary->safe_psql('postgres', $sql);
	my $s = $standby->safe_psql('postgres', $sql);
	my $n = scalar(@{ ids_of($p) });
	if ($p eq $s && $n == 10) { $same++ }
	else { diag("query $i differs (primary returned $n rows):\nprimary: $p\nstandby: $s") }
}
is($same, scalar(@queries), 'all 20 queries: standby returns the primary\'s 10 ids in the same order');

# Filtered query inside the index (age column) on the standby too.
my $fsql = "SET enable_seqscan = off; SELECT id FROM t WHERE ts < now() - interval '2000 seconds' "
  . "ORDER BY v <-> '$queries[1]' LIMIT 10";
is($standby->safe_psql('postgres', $fsql), $primary->safe_psql('postgres', $fsql),
	'age-filtered query: same answer on standby');

is($standby->safe_psql('postgres', 'SELECT hot_elements, max_level, pages FROM s5vector_index_stats(\'t_v_idx\')'),
	$primary->safe_psql('postgres', 'SELECT hot_elements, max_level, pages FROM s5vector_index_stats(\'t_v_idx\')'),
	'index stats identical on standby');

verify_all_ok($standby, 't_v_idx', 's5vector_verify all ok on the standby');
verify_all_ok($primary, 't_v_idx', 's5vector_verify all ok on the primary');

# Everything is reachable through the index on the standby.
is(index_sweep_count($standby, 't', 'v', $queries[2]),
	$standby->safe_psql('postgres', 'SELECT count(*) FROM t'),
	'standby: index sweep returns every row');

# The standby, promoted, keeps a usable index that accepts writes.
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'promotion timed out';
$standby->safe_psql('postgres', qq{
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, now() FROM generate_series(5001, 5200) i;
});
verify_all_ok($standby, 't_v_idx', 'promoted standby: verify all ok after new inserts');
is(index_sweep_count($standby, 't', 'v', $queries[3]),
	$standby->safe_psql('postgres', 'SELECT count(*) FROM t'),
	'promoted standby: index sweep returns every row');

done_testing();
