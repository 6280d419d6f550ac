# CREATE INDEX with S5 configured uploads the cold part directly (docs/s5.md "CREATE INDEX with S5"): a pure cold
# build leaves only part pages locally (every row remote, answers with probes = every list equal the exact answer,
# verify clean, at most 24 bytes of index a row, a standby answering from the same blobs), inserts, offload, VACUUM and compaction work on such an index; the
# progress view shows "uploading segments"; a dead node fails the build with 08006 and leaves no index; kill -9
# during the build's upload leaves no index after recovery; the build journal lets s5vector_gc_dropped collect the
# uploads of killed, failed, cancelled, rolled-back and refused builds after gc_grace and never a running or committed
# build's; part pages of an older format or with impossible fields give XX002.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S5VTest;

my $BLCKSZ = 8192;
my $dim = 16;
my $nodedir = PostgreSQL::Test::Utils::tempdir();
my $s5 = s5_node_start($nodedir);

my $node = PostgreSQL::Test::Cluster->new('build_upload');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', s5_conf($s5) . "max_prepared_transactions = 2\n");
$node->start;
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('build_upload_standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->start;

sub state_of
{
	my ($sql) = @_;
	my ($r, $o, $e) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	my ($code, $msg) = sqlstate_of($e);
	return wantarray ? ($code // 'none', $e) : ($code // 'none');
}

sub blobs_on_node
{
	my $n = 0;
	my @dirs = ($s5->{store});
	while (my $d = shift @dirs)
	{
		opendir(my $dh, $d) or next;
		for my $f (readdir $dh)
		{
			next if $f eq '.' || $f eq '..';
			if (-d "$d/$f") { push @dirs, "$d/$f"; }
			elsif (-f "$d/$f") { $n++; }
		}
		closedir $dh;
	}
	return $n;
}

# 6000 rows in 8 lists, an age column with whole-minute ages (4-byte offsets with a 60 s scale).
$node->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id int PRIMARY KEY, v vector($dim), ts timestamptz);
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, '2026-01-01'::timestamptz - i * interval '1 minute'
  FROM generate_series(1, 6000) i;
});
my $blobs0 = blobs_on_node();
# The build journal (docs/s5.md "CREATE INDEX with S5"): a file per build that uploads, kept when it does not commit.
my $jdir = $node->data_dir . '/s5vector_build_journal';
sub journal_files
{
	opendir(my $dh, $jdir) or return ();
	my @f = sort grep { /\.journal$/ } readdir $dh;
	closedir $dh;
	return @f;
}
$node->safe_psql('postgres', "CREATE INDEX t_idx ON t USING s5vector (v, ts) WITH (hot_window = '0', lists = 8)");
is(scalar(journal_files()), 0, 'a committed build leaves no journal');
my ($cold, $remote, $segs, $rbytes) = split /\|/, $node->safe_psql('postgres',
	"SELECT cold_rows, cold_remote_rows, segments, remote_bytes FROM s5vector_index_stats('t_idx')");
is($cold, 6000, 'pure cold build: 6000 cold rows');
is($remote, 6000, 'every cold row is remote after the build (no local tail: a list\'s last part may be small)');
cmp_ok($segs, '>=', 8, "the build uploaded segments ($segs)");
is(blobs_on_node() - $blobs0, $segs, 'one blob on the node per segment');
my $size = $node->safe_psql('postgres', "SELECT pg_relation_size('t_idx')");
cmp_ok($size / 6000, '<=', 24, sprintf('local index: %.1f bytes a cold row (at most 24)', $size / 6000));
verify_all_ok($node, 't_idx', 'verify after the build');

my $rng = lcg_new(17);
my @queries = map { rand_vec_literal($rng, $dim) } 1 .. 10;
sub answers
{
	my ($mode, $where) = @_;
	$where //= '';
	my $set = $mode eq 'index' ? 'SET enable_seqscan = off; SET s5vector.probes = 8;' : 'SET enable_indexscan = off;';
	return join("\n",
		map { $node->safe_psql('postgres', "$set SELECT string_agg(id::text, ',') FROM (SELECT id FROM t $where ORDER BY v <-> '$_' LIMIT 10) s") }
		  @queries);
}
is(answers('index'), answers('exact'), 'probes = every list: the exact answer, from the uploaded segments');
my $age = "WHERE ts < '2026-01-01'::timestamptz - interval '2500 minutes'";
is(answers('index', $age), answers('exact', $age), 'an age predicate on remote parts: the exact answer (4-byte ages)');
$node->safe_psql('postgres', "SELECT s5vector_cache_reset()");
is(answers('index'), answers('exact'), 'the same with a cold cache');
# A standby replays the build (its pages are logged at its end) and answers from the same blobs.
$node->wait_for_catchup($standby);
is( join("\n",
		map { $standby->safe_psql('postgres', "SET enable_seqscan = off; SET s5vector.probes = 8; SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '$_' LIMIT 10) s") }
		  @queries),
	answers('exact'),
	'a standby answers from the uploaded segments: the exact answer');
