# Cold rows with 8-bit codes (cold_codes, docs/architecture.md "Quantized first pass"): the list scan estimates
# rows from their codes and computes exact distances only where a row's lower bound can still enter the result, so
# every answer must be the one exact distances give. For each metric a coded index (cold_codes = 'on', small
# dimensions so the test is quick) is checked against the exact answer (probes = every list, the default
# strict_order), against the same index built without codes (cold_codes = 'off') at a few probes, with a filter
# that rejects most rows (never short of LIMIT), and read to the end (every row once). Then inserts after the build
# (one far outside the quantizer's trained range, clamped), VACUUM (which slides rows and their codes down in their
# pages), a rebalance and verify; and the row pages are coded (version 2) only where they should be.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S5VTest;

my $BLCKSZ = 8192;
my $dim = 24;
my $n = 3000;
my $node = PostgreSQL::Test::Cluster->new('cold_codes');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "autovacuum = off\ns5vector.worker_enabled = off\n");
$node->start;
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('cold_codes_standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->start;
$node->safe_psql('postgres', 'CREATE EXTENSION s5vector');
$node->safe_psql('postgres',
	"CREATE TABLE src AS SELECT i AS id, " . vec_sql('i', $dim, 40, 0.5) . "::vector($dim) AS v FROM generate_series(1, $n) i");

# Bad values of the option.
my ($ret, $out, $err) = $node->psql('postgres',
	"CREATE INDEX bad ON src USING s5vector (v) WITH (hot_window = '0', cold_codes = 'maybe')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/invalid value for parameter "cold_codes"/, 'cold_codes = maybe is refused');
is((sqlstate_of($err))[0] // '', '22023', 'with SQLSTATE 22023');

# The first row page of an index and its version byte (1 plain, 2 coded).
sub row_page_versions
{
	my ($index) = @_;
	$node->safe_psql('postgres', 'CHECKPOINT');
	my $path = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$index')");
	my %versions;
	for my $blk (1 .. (-s $path) / $BLCKSZ - 1)
	{
		my $type = unpack('v', peek_file($path, $blk * $BLCKSZ + $BLCKSZ - 4, 2));
		next unless $type == 5;
		my $lp = unpack('V', peek_file($path, $blk * $BLCKSZ + 24, 4));
		my $item = $blk * $BLCKSZ + ($lp & 0x7FFF);
		$versions{ unpack('C', peek_file($path, $item + 1, 1)) }++;
	}
	return join(',', map { "v$_" } sort keys %versions);
}

my @metrics = ([ 'l2', 'vector_l2_ops', '<->' ], [ 'ip', 'vector_ip_ops', '<#>' ],
	[ 'cos', 'vector_cosine_ops', '<=>' ], [ 'l1', 'vector_l1_ops', '<+>' ]);
my $rng = lcg_new(21);
my @queries = map { rand_vec_literal($rng, $dim) } 1 .. 4;
# Queries near rows too (the literal data are spread over [-10, 10) in 40 clusters).
push @queries, $node->safe_psql('postgres', "SELECT v::text FROM src WHERE id = $_") for (7, 1234);

sub ids
{
	my ($sql) = @_;
	return join(',', grep { length } split /\n/, $node->safe_psql('postgres', $sql));
}
my $idx_set = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';
my $exact_set = 'SET enable_indexscan = off; SET enable_bitmapscan = off;';

for my $m (@metrics)
{
	my ($name, $ops, $op) = @$m;
	$node->safe_psql('postgres', qq{
		CREATE TABLE t_$name AS SELECT * FROM src;
		CREATE TABLE u_$name AS SELECT * FROM src;
		CREATE INDEX t_${name}_idx ON t_$name USING s5vector (v $ops) WITH (hot_window = '0', lists = 20, cold_codes = 'on');
		CREATE INDEX u_${name}_idx ON u_$name USING s5vector (v $ops) WITH (hot_window = '0', lists = 20, cold_codes = 'off');
	});
	is(row_page_versions("t_${name}_idx"), 'v2', "$name: cold_codes = on writes coded row pages only");
	is(row_page_versions("u_${name}_idx"), 'v1', "$name: cold_codes = off writes plain row pages only");
	my ($same_exact, $same_uncoded, $filtered, $n_q) = (0, 0, 0, 0);
	for my $q (@queries)
	{
		$n_q++;
		my $exact = ids("$exact_set SELECT id FROM t_$name ORDER BY v $op '$q', id LIMIT 20");
		my $got = ids("$idx_set SET s5vector.probes = 20; SELECT id FROM t_$name ORDER BY v $op '$q' LIMIT 20");
		$same_exact++ if $got eq $exact;
		diag("$name: coded index, all lists: $got\n   exact: $exact") if $got ne $exact;
		for my $mode ('strict_order', 'relaxed_order')
		{
			my $coded = ids("$idx_set SET s5vector.probes = 3; SET s5vector.iterative_scan = $mode; "
				  . "SELECT id FROM t_$name ORDER BY v $op '$q' LIMIT 30");
			my $plain = ids("$idx_set SET s5vector.probes = 3; SET s5vector.iterative_scan = $mode; "
				  . "SELECT id FROM u_$name ORDER BY v $op '$q' LIMIT 30");
			$same_uncoded++ if $coded eq $plain;
			diag("$name $mode: coded $coded\n   plain $plain") if $coded ne $plain;
		}
		# A filter that keeps 1 row in 37: strict order, never short of LIMIT, the exact answer.
		my $fexact = ids("$exact_set SELECT id FROM t_$name WHERE id % 37 = 0 ORDER BY v $op '$q', id LIMIT 10");
		my $fgot = ids("$idx_set SET s5vector.probes = 1; SELECT id FROM t_$name WHERE id % 37 = 0 ORDER BY v $op '$q' LIMIT 10");
		$filtered++ if $fgot eq $fexact && scalar(split /,/, $fgot) == 10;
		diag("$name filtered: $fgot\n   exact: $fexact") if $fgot ne $fexact;
	}
	is($same_exact, $n_q, "$name: every list probed, the coded index gives the exact top 20 in order");
	is($same_uncoded, 2 * $n_q, "$name: at probes 3 (strict and relaxed) the coded index answers as the plain one");
	is($filtered, $n_q, "$name: a filter keeping 1 row in 37 gets its exact 10 rows");
	is($node->safe_psql('postgres', "$idx_set SELECT count(*) || '/' || count(DISTINCT id) FROM "
		  . "(SELECT id FROM t_$name ORDER BY v $op '$queries[0]') s"), "$n/$n", "$name: read to the end, every row once");
}

# Inserts after the build into the coded L2 index: ordinary rows, and one far outside the trained range (its code
# clamps; its own stored error keeps the bound true), found first for a query next to it and in the exact order.
$node->safe_psql('postgres', qq{
	INSERT INTO t_l2 SELECT i, } . vec_sql('i', $dim, 40, 0.5) . qq{ FROM generate_series($n + 1, $n + 200) i;
	INSERT INTO t_l2 VALUES (99999, array_fill(500::real, ARRAY[$dim])::vector);
});
my $far = '[' . join(',', (499) x $dim) . ']';
is(ids("$idx_set SELECT id FROM t_l2 ORDER BY v <-> '$far' LIMIT 1"), '99999', 'a row outside the trained range is found');
is($node->safe_psql('postgres', 'SELECT cold_rows FROM s5vector_index_stats(\'t_l2_idx\')'), $n + 201,
	'inserted rows went to the cold lists');
is(row_page_versions('t_l2_idx'), 'v2', 'appended row pages are coded');
my $ok = 0;
for my $q (@queries, $far)
{
	my $exact = ids("$exact_set SELECT id FROM t_l2 ORDER BY v <-> '$q', id LIMIT 25");
	$ok++ if ids("$idx_set SET s5vector.probes = 20; SELECT id FROM t_l2 ORDER BY v <-> '$q' LIMIT 25") eq $exact;
}
is($ok, scalar(@queries) + 1, 'after inserts: exact top 25 with every list probed');

# VACUUM compacts row pages (rows and their codes slide down together), then a rebalance step; answers stay exact.
$node->safe_psql('postgres', 'DELETE FROM t_l2 WHERE id % 3 = 0; VACUUM t_l2');
$ok = 0;
for my $q (@queries)
{
	my $exact = ids("$exact_set SELECT id FROM t_l2 ORDER BY v <-> '$q', id LIMIT 25");
	$ok++ if ids("$idx_set SET s5vector.probes = 20; SELECT id FROM t_l2 ORDER BY v <-> '$q' LIMIT 25") eq $exact;
}
is($ok, scalar(@queries), 'after VACUUM compacted the pages: exact top 25');
# One region grows far past the mean list size (1800 rows near cluster 3), so the rebalance splits its list.
$node->safe_psql('postgres', "INSERT INTO t_l2 SELECT id + 100000 * k, v + array_fill(0.01 * k, ARRAY[$dim])::vector "
	  . "FROM src, generate_series(1, 24) k WHERE id % 40 = 3");
cmp_ok($node->safe_psql('postgres', "SELECT s5vector_rebalance('t_l2_idx')"), '>', 0, 'rebalance changed lists');
my $live = $node->safe_psql('postgres', 'SELECT count(*) FROM t_l2');
is($node->safe_psql('postgres', "$idx_set SELECT count(*) || '/' || count(DISTINCT id) FROM "
	  . "(SELECT id FROM t_l2 ORDER BY v <-> '$queries[1]') s"), "$live/$live", 'after rebalance: every row once');
$ok = 0;
for my $q (@queries)
{
	my $exact = ids("$exact_set SELECT id FROM t_l2 ORDER BY v <-> '$q', id LIMIT 25");
	$ok++ if ids("$idx_set SET s5vector.probes = 20; SELECT id FROM t_l2 ORDER BY v <-> '$q' LIMIT 25") eq $exact;
}
is($ok, scalar(@queries), 'after rebalance: exact top 25');
# Offload seals list prefixes of coded row pages into parts on a real s5vector-node (their vectors go to S5, their
# codes stay behind: parts are scored exactly); answers stay exact.
my $s5 = s5_node_start(PostgreSQL::Test::Utils::tempdir());
my $offloaded = $node->safe_psql('postgres', "SET s5vector.s5_url = '$s5->{url}'; SELECT s5vector_offload('t_l2_idx')");
cmp_ok($offloaded, '>', 0, "offload sealed parts of the coded index ($offloaded)");
$ok = 0;
for my $q (@queries)
{
	my $exact = ids("$exact_set SELECT id FROM t_l2 ORDER BY v <-> '$q', id LIMIT 25");
	$ok++ if ids("SET s5vector.s5_url = '$s5->{url}'; $idx_set SET s5vector.probes = 20; "
		  . "SELECT id FROM t_l2 ORDER BY v <-> '$q' LIMIT 25") eq $exact;
}
is($ok, scalar(@queries), 'after offload: exact top 25');
# Sessions of this database reach the node (verify reads the remote segments; the standby's sessions too).
$node->safe_psql('postgres', "ALTER DATABASE postgres SET s5vector.s5_url = '$s5->{url}'");
verify_all_ok($node, "t_$_->[0]_idx", "verify clean: t_$_->[0]_idx") for @metrics;

# A streaming standby answers as the primary (the coded build, inserts, VACUUM, rebalance and offload replayed).
$node->wait_for_catchup($standby);
my $same = 0;
for my $q (@queries)
{
	my $sql = "SET s5vector.s5_url = '$s5->{url}'; $idx_set SET s5vector.probes = 20; SELECT id FROM t_l2 ORDER BY v <-> '$q' LIMIT 25";
	$same++ if join(',', grep { length } split /\n/, $standby->safe_psql('postgres', $sql)) eq ids($sql);
}
is($same, scalar(@queries), 'the standby gives the same exact answers');
$standby->stop;
# Later builds stay local (with S5 configured, CREATE INDEX would upload the cold part directly).
$node->safe_psql('postgres', 'ALTER DATABASE postgres RESET s5vector.s5_url');

# auto: codes from 256 dimensions on, none below.
$node->safe_psql('postgres', qq{
	CREATE TABLE a AS SELECT i AS id, } . vec_sql('i', 256, 10) . qq{::vector(256) AS v FROM generate_series(1, 400) i;
	CREATE INDEX a_idx ON a USING s5vector (v) WITH (hot_window = '0', lists = 4);
	CREATE INDEX src_idx ON src USING s5vector (v) WITH (hot_window = '0', lists = 4);
});
is(row_page_versions('a_idx'), 'v2', 'cold_codes = auto codes 256 dimensions');
is(row_page_versions('src_idx'), 'v1', "cold_codes = auto does not code $dim dimensions");
my $q256 = $node->safe_psql('postgres', 'SELECT v::text FROM a WHERE id = 5');
is(ids("$idx_set SET s5vector.probes = 4; SELECT id FROM a ORDER BY v <-> '$q256' LIMIT 15"),
	ids("$exact_set SELECT id FROM a ORDER BY v <-> '$q256', id LIMIT 15"), '256 dimensions: exact top 15');

# Corruption: a quantizer parameter that is not finite, and a row's stored code error that is negative, are
# XX002 errors naming the page, never an answer in a wrong order.
$node->safe_psql('postgres', qq{
	CREATE TABLE c AS SELECT * FROM src WHERE id <= 400;
	CREATE INDEX c_idx ON c USING s5vector (v) WITH (hot_window = '0', lists = 4, cold_codes = 'on');
	CHECKPOINT;
});
my $cpath = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('c_idx')");
my ($quant, $rowpage);
for my $blk (1 .. (-s $cpath) / $BLCKSZ - 1)
{
	my $type = unpack('v', peek_file($cpath, $blk * $BLCKSZ + $BLCKSZ - 4, 2));
	my $lp = unpack('V', peek_file($cpath, $blk * $BLCKSZ + 24, 4));
	my $item = $blk * $BLCKSZ + ($lp & 0x7FFF);
	$quant //= $item if $type == 3 && unpack('C', peek_file($cpath, $item, 1)) == 9;
	$rowpage //= $item if $type == 5;
}
ok(defined $quant && defined $rowpage, 'the coded index has a quantizer page and row pages');
my $qcount = unpack('V', peek_file($cpath, $quant + 12, 4));
my $rcap = unpack('v', peek_file($cpath, $rowpage + 4, 2));
my $ages_at = (16 + 6 * $rcap + 7) & ~7;
my $errors_at = ($ages_at + 9 * $rcap + 3) & ~3;
my $cscan = "$idx_set SET s5vector.probes = 4; SELECT id FROM c ORDER BY v <-> '$queries[0]' LIMIT 5";
for my $case ([ 'quantizer step NaN', $quant + 16 + 4 * $qcount, pack('f<', 'NaN' + 0), qr/quantizer parameter not finite/ ],
	[ 'row code error negative', $rowpage + $errors_at, pack('f<', -1.0), qr/row code error not a finite non-negative/ ])
{
	my ($name, $off, $bytes, $why) = @$case;
	$node->stop;
	my $old = poke_file($cpath, $off, $bytes);
	$node->start;
	my ($r, $o, $e) = $node->psql('postgres', $cscan, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	is((sqlstate_of($e))[0] // '', 'XX002', "$name: XX002");
	like($e, $why, "$name: the error says why");
	$node->stop;
	poke_file($cpath, $off, $old);
	$node->start;
}
is(ids($cscan), ids("$exact_set SELECT id FROM c ORDER BY v <-> '$queries[0]', id LIMIT 5"), 'restored: exact again');

$node->stop;
s5_node_stop($s5);
done_testing();
