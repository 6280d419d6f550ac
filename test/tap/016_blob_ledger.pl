# The blob ledger (docs/s5.md "Dropped, rebuilt and truncated indexes"), with a real s5vector-node: DROP INDEX,
# REINDEX, REINDEX CONCURRENTLY, DROP INDEX CONCURRENTLY, TRUNCATE and DROP TABLE copy exactly the blobs the index
# referenced or queued (compared with the blobs on the node) into s5vector_dropped_blobs in the command's transaction
# (a rolled-back DROP or REINDEX leaves nothing and the index answers); a rebuild (REINDEX, VACUUM FULL, CLUSTER,
# REINDEX CONCURRENTLY) with S5 configured uploads the new storage's cold part like CREATE INDEX (new blobs, one per
# segment, referenced and not in the ledger; answers exact from them); s5vector_gc_dropped() deletes them after
# gc_grace (the node answers 404), never on a standby; the ledger is closed to other roles, a table owner's DROP is
# still tracked; DROP EXTENSION is refused while blobs are tracked; the worker collects on its own; a session
# without shared_preload_libraries tracks a DROP through the event trigger (and, as a control, does not when the
# trigger is disabled) and a TRUNCATE through ambuild.
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

my $node = PostgreSQL::Test::Cluster->new('ledger');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', s5_conf($s5, token => $token) . "s5vector.naptime = 1\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION s5vector;
CREATE ROLE alice LOGIN;
GRANT CREATE ON SCHEMA public TO alice;
});
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('ledger_standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->start;

sub state_of
{
	my ($n, $sql, @extra) = @_;
	my ($r, $o, $e) = $n->psql('postgres', "\\set VERBOSITY verbose\n$sql", @extra);
	my ($code) = sqlstate_of($e);
	return $code // 'none';
}

# The hex BLAKE3 of a v1 blob CID ("b" + base32 of 5b 82 1e, 32 hash bytes, size), as the node names its files.
sub cid_hash_hex
{
	my ($cid) = @_;
	return '' unless $cid =~ /^b([a-z2-7]+)$/;
	my $alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
	my $bits = join('', map { sprintf('%05b', index($alphabet, $_)) } split //, $1);
	my $bytes = pack('B*', substr($bits, 0, int(length($bits) / 8) * 8));
	return unpack('H*', substr($bytes, 3, 32));
}

sub store_set
{
	my ($store) = @_;
	my %s = map { (m{/([0-9a-f]{64})$})[0] => 1 } glob("$store/blobs/*");
	delete $s{''};
	return \%s;
}

# The ledger's blobs (hex hashes, sorted) for a WHERE clause.
sub ledger_hashes
{
	my ($where) = @_;
	my $out = $node->safe_psql('postgres', "SELECT cid FROM s5vector_dropped_blobs WHERE $where");
	return join(',', sort map { cid_hash_hex($_) } grep { length } split /\n/, $out);
}
my $ledger_count = 'SELECT count(*) FROM s5vector_dropped_blobs';

# A table with a pure cold index of 2000 rows in 4 lists, built with S5 configured (the build uploads its cold part,
# docs/s5.md "CREATE INDEX with S5"; the offload after it finds nothing sealed): returns the blobs it put on the node
# (sorted).
sub make_offloaded
{
	my ($t, %opt) = @_;
	my @as = $opt{as} ? (extra_params => [ '-U', $opt{as} ]) : ();
	my $before = store_set($s5->{store});
	$node->safe_psql('postgres', qq{
CREATE TABLE $t (id int PRIMARY KEY, v vector($dim));
INSERT INTO $t SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 2000) i;
CREATE INDEX ${t}_idx ON $t USING s5vector (v) WITH (hot_window = '0', lists = 4);
SELECT s5vector_offload('${t}_idx');
}, @as);
	my $after = store_set($s5->{store});
	return join(',', sort grep { !$before->{$_} } keys %$after);
}

# The blobs that appeared on the node since `$before` (a store_set), sorted.
sub new_blobs
{
	my ($before) = @_;
	return join(',', sort grep { !$before->{$_} } keys %{ store_set($s5->{store}) });
}

# A command that rebuilds index `$idx` (of a 2000-row table) through its build, with S5 configured: the ledger gets
# exactly the old storage's blobs `$old` under `$reason`, and the build uploads the rebuilt index's cold part: new
# blobs on the node, as many as its segments, every cold row remote, none of them in the ledger. Returns the new
# blobs (the old ones of the next rebuild).
sub check_rebuild
{
	my ($cmd, $idx, $reason, $old) = @_;
	my $b = store_set($s5->{store});
	$node->safe_psql('postgres', $cmd);
	my $new = new_blobs($b);
	my @new = grep { length } split /,/, $new;
	is(ledger_hashes("index_name = 'public.$idx' AND reason = '$reason'"), $old, "$cmd: exactly the old blobs");
	cmp_ok(scalar(@new), '>=', 1, "$cmd: the build uploaded the rebuilt index's cold part (" . scalar(@new) . ' blobs)');
	is($node->safe_psql('postgres', "SELECT segments || '/' || cold_remote_rows || '/' || cold_rows FROM s5vector_index_stats('$idx')"),
		scalar(@new) . '/2000/2000', "$cmd: the rebuilt index references one segment per new blob, every cold row remote");
	my %ledger = map { $_ => 1 } split /,/, ledger_hashes('true');
	is(scalar(grep { $ledger{$_} } @new), 0, "$cmd: none of the new blobs is in the ledger");
	return $new;
}

my $rng = lcg_new(11);
my @queries = map { rand_vec_literal($rng, $dim) } 1 .. 4;
# The index's answers at probes = every list, and the exact ones: equal when the index answers right.
sub answers
{
	my ($t, $mode) = @_;
	my $set = $mode eq 'index'
	  ? 'SET enable_seqscan = off; SET s5vector.probes = 4;'
	  : 'SET enable_indexscan = off; SET enable_bitmapscan = off;';
	return join("\n",
		map { $node->safe_psql('postgres', "$set SELECT string_agg(id::text, ',') FROM (SELECT id FROM $t ORDER BY v <-> '$_' LIMIT 10) s") }
		  @queries);
}

# --- DROP INDEX: referenced parts and a pending upload ---
my $h1 = make_offloaded('t1');
my @h1 = split /,/, $h1;
is(scalar(@h1), 4, 't1_idx: 4 segments on the node');
is($node->safe_psql('postgres', "SELECT segments FROM s5vector_index_stats('t1_idx')"), '4', 'stats: 4 segments');
# A pending entry: more rows, then an offload against a node that answers a wrong CID (the intent stays queued).
$node->safe_psql('postgres', "INSERT INTO t1 SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(2001, 4000) i");
my $liar = s5_node_start("$nodedir/liar", '--auth-token', $token, '--corrupt-rate', '1');
$node->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$liar->{url}'; SELECT pg_reload_conf();");
is(state_of($node, "SELECT s5vector_offload('t1_idx', 1)"), 'XX001', 'a lying node: the offload fails, its intent stays');
$node->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf();");
s5_node_stop($liar);
is($node->safe_psql('postgres', "SELECT segments || '/' || gc_pending FROM s5vector_index_stats('t1_idx')"), '4/1',
	't1_idx: 4 referenced blobs and 1 pending upload');
my $t1_answers = answers('t1', 'index');
is($t1_answers, answers('t1', 'exact'), 't1_idx answers exactly before the drop');

# Rolled back: nothing in the ledger, the index still answers.
is($node->safe_psql('postgres', "BEGIN; DROP INDEX t1_idx; $ledger_count; ROLLBACK;"), '5',
	'inside the DROP INDEX transaction the ledger holds 5 blobs');
is($node->safe_psql('postgres', $ledger_count), '0', 'DROP INDEX rolled back: the ledger is empty');
is(answers('t1', 'index'), $t1_answers, 'after the rollback the index answers as before');
verify_all_ok($node, 't1_idx', 'verify clean after the rolled-back drop');

$node->safe_psql('postgres', 'DROP INDEX t1_idx');
is(ledger_hashes("state = 'referenced'"), $h1, 'DROP INDEX: the ledger holds exactly the 4 blobs on the node');
is($node->safe_psql('postgres', "SELECT count(*) FROM s5vector_dropped_blobs WHERE state = 'upload pending'"), '1',
	'and the pending upload');
my $liar_blobs = join(',', sort keys %{ store_set($liar->{store}) });
is(ledger_hashes("state = 'upload pending'"), $liar_blobs, 'the pending entry names the blob the liar stored')
  if length $liar_blobs;
is($node->safe_psql('postgres', "SELECT string_agg(DISTINCT index_name || ' ' || reason, ',') FROM s5vector_dropped_blobs"),
	'public.t1_idx DROP INDEX', 'index name and reason');

# --- collection: not on a standby, not before gc_grace, then deleted on the node ---
$node->wait_for_catchup($standby);
is(state_of($standby, 'SELECT s5vector_gc_dropped()'), '25006', 'a standby never collects (25006)');
is($node->safe_psql('postgres', 'SELECT s5vector_gc_dropped()'), '0', 'gc_grace (7 days) not passed: nothing deleted');
is($node->safe_psql('postgres', $ledger_count), '5', 'the ledger keeps them');
my ($one_cid) = split /\n/, $node->safe_psql('postgres', "SELECT cid FROM s5vector_dropped_blobs WHERE state = 'referenced' LIMIT 1");
my $http = HTTP::Tiny->new(timeout => 5);
my $auth = { headers => { Authorization => "Bearer $token" } };
is($http->get("$s5->{url}/s5/download/$one_cid", $auth)->{status}, 200, 'the node serves a tracked blob before collection');
is($node->safe_psql('postgres', 'SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()'), '4',
	'gc_grace = 0: the 4 blobs the node has are deleted (the pending one was never on it)');
is($node->safe_psql('postgres', $ledger_count), '0', 'the ledger is empty');
is(scalar(grep { store_set($s5->{store})->{$_} } @h1), 0, 'none of them is left in the node store');
is($http->get("$s5->{url}/s5/download/$one_cid", $auth)->{status}, 404, 'fetching a collected blob: 404');

# --- REINDEX: rolled back, then committed ---
my $h2 = make_offloaded('t2');
is($node->safe_psql('postgres', "BEGIN; REINDEX INDEX t2_idx; $ledger_count; ROLLBACK;"), '4',
	'inside REINDEX the ledger holds the old storage\'s 4 blobs');
is($node->safe_psql('postgres', "$ledger_count; SELECT segments FROM s5vector_index_stats('t2_idx')"), "0\n4",
	'REINDEX rolled back: ledger empty, the index still has its 4 remote segments');
# (The rolled-back REINDEX uploaded its build's segments: orphans on the node, docs/s5.md "CREATE INDEX with S5".)
my $h2b = check_rebuild('REINDEX INDEX t2_idx', 't2_idx', 'REINDEX', $h2);
$node->safe_psql('postgres', 'SELECT s5vector_cache_reset()');
is(answers('t2', 'index'), answers('t2', 'exact'), 'the rebuilt index answers exactly (cold cache: from its new blobs)');
verify_all_ok($node, 't2_idx', 'verify clean after REINDEX');

# --- TRUNCATE, DROP TABLE ---
my $h3 = make_offloaded('t3');
$node->safe_psql('postgres', 'TRUNCATE t3');
is(ledger_hashes("index_name = 'public.t3_idx'"), $h3, 'TRUNCATE: exactly the old blobs');
is($node->safe_psql('postgres', "SELECT DISTINCT reason FROM s5vector_dropped_blobs WHERE index_name = 'public.t3_idx'"),
	'TRUNCATE TABLE', 'reason TRUNCATE TABLE');
my $h4 = make_offloaded('t4');
$node->safe_psql('postgres', 'DROP TABLE t4');
is(ledger_hashes("index_name = 'public.t4_idx' AND reason = 'DROP TABLE'"), $h4, 'DROP TABLE: exactly its index\'s blobs');

my $before;
# --- VACUUM FULL, CLUSTER, REINDEX TABLE: every command that rebuilds the index through its build ---
# Each rebuild uploads the new storage's cold part: its blobs are the old ones of the next.
my $h13 = make_offloaded('t13');
my @h13 = ($h13);
for my $cmd ('VACUUM FULL t13', 'CLUSTER t13 USING t13_pkey', 'REINDEX TABLE t13')
{
	my ($tag) = $cmd =~ /^(\w+)/;
	push @h13, check_rebuild($cmd, 't13_idx', $tag, $h13[-1]);
}
my $h13now = pop @h13;    # referenced by the index now; the others are tracked
$node->safe_psql('postgres', 'SELECT s5vector_cache_reset()');
is(answers('t13', 'index'), answers('t13', 'exact'), 'the rebuilt index answers exactly (cold cache)');
# REINDEX (TABLESPACE ...): PostgreSQL schedules the old relfilenode twice (new tablespace, no file; old one).
my $tsdir = PostgreSQL::Test::Utils::tempdir();
my $h15 = make_offloaded('t15');
$node->safe_psql('postgres', "CREATE TABLESPACE ledger_ts LOCATION '$tsdir'");
$node->safe_psql('postgres', 'REINDEX (TABLESPACE ledger_ts) INDEX t15_idx');
is(ledger_hashes("index_name = 'public.t15_idx' AND reason = 'REINDEX'"), $h15,
	'REINDEX (TABLESPACE ...): exactly the old blobs');
is(answers('t15', 'index'), answers('t15', 'exact'), 'the index moved and rebuilt answers exactly');
# REINDEX SCHEMA runs each table in a transaction of its own: each rebuild copies in its own.
$before = store_set($s5->{store});
$node->safe_psql('postgres', qq{
CREATE SCHEMA rs;
CREATE TABLE rs.t14 (id int PRIMARY KEY, v vector($dim));
INSERT INTO rs.t14 SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 2000) i;
CREATE INDEX t14_idx ON rs.t14 USING s5vector (v) WITH (hot_window = '0', lists = 4);
});
my $h14 = new_blobs($before);
ok(length $h14, 'rs.t14_idx: its build uploaded its cold part');
$before = store_set($s5->{store});
$node->safe_psql('postgres', 'REINDEX SCHEMA rs');
is(ledger_hashes("index_name = 'rs.t14_idx' AND reason = 'REINDEX'"), $h14, 'REINDEX SCHEMA: exactly the old blobs');
my $h14b = new_blobs($before);
ok(length $h14b, 'REINDEX SCHEMA: the rebuild uploaded new blobs');
is($node->safe_psql('postgres', "SELECT segments FROM s5vector_index_stats('rs.t14_idx')"),
	scalar(split /,/, $h14b), '... one per segment of the rebuilt index');

