# Offload of cold segments to a real s5vector-node on loopback (docs/s5.md "Offload"): answers identical before and
# after (probes = every list), cold and warm cache, the node stopped / answering 500 / dropping connections /
# returning corrupt bytes or a wrong CID (right SQLSTATE, or a WARNING and reachable rows only), VACUUM of remote
# parts, kill -9 during an offload (a session's and the worker's) and during a collection, the token kept from non-superusers and the log, no plaintext vector bytes on
# the node, a standby answering from the same blobs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Find;
use S5VTest;

my $dim = 16;
my $token = s5_random_token();
my $nodedir = PostgreSQL::Test::Utils::tempdir();
my $s5 = s5_node_start($nodedir, '--auth-token', $token);

my $primary = PostgreSQL::Test::Cluster->new('off_primary');
$primary->init(allows_streaming => 1);
# This test drives offload by hand; the worker's own offload step is turned on near the end.
$primary->append_conf('postgresql.conf', s5_conf($s5, token => $token) . "log_min_messages = debug1\n");
$primary->start;
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('off_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;

# A pure cold index: 4000 rows in 8 lists (about 500 rows, 5 row pages each: a sealable prefix of 4 pages a list).
$primary->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id int PRIMARY KEY, v vector($dim));
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 4000) i;
-- Built without S5 (a build with S5 configured uploads directly, 017_build_upload.pl): offload seals row pages.
SET s5vector.s5_url = '';
CREATE INDEX t_idx ON t USING s5vector (v) WITH (hot_window = '0', lists = 8);
RESET s5vector.s5_url;
CREATE ROLE alice LOGIN;
GRANT SELECT ON t TO alice;
});
is($primary->safe_psql('postgres', "SELECT cold_rows || '/' || cold_lists FROM s5vector_index_stats('t_idx')"),
	'4000/8', 'pure cold build: 4000 rows in 8 lists');

# The SQLSTATE of a statement's error (undef when it succeeds).
sub state_of
{
	my ($node, $sql) = @_;
	my ($r, $o, $e) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	my ($code) = sqlstate_of($e);
	return $code // 'none';
}

my $rng = lcg_new(7);
my @queries = map { rand_vec_literal($rng, $dim) } 1 .. 12;
my $knn = "SET enable_seqscan = off; SET s5vector.probes = 8;";

sub answers
{
	my ($node, $extra) = @_;
	$extra //= '';
	return join("\n",
		map { $node->safe_psql('postgres', "$knn $extra SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '$_' LIMIT 10) s") }
		  @queries);
}
my $before = answers($primary);
my $exact = join("\n",
	map { $primary->safe_psql('postgres', "SET enable_indexscan = off; SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '$_' LIMIT 10) s") }
	  @queries);
is($before, $exact, 'probes = every list: the exact answer before offload');

# Settings: a malformed URL is refused; the token is not readable by a non-superuser.
my ($ret, $out, $err) = $primary->psql('postgres', "SET s5vector.s5_url = 'ftp://x'");
like($err, qr/invalid value for parameter "s5vector.s5_url"/, 'a malformed s5_url is refused');
($ret, $out, $err) = $primary->psql('postgres', "SET s5vector.s5_url = 'http://u:p\@host:1'");
like($err, qr/credentials/, 'an s5_url with credentials is refused');
($ret, $out, $err) = $primary->psql('postgres', "SHOW s5vector.s5_auth_token", extra_params => [ '-U', 'alice' ]);
isnt($ret, 0, 'a non-superuser cannot SHOW the token');
unlike($out . $err, qr/\Q$token\E/, 'the token is not in what the non-superuser sees');
is($primary->safe_psql('postgres', "SELECT count(*) FROM pg_settings WHERE name = 's5vector.s5_auth_token' AND setting LIKE '%tok-%'", extra_params => [ '-U', 'alice' ]),
	'0', 'pg_settings does not show the token to a non-superuser');
