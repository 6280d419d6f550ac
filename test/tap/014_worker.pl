# The background worker (shared_preload_libraries = 's5vector'): rows that age out of a small hot_window during
# the test move to the cold tier with no function called; worker_enabled = off stops it and a reload starts it
# again; a kill -9 of the worker while it is inside a migration step (waiting for an open cursor's scan, rows
# already added cold) restarts the server, and the next round finishes the job; the extension dropped and the
# database dropped while their worker runs; pgbench clients inserting and searching (and one deleting and
# VACUUMing) for 60 s while the worker migrates; worker_cost_delay makes its steps sleep; a standby runs no worker
# and answers like the primary; S5 down: migration goes on and offload resumes when a node is set (a wrong token
# file first: a clear line without the token, then the file rewritten with the right one).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);
use S5VTest;

my $dim = 8;
my $primary = PostgreSQL::Test::Cluster->new('worker_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 's5vector'
s5vector.naptime = 1
s5vector.worker_enabled = off
autovacuum = off
max_connections = 30
restart_after_crash = on
});
$primary->start;
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('worker_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;

my $stats = "SELECT hot_elements || '/' || cold_rows FROM s5vector_index_stats('t_idx')";
# On a failed wait: what the index and the worker say, and the end of the server log.
sub diag_worker
{
	my ($node) = @_;
	diag($node->safe_psql('postgres', "SELECT row_to_json(s) FROM s5vector_index_stats('t_idx') s"));
	diag($node->safe_psql('postgres', "SELECT row_to_json(w) FROM s5vector_worker_status() w"));
	diag($node->safe_psql('postgres', "SELECT count(*) || ' rows, ' || count(*) FILTER (WHERE ts < now() - interval '3 seconds') || ' past the window' FROM t"));
	my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
	diag(substr($log, -4000));
}
sub worker_pids
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE backend_type = 's5vector worker'"
		  . ($db ? " AND datname = '$db'" : ''));
}

# Rows inside a 3-second window: hot when inserted, cold a few seconds later. lists = 64: the cold tier trains
# once 256 rows reached staging, so cold rows land in lists.
$primary->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id bigserial PRIMARY KEY, v vector($dim), ts timestamptz NOT NULL DEFAULT now());
CREATE INDEX t_idx ON t USING s5vector (v, ts) WITH (hot_window = '3 seconds', lists = 64, m = 8, ef_construction = 32);
INSERT INTO t (v) SELECT @{[ vec_sql('i', $dim, 16) ]} FROM generate_series(1, 400) i;
});

# --- worker_enabled = off: nothing moves ---
is($primary->safe_psql('postgres', $stats), '400/0', 'inserted rows are hot');
like($primary->safe_psql('postgres', "SELECT worker FROM s5vector_index_stats('t_idx')"),
	qr/worker_enabled is off/, 'index stats: no worker runs (worker_enabled is off)');
is($primary->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's5vector launcher' AND datname IS NULL"),
	'1', 'the launcher runs, connected to no database');
sleep(5);
is($primary->safe_psql('postgres', $stats), '400/0', 'worker_enabled = off: rows past the window stay hot');
is(worker_pids($primary), '', 'worker_enabled = off: no database worker');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM s5vector_worker_status()'), '0', 'worker status: no rows');

# --- on (ALTER SYSTEM + reload, no restart): the worker migrates them ---
$primary->safe_psql('postgres', 'ALTER SYSTEM SET s5vector.worker_enabled = on; SELECT pg_reload_conf()');
ok($primary->poll_query_until('postgres', "SELECT ($stats) = '0/400'"), 'after a reload the worker moves every aged row cold');
like(worker_pids($primary, 'postgres'), qr/^\d+$/, 'one worker for the database, in pg_stat_activity');
is($primary->safe_psql('postgres', q{SELECT application_name FROM pg_stat_activity WHERE backend_type = 's5vector worker'}),
	's5vector worker', 'application_name of the worker');
like($primary->safe_psql('postgres', "SELECT worker FROM s5vector_index_stats('t_idx')"), qr/^running \(pid \d+\)$/,
	'index stats: a worker runs');
is($primary->safe_psql('postgres',
		"SELECT database || '/' || (rounds > 0) || '/' || (rows_moved >= 400) || '/' || (last_round_end IS NOT NULL) "
		  . 'FROM s5vector_worker_status()'),
	'postgres/true/true/true', 'worker status: database, rounds, rows moved, last round');
