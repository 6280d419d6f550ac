# Pages that offload frees are reused by the hot tier: an index with a hot and a cold tier offloads its cold rows
# (the row pages become free pages in the FSM), then recent rows are inserted into the graph. They must land on
# the freed pages (the index file does not grow while free pages are left), the index stays consistent, and a
# streaming standby (whose cold scans the primary's scan interlock does not cover) answers like the primary. And
# VACUUM unlinks the row pages it empties and frees them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S5VTest;

my $dim = 16;
my $s5 = s5_node_start(PostgreSQL::Test::Utils::tempdir());
my $primary = PostgreSQL::Test::Cluster->new('reuse_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
autovacuum = off
s5vector.s5_url = '$s5->{url}'
});
$primary->start;
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('reuse_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;

# 6000 rows ten days old, cold in 6 lists, built with the cold part local (s5_url unset for the build).
$primary->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE EXTENSION pg_freespacemap;
CREATE TABLE t (id int PRIMARY KEY, v vector($dim), ts timestamptz);
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, now() - interval '10 days' FROM generate_series(1, 6000) i;
SET s5vector.s5_url = '';
CREATE INDEX t_idx ON t USING s5vector (v, ts) WITH (hot_window = '1 day', lists = 6);
});
is($primary->safe_psql('postgres', "SELECT hot_elements || '/' || cold_rows FROM s5vector_index_stats('t_idx')"),
	'0/6000', 'built: every row cold, locally');
my $offloaded = $primary->safe_psql('postgres', "SELECT s5vector_offload('t_idx')");
cmp_ok($offloaded, '>=', 3000, "offload moved $offloaded rows to S5");
my $free = "SELECT count(*) FROM pg_freespace('t_idx') WHERE avail > 0";
my $free_before = $primary->safe_psql('postgres', $free);
my $size_before = $primary->safe_psql('postgres', "SELECT pg_relation_size('t_idx')");
my $pages_before = $size_before / 8192;
cmp_ok($free_before, '>=', 10, "offload freed $free_before pages into the FSM");

# Recent rows: hot. Fewer than the free pages can hold (a hot page takes about 40 elements of 16 dimensions with
# their neighbour tuples; 5 elements a page is far below that).
my $new_rows = 5 * $free_before;
$primary->safe_psql('postgres',
	"INSERT INTO t SELECT 100000 + i, @{[ vec_sql('100000 + i', $dim) ]}, now() FROM generate_series(1, $new_rows) i");
is($primary->safe_psql('postgres', "SELECT hot_elements FROM s5vector_index_stats('t_idx')"), $new_rows,
	"$new_rows recent rows are in the graph");
is($primary->safe_psql('postgres', "SELECT pg_relation_size('t_idx')"), $size_before,
	'the hot inserts took freed pages: the index file did not grow');