# --- REINDEX CONCURRENTLY (the old index is dropped), DROP INDEX CONCURRENTLY ---
my $h5 = make_offloaded('t5');
$before = store_set($s5->{store});
$node->safe_psql('postgres', 'REINDEX INDEX CONCURRENTLY t5_idx');
is(ledger_hashes("index_name LIKE 'public.t5_idx%'"), $h5, 'REINDEX CONCURRENTLY: exactly the old index\'s blobs');
# The new index's build uploaded its own cold part.
my $h5b = new_blobs($before);
ok(length $h5b, 'the new index uploaded its cold part at its build');
is($node->safe_psql('postgres', "SELECT segments || '/' || cold_remote_rows FROM s5vector_index_stats('t5_idx')"),
	scalar(split /,/, $h5b) . '/2000', '... one segment per new blob, every cold row remote');
$node->safe_psql('postgres', 'SELECT s5vector_cache_reset()');
is(answers('t5', 'index'), answers('t5', 'exact'), 'the new index answers exactly (cold cache)');
$node->safe_psql('postgres', 'DROP INDEX CONCURRENTLY t5_idx');
is(ledger_hashes("index_name = 'public.t5_idx' AND reason = 'DROP INDEX'"), $h5b,
	'DROP INDEX CONCURRENTLY: exactly the new index\'s blobs');