verify_all_ok($primary, 't_idx', 'verify all ok after the worker migrated');
# A row's own vector finds it in the list of its nearest centroid, the first list probed (probes = 1 keeps the
# thousands of self-queries below fast); in the graph, at ef_search 40.
my $self_found = q{SET enable_seqscan = off; SET enable_bitmapscan = off; SET s5vector.probes = 1;
SELECT count(*) FROM t s WHERE (SELECT v <-> s.v FROM t ORDER BY v <-> s.v LIMIT 1) = 0};
is($primary->safe_psql('postgres', $self_found), '400', 'every migrated row is found by a search for its vector');

# --- an open cursor's scan: the step times out (lock_timeout), is logged, and a later round finishes ---
my $cur = $primary->background_psql('postgres');
$cur->query_safe('SET enable_seqscan = off');
$cur->query_safe('BEGIN');
$cur->query_safe("DECLARE c CURSOR FOR SELECT id FROM t ORDER BY v <-> '[1,1,1,1,1,1,1,1]'");
$cur->query_safe('FETCH 1 FROM c');
$primary->safe_psql('postgres', "INSERT INTO t (v) SELECT @{[ vec_sql('i', $dim, 16) ]} FROM generate_series(401, 600) i");
my $log_offset = -s $primary->logfile;
$primary->wait_for_log(qr/s5vector worker: step "migrate" failed on index public\.t_idx of database "postgres": canceling statement due to lock timeout/,
	$log_offset);
pass('a step waiting on an open scan fails under lock_timeout with one clear log line');
like($primary->safe_psql('postgres', "SELECT last_error FROM s5vector_index_stats('t_idx')"),
	qr/^migrate at .*: canceling statement due to lock timeout$/, 'index stats: last_error names the step and error');
is($primary->safe_psql('postgres', "SELECT check_name || '/' || coalesce(ok::text, 'null') FROM s5vector_verify('t_idx') WHERE check_name = 'cold tier'"),
	'cold tier/null', 'rows are in both tiers while the scan is open (added cold, not yet removed)');
$cur->query_safe('COMMIT');
ok($primary->poll_query_until('postgres', "SELECT ($stats) = '0/600'"), 'the cursor closed, a later round finishes the move');
verify_all_ok($primary, 't_idx', 'verify all ok (no row twice) after the timed-out step was finished');

# --- an index dropped mid-round: the round, held at t_idx by an open scan, reaches u_idx after it is gone ---
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.worker_lock_timeout = '60s'; SELECT pg_reload_conf()");
$primary->safe_psql('postgres', qq{CREATE TABLE u (v vector(4), ts timestamptz DEFAULT now());
INSERT INTO u (v) SELECT ARRAY[i, 1, 2, 3]::vector FROM generate_series(1, 20) i;
CREATE INDEX u_idx ON u USING s5vector (v, ts) WITH (hot_window = '1 hour')});
my $created = $primary->safe_psql('postgres', 'SELECT clock_timestamp()');
ok($primary->poll_query_until('postgres', "SELECT last_round_end > '$created' FROM s5vector_worker_status()"),
	'a round that lists u_idx has run');
$cur = $primary->background_psql('postgres');
$cur->query_safe('SET enable_seqscan = off');
$cur->query_safe('BEGIN');
$cur->query_safe("DECLARE c CURSOR FOR SELECT id FROM t ORDER BY v <-> '[1,1,1,1,1,1,1,1]'");
$cur->query_safe('FETCH 1 FROM c');
$primary->safe_psql('postgres', "INSERT INTO t (v) SELECT @{[ vec_sql('i', $dim, 16) ]} FROM generate_series(601, 650) i");
ok($primary->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity a JOIN s5vector_worker_status() s USING (pid)
		  WHERE a.wait_event_type = 'Lock' AND s.current_step = 'migrate' AND s.current_index = 'public.t_idx'}),
	'the round waits at t_idx for the open scan');
$primary->safe_psql('postgres', 'DROP TABLE u');
$log_offset = -s $primary->logfile;
$cur->query_safe('COMMIT');
$cur->quit;
$primary->wait_for_log(qr/s5vector worker: index public\.u_idx of database "postgres" no longer exists; skipped/, $log_offset);
pass('the index dropped while the round ran is skipped with a log line');
ok($primary->poll_query_until('postgres', "SELECT ($stats) = '0/650'"), 'and the round finished t_idx');

