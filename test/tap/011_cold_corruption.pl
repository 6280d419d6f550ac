# Corrupted cold-tier pages (cold metapage, centroid page, row page) give clean XX002 errors naming the block,
# never a crash, a hang or a wrong answer: every case is written into the index file of a stopped cluster,
# then a scan read to the end (every list probed), an insert of an old row, VACUUM and s5vector_verify run.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S5VTest;

my $BLCKSZ = 8192;
my $node = PostgreSQL::Test::Cluster->new('cold_corrupt');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION s5vector;
	CREATE TABLE t (id int, v vector(4));
	INSERT INTO t SELECT i, ARRAY[sin(i), cos(i), sin(2 * i), cos(3 * i)]::vector FROM generate_series(1, 400) i;
	CREATE INDEX t_idx ON t USING s5vector (v) WITH (hot_window = '0', lists = 4);
	CHECKPOINT;
});
is($node->safe_psql('postgres', "SELECT hot_elements || '/' || cold_rows || '/' || cold_lists FROM s5vector_index_stats('t_idx')"),
	'0/400/4', 'a pure IVF index: 400 rows in 4 lists');
my $path = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('t_idx')");
my $nblocks = (-s $path) / $BLCKSZ;

# The first block of each cold page type, and where its one item is.
my %first;
for my $blk (1 .. $nblocks - 1)
{
	my $type = unpack('v', peek_file($path, $blk * $BLCKSZ + $BLCKSZ - 4, 2));
	$first{$type} //= $blk if $type >= 3 && $type <= 5;
}
ok(defined $first{$_}, "a page of cold type $_ exists") for (3, 4, 5);
sub item_of
{
	my ($blk) = @_;
	my $lp = unpack('V', peek_file($path, $blk * $BLCKSZ + 24, 4));
	return $blk * $BLCKSZ + ($lp & 0x7FFF);
}
my ($meta, $cent, $rows) = map { item_of($first{$_}) } (3, 4, 5);
my $rows_cap = unpack('v', peek_file($path, $rows + 4, 2));

my $scan = q{SET enable_seqscan = off; SET s5vector.probes = 100; }
  . q{SELECT count(*) || '/' || count(DISTINCT id) FROM (SELECT id FROM t ORDER BY v <-> '[0.1,0.2,0.3,0.4]') s};
my @cases = (
	[ 'cold meta magic', $meta + 4, pack('V', 0xDEADBEEF), qr/bad magic number in the cold metapage/ ],
	[ 'cold meta lists 40000', $meta + 12, pack('V', 40000), qr/counters out of range/ ],
	[ 'cold meta centroid_head beyond', $meta + 24, pack('V', 99999), qr/centroid pages outside the index/ ],
	[ 'cold meta dead_rows negative', $meta + 48, pack('q<', -1), qr/counters out of range/ ],
	[ 'centroid NaN', $cent + 8 + 40, pack('f<', 'NaN' + 0), qr/centroid is not finite/ ],
	[ 'centroid page count', $cent + 2, pack('v', 999), qr/does not hold the lists it should/ ],
	[ 'row page type byte', $rows, pack('C', 9), qr/unknown tuple type or version/ ],
	[ 'row count past capacity', $rows + 2, pack('v', $rows_cap + 1), qr/row count or capacity impossible/ ],
	[ 'row page of another list', $rows + 8, pack('V', 9999), qr/row page of another list/ ],
	[ 'row flags unknown', $rows + 16 + 8 * $rows_cap + 8 * 0 + 0, undef, qr/unknown row flags/ ],
	[ 'row page next = metapage', $first{5} * $BLCKSZ + $BLCKSZ - 8, pack('V', 0), qr/leaves the index or loops/ ],
	[ 'row page next = itself', $first{5} * $BLCKSZ + $BLCKSZ - 8, pack('V', $first{5}), qr/leaves the index or loops/ ],
	[ 'row page type 77', $first{5} * $BLCKSZ + $BLCKSZ - 4, pack('v', 77), qr/corrupted/ ],
);
# The flags array: after the TIDs (6 bytes each, from 16, MAXALIGNed) and the ages (8 bytes each).
my $ages_off = 16 + 6 * $rows_cap;
$ages_off = ($ages_off + 7) & ~7;
$cases[9][1] = $rows + $ages_off + 8 * $rows_cap;
$cases[9][2] = pack('C', 0x80);

my $good = $node->safe_psql('postgres', $scan);
is($good, '400/400', 'pristine: read to the end, each row once');
for my $c (@cases)
{
	my ($name, $off, $bytes, $why) = @$c;
	$node->stop;
	my $old = poke_file($path, $off, $bytes);
	$node->start;
	my ($ret, $out, $err) = $node->psql('postgres', $scan, extra_params => [ '-v', 'VERBOSITY=verbose' ],
		timeout => 60);
	my ($state) = sqlstate_of($err);
	is($state, 'XX002', "$name: scan gives XX002") or diag("out: $out\nerr: $err");
	like($err, $why, "$name: the error says why");
	for my $q ([ 'insert', q{INSERT INTO t VALUES (1000, '[0.1,0.2,0.3,0.4]')} ], [ 'vacuum', 'VACUUM t' ],
		[ 'verify', q{SELECT count(*) FROM s5vector_verify('t_idx')} ])
	{
		my ($r2, $o2, $e2) = $node->psql('postgres', $q->[1], extra_params => [ '-v', 'VERBOSITY=verbose' ],
			timeout => 60);
		my ($s2) = sqlstate_of($e2);
		ok($r2 == 0 || (defined $s2 && $s2 eq 'XX002'), "$name: $q->[0] succeeds or gives XX002")
		  or diag("ret $r2, err: $e2");
	}
	ok($node->safe_psql('postgres', 'SELECT 1') eq '1', "$name: the server is up");
	$node->stop;
	poke_file($path, $off, $old);
	$node->start;
	$node->safe_psql('postgres', 'DELETE FROM t WHERE id = 1000');
}
# A list's row counter that disagrees with its pages: scans do not use it (400 rows still come back), verify
# reports it in 'cold tier'.
{
	$node->stop;
	my $off = $cent + 8;    # the first list entry's rows (int64)
	my $old = poke_file($path, $off, pack('q<', 12345));
	$node->start;
	is($node->safe_psql('postgres', $scan), '400/400', 'wrong list counter: scans still read every row once');
	like($node->safe_psql('postgres', "SELECT ok || '|' || detail FROM s5vector_verify('t_idx') WHERE check_name = 'cold tier'"),
		qr/^false\|.* 1 lists with a wrong row counter/, 'wrong list counter: verify reports it');
	$node->stop;
	poke_file($path, $off, $old);
	$node->start;
}
$node->safe_psql('postgres', 'VACUUM t');
is($node->safe_psql('postgres', $scan), '400/400', 'restored: read to the end, each row once');
verify_all_ok($node, 't_idx', 'restored: verify all ok');
done_testing();
