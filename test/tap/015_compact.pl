# Compaction of remote parts against a real s5vector-node on loopback (docs/s5.md "Compaction"): small parts merged,
# rows VACUUM marked dead dropped, answers identical before and after (probes = every list: the exact answer),
# fewer segments, the old blobs queued and deleted by s5vector_gc (the node no longer serves them), the worker
# compacting on its own (a bounded piece a round), a cursor open across a swap, two sessions at once (one skips),
# a kill -9 while a compaction's upload is in flight (no row lost or duplicated, verify clean, the orphan upload
# collected), a VACUUM during the upload (its dead flags carried into the new part), and a hot standby's scan
# across a replayed compaction that unlinks dead runs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use S5VTest;

my $dim = 16;
my $token = s5_random_token();
my $nodedir = PostgreSQL::Test::Utils::tempdir();
my $s5 = s5_node_start($nodedir, '--auth-token', $token);

my $node = PostgreSQL::Test::Cluster->new('compact');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', s5_conf($s5, token => $token, timeout => '10s') . qq{
s5vector.naptime = 1
s5vector.gc_grace = -1
});
$node->start;

sub set_url
{
	my ($url) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$url'; SELECT pg_reload_conf();");
}
sub stat_of
{
	my ($cols) = @_;
	return $node->safe_psql('postgres', "SELECT $cols FROM s5vector_index_stats('t_idx')");
}
sub blob_hashes
{
	my %h = map { (m{/([0-9a-f]{64})$})[0] => -s $_ } glob("$s5->{store}/blobs/*");
	return \%h;
}
# VACUUM of t until it leaves no dead tuple behind (at most 5 passes): VACUUM skips the dead tuples of a heap page it
# cannot get a cleanup lock on (any backend's pin; this cluster has 1 MB of shared buffers) and says so in VERBOSE
# ("tuples missed: N dead"); such tuples never reach the index. Returns the tuples the first pass missed.
sub vacuum_t
{
	my $first;
	for (1 .. 5)
	{
		my ($r, $o, $e) = $node->psql('postgres', 'VACUUM (VERBOSE, INDEX_CLEANUP ON) t');
		die "VACUUM failed: $e" if $r != 0;
		my ($m) = $e =~ /tuples missed: (\d+) dead/;
		$m //= 0;
		$first //= $m;
		last if $m == 0;
	}
	return $first;
}
# Rows of t_idx's cold tier without a dead flag, as its pages hold them (s5vector_verify's "cold tier" row reads
# every chain and part page), independent of the cold metapage's counters.
sub cold_live_in_pages
{
	my $d = $node->safe_psql('postgres', "SELECT detail FROM s5vector_verify('t_idx') WHERE check_name = 'cold tier'");
	my ($rows, $dead) = $d =~ /^(\d+) rows in \d+ lists and staging \((\d+) dead/;
	return defined $rows ? $rows - $dead : "unparsed: $d";
}
# GET of a blob by hash and size (base16 raw CID: 26 1f hash size-LE-trimmed); returns the HTTP status.
sub node_serves
{
	my ($hash, $size) = @_;
	my $sz = pack('Q<', $size);
	$sz =~ s/\0+$//;
	my $cid = 'f261f' . $hash . unpack('H*', $sz);
	my $r = HTTP::Tiny->new(timeout => 10)
	  ->get("$s5->{url}/s5/download/$cid", { headers => { Authorization => "Bearer $token" } });
	return $r->{status};
}

# A pure cold index, 8 lists; a first offload seals ~400 rows a list, two more batches add small parts (~100 rows).
$node->safe_psql('postgres', qq{
CREATE EXTENSION s5vector;
CREATE TABLE t (id int PRIMARY KEY, v vector($dim));
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 4000) i;
-- Built without S5 (a build with S5 configured uploads directly, 017_build_upload.pl): offload seals row pages.
SET s5vector.s5_url = '';
CREATE INDEX t_idx ON t USING s5vector (v) WITH (hot_window = '0', lists = 8);
});
cmp_ok($node->safe_psql('postgres', "SELECT s5vector_offload('t_idx')"), '>=', 2000, 'first offload');
for my $b (0 .. 1)
{
	my ($lo, $hi) = (4001 + $b * 1000, 5000 + $b * 1000);
	$node->safe_psql('postgres', "INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series($lo, $hi) i");
	$node->safe_psql('postgres', "SELECT s5vector_offload('t_idx')");
}
my $seg0 = stat_of('segments');
cmp_ok($seg0, '>=', 16, "offload in three batches: $seg0 segments (small ones among them)");