# --- kill -9 of the worker inside a migration step: the server restarts, the next round finishes ---
$cur = $primary->background_psql('postgres', on_error_stop => 0);
$cur->query_safe('SET enable_seqscan = off');
$cur->query_safe('BEGIN');
$cur->query_safe("DECLARE c CURSOR FOR SELECT id FROM t ORDER BY v <-> '[1,1,1,1,1,1,1,1]'");
$cur->query_safe('FETCH 1 FROM c');
$primary->safe_psql('postgres', "INSERT INTO t (v) SELECT @{[ vec_sql('i', $dim, 16) ]} FROM generate_series(651, 900) i");
ok($primary->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity a JOIN s5vector_worker_status() s USING (pid)
		  WHERE a.wait_event_type = 'Lock' AND s.current_step = 'migrate' AND s.current_index = 'public.t_idx'}),
	'the worker is inside the migrate step, waiting for the open scan');
my $victim = worker_pids($primary, 'postgres');
kill 'KILL', $victim;
eval { $cur->quit };
ok($primary->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 's5vector worker' AND pid <> $victim"),
	'after the crash restart the launcher starts a new worker');
ok($primary->poll_query_until('postgres', "SELECT ($stats) = '0/900'"), 'the next rounds finish the migration the kill interrupted');
verify_all_ok($primary, 't_idx', 'verify all ok after kill -9 of the worker during a migration');
is($primary->safe_psql('postgres', $self_found), '900', 'every row is found after the crash');
$primary->safe_psql('postgres', "ALTER SYSTEM RESET s5vector.worker_lock_timeout; SELECT pg_reload_conf()");

# --- another database: the extension dropped, then the database dropped while its worker runs ---
$primary->safe_psql('postgres', 'CREATE DATABASE d2');
$primary->safe_psql('d2', qq{CREATE EXTENSION s5vector; CREATE TABLE u (v vector(4), ts timestamptz DEFAULT now());
INSERT INTO u (v) SELECT ARRAY[i, 1, 2, 3]::vector FROM generate_series(1, 50) i;
CREATE INDEX u_idx ON u USING s5vector (v, ts) WITH (hot_window = '1 second')});
ok($primary->poll_query_until('d2', "SELECT cold_rows = 50 FROM s5vector_index_stats('u_idx')"),
	'a second database gets its own worker, which migrates its index');
$log_offset = -s $primary->logfile;
$primary->safe_psql('d2', 'DROP EXTENSION s5vector CASCADE');
$primary->wait_for_log(qr/s5vector worker for database "d2" stops: the extension was dropped/, $log_offset);
pass('the extension dropped: its worker logs it and exits');
ok($primary->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = 'd2'"),
	'no worker stays in a database without the extension');
$primary->safe_psql('d2', 'CREATE EXTENSION s5vector');
ok($primary->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'd2' AND backend_type = 's5vector worker'"),
	'created again: a worker comes back within a naptime');
$log_offset = -s $primary->logfile;
my ($ret, $out, $err) = $primary->psql('postgres', 'DROP DATABASE d2');
is($ret, 0, 'DROP DATABASE succeeds while the database has a worker') or diag($err);
ok($primary->log_contains(qr/s5vector: stopping the worker of database "d2" \(pid \d+\) for DROP DATABASE/, $log_offset),
	'DROP DATABASE stopped the worker first, with a log line');
ok($primary->poll_query_until('postgres', "SELECT string_agg(database, ',') = 'postgres' FROM s5vector_worker_status()"),
	'one worker left (postgres)');

# --- 60 s of pgbench: 4 clients inserting (rows that age out during the run) and searching ---
my $dir = $primary->basedir;
PostgreSQL::Test::Utils::append_to_file("$dir/insert.sql", qq{
\\set k random(1, 100000000)
INSERT INTO t (v) SELECT @{[ vec_sql(':k + i', $dim, 16) ]} FROM generate_series(0, 1) i;
});
PostgreSQL::Test::Utils::append_to_file("$dir/search.sql", qq{
\\set k random(1, 100000000)
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> @{[ vec_sql(':k', $dim, 16) ]} LIMIT 10) s;
SELECT count(*) FROM (SELECT id FROM t WHERE ts > now() - interval '2 seconds' ORDER BY v <-> @{[ vec_sql(':k', $dim, 16) ]} LIMIT 10) s;
});
my $rounds_before = $primary->safe_psql('postgres', 'SELECT rows_moved FROM s5vector_worker_status()');
my $bench_out = '';
my $bench_err = '';
# Meanwhile one more client deletes the oldest row and VACUUMs, again and again (VACUUM beside the rounds).
PostgreSQL::Test::Utils::append_to_file("$dir/vacuum.sql", qq{
DELETE FROM t WHERE id = (SELECT min(id) FROM t);
VACUUM t;
});
my ($vac_out, $vac_err) = ('', '');
my $vac = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '1', '-T', '60', '-f', "$dir/vacuum.sql", $primary->connstr('postgres') ],
	'>', \$vac_out, '2>', \$vac_err);