($ret, $out, $err) = $primary->psql('postgres', "SELECT s5vector_offload('t_idx')", extra_params => [ '-U', 'alice' ]);
like($err, qr/must be owner/, 'only the owner offloads');

# Offload.
my $rows = $primary->safe_psql('postgres', "SELECT s5vector_offload('t_idx')");
cmp_ok($rows, '>=', 2000, "offload moved $rows rows to S5");
my $st = $primary->safe_psql('postgres',
	"SELECT cold_rows, cold_remote_rows, segments, remote_bytes > 0, gc_pending, last_offload IS NOT NULL FROM s5vector_index_stats('t_idx')");
is($st, "4000|$rows|8|t|0|t", 'stats: remote rows, 8 segments, bytes, nothing pending, last_offload set');
is($primary->safe_psql('postgres', "SELECT s5vector_offload('t_idx')"), '0', 'a second offload finds nothing to seal');
verify_all_ok($primary, 't_idx', 'verify after offload (every blob fetched and checked)');

# Cold cache, then warm.
$primary->safe_psql('postgres', "SELECT s5vector_cache_reset()");
my $cold = join("\n",
	map { $primary->safe_psql('postgres', "$knn SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '$_' LIMIT 10) s") } @queries);
is($cold, $before, 'answers identical after offload (cold cache)');
my $hm = $primary->safe_psql('postgres', "$knn SELECT s5vector_cache_reset(); SELECT id FROM t ORDER BY v <-> '$queries[0]' LIMIT 1; SELECT cache_hits || '/' || cache_misses FROM s5vector_index_stats('t_idx');");
my @hm = split /\n/, $hm;
is($hm[-1], '0/8', 'cold cache: 8 misses (one per probed list), no hits');
$hm = $primary->safe_psql('postgres', "$knn SELECT s5vector_cache_reset(); SELECT id FROM t ORDER BY v <-> '$queries[0]' LIMIT 1; SELECT id FROM t ORDER BY v <-> '$queries[2]' LIMIT 1; SELECT cache_hits || '/' || cache_misses FROM s5vector_index_stats('t_idx');");
@hm = split /\n/, $hm;
is($hm[-1], '8/8', 'the same session again: 8 hits (the backend keeps decoded segments), no new miss');
$hm = $primary->safe_psql('postgres', "$knn SELECT id FROM t ORDER BY v <-> '$queries[1]' LIMIT 1; SELECT cache_hits || '/' || cache_misses FROM s5vector_index_stats('t_idx');");
@hm = split /\n/, $hm;
is($hm[-1], '8/0', 'warm cache: 8 hits in a new session, no miss (the cache is shared)');
my $warm = answers($primary);
is($warm, $before, 'answers identical with a warm cache');

# Decrypting and decoding on extra threads (forced here: automatic needs a batch of 1 MB and an idle CPU): the
# same answers from a cold cache, and the cache files the threads wrote serve the next session.
for my $t (0, 1, 3)
{
	is(answers($primary, "SET s5vector.fetch_threads = $t; DO \$\$BEGIN PERFORM s5vector_cache_reset(); END\$\$;"),
		$before, "fetch_threads = $t, cold cache: answers identical");
}
$hm = $primary->safe_psql('postgres', "$knn SET s5vector.fetch_threads = 3; SELECT s5vector_cache_reset(); SELECT id FROM t ORDER BY v <-> '$queries[0]' LIMIT 1; SELECT cache_hits || '/' || cache_misses FROM s5vector_index_stats('t_idx');");
@hm = split /\n/, $hm;
is($hm[-1], '0/8', 'fetch_threads = 3: 8 segments fetched');
$hm = $primary->safe_psql('postgres', "$knn SELECT id FROM t ORDER BY v <-> '$queries[0]' LIMIT 1; SELECT cache_hits || '/' || cache_misses FROM s5vector_index_stats('t_idx'); SELECT count(*) FROM pg_ls_dir('s5vector_cache') f WHERE f LIKE 'tmp.%';");
@hm = split /\n/, $hm;
is("$hm[-2] $hm[-1]", '8/0 0', 'the files written by the threads are in the cache (8 hits in a new session), no temporary file left');