my $rng = lcg_new(11);
my @queries = map { rand_vec_literal($rng, $dim) } 1 .. 10;
sub answers
{
	my ($mode) = @_;
	my $set = $mode eq 'index'
	  ? 'SET enable_seqscan = off; SET enable_bitmapscan = off; SET s5vector.probes = 8;'
	  : 'SET enable_indexscan = off; SET enable_bitmapscan = off;';
	return join("\n",
		map { $node->safe_psql('postgres', "$set SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '$_' LIMIT 10) s") }
		  @queries);
}
my $before = answers('index');
is($before, answers('exact'), 'probes = every list: the exact answer before compaction');

# --- pg-side argument checks that need a real node ---
is($node->safe_psql('postgres', "SELECT s5vector_compact('t_idx', 0)"), '0', 'max_segments = 0: nothing');

# --- small parts merged ---
my $hashes0 = blob_hashes();
my $rows = $node->safe_psql('postgres', "SELECT s5vector_compact('t_idx')");
cmp_ok($rows, '>', 0, "compaction merged small parts ($rows rows rewritten)");
my $seg1 = stat_of('segments');
cmp_ok($seg1, '<', $seg0, "fewer segments: $seg0 -> $seg1");
is(stat_of('cold_rows'), '6000', 'no row lost');
my $pending1 = stat_of('gc_pending');
cmp_ok($pending1, '>=', $seg0 - $seg1 + 1, "the old blobs are queued ($pending1 entries)");
is(answers('index'), $before, 'answers identical after merging');
is(index_sweep_count($node, 't', 'v', $queries[0]), '6000', 'every row once (index sweep)');
verify_all_ok($node, 't_idx', 'verify after merging (every blob fetched)');
is($node->safe_psql('postgres', "SELECT s5vector_compact('t_idx')"), '0', 'a second compaction finds nothing worth it');

# --- dead rows dropped ---
$node->safe_psql('postgres', "DELETE FROM t WHERE id % 4 = 0");
vacuum_t();
is(stat_of('cold_rows'), '4500', 'VACUUM marked a quarter dead');
my $remote_dead = stat_of('cold_remote_rows');
my $exact = answers('exact');
is(answers('index'), $exact, 'after VACUUM: the exact answer');
$rows = $node->safe_psql('postgres', "SELECT s5vector_compact('t_idx')");
cmp_ok($rows, '>', 0, "compaction rewrote the parts with dead rows ($rows rows)");
my $remote_after = stat_of('cold_remote_rows');
cmp_ok($remote_after, '<', $remote_dead, "remote rows drop as dead rows go ($remote_dead -> $remote_after)");
is(stat_of('cold_rows'), '4500', 'the live rows are all there');
my $seg2 = stat_of('segments');
cmp_ok($seg2, '<=', $seg1, "segments $seg1 -> $seg2");
is(answers('index'), $exact, 'answers identical after dropping dead rows');
is(index_sweep_count($node, 't', 'v', $queries[0]), '4500', 'every live row once (index sweep)');
verify_all_ok($node, 't_idx', 'verify after dropping dead rows');

