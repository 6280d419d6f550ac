# The cold tier on a streaming standby and after a crash: a build with a cold part, inserts of old rows (one
# trains a staging list on the primary), deletes and VACUUM are Generic WAL (bulk build: log_newpage_range), so the
# standby answers like the primary; an immediate shutdown (no checkpoint) loses no cold row.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S5VTest;

my $dim = 8;

my $primary = PostgreSQL::Test::Cluster->new('cold_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "maintenance_work_mem = '64MB'\nautovacuum = off\n");
$primary->start;
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('cold_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;

# Rows from 0 to 100 days old: 30 days hot, 70 cold in 20 lists. A second, pure IVF index starts in staging.
$primary->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id int PRIMARY KEY, v vector($dim), ts timestamptz);
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, now() - i * interval '1 hour' FROM generate_series(1, 2400) i;
CREATE INDEX t_idx ON t USING s5vector (v, ts) WITH (hot_window = '30 days', lists = 20);
CREATE TABLE p (id int PRIMARY KEY, v vector($dim));
INSERT INTO p SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 30) i;
CREATE INDEX p_idx ON p USING s5vector (v) WITH (hot_window = '0', lists = 16);
});
is($primary->safe_psql('postgres', "SELECT hot_elements || '/' || cold_rows || '/' || cold_lists FROM s5vector_index_stats('t_idx')"),
	'719/1681/20', 'build: 719 hot rows, 1681 cold in 20 lists');
is($primary->safe_psql('postgres', "SELECT cold_rows || '/' || cold_lists FROM s5vector_index_stats('p_idx')"),
	'30/0', 'pure IVF build below the training threshold: 30 rows in staging');

# Old rows inserted after the build go to their lists; p's staging fills (64 rows) and trains.
$primary->safe_psql('postgres', qq{
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, now() - interval '1 year' - i * interval '1 minute'
  FROM generate_series(3001, 3300) i;
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, now() FROM generate_series(3301, 3400) i;
INSERT INTO p SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(31, 400) i;
DELETE FROM t WHERE id % 7 = 0;
DELETE FROM p WHERE id % 5 = 0;
VACUUM t;
VACUUM p;
});
is($primary->safe_psql('postgres', "SELECT cold_rows || '/' || cold_lists FROM s5vector_index_stats('p_idx')"),
	'320/16', 'p trained on insert: 16 lists, 320 live rows after VACUUM');
$primary->wait_for_catchup($standby);

my $stats = "SELECT hot_elements, cold_rows, cold_lists, pages FROM s5vector_index_stats('%s')";
for my $idx ('t_idx', 'p_idx')
{
	is($standby->safe_psql('postgres', sprintf($stats, $idx)), $primary->safe_psql('postgres', sprintf($stats, $idx)),
		"$idx: the standby's stats are the primary's");
}

my $rng = lcg_new(11);
my @queries = map { rand_vec_literal($rng, $dim) } 1 .. 15;
my ($same, $sameq) = (0, 0);
for my $q (@queries)
{
	for my $sql ("SET enable_seqscan = off; SELECT id FROM t ORDER BY v <-> '$q' LIMIT 10",
		"SET enable_seqscan = off; SELECT id FROM t WHERE ts < now() - interval '200 days' ORDER BY v <-> '$q' LIMIT 10",
		"SET enable_seqscan = off; SELECT id FROM p ORDER BY v <-> '$q' LIMIT 10")
	{
		my $p = $primary->safe_psql('postgres', $sql);
		my $s = $standby->safe_psql('postgres', $sql);
		$sameq++;
		if ($p eq $s && scalar(@{ ids_of($p) }) == 10) { $same++ }
		else { diag("differs:\n$sql\nprimary: $p\nstandby: $s") }
	}
}
is($same, $sameq, "all $sameq queries (both tiers, age-filtered, pure IVF): the standby returns the primary's ids");

my $all = "SET enable_seqscan = off; SET s5vector.probes = 1; "
  . "SELECT count(*) || '/' || count(DISTINCT id) FROM (SELECT id FROM %s ORDER BY v <-> '$queries[0]') s";
for my $node ($primary, $standby)
{
	my $name = $node->name;
	is($node->safe_psql('postgres', sprintf($all, 't')),
		$node->safe_psql('postgres', "SELECT count(*) || '/' || count(*) FROM t"), "$name: t read to the end, each row once");
	is($node->safe_psql('postgres', sprintf($all, 'p')),
		$node->safe_psql('postgres', "SELECT count(*) || '/' || count(*) FROM p"), "$name: p read to the end, each row once");
}
verify_all_ok($standby, 't_idx', 'verify all ok on the standby (t)');
verify_all_ok($standby, 'p_idx', 'verify all ok on the standby (p)');