# --- roles: the ledger is closed to others, a table owner's DROP is tracked, collection needs superuser/db owner ---
my $h6 = make_offloaded('t6', as => 'alice');
$node->safe_psql('postgres', 'DROP INDEX t6_idx', extra_params => [ '-U', 'alice' ]);
is(ledger_hashes("index_name = 'public.t6_idx'"), $h6, 'a table owner\'s DROP INDEX is tracked');
# REINDEX by the owner: the build runs as the table's owner in a security-restricted context; the copy still works.
my $h6b = make_offloaded('t6b', as => 'alice');
$node->safe_psql('postgres', 'REINDEX INDEX t6b_idx', extra_params => [ '-U', 'alice' ]);
is(ledger_hashes("index_name = 'public.t6b_idx' AND reason = 'REINDEX'"), $h6b, 'a table owner\'s REINDEX is tracked');
is(state_of($node, "INSERT INTO s5vector_dropped_blobs VALUES ('x', now(), 'x', 'x', 'x', 0)", extra_params => [ '-U', 'alice' ]),
	'42501', 'a non-superuser cannot write to the ledger');
is(state_of($node, 'DELETE FROM s5vector_dropped_blobs', extra_params => [ '-U', 'alice' ]), '42501',
	'nor delete from it');
is(state_of($node, 'SELECT s5vector_gc_dropped()', extra_params => [ '-U', 'alice' ]), '42501',
	'nor collect it (superuser or database owner)');

