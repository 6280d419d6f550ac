# A migration's removal from the graph while a VACUUM removes deleted elements from it: one removal pass at a
# time (the hot removal lock, locks.h). Two at once both removed the same tuples (the metapage's hot_deleted went
# negative, "corrupted metapage", and a line pointer freed by one and reused by an insert could be removed by the
# other). The migration must wait for the VACUUM's hot pass, and afterwards the index is consistent.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use S5VTest;

my $dim = 32;
my $node = PostgreSQL::Test::Cluster->new('hot_removal');
$node->init;
$node->append_conf('postgresql.conf', qq{
autovacuum = off
maintenance_work_mem = '64MB'
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id int PRIMARY KEY, v vector($dim), ts timestamptz);
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, now() FROM generate_series(1, 20000) i;
CREATE INDEX t_idx ON t USING s5vector (v, ts) WITH (hot_window = '1 hour', lists = 8);
DELETE FROM t WHERE id % 5 < 2;
ALTER INDEX t_idx SET (hot_window = '1 second');
});
sleep(2);

# The VACUUM in the background (its hot pass repairs the neighbours of 8000 deleted elements: seconds); the migration
# starts once the VACUUM has marked deleted elements.
my ($vout, $verr) = ('', '');
my $vacuum = IPC::Run::start([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', 'VACUUM t' ],
	'>', \$vout, '2>', \$verr);
ok($node->poll_query_until('postgres', "SELECT hot_deleted > 0 FROM s5vector_index_stats('t_idx')"),
	'the VACUUM marked the deleted elements');
my ($mout, $merr) = ('', '');
my $migrate = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', "SELECT s5vector_migrate('t_idx', 3000)" ],
	'>', \$mout, '2>', \$merr);
# Seen while the VACUUM's hot pass runs: the migration waits for the removal lock.
my $waited = $node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'tuple' AND NOT granted AND relation = 't_idx'::regclass");
ok($waited, 'the migration waited for the VACUUM\'s removal pass (a tuple lock on the index, not granted)');
ok($vacuum->finish, 'the VACUUM succeeded') or diag($verr);
ok($migrate->finish, 'the migration succeeded') or diag($merr);
is($mout + 0, 3000, 'the migration moved 3000 rows');

my $stats = $node->safe_psql('postgres', "SELECT hot_elements || '/' || hot_deleted || '/' || cold_rows FROM s5vector_index_stats('t_idx')");
my ($hot, $hot_deleted, $cold) = split m{/}, $stats;
cmp_ok($hot_deleted, '>=', 0, "hot_deleted is not negative ($stats)");
is($hot + $cold, 12000, 'hot + cold rows = the 12000 live rows');
verify_all_ok($node, 't_idx', 'verify all ok after the VACUUM and the migration');
is(index_sweep_count($node, 't', 'v', rand_vec_literal(lcg_new(9), $dim)), '12000', 'the index returns every live row once');

$node->stop;
done_testing();
