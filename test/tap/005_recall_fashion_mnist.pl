# Recall@10 at default settings (m = 16, ef_construction = 64, ef_search = 40)
# on a Fashion-MNIST subset: the first 10000 training images as vector(784)
# rows, the first 50 test images as queries, L2 distance.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use S5VTest;

my $dir = '/usr/share/datasets/fashion-mnist';
plan skip_all => "Fashion-MNIST not installed at $dir (Debian package dataset-fashion-mnist)"
  unless -r "$dir/train-images-idx3-ubyte.gz" && -r "$dir/t10k-images-idx3-ubyte.gz";

my ($ntrain, $ntest, $dim) = (10000, 50, 784);


my $node = PostgreSQL::Test::Cluster->new('fmnist');
$node->init;
$node->append_conf('postgresql.conf', qq{
maintenance_work_mem = '256MB'
autovacuum = off
max_wal_size = '1GB'
});
$node->start;

my $train = read_idx_images("$dir/train-images-idx3-ubyte.gz", $ntrain, $dim);
my $test = read_idx_images("$dir/t10k-images-idx3-ubyte.gz", $ntest, $dim);

my $tmp = PostgreSQL::Test::Utils::tempdir;
open(my $fh, '>', "$tmp/train.tsv") or die;
print $fh ($_ + 1) . "\t" . $train->[$_] . "\n" for 0 .. $#$train;
close $fh;
open($fh, '>', "$tmp/test.tsv") or die;
print $fh ($_ + 1) . "\t" . $test->[$_] . "\n" for 0 .. $#$test;
close $fh;
chmod 0644, "$tmp/train.tsv", "$tmp/test.tsv";

$node->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id int, v vector($dim));
CREATE TABLE q (qid int, v vector($dim));
});
# psql's \\copy reads the file as the client, so the server needs no access to it.
$node->safe_psql('postgres', "\\copy t FROM '$tmp/train.tsv'");
$node->safe_psql('postgres', "\\copy q FROM '$tmp/test.tsv'");
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), $ntrain, "$ntrain training images loaded");
is($node->safe_psql('postgres', 'SELECT count(*) FROM q'), $ntest, "$ntest query images loaded");

my $t0 = time;
$node->safe_psql('postgres', 'CREATE INDEX t_v_idx ON t USING s5vector (v vector_l2_ops)');
my $build = time - $t0;
is($node->safe_psql('postgres', 'SELECT m || \' \' || ef_construction FROM s5vector_index_stats(\'t_v_idx\')'),
	'16 64', 'default build options m = 16, ef_construction = 64');

# Top-10 for every query in one statement; one line "qid|id,id,..." per query.
sub topk
{
	my ($settings) = @_;
	my $out = $node->safe_psql('postgres', qq{
$settings
SELECT q.qid || '|' || (SELECT string_agg(id::text, ',' ORDER BY rn) FROM
  (SELECT id, row_number() OVER () AS rn FROM
    (SELECT id FROM t ORDER BY t.v <-> q.v LIMIT 10) s0) s)
FROM q ORDER BY q.qid;
});
	return [ map { [ split /,/, (split /\|/, $_)[1] // '' ] } grep { length } split /\n/, $out ];
}

my $exact = topk('SET enable_indexscan = off; SET enable_bitmapscan = off;');
$t0 = time;
my $approx = topk('SET enable_seqscan = off; SET enable_bitmapscan = off;');
my $qtime = time - $t0;

is(scalar(@$exact), $ntest, 'exact answers for every query');
is(scalar(grep { @$_ == 10 } @$approx), $ntest, 'the index returns 10 rows for every query');
ok(uses_index($node, "SELECT id FROM t ORDER BY v <-> (SELECT v FROM q WHERE qid = 1) LIMIT 10", 't_v_idx'),
	'the query plan uses the index');

my $recall = recall_at_k($exact, $approx, 10);
diag(sprintf('Fashion-MNIST %d x %d: build %.1f s, %d queries in %.2f s, mean recall@10 = %.4f (ef_search 40)',
	$ntrain, $dim, $build, $ntest, $qtime, $recall));
cmp_ok($recall, '>=', 0.95, 'mean recall@10 >= 0.95 at default settings');

verify_all_ok($node, 't_v_idx', 's5vector_verify all ok');
is(index_sweep_count($node, 't', 'v', $test->[0]), $ntrain, 'index sweep returns every row');

done_testing();