# --- DROP EXTENSION refused while blobs are tracked ---
is(state_of($node, 'DROP EXTENSION s5vector CASCADE'), '55000', 'DROP EXTENSION is refused while the ledger has rows');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 's5vector'"), '1', 'the extension stays');

# --- the worker collects on its own ---
my $tracked = $node->safe_psql('postgres', $ledger_count);
cmp_ok($tracked, '>=', 40, "the ledger tracks $tracked blobs");
$node->safe_psql('postgres',
	'ALTER SYSTEM SET s5vector.gc_grace = 0; ALTER SYSTEM SET s5vector.worker_enabled = on; SELECT pg_reload_conf();');
ok($node->poll_query_until('postgres', "SELECT ($ledger_count) = 0"), 'the worker emptied the ledger');
my @left = grep { store_set($s5->{store})->{$_} } map { split /,/ } ($h2, $h3, $h4, $h5, $h5b, $h6, $h6b, @h13, $h14, $h15);
is(scalar(@left), 0, 'and deleted every tracked blob on the node');
$node->safe_psql('postgres',
	'ALTER SYSTEM SET s5vector.worker_enabled = off; ALTER SYSTEM RESET s5vector.gc_grace; SELECT pg_reload_conf();');

ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 's5vector worker'"),
	'the worker stopped');