like($primary->safe_psql('postgres', "SELECT detail FROM s5vector_verify('t_idx') WHERE check_name = 'pages'"),
	qr/^$pages_before pages \([1-9]\d* hot,/, 'verify: hot pages in a file of the same size');
verify_all_ok($primary, 't_idx', 'verify all ok after the hot tier reused freed cold pages');
is(index_sweep_count($primary, 't', 'v', rand_vec_literal(lcg_new(3), $dim)), 6000 + $new_rows,
	'the index returns every row once');

# Exact answers with every list probed and a wide graph search, on both servers.
my $rng = lcg_new(11);
my @queries = map { rand_vec_literal($rng, $dim) } 1 .. 8;
my $knn = 'SET enable_seqscan = off; SET s5vector.probes = 6; SET s5vector.ef_search = 400;';
my ($exact_ok, $same) = (0, 0);
$primary->wait_for_catchup($standby);
for my $q (@queries)
{
	my $sql = "SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '$q' LIMIT 10) s";
	my $exact = $primary->safe_psql('postgres', "SET enable_indexscan = off; $sql");
	my $p = $primary->safe_psql('postgres', "$knn $sql");
	my $s = $standby->safe_psql('postgres', "$knn $sql");
	$exact_ok++ if $p eq $exact;
	$same++ if $s eq $p;
}
is($exact_ok, scalar(@queries), 'the primary gives the exact answer for every query');
is($same, scalar(@queries), 'the standby answers like the primary');

# A compaction frees part pages too; the next offload or hot insert reuses them (the file still does not grow).
$primary->safe_psql('postgres', 'DELETE FROM t WHERE id % 2 = 0 AND id <= 6000; VACUUM t');
my $compacted = $primary->safe_psql('postgres', "SELECT s5vector_compact('t_idx')");
cmp_ok($compacted, '>', 0, "compaction rewrote $compacted rows");

$primary->safe_psql('postgres',
	"INSERT INTO t SELECT 200000 + i, @{[ vec_sql('200000 + i', $dim) ]}, now() FROM generate_series(1, 50) i");
is($primary->safe_psql('postgres', "SELECT pg_relation_size('t_idx')"), $size_before,
	'after compaction and more inserts the file has still not grown')
  or diag($primary->safe_psql('postgres', "CREATE EXTENSION IF NOT EXISTS pageinspect; SELECT b || ':' || get_byte(p, 8188) || '/' || get_byte(p, 24) || '/' || coalesce((SELECT avail FROM pg_freespace('t_idx') f WHERE f.blkno = b), -1) FROM (SELECT b, get_raw_page('t_idx', b::int) p FROM generate_series(1, pg_relation_size('t_idx') / 8192 - 1) b) s"));
verify_all_ok($primary, 't_idx', 'verify all ok after compaction');
my $live = $primary->safe_psql('postgres', 'SELECT count(*) FROM t');
is(index_sweep_count($primary, 't', 'v', rand_vec_literal(lcg_new(4), $dim)), $live, 'every live row once');
$primary->wait_for_catchup($standby);
is(index_sweep_count($standby, 't', 'v', rand_vec_literal(lcg_new(4), $dim)), $live, 'and on the standby');

# VACUUM unlinks the row pages it empties (not a list's last page) and frees them: a retention DELETE of the older
# rows of a local cold tier leaves no empty pages for scans to read, and their space goes back to the FSM.
$primary->safe_psql('postgres', qq{
CREATE TABLE u (id int PRIMARY KEY, v vector($dim));
INSERT INTO u SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 6000) i;
CREATE INDEX u_idx ON u USING s5vector (v) WITH (hot_window = '0', lists = 4, offload = off);
});
my $list_bytes = "SELECT sum(local_bytes) FROM s5vector_list_stats('u_idx')";
my $bytes_before = $primary->safe_psql('postgres', $list_bytes);
my $ufree = "SELECT count(*) FROM pg_freespace('u_idx') WHERE avail > 0";
is($primary->safe_psql('postgres', $ufree), '0', 'a local cold index has no free pages after its build');
$primary->safe_psql('postgres', 'DELETE FROM u WHERE id <= 4800');
my ($vret, $vout, $verr) = $primary->psql('postgres', 'SET client_min_messages = debug1; VACUUM u');
my ($unlinked) = $verr =~ /(\d+) empty row pages unlinked/;
cmp_ok($unlinked // 0, '>=', 4, 'VACUUM unlinked the row pages the DELETE emptied (' . ($unlinked // 0) . ')');
is($primary->safe_psql('postgres', $ufree), $unlinked // -1, '... and they are free pages in the FSM');
my $bytes_after = $primary->safe_psql('postgres', $list_bytes);
cmp_ok($bytes_after, '<=', $bytes_before - ($unlinked // 0) * 8192, "the lists' chains are shorter ($bytes_before -> $bytes_after bytes)");
verify_all_ok($primary, 'u_idx', 'verify all ok after the unlink');
is(index_sweep_count($primary, 'u', 'v', rand_vec_literal(lcg_new(5), $dim)), '1200', 'the index returns the 1200 rows left once');
($exact_ok, $same) = (0, 0);
$primary->wait_for_catchup($standby);
for my $q (@queries)
{
	my $sql = "SELECT string_agg(id::text, ',') FROM (SELECT id FROM u ORDER BY v <-> '$q' LIMIT 10) s";
	my $exact = $primary->safe_psql('postgres', "SET enable_indexscan = off; $sql");
	my $p = $primary->safe_psql('postgres', "SET enable_seqscan = off; SET s5vector.probes = 4; $sql");
	my $s = $standby->safe_psql('postgres', "SET enable_seqscan = off; SET s5vector.probes = 4; $sql");
	$exact_ok++ if $p eq $exact;
	$same++ if $s eq $p;
}
is($exact_ok, scalar(@queries), 'every list probed: the exact answer after the unlink');
is($same, scalar(@queries), 'the standby answers like the primary');
# New old rows go to the lists' tails as before; the freed pages are taken by the index's other allocations.
$primary->safe_psql('postgres', "INSERT INTO u SELECT 10000 + i, @{[ vec_sql('10000 + i', $dim) ]} FROM generate_series(1, 500) i");
verify_all_ok($primary, 'u_idx', 'verify all ok after more rows');
is(index_sweep_count($primary, 'u', 'v', rand_vec_literal(lcg_new(5), $dim)), '1700', 'every row once');

$standby->stop;
$primary->stop;
done_testing();
