# VACUUM after deleting half of the rows: recall holds, the index verifies, and
# reinserting as many rows reuses the freed pages instead of growing the index.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S5VTest;

my $dim = 32;
my $n = 5000;
my $vec = sub { vec_sql($_[0], $dim, 100) };

my $node = PostgreSQL::Test::Cluster->new('vacuum');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;

$node->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id int, v vector($dim));
INSERT INTO t SELECT i, @{[ $vec->('i') ]} FROM generate_series(1, $n) i;
CREATE INDEX t_v_idx ON t USING s5vector (v vector_l2_ops) WITH (m = 16, ef_construction = 64);
});

# 30 queries from the same distribution (keys that are not in the table).
my @queries = grep { length } split /\n/, $node->safe_psql('postgres',
	"SELECT @{[ $vec->('i') ]}::text FROM generate_series(1000001, 1000030) i ORDER BY i");
is(scalar(@queries), 30, '30 query vectors');

sub recall
{
	my ($label) = @_;
	my (@exact, @approx);
	for my $q (@queries)
	{
		push @exact, knn_ids($node, 't', 'v', '<->', $q, 10, 'exact');
		push @approx, knn_ids($node, 't', 'v', '<->', $q, 10, 'index');
	}
	my $r = recall_at_k(\@exact, \@approx, 10);
	diag(sprintf('%s: recall@10 = %.3f (ef_search 40)', $label, $r));
	return $r;
}

ok(uses_index($node, "SELECT id FROM t ORDER BY v <-> '$queries[0]' LIMIT 10", 't_v_idx'),
	'the queries use the index');
my $r0 = recall('after build');
cmp_ok($r0, '>=', 0.9, 'recall@10 after the build >= 0.9');
my $size0 = $node->safe_psql('postgres', "SELECT pg_relation_size('t_v_idx')");

# Delete half of the rows (every other id) and vacuum.
$node->safe_psql('postgres', 'DELETE FROM t WHERE id % 2 = 0');
$node->safe_psql('postgres', 'VACUUM t');
my $deleted = $n / 2;

my $stats = $node->safe_psql('postgres',
	"SELECT hot_elements || ' ' || hot_deleted FROM s5vector_index_stats('t_v_idx')");
diag("after VACUUM: hot_elements hot_deleted = $stats");
is((split / /, $stats)[0], $n - $deleted, 'stats: live elements after VACUUM');
verify_all_ok($node, 't_v_idx', 'verify all ok after delete + VACUUM');
is(index_sweep_count($node, 't', 'v', $queries[0]), $n - $deleted,
	'index sweep returns every survivor after VACUUM');
my $r1 = recall('survivors after VACUUM');
cmp_ok($r1, '>=', 0.9, 'recall@10 on the survivors >= 0.9');

my $size1 = $node->safe_psql('postgres', "SELECT pg_relation_size('t_v_idx')");

# Reinsert as many rows as were deleted: they should go to the freed pages.
$node->safe_psql('postgres', qq{
INSERT INTO t SELECT i, @{[ $vec->('i') ]} FROM generate_series($n + 1, $n + $deleted) i;
});
my $size2 = $node->safe_psql('postgres', "SELECT pg_relation_size('t_v_idx')");
diag(sprintf('index size: %d bytes after build, %d after delete+VACUUM, %d after reinsert (x%.3f of the build)',
	$size0, $size1, $size2, $size2 / $size0));
# Without any reuse the index would grow by the deleted fraction (x1.5 here). VACUUM removes deleted elements
# and records the space in the FSM, so the reinserted rows land in it (measured x1.013).
cmp_ok($size2, '<=', $size0 * 1.15,
	'reinserting the deleted number of rows grows the index by at most 15% (space reused)');

verify_all_ok($node, 't_v_idx', 'verify all ok after reinsert');
is(index_sweep_count($node, 't', 'v', $queries[0]), $n, 'index sweep returns every row after reinsert');
my $r2 = recall('after reinsert');
cmp_ok($r2, '>=', 0.9, 'recall@10 after reinsert >= 0.9');

done_testing();