# --- collection: the old blobs are deleted on the node ---
my $pending2 = stat_of('gc_pending');
cmp_ok($pending2, '>', $pending1, "more old blobs queued ($pending2)");
my $hashes1 = blob_hashes();
my @gone = grep { !exists $hashes1->{$_} } keys %$hashes0;
is(scalar(@gone), 0, 'before gc the node still has every old blob');
is($node->safe_psql('postgres', "SELECT s5vector_gc('t_idx')"), '0', 'gc_grace = -1: nothing deleted');
is($node->safe_psql('postgres', "SET s5vector.gc_grace = 0; SELECT s5vector_gc('t_idx')"), $pending2,
	'gc_grace = 0: every queued blob deleted');
is(stat_of('gc_pending'), '0', 'the queue is empty');
my $hashes2 = blob_hashes();
is(scalar(keys %$hashes2), $seg2, 'the node keeps exactly the referenced blobs');
my @old_gone = grep { !exists $hashes2->{$_} } keys %$hashes0;
cmp_ok(scalar(@old_gone), '>=', $seg0 - $seg2, 'the old blobs are gone from the store');
my ($gone1) = sort @old_gone;
my ($kept1) = sort keys %$hashes2;
is(node_serves($kept1, $hashes2->{$kept1}), 200, 'control: the node serves a referenced blob');
is(node_serves($gone1, $hashes0->{$gone1}), 404, 'the node no longer serves an old blob');
$node->safe_psql('postgres', 'SELECT s5vector_cache_reset()');
is(answers('index'), $exact, 'after gc (cold cache): answers identical');
verify_all_ok($node, 't_idx', 'verify after gc');

# --- the worker compacts on its own; a small max_rows_per_round spreads it over rounds (one run a round, a
# bounded piece of the lists read a round, resumed where the last round stopped) ---
$node->safe_psql('postgres', "DELETE FROM t WHERE id % 4 = 1");
vacuum_t();
$exact = answers('exact');
my $remote_w = stat_of('cold_remote_rows');
my $pending_w = stat_of('gc_pending');
$node->safe_psql('postgres', 'ALTER SYSTEM SET s5vector.max_rows_per_round = 200; '
	  . 'ALTER SYSTEM SET s5vector.worker_enabled = on; SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres',
		"SELECT cold_remote_rows < $remote_w AND gc_pending > $pending_w FROM s5vector_index_stats('t_idx')"),
	'the worker compacts by itself (dead rows dropped, old blobs queued)');
# Until three whole rounds in a row rewrite nothing (every rewrite queues its old blobs: gc_pending grows; the gc
# step deletes nothing with gc_grace = -1).
my $rounds = "SELECT rounds FROM s5vector_worker_status() WHERE database = 'postgres'";
my ($last_change, $last_q, $stable) = ($node->safe_psql('postgres', $rounds), stat_of('gc_pending'), 0);
my $changes = 0;
for (1 .. 600)
{
	my ($r, $q) = ($node->safe_psql('postgres', $rounds), stat_of('gc_pending'));
	if ($q ne $last_q) { ($last_change, $last_q) = ($r, $q); $changes++; }
	if ($r >= $last_change + 3) { $stable = 1; last; }
	select(undef, undef, undef, 0.1);
}
ok($stable, "the worker's rounds settle ($changes more rewrites seen, " . stat_of('segments') . ' segments)');
$node->safe_psql('postgres', 'ALTER SYSTEM SET s5vector.worker_enabled = off; '
	  . 'ALTER SYSTEM RESET s5vector.max_rows_per_round; SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM s5vector_worker_status()"), 'the worker stopped');
is($node->safe_psql('postgres', "SELECT s5vector_compact('t_idx')"), '0', 'the worker left nothing worth compacting');
is(answers('index'), $exact, "after the worker's compaction: answers identical");
verify_all_ok($node, 't_idx', "verify after the worker's compaction");
my $live = $node->safe_psql('postgres', 'SELECT count(*) FROM t');

# --- a scan running across a swap: a cursor that read some lists before it, the rest after (probes = 1, the
# iterative scan reads further lists as it goes); the compaction swaps, then waits for the cursor's scan ---
$node->safe_psql('postgres', "DELETE FROM t WHERE id % 8 = 3");
vacuum_t();
$live = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
is($node->safe_psql('postgres', "ALTER INDEX t_idx SET (offload = off); SELECT s5vector_compact('t_idx')"), '0',
	'offload = off: nothing compacted');
$node->safe_psql('postgres', 'ALTER INDEX t_idx SET (offload = on)');
my $cur = $node->background_psql('postgres');
$cur->query_safe("SET enable_seqscan = off; SET s5vector.probes = 1; SET s5vector.max_scan_tuples = 100000000; "
	  . "BEGIN; DECLARE c CURSOR FOR SELECT id FROM t ORDER BY v <-> '$queries[1]';");
my $first = $cur->query_safe('FETCH 1 FROM c');
my $cbg = $node->background_psql('postgres');
$cbg->query_until(qr/started/, "\\echo started\nSELECT 'compacted:' || s5vector_compact('t_idx');\n");
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT ''compacted:''%' AND wait_event_type = 'Lock'"),
	'the compaction swapped a run and waits for the open scan');