my $ok = IPC::Run::run(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '60',
	  '-f', "$dir/insert.sql\@1", '-f', "$dir/search.sql\@1", $primary->connstr('postgres') ],
	'>', \$bench_out, '2>', \$bench_err);
ok($vac->finish, 'the VACUUM client exited successfully');
is($vac_err, '', 'the VACUUM client reported no errors') or diag($vac_err);
my ($vacuums) = $vac_out =~ /number of transactions actually processed: (\d+)/;
cmp_ok($vacuums // 0, '>', 0, 'VACUUMs ran beside the worker\'s rounds (' . ($vacuums // 0) . ')');
ok($ok, 'pgbench exited successfully');
is($bench_err, '', 'pgbench reported no errors') or diag($bench_err);
like($bench_out, qr/number of failed transactions: 0 /, 'no failed transactions');
my ($ins) = $bench_out =~ /SQL script 1: .*?\n\s*- weight: \d+ .*?\n\s*- (\d+) transactions/s;
my ($srch) = $bench_out =~ /SQL script 2: .*?\n\s*- weight: \d+ .*?\n\s*- (\d+) transactions/s;
$ins //= 0;
$srch //= 0;
my $moved_during = $primary->safe_psql('postgres', 'SELECT rows_moved FROM s5vector_worker_status()') - $rounds_before;
diag("pgbench: $ins insert and $srch search transactions in 60 s; the worker moved $moved_during rows meanwhile");
cmp_ok($ins, '>', 100, 'inserts ran');
cmp_ok($srch, '>', 100, 'searches ran');
cmp_ok($moved_during, '>', 0, 'the worker migrated rows while the clients ran');
# The rows the client deleted last may still be in the index: a VACUUM that finds dead rows on fewer than 2% of
# the table's pages skips the indexes (PostgreSQL's index-vacuum bypass: the dead line pointers stay, so their TIDs
# are not reused), and the VACUUM after each DELETE cannot remove a row that a search or a worker step running at
# that moment could still see. One VACUUM with INDEX_CLEANUP ON, now that nothing runs, removes them all.
$primary->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) t');
like($primary->safe_psql('postgres', "SELECT detail FROM s5vector_verify('t_idx') WHERE check_name = 'heap coverage'"),
	qr/^0 of \d+ live heap rows missing from the index, 0 elements with a heap TID outside the table, 0 index entries without a visible heap row/,
	'after VACUUM: no index entry without its heap row (the deleted rows left both tiers)');
my $total = $primary->safe_psql('postgres', 'SELECT count(*) FROM t');
ok($primary->poll_query_until('postgres', "SELECT ($stats) = '0/$total'"), "the worker moves all $total rows cold after the run")
  or diag_worker($primary);
verify_all_ok($primary, 't_idx', 'verify all ok after 60 s of inserts and searches beside the worker');
is(index_sweep_count($primary, 't', 'v', rand_vec_literal(lcg_new(5), $dim)), $total, 'the index holds every row once');
# Every row is searched for with its own vector: cold rows are in the list of their nearest centroid, which the
# scan probes first, so approximate search misses (almost) none; allow 1%, as the hot-tier concurrency test does.
my $found = $primary->safe_psql('postgres', $self_found);
diag("own nearest neighbour found for $found of $total rows");
cmp_ok($found, '>=', $total - int($total / 100), 'every inserted row is found by a search for its own vector');

# --- throttling: with a cost delay the worker's steps sleep as autovacuum's do (wait event VacuumDelay) ---
$primary->safe_psql('postgres',
	"ALTER SYSTEM SET s5vector.worker_cost_delay = 20; ALTER SYSTEM SET s5vector.worker_cost_limit = 20; SELECT pg_reload_conf()");
$primary->safe_psql('postgres', "INSERT INTO t (v) SELECT @{[ vec_sql('i', $dim, 16) ]} FROM generate_series(1, 300) i");
ok($primary->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 's5vector worker' AND wait_event = 'VacuumDelay'"),
	'with worker_cost_delay set, the worker sleeps inside its steps (VacuumDelay)');
$primary->safe_psql('postgres',
	"ALTER SYSTEM RESET s5vector.worker_cost_delay; ALTER SYSTEM RESET s5vector.worker_cost_limit; SELECT pg_reload_conf()");