# cache_size = 0: no cache, every query fetches, answers unchanged.
$hm = $primary->safe_psql('postgres', "$knn SET s5vector.cache_size = 0; SELECT s5vector_cache_reset(); SELECT id FROM t ORDER BY v <-> '$queries[0]' LIMIT 1; SELECT id FROM t ORDER BY v <-> '$queries[0]' LIMIT 1; SELECT cache_hits || '/' || cache_misses FROM s5vector_index_stats('t_idx'); SELECT count(*) FROM pg_ls_dir('s5vector_cache') f WHERE f LIKE '%.seg';");
@hm = split /\n/, $hm;
is("$hm[-2] $hm[-1]", '0/16 0', 'cache_size = 0: both queries fetch (16 misses), nothing is written');
is(answers($primary, 'SET s5vector.cache_size = 0;'), $before, 'cache_size = 0: answers identical');
answers($primary);    # the cache filled again

# No plaintext vector bytes on the node; the cache holds them (control).
my $vtext = $primary->safe_psql('postgres', "SELECT v::text FROM t WHERE id = 1");
$vtext =~ s/[\[\]]//g;
my $needle = pack('f<*', split(/,/, $vtext));
sub files_containing
{
	my ($dir, $bytes) = @_;
	my $hits = 0;
	find(sub { return unless -f $_; local $/; open(my $fh, '<:raw', $_) or return; my $c = <$fh>; $hits++ if index($c, $bytes) >= 0; }, $dir);
	return $hits;
}
is(files_containing($s5->{store}, $needle), 0, 'no plaintext vector bytes in the node store');
cmp_ok(files_containing($primary->data_dir . '/s5vector_cache', $needle), '>=', 1, 'control: the local cache holds plaintext');

# A cache file changed behind our back is discarded and fetched again.
my @cache_files = glob($primary->data_dir . '/s5vector_cache/*.seg');
cmp_ok(scalar(@cache_files), '==', 8, '8 segments in the cache');
for my $f (@cache_files) { poke_file($f, 100, "\xff\xff\xff\xff"); }
is(answers($primary), $before, 'tampered cache files are re-verified, discarded and fetched again');

# A cache that cannot be written (a full disk, or here a directory without write permission: the same path, the
# segment is simply not cached): queries fetch and answer as before, nothing is written, no error.
my $cache_dir = $primary->data_dir . '/s5vector_cache';
$primary->safe_psql('postgres', "SELECT s5vector_cache_reset()");
chmod(0500, $cache_dir) or die "chmod $cache_dir: $!";
is(answers($primary), $before, 'unwritable cache: answers identical');
$hm = $primary->safe_psql('postgres', "$knn SELECT id FROM t ORDER BY v <-> '$queries[0]' LIMIT 1; SELECT cache_hits || '/' || cache_misses FROM s5vector_index_stats('t_idx'); SELECT count(*) FROM pg_ls_dir('s5vector_cache') f;");
@hm = split /\n/, $hm;
is("$hm[-2] $hm[-1]", '0/8 0', 'unwritable cache: a new session fetches all 8 segments again, no file was written');
chmod(0700, $cache_dir) or die "chmod $cache_dir: $!";
answers($primary);
is($primary->safe_psql('postgres', "SELECT count(*) FROM pg_ls_dir('s5vector_cache') f WHERE f LIKE '%.seg'"), '8',
	'writable again: the next queries fill the cache');

