# CREATE INDEX writes each cold list's row pages as consecutive blocks (cold_build.cpp FlushColdBuildRows: the
# second table scan's rows wait in memory, up to half of maintenance_work_mem, and are appended list by list), so a
# list scan reads a run of neighbouring pages and buffers (docs/benchmarks.md, "IVF", 2026-12-02). The layout is
# read from the index file: with the rows in memory at once every list's chain is one run of blocks (before the
# change the lists' pages interleaved in table order); with maintenance_work_mem = 1MB the rows are flushed in
# several batches and a chain has at most one break per extra batch. Either way the index must hold every row once,
# give the exact answers, fill a filtered LIMIT, take inserts, pass verify after VACUUM, and a standby must answer
# alike.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S5VTest;

my $BLCKSZ = 8192;
my $dim = 32;
my $n = 8000;
my $lists = 16;
my $node = PostgreSQL::Test::Cluster->new('cold_layout');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "autovacuum = off\ns5vector.worker_enabled = off\n");
$node->start;
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('cold_layout_standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->start;
$node->safe_psql('postgres', 'CREATE EXTENSION s5vector');
$node->safe_psql('postgres',
	"CREATE TABLE src AS SELECT i AS id, " . vec_sql('i', $dim, 40, 0.5) . "::vector($dim) AS v FROM generate_series(1, $n) i");

# Row pages of an index: block -> [list, next block, rows].
sub row_pages
{
	my ($index) = @_;
	$node->safe_psql('postgres', 'CHECKPOINT');
	my $path = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$index')");
	my %pages;
	for my $blk (1 .. (-s $path) / $BLCKSZ - 1)
	{
		my ($next, $type) = unpack('Vv', peek_file($path, $blk * $BLCKSZ + $BLCKSZ - 8, 6));
		next unless $type == 5;
		my $lp = unpack('V', peek_file($path, $blk * $BLCKSZ + 24, 4));
		my $item = $blk * $BLCKSZ + ($lp & 0x7FFF);
		my ($count) = unpack('v', peek_file($path, $item + 2, 2));
		my ($list) = unpack('V', peek_file($path, $item + 8, 4));
		$pages{$blk} = [ $list, $next, $count ];
	}
	return \%pages;
}

# Links of list chains that do not go to the next block (a break in a list's run of pages), and the lists seen.
sub chain_breaks
{
	my ($pages) = @_;
	my ($breaks, %seen) = (0);
	for my $blk (keys %$pages)
	{
		my ($list, $next) = @{ $pages->{$blk} };
		next if $list == 0xFFFFFFFF;    # staging (left unreferenced once trained)
		$seen{$list} = 1;
		$breaks++ if $next != 0xFFFFFFFF && $next != $blk + 1;
	}
	return ($breaks, scalar keys %seen);
}

my $rng = lcg_new(24);
my @queries = map { rand_vec_literal($rng, $dim) } 1 .. 3;
push @queries, $node->safe_psql('postgres', "SELECT v::text FROM src WHERE id = 77");

sub check_index
{
	my ($name) = @_;
	verify_all_ok($node, $name, "$name: verify clean");
	is(index_sweep_count($node, 'src', 'v', $queries[0]), $n, "$name: a full read returns every row once");
	my $all = "SET s5vector.probes = $lists;";
	for my $q (@queries)
	{
		is_deeply(knn_ids($node, 'src', 'v', '<->', $q, 20, 'index', $all),
			knn_ids($node, 'src', 'v', '<->', $q, 20, 'exact'), "$name: exact top 20 with every list probed");
	}
	my $filtered = $node->safe_psql('postgres', qq{
SET enable_seqscan = off; SET enable_bitmapscan = off; SET s5vector.probes = 1;
SELECT count(*) FROM (SELECT id FROM src WHERE id % 37 = 0 ORDER BY v <-> '$queries[1]' LIMIT 50) s});
	is($filtered, 50, "$name: a 1-in-37 filter fills LIMIT 50");
}

# All rows of the second table scan in memory at once: every list is one run of consecutive blocks.
$node->safe_psql('postgres',
	"CREATE INDEX one_run ON src USING s5vector (v) WITH (hot_window = '0', lists = $lists)");
my $pages = row_pages('one_run');
my ($breaks, $seen) = chain_breaks($pages);
is($seen, $lists, 'every list has row pages');
is($breaks, 0, "each list's row pages are consecutive blocks (" . scalar(keys %$pages) . ' row pages)');
check_index('one_run');
my @probe_answers = map {
	$node->safe_psql('postgres', "SET enable_seqscan = off; SET s5vector.probes = 3;"
		  . " SELECT string_agg(id::text, ',') FROM (SELECT id FROM src ORDER BY v <-> '$_' LIMIT 10) s")
} @queries;
$node->safe_psql('postgres', 'DROP INDEX one_run');

# 1MB of maintenance_work_mem: about 3500 rows of 32 dimensions a batch, so three batches of appends.
$node->safe_psql('postgres',
	"SET maintenance_work_mem = '1MB'; CREATE INDEX batches ON src USING s5vector (v) WITH (hot_window = '0', lists = $lists)");
$pages = row_pages('batches');
($breaks, $seen) = chain_breaks($pages);
ok($breaks >= 1 && $breaks <= 2 * $lists, "batched build: $breaks breaks in the lists' runs (at most one a list per extra batch)");
check_index('batches');
my @batch_answers = map {
	$node->safe_psql('postgres', "SET enable_seqscan = off; SET s5vector.probes = 3;"
		  . " SELECT string_agg(id::text, ',') FROM (SELECT id FROM src ORDER BY v <-> '$_' LIMIT 10) s")
} @queries;
is_deeply(\@batch_answers, \@probe_answers, 'the batched build answers as the one-run build at probes 3');

# Inserts after the build (one far outside the data), deletes and VACUUM, then verify and the standby.
$node->safe_psql('postgres', "INSERT INTO src SELECT 100000 + i, " . vec_sql('i', $dim, 40, 0.5) . "::vector($dim) FROM generate_series(1, 200) i");
my $far = '[' . join(',', (500) x $dim) . ']';
$node->safe_psql('postgres', "INSERT INTO src VALUES (999999, '$far')");
is($node->safe_psql('postgres', "SET enable_seqscan = off; SET s5vector.probes = 1; SELECT id FROM src ORDER BY v <-> '$far' LIMIT 1"),
	'999999', 'a row inserted after the build outside the data is found');
$node->safe_psql('postgres', 'DELETE FROM src WHERE id % 5 = 0');
$node->safe_psql('postgres', 'VACUUM src');
verify_all_ok($node, 'batches', 'verify clean after inserts, deletes and VACUUM');
my $live = $node->safe_psql('postgres', 'SELECT count(*) FROM src');
is(index_sweep_count($node, 'src', 'v', $queries[0]), $live, 'a full read after VACUUM returns every live row once');
$node->wait_for_catchup($standby, 'replay', $node->lsn('insert'));
for my $q (@queries)
{
	my $sql = "SET enable_seqscan = off; SET s5vector.probes = 3; SELECT string_agg(id::text, ',') FROM"
	  . " (SELECT id FROM src ORDER BY v <-> '$q' LIMIT 10) s";
	is($standby->safe_psql('postgres', $sql), $node->safe_psql('postgres', $sql), 'the standby answers alike');
}

# Training on insert (64 rows in staging, then 4 lists) appends the staging rows list by list too: 256 dimensions
# (coded, 6 rows a page), so each list has a few pages.
$node->safe_psql('postgres', 'CREATE TABLE ins (id int, v vector(256))');
$node->safe_psql('postgres', "CREATE INDEX ins_idx ON ins USING s5vector (v) WITH (hot_window = '0', lists = 4)");
$node->safe_psql('postgres', "INSERT INTO ins SELECT i, " . vec_sql('i', 256, 4, 0.5) . "::vector(256) FROM generate_series(1, 64) i");
is($node->safe_psql('postgres', "SELECT cold_lists FROM s5vector_index_stats('ins_idx')"), 4, 'the 64th insert trained 4 lists');
$pages = row_pages('ins_idx');
($breaks, $seen) = chain_breaks($pages);
is($seen, 4, 'training on insert: every list has row pages');
is($breaks, 0, "training on insert: each list's row pages are consecutive blocks");
verify_all_ok($node, 'ins_idx', 'training on insert: verify clean');
my $q256 = $node->safe_psql('postgres', 'SELECT v::text FROM ins WHERE id = 5');
is_deeply(knn_ids($node, 'ins', 'v', '<->', $q256, 10, 'index', 'SET s5vector.probes = 4;'),
	knn_ids($node, 'ins', 'v', '<->', $q256, 10, 'exact'), 'training on insert: exact top 10 with every list probed');

$standby->stop;
$node->stop;
done_testing();