$standby->stop;

# Ages that need 8 bytes (a range of years at microsecond resolution): parts of the wider format.
$node->safe_psql('postgres', qq{
CREATE TABLE w (id int PRIMARY KEY, v vector($dim), ts timestamptz);
INSERT INTO w SELECT i, @{[ vec_sql('i', $dim) ]}, '2000-01-01'::timestamptz + (i::bigint * i) * interval '1 second'
  + (i % 7) * interval '1 microsecond' FROM generate_series(1, 3000) i;
CREATE INDEX w_idx ON w USING s5vector (v, ts) WITH (hot_window = '0', lists = 2);
});
is($node->safe_psql('postgres', "SELECT cold_remote_rows FROM s5vector_index_stats('w_idx')"), '3000',
	'8-byte ages: every row remote');
my $wq = $queries[0];
my $wage = "WHERE ts > '2000-01-01'::timestamptz + 2000000 * interval '1 second' + interval '3 microseconds'";
is($node->safe_psql('postgres', "SET enable_seqscan = off; SET s5vector.probes = 2; SELECT string_agg(id::text, ',') FROM (SELECT id FROM w $wage ORDER BY v <-> '$wq' LIMIT 20) s"),
	$node->safe_psql('postgres', "SET enable_indexscan = off; SELECT string_agg(id::text, ',') FROM (SELECT id FROM w $wage ORDER BY v <-> '$wq' LIMIT 20) s"),
	'8-byte ages: an age predicate gives the exact answer');
verify_all_ok($node, 'w_idx', 'verify of the index with 8-byte ages');

# Life after the build: deletes (VACUUM marks the parts' dead bitmaps), inserts (local tail), offload, compaction.
$node->safe_psql('postgres', qq{
DELETE FROM t WHERE id % 3 = 0;
VACUUM t;
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, '2026-01-01'::timestamptz - i * interval '1 minute'
  FROM generate_series(6001, 9000) i;
});
is(answers('index'), answers('exact'), 'after VACUUM and inserts: the exact answer');
cmp_ok($node->safe_psql('postgres', "SELECT s5vector_offload('t_idx')"), '>', 0, 'offload of the inserted rows');
$node->safe_psql('postgres', "SELECT s5vector_compact('t_idx')");
is(answers('index'), answers('exact'), 'after offload and compaction: the exact answer');
verify_all_ok($node, 't_idx', 'verify after VACUUM, inserts, offload and compaction');

# The same build without S5 (offload = off) keeps its cold rows local, as before.
$node->safe_psql('postgres', "CREATE INDEX t_local ON t USING s5vector (v, ts) WITH (hot_window = '0', lists = 8, offload = off)");
is($node->safe_psql('postgres', "SELECT cold_remote_rows FROM s5vector_index_stats('t_local')"), '0',
	'offload = off: the build writes row pages');
$node->safe_psql('postgres', "DROP INDEX t_local");

# A dead node: the build fails with 08006 (whatever on_s5_error says) and no index exists.
my $dead = s5_node_start(PostgreSQL::Test::Utils::tempdir());
my $dead_url = $dead->{url};
s5_node_stop($dead);
for my $mode ('error', 'warning')
{
	my ($code, $err) = state_of("SET s5vector.s5_url = '$dead_url'; SET s5vector.on_s5_error = $mode; "
		  . "CREATE INDEX d_idx ON t USING s5vector (v) WITH (hot_window = '0', lists = 8)");
	is($code, '08006', "a build against a dead node fails with 08006 (on_s5_error = $mode)");
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'd_idx'"), '0', '... and leaves no index');
}
is(scalar(journal_files()), 2, 'each failed build left its journal (the blob it was about to upload)');

# kill -9 during the build's upload (a slow node): after recovery there is no index; its blobs stay on the node as
# orphans (no index references or queues them).
s5_node_stop($s5);
$s5 = s5_node_start($nodedir, '--delay-ms', '200');
$node->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf();");
my $blobs1 = blobs_on_node();
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/building/,
	"\\echo building\nCREATE INDEX k_idx ON t USING s5vector (v) WITH (hot_window = '0', lists = 32);\n");