# A DROP INDEX CONCURRENTLY that fails after its first transaction: the ledger has the blobs (copied when that
# transaction committed), the index is left invalid and still references them. An invalid index gets no new blob
# (offload skips it) and the entries are not collected while their storage lives.
my $h12 = make_offloaded('t12');
my $bg = $node->background_psql('postgres');
$bg->query_safe('BEGIN; SELECT count(*) FROM t12;');    # a reader the drop waits for
is(state_of($node, "SET statement_timeout = '1s';\nDROP INDEX CONCURRENTLY t12_idx;"), '57014',
	'DROP INDEX CONCURRENTLY cancelled while it waits for a reader');
$bg->query_safe('COMMIT;');
$bg->quit;
is($node->safe_psql('postgres', "SELECT indisvalid FROM pg_index WHERE indexrelid = 't12_idx'::regclass"), 'f',
	'the index is left invalid');
is(ledger_hashes("index_name = 'public.t12_idx'"), $h12, 'the ledger has its blobs (copied at the first commit)');
$node->safe_psql('postgres', "INSERT INTO t12 SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(2001, 4000) i");
is($node->safe_psql('postgres', "SELECT s5vector_offload('t12_idx')"), '0', 'an invalid index is not offloaded');
is($node->safe_psql('postgres', 'SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()'), '0',
	'entries whose storage still exists are not collected');