# Eviction: with room for about 3 of the 8 segments, a query that fetches all 8 leaves the cache within its size.
my $seg_sizes = "SELECT (pg_stat_file('s5vector_cache/' || f)).size AS b FROM pg_ls_dir('s5vector_cache') f WHERE f LIKE '%.seg'";
my $room_kb = $primary->safe_psql('postgres', "SELECT (max(b) * 3 + 512) / 1024 FROM ($seg_sizes) s");
$hm = $primary->safe_psql('postgres', "$knn SET s5vector.cache_size = '${room_kb}kB'; SELECT s5vector_cache_reset(); SELECT id FROM t ORDER BY v <-> '$queries[0]' LIMIT 1; SELECT count(*) || ' ' || coalesce(sum(b), 0) FROM ($seg_sizes) s;");
@hm = split /\n/, $hm;
my ($kept, $kept_bytes) = split / /, $hm[-1];
ok($kept >= 1 && $kept <= 3 && $kept_bytes <= $room_kb * 1024,
	"cache_size = ${room_kb}kB: $kept segments ($kept_bytes bytes) kept of the 8 fetched, within the limit");
is(answers($primary), $before, 'answers identical after the eviction');

# The standby answers from the same blobs (its own cache).
$primary->wait_for_catchup($standby);
is(answers($standby), $before, 'the standby answers cold queries from S5');
($ret, $out, $err) = $standby->psql('postgres', "SELECT s5vector_offload('t_idx')");
like($err, qr/recovery/, 'a standby does not offload');

# The node stopped: connection failure, or with on_s5_error = warning the reachable rows and one WARNING.
s5_node_stop($s5);
$primary->safe_psql('postgres', "SELECT s5vector_cache_reset()");
my $q = "$knn SELECT id FROM t ORDER BY v <-> '$queries[0]' LIMIT 10";
($ret, $out, $err) = $primary->psql('postgres', $q);
like($err, qr/could not read \d+ of \d+ remote segments/, 'node stopped: the query fails');
is(state_of($primary, $q), '08006', 'node stopped: connection failure (08006)');
($ret, $out, $err) = $primary->psql('postgres', "SET s5vector.on_s5_error = warning; $q");
is($ret, 0, 'on_s5_error = warning: the query succeeds');
my @warnings = ($err =~ /WARNING:/g);
is(scalar(@warnings), 1, 'one WARNING');
my %truth = map { $_ => 1 } map { split /,/ } split /\n/,
  $primary->safe_psql('postgres', "SET enable_indexscan = off; SELECT string_agg(id::text, ',') FROM t");
my $ok = 1;
for my $id (split /\n/, $out) { $ok = 0 unless $truth{$id}; }
ok($ok && length($out) > 0, 'the reachable rows are real rows (local tails)');

# Misbehaving nodes.
my %cases = ('--fail-rate' => '08006', '--drop-rate' => '08006', '--corrupt-rate' => 'XX001');
for my $flag (sort keys %cases)
{
	my $bad = s5_node_start($nodedir, '--auth-token', $token, $flag, '1', '--listen', '127.0.0.1:0');
	$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$bad->{url}'; SELECT pg_reload_conf();");
	$primary->safe_psql('postgres', "SELECT s5vector_cache_reset()");
	is(state_of($primary, $q), $cases{$flag}, "node with $flag 1: SQLSTATE $cases{$flag}");
	s5_node_stop($bad);
}

# A good node again (same store): verify clean; VACUUM marks dead rows of remote parts.
$s5 = s5_node_start($nodedir, '--auth-token', $token);
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf();");
$standby->append_conf('postgresql.conf', "s5vector.s5_url = '$s5->{url}'\n");
$standby->reload;
$primary->safe_psql('postgres', "DELETE FROM t WHERE id % 10 = 0; VACUUM t;");
is($primary->safe_psql('postgres', "SELECT cold_rows FROM s5vector_index_stats('t_idx')"), '3600',
	'VACUUM marked the dead rows, remote ones included (3600 live)');
$before = answers($primary);
$exact = join("\n",
	map { $primary->safe_psql('postgres', "SET enable_indexscan = off; SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '$_' LIMIT 10) s") }
	  @queries);
