# Recall@10 at default settings on Fashion-MNIST with 80% of the rows cold (issue 8: "recall@10 >= 0.95 on
# Fashion-MNIST with 80% of the rows cold at default settings"): all 60000 training images as vector(784) rows,
# each with an age (timestamptz) of 0 .. 999 hours before now, spread evenly over the rows (hour = id * 7919 mod
# 1000); the index is built with hot_window = '200 hours', so the 20% younger than 200 hours go to the graph and
# the 80% older to the cold lists (lists = 0: chosen from the cold rows). Queries: the first 100 test images, L2
# distance, with no SET of s5vector.probes or s5vector.ef_search (the defaults). Exact answers from a sequential
# scan.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX qw(strftime);
use Time::HiRes qw(time);
use S5VTest;

my $dir = '/usr/share/datasets/fashion-mnist';
plan skip_all => "Fashion-MNIST not installed at $dir (Debian package dataset-fashion-mnist)"
  unless -r "$dir/train-images-idx3-ubyte.gz" && -r "$dir/t10k-images-idx3-ubyte.gz";

my ($ntrain, $ntest, $dim) = (60000, 100, 784);
my ($hours, $hot_hours) = (1000, 200);


my $t_start = time;
my $node = PostgreSQL::Test::Cluster->new('mixed');
$node->init;
$node->append_conf('postgresql.conf', qq{
maintenance_work_mem = '512MB'
shared_buffers = '512MB'
autovacuum = off
max_wal_size = '2GB'
});
$node->start;

my $train = read_idx_images("$dir/train-images-idx3-ubyte.gz", $ntrain, $dim);
my $test = read_idx_images("$dir/t10k-images-idx3-ubyte.gz", $ntest, $dim);

# Ages relative to the time the file is written: the build (a few seconds later) sees the same split, since no
# row is within a minute of the 200-hour boundary (ages are whole hours).
my $now = time;
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $hot_expected = 0;
open(my $fh, '>', "$tmp/train.tsv") or die;
for my $i (0 .. $#$train)
{
	my $id = $i + 1;
	my $h = ($id * 7919) % $hours;
	$hot_expected++ if $h < $hot_hours;
	my $ts = strftime('%Y-%m-%d %H:%M:%S+00', gmtime($now - $h * 3600 - 30));
	print $fh "$id\t$ts\t$train->[$i]\n";
}
close $fh;
open($fh, '>', "$tmp/test.tsv") or die;
print $fh ($_ + 1) . "\t" . $test->[$_] . "\n" for 0 .. $#$test;
close $fh;
chmod 0644, "$tmp/train.tsv", "$tmp/test.tsv";
undef $train;

$node->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id int, ts timestamptz, v vector($dim));
-- A row (3.2 kB) fits a page: no TOAST and no compression, so the exact answers' sequential scans are quicker.
ALTER TABLE t ALTER COLUMN v SET STORAGE PLAIN;
CREATE TABLE q (qid int, v vector($dim));
});
$node->safe_psql('postgres', "\\copy t FROM '$tmp/train.tsv'");
$node->safe_psql('postgres', "\\copy q FROM '$tmp/test.tsv'");
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), $ntrain, "$ntrain training images loaded");
is($node->safe_psql('postgres', "SELECT count(*) FROM t WHERE ts >= now() - interval '$hot_hours hours'"),
	$hot_expected, "$hot_expected rows (20%) younger than $hot_hours hours");
my $t_loaded = time;

$node->safe_psql('postgres',
	"CREATE INDEX t_v_idx ON t USING s5vector (v vector_l2_ops, ts) WITH (hot_window = '$hot_hours hours')");
my $build = time - $t_loaded;
my ($hot, $cold, $lists) = split /\|/, $node->safe_psql('postgres',
	"SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('t_v_idx')");
is($hot, $hot_expected, "the build put the $hot_expected rows inside the window into the graph");
is($cold, $ntrain - $hot_expected, 'and the other ' . ($ntrain - $hot_expected) . ' rows into the cold tier');
ok($cold >= 0.79 * $ntrain && $cold <= 0.81 * $ntrain, "80% of the rows are cold ($cold of $ntrain)");
cmp_ok($lists, '>', 1, "lists = 0 chose $lists lists from the cold rows");

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

# Default settings: nothing but the planner switches that force each plan.
is($node->safe_psql('postgres', "LOAD 's5vector'; SELECT current_setting('s5vector.probes') || ' ' || current_setting('s5vector.ef_search')"),
	'10 40', 'the defaults are in force (probes 10, ef_search 40)');
my $exact = topk('SET enable_indexscan = off; SET enable_bitmapscan = off;');
my $t0 = time;
my $approx = topk('SET enable_seqscan = off; SET enable_bitmapscan = off;');
my $qtime = time - $t0;

is(scalar(@$exact), $ntest, 'exact answers for every query');
is(scalar(grep { @$_ == 10 } @$approx), $ntest, 'the index returns 10 rows for every query');
ok(uses_index($node, "SELECT id FROM t ORDER BY v <-> (SELECT v FROM q WHERE qid = 1) LIMIT 10", 't_v_idx'),
	'the query plan uses the index');

# Where the true neighbours live: both tiers must contribute, or this would not test the merged scan.
my %is_hot = map { $_ => 1 } grep { length } split /\n/, $node->safe_psql('postgres',
	"SELECT id FROM t WHERE ts >= now() - interval '$hot_hours hours'");
my ($hot_truth, $all_truth) = (0, 0);
for my $ids (@$exact)
{
	$all_truth += @$ids;
	$hot_truth += grep { $is_hot{$_} } @$ids;
}
ok($hot_truth > 0.1 * $all_truth && $hot_truth < 0.3 * $all_truth,
	"the true top-10 come from both tiers ($hot_truth of $all_truth hot)");

my $recall = recall_at_k($exact, $approx, 10);
diag(sprintf('Fashion-MNIST %d x %d, %d hot / %d cold in %d lists: build %.1f s, %d queries in %.2f s '
	  . '(%.0f QPS), mean recall@10 = %.4f at default settings', $ntrain, $dim, $hot, $cold, $lists, $build,
	$ntest, $qtime, $ntest / $qtime, $recall));
cmp_ok($recall, '>=', 0.95, 'mean recall@10 >= 0.95 at default settings with 80% of the rows cold');

verify_all_ok($node, 't_v_idx', 's5vector_verify all ok');
is(index_sweep_count($node, 't', 'v', $test->[0]), $ntrain, 'index sweep returns every row');
diag(sprintf('total %.1f s', time - $t_start));

done_testing();