my $phase = '';
for (1 .. 600)
{
	$phase = $node->safe_psql('postgres', "SELECT phase FROM pg_stat_progress_create_index");
	last if $phase =~ /uploading segments/;
	select(undef, undef, undef, 0.05);
}
like($phase, qr/^building index: uploading segments$/, 'pg_stat_progress_create_index shows the upload phase');
for (1 .. 100) { last if blobs_on_node() > $blobs1; select(undef, undef, undef, 0.05); }
cmp_ok(blobs_on_node(), '>', $blobs1, 'the build has uploaded blobs when it is killed');
my $victim = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX k_idx%' AND pid <> pg_backend_pid()");
ok($victim =~ /^\d+$/, 'the build is running');
kill 'KILL', $victim;
eval { $bg->quit; };
my $pidfile = $node->data_dir . '/postmaster.pid';
for (1 .. 300) { last unless -f $pidfile; select(undef, undef, undef, 0.1); }
$node->_update_pid(0);
$node->start;
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'k_idx'"), '0',
	'kill -9 during the build: no index after recovery');
my $orphans = blobs_on_node() - $blobs1;
cmp_ok($orphans, '>', 0, "the killed build's $orphans blobs are orphans on the node");
is(answers('index'), answers('exact'), 't_idx still answers exactly after the crash');
verify_all_ok($node, 't_idx', 'verify of t_idx after the crash');

# Collection of the journals: nothing before gc_grace; then every orphan of the killed and the failed builds.
is(scalar(journal_files()), 3, 'the killed build left its journal too');
is($node->safe_psql('postgres', "SELECT s5vector_gc_dropped()"), '0', 'within gc_grace nothing is collected');
is(scalar(journal_files()), 3, '... and the journals stay');
is($node->safe_psql('postgres', "SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()"), $orphans,
	"gc_dropped deletes the killed build's $orphans orphans (the failed builds' blobs never reached the node)");
is(blobs_on_node(), $blobs1, 'the node holds what it held before the killed build');
is(scalar(journal_files()), 0, 'the collected journals are removed');
verify_all_ok($node, 't_idx', 'verify of t_idx after the collection (every referenced blob is still there)');

# A build running in the background (the slow node) and a collection at the same time.
sub start_build
{
	my ($sql) = @_;
	my $h = $node->background_psql('postgres', on_error_stop => 0);
	$h->query_until(qr/building/, "\\echo building\n$sql\n");
	my $before = blobs_on_node();
	my $ph = '';
	for (1 .. 600)
	{
		$ph = $node->safe_psql('postgres', "SELECT phase FROM pg_stat_progress_create_index");
		last if $ph =~ /uploading segments/;
		select(undef, undef, undef, 0.05);
	}
	for (1 .. 200) { last if blobs_on_node() > $before && journal_files() > 0; select(undef, undef, undef, 0.05); }
	return $h;
}
sub wait_build_gone
{
	for (1 .. 1200)
	{
		last if $node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_progress_create_index") eq '0';
		select(undef, undef, undef, 0.05);
	}
}
my $blobs2 = blobs_on_node();
my $bg2 = start_build("CREATE INDEX live_idx ON t USING s5vector (v) WITH (hot_window = '0', lists = 8);");
cmp_ok(blobs_on_node(), '>', $blobs2, 'a build is uploading');
my ($jfile) = journal_files();
ok(defined $jfile, "the running build has its journal ($jfile)");
my $jcopy = slurp_file("$jdir/$jfile");
is($node->safe_psql('postgres', "SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()"), '0',
	'a collection while a build uploads deletes none of its blobs');
$bg2->quit;
wait_build_gone();
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'live_idx'"), '1', 'the build committed');
is(scalar(journal_files()), 0, '... and removed its journal');
verify_all_ok($node, 'live_idx', 'verify of the index built during a collection (every blob is there)');
# A journal of a committed build (as a crash right after the commit would leave it) is dropped, its blobs kept.
PostgreSQL::Test::Utils::append_to_file("$jdir/$jfile", $jcopy);
is($node->safe_psql('postgres', "SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()"), '0',
	'the journal of a committed build: nothing deleted');
is(scalar(journal_files()), 0, '... and the journal is removed');
verify_all_ok($node, 'live_idx', 'verify of live_idx after that collection');
$node->safe_psql('postgres', 'DROP INDEX live_idx');
$node->safe_psql('postgres', "SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()");
is(blobs_on_node(), $blobs2, 'dropped and collected: the node is back to where it was');

