# Metapage fields are checked when they are read: each field set to a bad value in a stopped cluster makes a
# scan, an insert, the statistics and VACUUM fail with index_corrupted (XX002) and a detail naming the field (never a
# crash, a hang, a wrong answer or another SQLSTATE), and s5vector_verify reports the field as a row. An index
# of the older format version 1 is refused with a hint to REINDEX, and REINDEX repairs it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('metapage');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION s5vector;
	CREATE TABLE t (id int, v vector(4), ts timestamptz);
	INSERT INTO t SELECT i, ARRAY[i % 13, i % 7, i % 5, 1]::vector, '2026-01-01'::timestamptz + i * interval '1 hour'
		FROM generate_series(1, 300) i;
	CREATE INDEX t_idx ON t USING s5vector (v, ts) WITH (hot_window = 'infinity');
});
my $scan = q{SET enable_seqscan = off; SELECT id FROM t WHERE ts > '2026-01-02' ORDER BY v <-> '[1,1,1,1]' LIMIT 3};
my $good = $node->safe_psql('postgres', $scan);
is(scalar(split /\n/, $good), 3, 'healthy index answers');
is($node->safe_psql('postgres', "SELECT count(*) FROM s5vector_verify('t_idx') WHERE ok IS NOT TRUE"), '0',
	'healthy index verifies');

my $file = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('t_idx')");
my $meta = 24;    # metapage contents start after the page header

# Write bytes into the stopped cluster's index file, after putting back what the previous poke changed.
my @undo;
sub poke
{
	my ($offset, $bytes) = @_;
	$node->stop;
	open(my $fh, '+<', $file) or die "open $file: $!";
	binmode $fh;
	while (my $u = pop @undo)
	{
		seek($fh, $u->[0], 0);
		print $fh $u->[1];
	}
	if (defined $offset)
	{
		my $old;
		seek($fh, $offset, 0);
		read($fh, $old, length($bytes));
		seek($fh, $offset, 0);
		print $fh $bytes;
		push @undo, [ $offset, $old ];
	}
	close $fh;
	$node->start;
}

sub slurp_page_bytes
{
	my ($offset, $len) = @_;
	open(my $fh, '<', $file) or die "open $file: $!";
	binmode $fh;
	my $bytes;
	seek($fh, $offset, 0);
	read($fh, $bytes, $len);
	close $fh;
	return $bytes;
}

sub run_sql
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '20s';\n\\set VERBOSITY verbose\n$sql", on_error_stop => 1);
	return ($ret, $out, $err);
}

# Field offsets in S5vMetaPageData (format version 2; static_asserts in src/pg/index.h).
my @cases = (
	[ 'dimensions', 8, pack('V', 0xFFFFFFFF) ],
	[ 'dimensions', 8, pack('V', 0) ],
	[ 'dimensions', 8, pack('V', 5), 'vector\(4\)' ],
	[ 'metric', 12, pack('C', 9) ],
	[ 'metric', 12, pack('C', 2), 'operator class' ],
	[ 'age_kind', 13, pack('C', 7) ],
	[ 'age_kind', 13, pack('C', 0), 'age column' ],
	[ 'm', 14, pack('v', 0) ],
	[ 'm', 14, pack('v', 1) ],
	[ 'm', 14, pack('v', 65535) ],
	[ 'ef_construction', 16, pack('v', 0) ],
	[ 'ef_construction', 16, pack('v', 1) ],
	[ 'ef_construction', 16, pack('v', 65535) ],
	[ 'max_level', 18, pack('v', 99) ],
	[ 'lists', 20, pack('l<', -1) ],
	[ 'hot_window', 24, pack('q<', -1) ],
	[ 'hot_window_infinite', 40, pack('C', 7) ],
	[ 'entry_blkno', 44, pack('V', 0) ],
	[ 'entry_blkno', 44, pack('V', 0xFFFFFFFE) ],
	[ 'entry_offno', 48, pack('v', 0) ],
	[ 'entry_level', 50, pack('s<', 200) ],
	[ 'insert_page', 52, pack('V', 0) ],
	[ 'insert_page', 52, pack('V', 5000) ],
	[ 'cold_metapage', 56, pack('V', 9999) ],
	[ 'hot_elements', 64, pack('q<', -5) ],
	[ 'hot_deleted', 72, pack('q<', -1) ],
	[ 'index_id', 80, "\0" x 16 ],
	[ 'worker.gc_queue_head', 120, pack('V', 9999) ],
	[ 'worker.migration_cursor', 124, pack('V', 9999) ],
	[ 'worker.reserved', 128, pack('C', 1) ],
);