my @rest = grep { length } split /\n/, $cur->query_safe('FETCH ALL FROM c');
my %seen = map { $_ => 1 } ($first, @rest);
is(scalar(@rest) + 1 . '/' . scalar(keys %seen), "$live/$live", 'a scan across the swap returns every live row once');
$cur->query_safe('COMMIT');
$cur->quit;
$cbg->quit;
is(index_sweep_count($node, 't', 'v', $queries[0]), $live, 'after the compaction: every live row once');
verify_all_ok($node, 't_idx', 'verify after the compaction that waited for a scan');

# --- two sessions, and kill -9 while an upload is in flight (a node that answers after 4 s) ---
$node->safe_psql('postgres', "DELETE FROM t WHERE id % 4 = 2");
vacuum_t();
$live = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
$exact = answers('exact');
answers('index');    # the cache holds every segment: the compaction below goes to the node only to upload
my $pending_k = stat_of('gc_pending');
my $seg_k = stat_of('segments');
s5_node_stop($s5);
$s5 = s5_node_start($nodedir, '--auth-token', $token, '--delay-ms', '4000');
set_url($s5->{url});
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/compacting/, "\\echo compacting\nSELECT s5vector_compact('t_idx');\n");
sleep 1;
my ($ret, $out, $err) = $node->psql('postgres', "SELECT s5vector_compact('t_idx')");
is($out, '0', 'a second session compacting at once does nothing');
like($err, qr/is being offloaded, compacted or collected by another session; compaction skipped/,
	'... and says so in a WARNING');
($ret, $out, $err) = $node->psql('postgres', "SELECT s5vector_offload('t_idx')");
is($out, '0', 'an offload meanwhile does nothing');
like($err, qr/skipped/, '... and skips with a WARNING');
my $victim = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT s5vector_compact%' AND pid <> pg_backend_pid()");
ok($victim =~ /^\d+$/, 'the compaction is running');
ok($node->poll_query_until('postgres', "SELECT gc_pending = $pending_k + 1 FROM s5vector_index_stats('t_idx')"),
	'its intent is queued (durable) while the upload is in flight');