is($before, $exact, 'after VACUUM: still the exact answer');
verify_all_ok($primary, 't_idx', 'verify after VACUUM');

# A lying node on upload (wrong CID): the offload fails with XX001 and nothing is lost.
$primary->safe_psql('postgres', qq{
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(5001, 9000) i;
});
my $liar = s5_node_start($nodedir . '/liar', '--auth-token', $token, '--corrupt-rate', '1');
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$liar->{url}'; SELECT pg_reload_conf();");
is(state_of($primary, "SELECT s5vector_offload('t_idx')"), 'XX001', 'wrong CID from the node: XX001');
s5_node_stop($liar);
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf();");
cmp_ok($primary->safe_psql('postgres', "SELECT gc_pending FROM s5vector_index_stats('t_idx')"), '>=', 1,
	'the failed upload left its intent in the collection queue');
is(index_sweep_count($primary, 't', 'v', $queries[0]), '7600', 'no row lost after the failed offload');
verify_all_ok($primary, 't_idx', 'verify after the failed offload');

# kill -9 during an offload (a slow node): after recovery, verify is clean and no row is lost.
s5_node_stop($s5);
$s5 = s5_node_start($nodedir, '--auth-token', $token, '--delay-ms', '400');
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf();");
my $bg = $primary->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/offloading/, "\\echo offloading\nSELECT s5vector_offload('t_idx');\n");
sleep 2;
# A second offload of the same index meanwhile skips with a WARNING.
($ret, $out, $err) = $primary->psql('postgres', "SELECT s5vector_offload('t_idx')");
is($out, '0', 'a concurrent second offload does nothing');
like($err, qr/is being offloaded by another session; skipped/, '... and says so in a WARNING');
my $victim = $primary->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT s5vector_offload%' AND pid <> pg_backend_pid()");
ok($victim =~ /^\d+$/, 'the offload is running');
kill 'KILL', $victim;
eval { $bg->quit; };
# The tests run with restart_after_crash = off: the postmaster stops; start it again (crash recovery).
my $pidfile = $primary->data_dir . '/postmaster.pid';
for (1 .. 300) { last unless -f $pidfile; select(undef, undef, undef, 0.1); }
$primary->_update_pid(0);
$primary->start;
is(index_sweep_count($primary, 't', 'v', $queries[0]), '7600', 'kill -9 during offload: no row lost');
verify_all_ok($primary, 't_idx', 'kill -9 during offload: verify clean');
s5_node_stop($s5);
$s5 = s5_node_start($nodedir, '--auth-token', $token);
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf();");
# A hot standby's scan that read the lists before an offload was replayed (the primary's WaitForScans does not
# see it) meets freed row pages: it re-reads the list and still returns every row once.
$standby->append_conf('postgresql.conf', "s5vector.s5_url = '$s5->{url}'\n");
$standby->reload;
$primary->wait_for_catchup($standby);
my $sb = $standby->background_psql('postgres');
$sb->query_safe("SET enable_seqscan = off; SET s5vector.probes = 1; SET s5vector.max_scan_tuples = 100000000; "
	  . "BEGIN; DECLARE c CURSOR FOR SELECT id FROM t ORDER BY v <-> '$queries[0]';");
my $first = $sb->query_safe("FETCH 1 FROM c");
cmp_ok($primary->safe_psql('postgres', "SELECT s5vector_offload('t_idx')"), '>', 0, 'offload resumes after the crash');
$primary->wait_for_catchup($standby);
my @rest = grep { length } split /\n/, $sb->query_safe("FETCH ALL FROM c");
my %seen = map { $_ => 1 } ($first, @rest);
is(scalar(@rest) + 1 . '/' . scalar(keys %seen), '7600/7600',
	'standby scan across an offload: every row once (the list re-read after freed pages)');