is(scalar(grep { store_set($s5->{store})->{$_} } split /,/, $h12), 4, 'the node keeps the invalid index\'s blobs');
$node->safe_psql('postgres', 'DROP INDEX t12_idx');
is($node->safe_psql('postgres', 'SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()'), '4',
	'dropped for good: its blobs are collected (each once)');
is($node->safe_psql('postgres', $ledger_count), '0', 'ledger empty');

# TRUNCATE of a table created in the same transaction truncates its index in place (no rebuild): the hook copies.
$before = store_set($s5->{store});
$node->safe_psql('postgres', qq{
BEGIN;
CREATE TABLE t17 (id int PRIMARY KEY, v vector($dim));
INSERT INTO t17 SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 2000) i;
CREATE INDEX t17_idx ON t17 USING s5vector (v) WITH (hot_window = '0', lists = 4);
SELECT s5vector_offload('t17_idx');
TRUNCATE t17;
COMMIT;
});
my $h17 = join(',', sort grep { !$before->{$_} } keys %{ store_set($s5->{store}) });
ok(length $h17, 'offloaded inside the transaction that created the table');
is(ledger_hashes("index_name = 'public.t17_idx' AND reason = 'TRUNCATE TABLE'"), $h17,
	'TRUNCATE in place (table created in the same transaction): exactly its blobs');
is($node->safe_psql('postgres', 'SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()'), '4',
	'collected although the index keeps its relfilenode');

# A collection cancelled midway (statement_timeout, against a slow node): the deletes done stay done, the rows stay
# (the transaction aborted); the next collection removes every row and counts only the blobs still there.
my $h16 = make_offloaded('t16');
$node->safe_psql('postgres', 'DROP INDEX t16_idx');
my $slow = s5_node_start($nodedir, '--auth-token', $token, '--delay-ms', '400');
$node->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$slow->{url}'; SELECT pg_reload_conf();");
is(state_of($node, "SET s5vector.gc_grace = 0;\nSET statement_timeout = '1s';\nSELECT s5vector_gc_dropped();"), '57014',
	'a collection cancelled midway (slow node)');
my $gone = 4 - scalar(grep { store_set($s5->{store})->{$_} } split /,/, $h16);
ok($gone >= 1 && $gone <= 3, "some blobs were deleted before the cancel ($gone of 4)");
is($node->safe_psql('postgres', "SELECT count(*) FROM s5vector_dropped_blobs WHERE index_name = 'public.t16_idx'"), '4',
	'the rows stay (the collection aborted)');
$node->safe_psql('postgres', "ALTER SYSTEM SET s5vector.s5_url = '$s5->{url}'; SELECT pg_reload_conf();");
s5_node_stop($slow);
# (The request the cancel cut short may still have been carried out by the node: count what is left now.)
my $left = scalar(grep { store_set($s5->{store})->{$_} } split /,/, $h16);
is($node->safe_psql('postgres', 'SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()'), $left,
	"the next collection deletes the $left left (the ones already gone are not counted)");
is($node->safe_psql('postgres', $ledger_count), '0', 'and removes every row');
is(scalar(grep { store_set($s5->{store})->{$_} } split /,/, $h16), 0, 'none of the blobs is left');

# A corrupt index (its metapage's magic overwritten while the server is down) can still be rebuilt: its blobs cannot
# be read, so they are not tracked, and REINDEX says so in a WARNING instead of failing.
my $h11 = make_offloaded('t11');
my $file11 = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('t11_idx')");