kill 'KILL', $victim;
eval { $bg->quit; };
my $pidfile = $node->data_dir . '/postmaster.pid';
for (1 .. 300) { last unless -f $pidfile; select(undef, undef, undef, 0.1); }
$node->_update_pid(0);
$node->start;
s5_node_stop($s5);
$s5 = s5_node_start($nodedir, '--auth-token', $token);
set_url($s5->{url});
is(index_sweep_count($node, 't', 'v', $queries[0]), $live, 'kill -9 during compaction: every live row once');
is(answers('index'), $exact, 'kill -9 during compaction: answers identical');
verify_all_ok($node, 't_idx', 'kill -9 during compaction: verify clean');
is(stat_of('gc_pending'), $pending_k + 1, 'the intent of the killed upload is queued (one entry more)');
is(stat_of('segments'), $seg_k, 'the old parts are still the referenced ones');
cmp_ok($node->safe_psql('postgres', "SELECT s5vector_compact('t_idx')"), '>', 0, 'the compaction resumes');
is(answers('index'), $exact, 'answers identical after the resumed compaction');
$node->safe_psql('postgres', "SET s5vector.gc_grace = 0; SELECT s5vector_gc('t_idx')");
is(stat_of('gc_pending'), '0', 'gc empties the queue (the orphan upload included)');
is(scalar(keys %{ blob_hashes() }), stat_of('segments'), 'the node keeps exactly the referenced blobs');
$node->safe_psql('postgres', 'SELECT s5vector_cache_reset()');
is(index_sweep_count($node, 't', 'v', $queries[0]), $live, 'every live row once after gc');
verify_all_ok($node, 't_idx', 'verify at the end (every blob fetched)');

# --- VACUUM while a compaction's upload is in flight: the rows it marks dead in the old parts are dead in the new
# part too (re-read at the swap), so the counters and the pages agree and the index never holds a row for a heap
# TID that VACUUM freed ---
$node->safe_psql('postgres', "DELETE FROM t WHERE id % 16 = 7");
vacuum_t();
answers('index');    # every segment cached: the compaction goes to the node only to upload
s5_node_stop($s5);
$s5 = s5_node_start($nodedir, '--auth-token', $token, '--delay-ms', '4000');
set_url($s5->{url});
# Deleted before the compaction starts (so that its snapshot does not hold the tuples back), vacuumed while its
# upload is in flight.
$node->safe_psql('postgres', "DELETE FROM t WHERE id % 32 = 15");
my $vbg = $node->background_psql('postgres');
$vbg->query_until(qr/started/, "\\echo started\nSELECT s5vector_compact('t_idx', 1);\n");
sleep 1;
# VACUUM leaves the dead tuples of a heap page it cannot get a cleanup lock on (a pin by any backend, e.g. one that
# writes the page out to evict it: this cluster has 1 MB of shared buffers): those are not handed to the index and
# stay live there until a later VACUUM. VERBOSE says how many ("tuples missed: N dead"); they are expected live.
my ($vret, $vout, $verr) = $node->psql('postgres', "VACUUM (VERBOSE, INDEX_CLEANUP ON) t");
is($vret, 0, 'VACUUM during the compaction upload');
my ($missed) = $verr =~ /tuples missed: (\d+) dead/;
$missed //= 0;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE 'SELECT s5vector_compact%' AND state = 'active'"),
	'the compaction finished after the VACUUM');
$vbg->quit;
s5_node_stop($s5);
$s5 = s5_node_start($nodedir, '--auth-token', $token);
set_url($s5->{url});
$live = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
is(stat_of('cold_rows'), $live + $missed,
	"live rows counted = rows in the table + dead tuples VACUUM could not remove ($missed) (the rows VACUUM marked meanwhile are dead)");
is(cold_live_in_pages(), $live + $missed, '... and so many rows without a dead flag in the pages');
is(index_sweep_count($node, 't', 'v', $queries[0]), $live, 'every live row once');
verify_all_ok($node, 't_idx', 'verify after a VACUUM during a compaction (dead flags and counters agree)');
# A row whose dead flag the compaction lost would stay live for good (VACUUM freed its heap TID: no later VACUUM sees
# it again); the tuples VACUUM missed are marked by the next one.
vacuum_t();
is(stat_of('cold_rows') . '/' . cold_live_in_pages(), "$live/$live",
	'after a second VACUUM: live rows counted and in the pages = rows in the table');

