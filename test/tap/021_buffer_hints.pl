# Buffer hints (src/pg/page_store.cpp): a search pins index pages through the shared buffer each block was last
# seen in (ReadRecentBuffer), remembered per backend. A hint that went stale (the page was evicted, the index
# rebuilt) must only cost the fallback to ReadBuffer: the same session gets the same rows as a fresh one, and
# pg_statio counts every page a scan reads, hinted or not.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S5VTest;

my $node = PostgreSQL::Test::Cluster->new('hints');
$node->init;
# 128 buffers: the index and the table below do not fit together with the eviction table.
$node->append_conf('postgresql.conf', "shared_buffers = '1MB'\nstats_fetch_consistency = none\n");
$node->start;
my $vec = S5VTest::vec_sql('i', 32, 20, 2.0);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION s5vector;
	CREATE TABLE t (id int, v vector(32));
	INSERT INTO t SELECT i, $vec FROM generate_series(1, 3000) i;
	CREATE INDEX t_idx ON t USING s5vector (v) WITH (m = 8, ef_construction = 32);
	CREATE TABLE big (id int PRIMARY KEY, pad text);
	INSERT INTO big SELECT i, repeat('x', 600) FROM generate_series(1, 20000) i;
	VACUUM ANALYZE t;
	VACUUM ANALYZE big;
});
my $index_pages = $node->safe_psql('postgres', "SELECT pg_relation_size('t_idx') / 8192");
cmp_ok($index_pages, '>', 40, "the index has $index_pages pages");

my @queries = map { S5VTest::rand_vec_literal(S5VTest::lcg_new(100 + $_), 32) } 1 .. 12;
my $knn = sub { "SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '$_[0]' LIMIT 10) s" };

my $s = $node->background_psql('postgres');
$s->query_safe("SET enable_seqscan = off");
$s->query_safe("SET enable_bitmapscan = off");

# Pages the index scans of this session read so far (every read counted, hinted or not).
my $fetched = sub {
	$s->query_safe("SELECT pg_stat_force_next_flush()");
	return $s->query_safe(
		"SELECT idx_blks_read + idx_blks_hit FROM pg_statio_user_indexes WHERE indexrelname = 't_idx'");
};
# Runs every query in session $s; returns their results and how many index pages they read.
my $run_all = sub {
	my $before = $fetched->();
	my @res = map { $s->query_safe($knn->($_)) } @queries;
	return (\@res, $fetched->() - $before);
};
# The same queries in a fresh session (no hints).
my $fresh = sub {
	return [ map { $node->safe_psql('postgres', "SET enable_seqscan = off; " . $knn->($_)) } @queries ];
};

# The session's first scan also reads the metapage once for the relcache: not part of what is compared.
$s->query_safe($knn->(S5VTest::rand_vec_literal(S5VTest::lcg_new(7), 32)));
my ($first, $pages_first) = $run_all->();
is(scalar(grep { tr/,// == 9 } @$first), scalar @queries, 'every query returns 10 rows');
my ($second, $pages_second) = $run_all->();
is_deeply($second, $first, 'the same session, now with hints, returns the same rows');
cmp_ok($pages_first, '>', 0, "the scans read $pages_first index pages");
is($pages_second, $pages_first, 'pg_statio counts the pages read through hints too');

# Evict the index from the buffer pool (an index scan over a table ten times the pool): the hints go stale.
$s->query_safe("SELECT sum(length(pad)) FROM big WHERE id > 0");
my $resident = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_class c WHERE c.relname = 't_idx'");    # sanity: the index still exists
is($resident, '1', 'the index is there');
my ($third, $pages_third) = $run_all->();
is_deeply($third, $first, 'after the pages were evicted, stale hints give the same rows');
is($pages_third, $pages_first, 'and the same pages are read');
is_deeply($fresh->(), $first, 'a fresh session agrees');

# REINDEX gives the index a new relfilenode and new pages: the session's hints are for the old file.
$node->safe_psql('postgres', "REINDEX INDEX t_idx");
my ($fourth) = $run_all->();
is_deeply($fourth, $fresh->(), 'after REINDEX the hinted session returns what a fresh session returns');
my ($exact) = map { $node->safe_psql('postgres', "SET enable_indexscan = off; " . $knn->($_)) } $queries[0];
my @a = split /,/, $fourth->[0];
my %e = map { $_ => 1 } split /,/, $exact;
cmp_ok(scalar(grep { $e{$_} } @a), '>=', 8, 'and the results are the true neighbours (recall@10 >= 0.8)');

$s->quit;
$node->stop;
done_testing();