# A cancelled build, a build rolled back to a savepoint under a committed transaction, a build refused at PREPARE:
# their uploads are collected.
my $bg3 = start_build("CREATE INDEX c_idx ON t USING s5vector (v) WITH (hot_window = '0', lists = 8);");
cmp_ok(blobs_on_node(), '>', $blobs2, 'the build to cancel has uploaded blobs');
$node->safe_psql('postgres', "SELECT pg_cancel_backend(pid) FROM pg_stat_progress_create_index");
$bg3->quit;
wait_build_gone();
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'c_idx'"), '0', 'cancelled: no index');
is(scalar(journal_files()), 1, '... and its journal stays');
s5_node_stop($s5);
$s5 = s5_node_start($nodedir);
$node->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf();");
$node->safe_psql('postgres', qq{
BEGIN;
SAVEPOINT s;
CREATE INDEX sp_idx ON t USING s5vector (v) WITH (hot_window = '0', lists = 8);
ROLLBACK TO s;
COMMIT;
});
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'sp_idx'"), '0',
	'rolled back to a savepoint: no index');
is(scalar(journal_files()), 2, '... and its journal stays although the transaction committed');
my ($pcode, $perr) = state_of("BEGIN; CREATE INDEX p_idx ON t USING s5vector (v) WITH (hot_window = '0', lists = 8); "
	  . "PREPARE TRANSACTION 'p'");
is($pcode, '0A000', 'PREPARE TRANSACTION after a build that uploaded: 0A000');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_prepared_xacts"), '0', '... nothing prepared');
is(scalar(journal_files()), 3, '... and its journal stays');
cmp_ok(blobs_on_node(), '>', $blobs2, 'the three builds left blobs');
$node->safe_psql('postgres', "SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()");
is(blobs_on_node(), $blobs2, 'collected: the node is back to where it was');
is(scalar(journal_files()), 0, 'no journal left');
verify_all_ok($node, 't_idx', 'verify of t_idx at the end');

# Part pages of an older format, or with impossible fields: XX002 naming the block, with a REINDEX hint.
s5_node_stop($s5);
$s5 = s5_node_start($nodedir);
$node->safe_psql('postgres', qq{
ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf();
CREATE TABLE c (id int, v vector($dim));
INSERT INTO c SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 1000) i;
CREATE INDEX c_idx ON c USING s5vector (v) WITH (hot_window = '0', lists = 2);
CHECKPOINT;
});
my $path = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('c_idx')");
my $part;
for my $blk (1 .. (-s $path) / $BLCKSZ - 1)
{
	my $lp = unpack('V', peek_file($path, $blk * $BLCKSZ + 24, 4));
	my $item = $blk * $BLCKSZ + ($lp & 0x7FFF);
	my ($type, $version) = unpack('CC', peek_file($path, $item, 2));
	if ($type == 6) { $part = $item; last; }
}
ok(defined $part, 'a part page exists');
my ($version) = unpack('C', peek_file($path, $part + 1, 1));
my ($count, $capacity) = unpack('vv', peek_file($path, $part + 2, 4));
is($version, 2, 'part pages are of version 2');
cmp_ok($count, '<', $capacity, "the part has room ($count of $capacity rows)");
my $width = unpack('C', peek_file($path, $part + 40, 1));
is($width, 4, 'ages without an age column are 4-byte offsets');
my $ages_off = 176 + 6 * $capacity;
$ages_off = ($ages_off + 3) & ~3;
my $dead_off = $ages_off + 4 * $capacity;
my $scan = "SET enable_seqscan = off; SET s5vector.probes = 2; SELECT count(*) FROM (SELECT id FROM c ORDER BY v <-> '$queries[0]') s";
my @cases = (
	[ 'part version 1', $part + 1, pack('C', 1), qr/older format.*\n?.*REINDEX/s ],
	[ 'age width 5', $part + 40, pack('C', 5), qr/impossible count, capacity, age encoding or CID/ ],
	[ 'age scale 0', $part + 32, pack('Q<', 0), qr/impossible count, capacity, age encoding or CID/ ],
	[ 'dead bit past count', $part + $dead_off + int($count / 8), undef, qr/row flags past the part's rows/ ],
);
for my $c (@cases)
{
	my ($label, $off, $bytes, $re) = @$c;
	if (!defined $bytes)
	{
		my $b = unpack('C', peek_file($path, $off, 1));
		$bytes = pack('C', $b | (1 << ($count % 8)));
	}
	$node->stop;
	my $old = poke_file($path, $off, $bytes);
	$node->start;
	my ($code, $err) = state_of($scan);
	is($code, 'XX002', "$label: XX002");
	like($err, $re, "$label: says what is wrong");
	$node->stop;
	poke_file($path, $off, $old);
	$node->start;
}
is($node->safe_psql('postgres', $scan), '1000', 'the restored index answers again');

s5_node_stop($s5);
done_testing();