# Migration on the primary (rows of a 1-second window age, then move cold), replayed by the standby; refused there.
$primary->safe_psql('postgres', qq{
CREATE TABLE m (id int PRIMARY KEY, v vector($dim), ts timestamptz);
CREATE INDEX m_idx ON m USING s5vector (v, ts) WITH (hot_window = '1 second', lists = 8);
INSERT INTO m SELECT i, @{[ vec_sql('i', $dim) ]}, now() FROM generate_series(1, 500) i;
});
sleep(2);
is($primary->safe_psql('postgres', "SELECT s5vector_migrate('m_idx')"), '500', 'migrate moves the 500 aged rows');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', sprintf($stats, 'm_idx')), $primary->safe_psql('postgres', sprintf($stats, 'm_idx')),
	"m_idx after migration: the standby's stats are the primary's");
is($standby->safe_psql('postgres', sprintf($all, 'm')), '500/500', 'standby: m read to the end after migration, each row once');
my $mq = "SET enable_seqscan = off; SELECT id FROM m ORDER BY v <-> '$queries[2]' LIMIT 10";
is($standby->safe_psql('postgres', $mq), $primary->safe_psql('postgres', $mq), 'migrated index: same answer on the standby');
my ($mret, $mout, $merr) = $standby->psql('postgres', "SELECT s5vector_migrate('m_idx')", extra_params => [ '-v', 'VERBOSITY=sqlstate' ]);
like($merr, qr/25006/, 'migrate on a standby: read_only_sql_transaction');
verify_all_ok($primary, 'm_idx', 'migrated index: verify all ok');

# A migration cut off between its steps: an open cursor holds the scan interlock, the wait fails under
# lock_timeout after the rows were added cold. They are then in both tiers; scans return each once; the next
# migration adds no second cold copy and removes them from the graph.
$primary->safe_psql('postgres', qq{
CREATE TABLE mi (id int PRIMARY KEY, v vector($dim), ts timestamptz);
CREATE INDEX mi_idx ON mi USING s5vector (v, ts) WITH (hot_window = '1 second', lists = 4);
INSERT INTO mi SELECT i, @{[ vec_sql('i', $dim) ]}, now() FROM generate_series(1, 300) i;
});
sleep(2);
my $cur = $primary->background_psql('postgres');
$cur->query_safe('SET enable_seqscan = off');
$cur->query_safe('BEGIN');
$cur->query_safe("DECLARE c CURSOR FOR SELECT id FROM mi ORDER BY v <-> '$queries[3]'");
$cur->query_safe('FETCH 1 FROM c');
my ($tret, $tout, $terr) = $primary->psql('postgres', "SET lock_timeout = '300ms'; SELECT s5vector_migrate('mi_idx')",
	extra_params => [ '-v', 'VERBOSITY=sqlstate' ]);
like($terr, qr/55P03/, 'migration with an open scan: the wait times out (lock_not_available)');
is($primary->safe_psql('postgres', "SELECT hot_elements || '/' || cold_rows FROM s5vector_index_stats('mi_idx')"),
	'300/300', 'the rows were added cold and are still in the graph');
is($primary->safe_psql('postgres', sprintf($all, 'mi')), '300/300', 'in both tiers: read to the end, each row once');
like($primary->safe_psql('postgres', "SELECT coalesce(ok::text, 'null') || '|' || detail FROM s5vector_verify('mi_idx') WHERE check_name = 'cold tier'"),
	qr/^null\|.*300 rows in both tiers \(a migration did not finish/, 'verify: rows in both tiers make the cold check inconclusive');
$cur->query_safe('COMMIT');
$cur->quit;
is($primary->safe_psql('postgres', "SELECT s5vector_migrate('mi_idx')"), '300', 'the next migration finishes the batch');
is($primary->safe_psql('postgres', "SELECT hot_elements || '/' || cold_rows FROM s5vector_index_stats('mi_idx')"),
	'0/300', 'no second cold copy; the graph is empty');
is($primary->safe_psql('postgres', sprintf($all, 'mi')), '300/300', 'after it: read to the end, each row once');
verify_all_ok($primary, 'mi_idx', 'after the finished migration: verify all ok');

# Crash: cold inserts since the last checkpoint are replayed from WAL.
$primary->safe_psql('postgres', 'CHECKPOINT');
$primary->safe_psql('postgres', qq{
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, now() - interval '2 years' FROM generate_series(5001, 5400) i;
INSERT INTO p SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(5001, 5400) i;
});
my $before = $primary->safe_psql('postgres', sprintf($stats, 't_idx'));
$primary->stop('immediate');
$primary->start;
is($primary->safe_psql('postgres', sprintf($stats, 't_idx')), $before, 'after the crash: the same stats');
is($primary->safe_psql('postgres', sprintf($all, 't')), $primary->safe_psql('postgres', "SELECT count(*) || '/' || count(*) FROM t"),
	'after the crash: t read to the end, each row once');
is($primary->safe_psql('postgres', sprintf($all, 'p')), $primary->safe_psql('postgres', "SELECT count(*) || '/' || count(*) FROM p"),
	'after the crash: p read to the end, each row once');
verify_all_ok($primary, 't_idx', 'after the crash: verify all ok (t)');
verify_all_ok($primary, 'p_idx', 'after the crash: verify all ok (p)');

done_testing();