$total = $primary->safe_psql('postgres', 'SELECT count(*) FROM t');
ok($primary->poll_query_until('postgres', "SELECT ($stats) = '0/$total'"), 'and still moves every row');

# --- the standby: no worker, the same answers ---
$primary->wait_for_catchup($standby);
is(worker_pids($standby), '', 'the standby runs no worker');
is($standby->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('s5vector launcher', 's5vector worker')"),
	'0', 'nor a launcher');
like($standby->safe_psql('postgres', "SELECT worker FROM s5vector_index_stats('t_idx')"), qr/standby/,
	'index stats on the standby: no worker runs there');
is($standby->safe_psql('postgres', $stats), $primary->safe_psql('postgres', $stats), 'the standby counts the same rows');
my $rng = lcg_new(17);
my ($same, $n) = (0, 0);
for my $q (map { rand_vec_literal($rng, $dim) } 1 .. 10)
{
	my $sql = "SET enable_seqscan = off; SELECT id FROM t ORDER BY v <-> '$q' LIMIT 10";
	my $p = $primary->safe_psql('postgres', $sql);
	my $s = $standby->safe_psql('postgres', $sql);
	$n++;
	$same++ if $p eq $s && scalar(@{ ids_of($p) }) == 10;
}
is($same, $n, 'the standby returns the primary\'s ids for every query');

# --- S5 down: the offload step fails (one log line a round, last_error), migration goes on; a node set later with
# ALTER SYSTEM + reload is used by the next rounds, which offload ---
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = 'http://127.0.0.1:9'; SELECT pg_reload_conf()");
$log_offset = -s $primary->logfile;
$primary->safe_psql('postgres', "INSERT INTO t (v) SELECT @{[ vec_sql('i', $dim, 16) ]} FROM generate_series(1, 300) i");
$total = $primary->safe_psql('postgres', 'SELECT count(*) FROM t');
ok($primary->poll_query_until('postgres', "SELECT ($stats) = '0/$total'"), 'S5 down: the worker still migrates every row')
  or diag_worker($primary);
$primary->wait_for_log(qr/s5vector worker: step "offload" failed on index public\.t_idx of database "postgres"/, $log_offset);
pass('S5 down: the failed offload step is one log line');
like($primary->safe_psql('postgres', "SELECT last_error FROM s5vector_index_stats('t_idx')"), qr/offload/,
	'... and the index\'s last_error');
is($primary->safe_psql('postgres', "SELECT cold_remote_rows FROM s5vector_index_stats('t_idx')"), '0', 'nothing offloaded');
# A node that wants a token, given in a token file (s5_auth_token_file: a token set in postgresql.conf would be
# logged by PostgreSQL at the reload that changes it), a wrong one first: the step fails with a clear line; the
# file rewritten with the right token while the rounds go on (no reload needed) makes the next rounds offload.
my $token = 'tok-' . join('', map { ('a' .. 'z')[ int(rand(26)) ] } 1 .. 20);
my $s5 = s5_node_start(PostgreSQL::Test::Utils::tempdir(), '--auth-token', $token);
my $token_file = $primary->data_dir . '/s5_token';
PostgreSQL::Test::Utils::append_to_file($token_file, "wrong-$token\n");
$log_offset = -s $primary->logfile;
$primary->safe_psql('postgres',
	"ALTER SYSTEM SET s5vector.s5_auth_token_file = 's5_token'; ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf()");
$primary->wait_for_log(qr/step "offload" failed on index public\.t_idx .*check the S5 auth token/, $log_offset);
pass('a wrong token: the offload step fails and says to check the token');
is($primary->safe_psql('postgres', "SELECT cold_remote_rows FROM s5vector_index_stats('t_idx')"), '0', 'still nothing offloaded');
open(my $tfh, '>', $token_file) or die "$token_file: $!";
print $tfh "$token\n";
close($tfh);
ok($primary->poll_query_until('postgres', "SELECT cold_remote_rows > 0 FROM s5vector_index_stats('t_idx')"),
	'the token file rewritten with the right token: the next rounds offload')
  or diag_worker($primary);
unlike(PostgreSQL::Test::Utils::slurp_file($primary->logfile), qr/\Q$token\E/, 'the token is not in the server log');
is(index_sweep_count($primary, 't', 'v', rand_vec_literal(lcg_new(6), $dim)), $total, 'every row once after the offload');
verify_all_ok($primary, 't_idx', 'verify all ok after the offload (every blob fetched and checked)');
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.worker_enabled = off; SELECT pg_reload_conf()");
s5_node_stop($s5);

$standby->stop;
$primary->stop;
done_testing();
