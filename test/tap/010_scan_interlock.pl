# The scan interlock: every index scan holds a ShareLock on the index's reserved lock tag for its whole life,
# and a mover's wait (s5vector_wait_for_scans, WaitForScans in src/pg/locks.h) waits for the scans running
# when it starts — an open cursor — and proceeds once that scan's transaction is over; scans that start while
# it waits neither block nor are waited for; under lock_timeout the wait fails with lock_not_available.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('interlock');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION s5vector;
	CREATE TABLE t (id int, v vector(4));
	INSERT INTO t SELECT i, ARRAY[i % 13, i % 7, i % 5, i % 3]::vector FROM generate_series(1, 2000) i;
	CREATE INDEX t_idx ON t USING s5vector (v);
});
my $scan = q{SELECT id FROM t ORDER BY v <-> '[1,2,3,1]'};

# The scan interlock held by a session, as pg_locks shows it.
sub interlock_of
{
	my ($pid) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(mode || '/' || granted, ',') FROM pg_locks WHERE relation = 't_idx'::regclass "
		  . "AND locktype = 'tuple' AND page = 0 AND tuple = 0 AND pid = $pid");
}

# Session A: a cursor over the index, left open.
my $a = $node->background_psql('postgres');
my $a_pid = $a->query_safe('SELECT pg_backend_pid()');
$a->query_safe("SET enable_seqscan = off");
$a->query_safe("BEGIN");
$a->query_safe("DECLARE c CURSOR FOR $scan");
my @rows = split /\n/, $a->query_safe("FETCH 3 FROM c");
is(scalar @rows, 3, 'the cursor returns rows');
like($a->query_safe("EXPLAIN (COSTS OFF) $scan"), qr/Index Scan using t_idx/, 'through the index');
is(interlock_of($a_pid), 'ShareLock/true', 'the open scan holds the interlock in ShareLock');

# Session B: a mover waiting for the scans of t_idx.
my $b = $node->background_psql('postgres');
my $b_pid = $b->query_safe('SELECT pg_backend_pid()');
$b->query_until(qr/waiting/, "\\echo waiting\nSELECT s5vector_wait_for_scans('t_idx');\n\\echo waited\n");
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event_type = 'Lock' AND wait_event = 'virtualxid' FROM pg_stat_activity WHERE pid = $b_pid"),
	'the waiter waits for the open scan');

# Scans that start now are not blocked by the waiter, and it does not wait for them.
my $count = $node->safe_psql('postgres',
	"SET enable_seqscan = off; SET statement_timeout = '20s'; SELECT count(*) FROM ($scan LIMIT 5) s");
is($count, '5', 'a new scan runs while the waiter waits');
my $c = $node->background_psql('postgres', on_error_stop => 0);
$c->query_safe("SET enable_seqscan = off");
$c->query_safe("BEGIN");
$c->query_safe("DECLARE c CURSOR FOR $scan");
$c->query_safe("FETCH 1 FROM c");

usleep(300_000);
is( $node->safe_psql('postgres', "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $b_pid"),
	'Lock', 'the waiter still waits while the first cursor is open');

# The first scan ends (cursor closed, transaction over): the waiter proceeds although C's cursor is open.
$a->query_safe("CLOSE c");
is(interlock_of($a_pid), '', 'closing the cursor releases the interlock');
$a->query_safe("COMMIT");
my $out = $b->query_until(qr/waited/, '');
like($out, qr/waited/, 'the waiter proceeds once the scan it waited for has ended');
is( $node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $b_pid"),
	'idle', 'the waiter is done');

# A waiter under lock_timeout gives up with lock_not_available while a scan is open (C's cursor).
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"SET lock_timeout = '200ms'; SELECT s5vector_wait_for_scans('t_idx')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'the wait fails under lock_timeout');
like($stderr, qr/55P03/, 'with lock_not_available');
like($stderr, qr/lock timeout/, 'saying it timed out');

# An aborted scan's interlock goes with its transaction.
$c->query_safe("COMMIT");
$c->query_safe("BEGIN");
$c->query_safe("SAVEPOINT s");
$c->query_safe("DECLARE c2 CURSOR FOR $scan");
$c->query_safe("FETCH 1 FROM c2");
$c->query("SELECT 1/0");
$c->query("ROLLBACK TO SAVEPOINT s");
$c->query("ROLLBACK");
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_locks WHERE relation = 't_idx'::regclass AND locktype = 'tuple'"),
	'0', 'no interlock left after the aborted transaction');
is($node->safe_psql('postgres', "SET lock_timeout = '2s'; SELECT s5vector_wait_for_scans('t_idx')"),
	'', 'with no scan running the wait returns at once');

$a->quit;
$b->quit;
$c->quit;
$node->stop;
done_testing();