# --- a lying node (wrong CID on upload) and a node answering 500: the compaction fails with the right SQLSTATE,
# nothing is swapped, nothing lost; the intents are queued for gc ---
$node->safe_psql('postgres', "DELETE FROM t WHERE id % 64 = 47");
vacuum_t();
$live = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
$exact = answers('exact');
answers('index');    # cached: only the upload meets the bad node
my %bad = ('--corrupt-rate' => 'XX001', '--fail-rate' => '08006');
for my $flag (sort keys %bad)
{
	my $segs = stat_of('segments');
	my $badnode = s5_node_start("$nodedir/bad", '--auth-token', $token, $flag, '1');
	set_url($badnode->{url});
	my ($r, $o, $e) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT s5vector_compact('t_idx')");
	my ($code) = sqlstate_of($e);
	is($code // 'none', $bad{$flag}, "node with $flag 1: compaction fails with $bad{$flag}");
	s5_node_stop($badnode);
	set_url($s5->{url});
	is(stat_of('segments'), $segs, '... nothing swapped');
	is(index_sweep_count($node, 't', 'v', $queries[0]), $live, '... no row lost');
}
cmp_ok($node->safe_psql('postgres', "SELECT s5vector_compact('t_idx')"), '>', 0, 'with a good node it succeeds');
is(answers('index'), $exact, 'answers identical');
verify_all_ok($node, 't_idx', 'verify after the failed compactions');

# --- a hot standby's scan across a compaction that unlinks whole dead runs (the primary's WaitForScans does not
# see it): the part chain head it read at its start is a freed page when it gets there; it walks the list's chain
# again from the list entry as replayed, and still returns every live row once ---
$node->safe_psql('postgres', qq{
CREATE TABLE u (id int PRIMARY KEY, v vector($dim));
INSERT INTO u SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 3000) i;
SET s5vector.s5_url = '';
CREATE INDEX u_idx ON u USING s5vector (v) WITH (hot_window = '0', lists = 8);
RESET s5vector.s5_url;
SELECT s5vector_offload('u_idx');
INSERT INTO u SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(3001, 5000) i;
DELETE FROM u WHERE id <= 3000;
VACUUM u;
});
cmp_ok($node->safe_psql('postgres', "SELECT segments FROM s5vector_index_stats('u_idx')"), '>=', 8,
	'a second index: every remote row dead, the live rows in local tails');
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('compact_standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
my $sb = $standby->background_psql('postgres');
$sb->query_safe("SET enable_seqscan = off; SET s5vector.probes = 1; SET s5vector.max_scan_tuples = 100000000; "
	  . "BEGIN; DECLARE c CURSOR FOR SELECT id FROM u ORDER BY v <-> '$queries[2]';");
my $sfirst = $sb->query_safe('FETCH 1 FROM c');
$node->safe_psql('postgres', "SELECT s5vector_compact('u_idx')");
is($node->safe_psql('postgres', "SELECT segments || '/' || cold_rows FROM s5vector_index_stats('u_idx')"), '0/2000',
	'the dead runs are unlinked: no segment left, the 2000 live rows');
$node->wait_for_catchup($standby);
my ($sret, $srest, $serr) = (0, '', '');
eval { $srest = $sb->query_safe('FETCH ALL FROM c'); };
is($@, '', 'the standby scan goes on across the replayed compaction');
my @srest = grep { length } split /\n/, $srest;
my %sseen = map { $_ => 1 } ($sfirst, @srest);
is(scalar(@srest) + 1 . '/' . scalar(keys %sseen), '2000/2000', 'standby scan across a compaction: every live row once');
eval { $sb->query_safe('COMMIT'); $sb->quit; };
verify_all_ok($node, 'u_idx', 'verify the second index');

s5_node_stop($s5);
$standby->stop;
$node->stop;
done_testing();