# --- without shared_preload_libraries ---
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->stop;
poke_file($file11, 24, pack('V', 0xdeadbeef));
$node->start;
my ($ret, $out, $err) = $node->psql('postgres', 'REINDEX INDEX t11_idx');
is($ret, 0, 'REINDEX of an index with a corrupt metapage succeeds');
like($err, qr/WARNING:  index "public.t11_idx": its pages could not be read, so the blobs it may have on S5 are not tracked: .*bad magic number/,
	'with a WARNING that its blobs are not tracked');
is($node->safe_psql('postgres', "SELECT count(*) FROM s5vector_dropped_blobs WHERE index_name = 'public.t11_idx'"), '0',
	'nothing of it in the ledger');
is(answers('t11', 'index'), answers('t11', 'exact'), 'the rebuilt index answers exactly');
my $h7 = make_offloaded('t7');
my $h8 = make_offloaded('t8');
my $h9 = make_offloaded('t9');
# Fresh sessions: the library is not loaded until a statement needs it.
$node->safe_psql('postgres', 'DROP INDEX t7_idx');
is(ledger_hashes("index_name = 'public.t7_idx'"), $h7, 'no preload, fresh session: DROP INDEX tracked (event trigger)');
$node->safe_psql('postgres', 'TRUNCATE t8');
is(ledger_hashes("index_name = 'public.t8_idx'"), $h8, 'no preload, fresh session: TRUNCATE tracked (ambuild)');
# A temporary index is dropped at the end of its session (no DDL command): its session loaded the library to make it.
$before = store_set($s5->{store});
$node->safe_psql('postgres', qq{
CREATE TEMP TABLE t18 (id int PRIMARY KEY, v vector($dim));
INSERT INTO t18 SELECT i, @{[ vec_sql('i', $dim) ]} FROM generate_series(1, 2000) i;
CREATE INDEX t18_idx ON t18 USING s5vector (v) WITH (hot_window = '0', lists = 4);
SELECT s5vector_offload('t18_idx');
});
my $h18 = join(',', sort grep { !$before->{$_} } keys %{ store_set($s5->{store}) });
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 4 FROM s5vector_dropped_blobs WHERE index_name LIKE 'pg_temp%.t18_idx'"),
	'no preload: a temporary index dropped at session end is tracked');
is(ledger_hashes("index_name LIKE 'pg_temp%.t18_idx'"), $h18, 'exactly its blobs');
# Control: without the event trigger a fresh session's DROP INDEX does not see the hook.
$node->safe_psql('postgres', 'ALTER EVENT TRIGGER s5vector_track_blobs DISABLE');
$node->safe_psql('postgres', 'DROP INDEX t9_idx');
is($node->safe_psql('postgres', "SELECT count(*) FROM s5vector_dropped_blobs WHERE index_name = 'public.t9_idx'"), '0',
	'control: with the event trigger disabled and no preload, a DROP INDEX is not tracked');
$node->safe_psql('postgres', 'ALTER EVENT TRIGGER s5vector_track_blobs ENABLE');

# DROP EXTENSION with an offloaded index and an empty ledger: refused too (its blobs would go with the ledger).
$node->safe_psql('postgres', 'SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()');
is($node->safe_psql('postgres', $ledger_count), '0', 'ledger collected');
my $h10 = make_offloaded('t10');
is(state_of($node, 'DROP EXTENSION s5vector CASCADE'), '55000',
	'DROP EXTENSION CASCADE with an offloaded index is refused');
# (The worker offloaded the rebuilt indexes meanwhile: dropping their tables tracks those blobs too.)
$node->safe_psql('postgres', 'DROP TABLE t1, t2, t3, t5, t6, t6b, t7, t8, t9, t10, t11, t12, t13, t15, t16, t17; DROP SCHEMA rs CASCADE');
cmp_ok($node->safe_psql('postgres', $ledger_count), '>=', 4, 'the dropped tables\' blobs are tracked');
$node->safe_psql('postgres', 'SET s5vector.gc_grace = 0; SELECT s5vector_gc_dropped()');
$node->safe_psql('postgres', 'DROP EXTENSION s5vector');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 's5vector'"), '0',
	'with nothing tracked the extension drops');

$standby->stop;
$node->stop;
s5_node_stop($s5);
done_testing();