for my $c (@cases)
{
	my ($field, $off, $bytes, $extra) = @$c;
	my $label = "$field = 0x" . unpack('H*', $bytes);
	poke($meta + $off, $bytes);
	my $want = qr/XX002: index "t_idx" has a corrupted metapage\nDETAIL:  Metapage field \Q$field\E: /;
	for my $q ([ 'scan', $scan ], [ 'insert', q{INSERT INTO t VALUES (0, '[1,2,3,4]', now())} ],
		[ 'stats', q{SELECT * FROM s5vector_index_stats('t_idx')} ], [ 'vacuum', 'VACUUM t' ])
	{
		my ($ret, $out, $err) = run_sql($q->[1]);
		isnt($ret, 0, "$label: $q->[0] fails");
		like($err, $want, "$label: $q->[0] gives XX002 naming the field");
		like($err, qr/$extra/, "$label: $q->[0] says why") if $extra;
		unlike($err, qr/timeout|canceling/, "$label: $q->[0] does not hang");
	}
	my ($ret, $out, $err) = run_sql(
		"SELECT check_name || '|' || coalesce(ok::text, 'null') || '|' || detail FROM s5vector_verify('t_idx')");
	is($ret, 0, "$label: verify answers") or diag($err);
	like($out, qr/^metapage\|false\|field \Q$field\E: /m, "$label: verify reports the field");
	unlike($out, qr/\|true\|/, "$label: verify runs no check on a corrupted metapage");
}
poke(undef);
is($node->safe_psql('postgres', $scan), $good, 'restored metapage: same answers');
is($node->safe_psql('postgres', "SELECT count(*) FROM s5vector_verify('t_idx') WHERE ok IS NOT TRUE"), '0',
	'restored metapage: verify is clean');
ok(!-e $node->logfile || slurp_file($node->logfile) !~ /terminated by signal|PANIC/, 'no backend crashed');

# Data page checks that a scan does: a line pointer that is neither normal nor unused (s5vector writes no others)
# and an element with flag bits it does not know are index_corrupted, not skipped or misread.
{
	my $deep = q{SET enable_seqscan = off; SET s5vector.ef_search = 1000;
SELECT id FROM t ORDER BY v <-> '[1,1,1,1]' LIMIT 3};
	my $lp1 = unpack('V', slurp_page_bytes(8192 + 24, 4));
	my $item = $lp1 & 0x7fff;    # lp_off of the first item of block 1: an element
	poke(8192 + 24, pack('V', 2 | (2 << 15)));    # LP_REDIRECT to offset 2
	my ($ret, $out, $err) = run_sql($deep);
	like($err, qr/XX002: .*line pointer neither normal nor unused/, 'redirect line pointer: index_corrupted');
	poke(8192 + $item + 3, pack('C', 0xFC));    # the element's flags byte
	($ret, $out, $err) = run_sql($deep);
	like($err, qr/XX002: .*unknown element flags/, 'unknown element flags: index_corrupted');
	# s5vector_verify reads every element: a NaN component (the vector starts at byte 24) and a heap TID with
	# offset 0 (bytes 8-9 of the element) are reported in 'pages' and 'heap coverage'.
	poke(8192 + $item + 24, pack('V', 0x7fc00000));
	($ret, $out, $err) = run_sql("SELECT ok || ' ' || detail FROM s5vector_verify('t_idx') WHERE check_name = 'pages'");
	like($out, qr/^false .*, 1 elements with a non-finite vector$/, 'NaN in a vector: verify reports it');
	poke(8192 + $item + 8, pack('v', 0));
	($ret, $out, $err) =
	  run_sql("SELECT ok || ' ' || detail FROM s5vector_verify('t_idx') WHERE check_name = 'heap coverage'");
	like($out, qr/^false .*, 1 elements with a heap TID outside the table, \d+ index entries without a visible heap row \(deleted rows that VACUUM has not removed yet\)$/, 'heap TID offset 0: verify reports it');
	poke(undef);
	is($node->safe_psql('postgres', $scan), $good, 'data page checks: restored page answers');
}

# An index of format version 1 (the layout before index_id and the worker state): refused with a hint.
poke($meta + 4, pack('V', 1));
{
	my ($ret, $out, $err) = run_sql($scan);
	isnt($ret, 0, 'version 1: scan fails');
	like($err, qr/0A000: index "t_idx" has on-disk format version 1, this build of s5vector reads version 2/,
		'version 1: feature_not_supported');
	like($err, qr/HINT:  REINDEX the index\./, 'version 1: hint to REINDEX');
	($ret, $out, $err) = run_sql("SELECT * FROM s5vector_verify('t_idx')");
	like($err, qr/0A000: .*format version 1/, 'version 1: verify says the same');
}
@undo = ();    # REINDEX writes a new file
$node->safe_psql('postgres', 'REINDEX INDEX t_idx');
is($node->safe_psql('postgres', $scan), $good, 'version 1: REINDEX repairs it');
is($node->safe_psql('postgres', "SELECT count(*) FROM s5vector_verify('t_idx') WHERE ok IS NOT TRUE"), '0',
	'version 1: verify is clean after REINDEX');

$node->stop;
done_testing();