$sb->query_safe("COMMIT");
$sb->quit;
is(answers($primary), join("\n",
	map { $primary->safe_psql('postgres', "SET enable_indexscan = off; SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '$_' LIMIT 10) s") }
	  @queries), 'answers exact after the resumed offload');
verify_all_ok($primary, 't_idx', 'verify after the resumed offload');

# Collection: the intents left by the refused upload and the killed offload are queued; a negative gc_grace keeps
# them, gc_grace = 0 deletes the orphans, and every blob the index references is still on the node.
sub blob_files { my @f = glob("$s5->{store}/blobs/*"); return scalar(@f); }
my $pending = $primary->safe_psql('postgres', "SELECT gc_pending FROM s5vector_index_stats('t_idx')");
cmp_ok($pending, '>=', 1, "the collection queue holds $pending entries");
is($primary->safe_psql('postgres', "SET s5vector.gc_grace = -1; SELECT s5vector_gc('t_idx')"), '0', 'gc_grace = -1: nothing deleted');
is($primary->safe_psql('postgres', "SELECT gc_pending FROM s5vector_index_stats('t_idx')"), $pending, '... and the queue kept');
my $segments = $primary->safe_psql('postgres', "SELECT segments FROM s5vector_index_stats('t_idx')");
cmp_ok(blob_files(), '>=', $segments, 'before gc: at least one blob per referenced segment on the node');
$primary->safe_psql('postgres', "SET s5vector.gc_grace = 0; SELECT s5vector_gc('t_idx')");
is($primary->safe_psql('postgres', "SELECT gc_pending || '/' || (last_gc IS NOT NULL) FROM s5vector_index_stats('t_idx')"),
	'0/true', 'gc_grace = 0: the queue is empty, last_gc set');
is(blob_files(), $segments, 'after gc: exactly the referenced blobs are left on the node (orphans gone)');
$primary->safe_psql('postgres', "SELECT s5vector_cache_reset()");
verify_all_ok($primary, 't_idx', 'verify after gc: every referenced blob still fetches');

# The background worker offloads on its own (its offload step): new cold rows are sealed and uploaded with no
# function called.
$primary->safe_psql('postgres', "INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(20001, 24000) i");
my $remote_before = $primary->safe_psql('postgres', "SELECT cold_remote_rows FROM s5vector_index_stats('t_idx')");
$primary->safe_psql('postgres',
	"ALTER SYSTEM SET s5vector.naptime = 1; ALTER SYSTEM SET s5vector.worker_enabled = on; SELECT pg_reload_conf()");
my $remote_after = $remote_before;
for (1 .. 120)
{
	$remote_after = $primary->safe_psql('postgres', "SELECT cold_remote_rows FROM s5vector_index_stats('t_idx')");
	last if $remote_after > $remote_before;
	select(undef, undef, undef, 0.5);
}
cmp_ok($remote_after, '>', $remote_before, "the worker offloads new cold rows by itself ($remote_before -> $remote_after)");
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.worker_enabled = off; SELECT pg_reload_conf()");
is(index_sweep_count($primary, 't', 'v', $queries[0]), '11600', 'after the worker\'s offload every row is found once');
verify_all_ok($primary, 't_idx', 'verify after the worker\'s offload');

# The postmaster after a kill -9 of one of its processes (restart_after_crash = off in the tests: it stops; start
# it again, which runs crash recovery).
sub restart_after_kill
{
	my ($node) = @_;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	for (1 .. 300) { last unless -f $pidfile; select(undef, undef, undef, 0.1); }
	$node->_update_pid(0);
	$node->start;
}
sub use_node
{
	my (@args) = @_;
	s5_node_stop($s5);
	$s5 = s5_node_start($nodedir, '--auth-token', $token, @args);
	$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf();");
}

# kill -9 of the worker inside its offload step (a slow node: the upload is in flight): after crash recovery no row
# is lost, verify is clean, and the next rounds finish the offload.
$primary->safe_psql('postgres', "INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(24001, 28000) i");
my $nrows = $primary->safe_psql('postgres', 'SELECT count(*) FROM t');
$remote_before = $primary->safe_psql('postgres', "SELECT cold_remote_rows FROM s5vector_index_stats('t_idx')");
use_node('--delay-ms', '1500');
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.worker_enabled = on; SELECT pg_reload_conf()");
ok($primary->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM s5vector_worker_status() WHERE current_step = 'offload' AND current_index = 'public.t_idx'"),
	'the worker is inside its offload step');
sleep 1; # its first upload is in flight (the node answers after 1.5 s)
$victim = $primary->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 's5vector worker'");
ok($victim =~ /^\d+$/, 'the worker runs');
kill 'KILL', $victim;
restart_after_kill($primary);
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.worker_enabled = off; SELECT pg_reload_conf()");
use_node();
is(index_sweep_count($primary, 't', 'v', $queries[0]), $nrows, 'kill -9 of the worker during offload: no row lost');
verify_all_ok($primary, 't_idx', 'kill -9 of the worker during offload: verify clean');
cmp_ok($primary->safe_psql('postgres', "SELECT gc_pending FROM s5vector_index_stats('t_idx')"), '>=', 1,
	'the interrupted upload is an orphan in the collection queue');
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.worker_enabled = on; SELECT pg_reload_conf()");
ok($primary->poll_query_until('postgres', "SELECT cold_remote_rows > $remote_before FROM s5vector_index_stats('t_idx')"),
	'the next rounds finish the offload');
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.worker_enabled = off; SELECT pg_reload_conf()");
is(index_sweep_count($primary, 't', 'v', $queries[0]), $nrows, 'after the resumed offload every row is found once');

# kill -9 during a collection (a slow node: a delete is in flight): after recovery verify is clean, and a second
# collection deletes the rest; every referenced blob stays.
use_node('--delay-ms', '1500');
$bg = $primary->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/collecting/, "\\echo collecting\nSET s5vector.gc_grace = 0;\nSELECT s5vector_gc('t_idx');\n");
ok($primary->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'SELECT s5vector_gc%' AND pid <> pg_backend_pid()"),
	'the collection is running');
sleep 1;
$victim = $primary->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT s5vector_gc%' AND pid <> pg_backend_pid()");
kill 'KILL', $victim;
eval { $bg->quit; };
restart_after_kill($primary);
use_node();
$primary->safe_psql('postgres', "SELECT s5vector_cache_reset()");
verify_all_ok($primary, 't_idx', 'kill -9 during gc: verify clean (no referenced blob deleted)');
$primary->safe_psql('postgres', "SET s5vector.gc_grace = 0; SELECT s5vector_gc('t_idx')");
is($primary->safe_psql('postgres', "SELECT gc_pending FROM s5vector_index_stats('t_idx')"), '0',
	'a second collection empties the queue');
$segments = $primary->safe_psql('postgres', "SELECT segments FROM s5vector_index_stats('t_idx')");
is(blob_files(), $segments, 'after it exactly the referenced blobs are on the node');
is(index_sweep_count($primary, 't', 'v', $queries[0]), $nrows, 'kill -9 during gc: no row lost');

# Cancel: statement_timeout stops a fetch from a slow node promptly.
s5_node_stop($s5);
$s5 = s5_node_start($nodedir, '--auth-token', $token, '--delay-ms', '5000');
$primary->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf(); SELECT s5vector_cache_reset();");
my $t0 = time;
is(state_of($primary, "SET statement_timeout = '300ms'; $q"), '57014', 'statement_timeout cancels a fetch (57014)');
cmp_ok(time - $t0, '<=', 3, 'promptly (the node would take 5 s)');

# The token never reached the server log.
my $log = slurp_file($primary->logfile);
unlike($log, qr/\Q$token\E/, 'the token is not in the server log');

s5_node_stop($s5);
$standby->stop;
$primary->stop;
done_testing();
