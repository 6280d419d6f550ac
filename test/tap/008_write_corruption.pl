# Corrupt TIDs and page layouts that the write paths and the page store must refuse cleanly (issue 12, items
# 2-5): a neighbour slot or an element's neighbour TID whose block is InvalidBlockNumber (also P_NEW) or past
# the end of the index, an element whose heap TID lies outside the table, a metapage insert_page of 0, line
# pointers that alias one deleted element. Every case: a clean XX002 (or, for insert_page, a working INSERT),
# no crash, no hang, and no read-only query that grows the index or the table file.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $blcksz = 8192;
my $node = PostgreSQL::Test::Cluster->new('write_corrupt');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION s5vector;
	CREATE TABLE t (id int, v vector(4));
	INSERT INTO t SELECT i, ARRAY[i % 13, i % 7, i % 5, 1]::vector FROM generate_series(1, 500) i;
	CREATE INDEX t_idx ON t USING s5vector (v);
});
my $query = q{SET enable_seqscan = off; SELECT id FROM t ORDER BY v <-> '[1,1,1,1]' LIMIT 3};
my $good = $node->safe_psql('postgres', $query);
is(scalar(split /\n/, $good), 3, 'healthy index answers');

sub rel_file
{
	my ($rel) = @_;
	return $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$rel')");
}

# Line pointers of a page: [offset number, lp_off, lp_len] of every normal item.
sub items
{
	my ($page) = @_;
	my $lower = unpack('v', substr($page, 12, 2));
	my @out;
	for (my $i = 0; 24 + 4 * $i + 4 <= $lower; $i++)
	{
		my $lp = unpack('V', substr($page, 24 + 4 * $i, 4));
		my ($off, $flags, $len) = ($lp & 0x7fff, ($lp >> 15) & 3, $lp >> 17);
		push @out, [ $i + 1, $off, $len ] if $flags == 1 && $len > 0;
	}
	return @out;
}

sub tid_bytes
{
	my ($blk, $off) = @_;
	return pack('vvv', ($blk >> 16) & 0xffff, $blk & 0xffff, $off);
}

# Stop the cluster, let $edit change every data page of $file (a string ref per page), start it again.
sub edit_pages
{
	my ($file, $edit) = @_;
	$node->stop;
	open(my $fh, '+<', $file) or die "open $file: $!";
	binmode $fh;
	my $nblocks = (-s $file) / $blcksz;
	for my $blk (1 .. $nblocks - 1)
	{
		my $page;
		seek($fh, $blk * $blcksz, 0);
		read($fh, $page, $blcksz);
		my $before = $page;
		$edit->($blk, \$page);
		next if $page eq $before;
		seek($fh, $blk * $blcksz, 0);
		print $fh $page;
	}
	close $fh;
	$node->start;
}

# Change every element tuple (type 1) or every neighbour tuple (type 2) with $edit->(\$page, $lp_off).
sub edit_tuples
{
	my ($file, $type, $edit) = @_;
	edit_pages($file, sub {
		my ($blk, $page) = @_;
		for my $it (items($$page))
		{
			$edit->($page, $it->[1]) if ord(substr($$page, $it->[1], 1)) == $type;
		}
	});
}

my $crashes = 0;
sub no_crash
{
	my ($what) = @_;
	my $log = slurp_file($node->logfile);
	my $n = () = $log =~ /terminated by signal|was terminated by|server process .* exited with exit code [^0]/g;
	is($n, $crashes, "$what: no backend crashed");
	$crashes = $n;
}

# Run $sql with a timeout; returns (ret, stdout, stderr, timed_out).
sub run_sql
{
	my ($sql, $secs) = @_;
	my $timed_out = 0;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		timeout => $secs // 60, timed_out => \$timed_out);
	return ($ret, $out, $err, $timed_out);
}

sub expect_xx002
{
	my ($what, $sql, $pattern) = @_;
	my ($ret, $out, $err, $to) = run_sql($sql);
	ok(!$to, "$what: no hang");
	isnt($ret, 0, "$what: statement fails");
	like($err, qr/ERROR:  XX002: .*$pattern/, "$what: index_corrupted error") or diag($err);
	no_crash($what);
}

sub restore
{
	$node->safe_psql('postgres', 'REINDEX INDEX t_idx');
	is($node->safe_psql('postgres', $query), $good, 'after REINDEX: same answers');
}

my $idx = rel_file('t_idx');
my $heap = rel_file('t');
my ($isize, $hsize) = (-s $idx, -s $heap);

# 12.2 / 12.5: the first slot of every neighbour list holds a TID whose block is InvalidBlockNumber (= P_NEW).
edit_tuples($idx, 2, sub { my ($p, $o) = @_; substr($$p, $o + 4, 6) = tid_bytes(0xffffffff, 1); });
expect_xx002('neighbour slot at InvalidBlockNumber: scan', $query, 'block 4294967295');
expect_xx002('neighbour slot at InvalidBlockNumber: insert',
	q{INSERT INTO t VALUES (0, '[1,1,1,1]')}, 'block 4294967295');
is(-s $idx, $isize, 'neighbour slot at InvalidBlockNumber: the index file did not grow');
restore();

# A neighbour slot past the end of the index.
$idx = rel_file('t_idx');
$isize = -s $idx;
edit_tuples($idx, 2, sub { my ($p, $o) = @_; substr($$p, $o + 4, 6) = tid_bytes(5000, 1); });
expect_xx002('neighbour slot past the end: scan', $query, 'block 5000');
is(-s $idx, $isize, 'neighbour slot past the end: the index file did not grow');
restore();

# A neighbour slot pointing at the metapage.
$idx = rel_file('t_idx');
edit_tuples($idx, 2, sub { my ($p, $o) = @_; substr($$p, $o + 4, 6) = tid_bytes(0, 1); });
expect_xx002('neighbour slot at the metapage: scan', $query, 'block 0');
restore();

# 12.5: every element's neighbour TID has block P_NEW.
$idx = rel_file('t_idx');
$isize = -s $idx;
edit_tuples($idx, 1, sub { my ($p, $o) = @_; substr($$p, $o + 10, 6) = tid_bytes(0xffffffff, 1); });
expect_xx002('neighbour TID at P_NEW: scan', $query, 'block 4294967295');
my ($ret, $out, $err, $to) = run_sql(q{SELECT count(*) FROM s5vector_verify('t_idx') WHERE NOT ok});
ok(!$to && $ret == 0 && $out > 0, 'neighbour TID at P_NEW: verify reports it') or diag("$ret $out $err");
expect_xx002('neighbour TID at P_NEW: VACUUM', q{DELETE FROM t WHERE id = 500; VACUUM t}, 'block 4294967295');
is(-s $idx, $isize, 'neighbour TID at P_NEW: the index file did not grow');
$node->safe_psql('postgres', 'REINDEX INDEX t_idx');
$node->safe_psql('postgres', q{INSERT INTO t VALUES (500, ARRAY[500 % 13, 500 % 7, 500 % 5, 1]::vector)});
restore();

# 12.5: every element's heap TID has block P_NEW: the executor must never be handed it.
$idx = rel_file('t_idx');
$hsize = -s $heap;
edit_tuples($idx, 1, sub { my ($p, $o) = @_; substr($$p, $o + 4, 6) = tid_bytes(0xffffffff, 1); });
expect_xx002('heap TID at P_NEW: scan', $query, 'heap');
is(-s $heap, $hsize, 'heap TID at P_NEW: the table file did not grow');
restore();

# Heap TIDs past the table's end, and with an offset no heap page can have.
$idx = rel_file('t_idx');
edit_tuples($idx, 1, sub { my ($p, $o) = @_; substr($$p, $o + 4, 6) = tid_bytes(100000, 1); });
expect_xx002('heap TID past the table: scan', $query, 'heap');
restore();
$idx = rel_file('t_idx');
edit_tuples($idx, 1, sub { my ($p, $o) = @_; substr($$p, $o + 8, 2) = pack('v', 2000); });
expect_xx002('heap TID offset 2000: scan', $query, 'heap');
is(-s $heap, $hsize, 'bad heap TIDs: the table file did not grow');
restore();

# A NaN (and an infinity) in a stored vector: the vector type refuses both, so on a page they are corruption.
$idx = rel_file('t_idx');
edit_tuples($idx, 1, sub { my ($p, $o) = @_; substr($$p, $o + 24, 4) = pack('f', 'NaN' + 0); });
expect_xx002('NaN in stored vectors: scan', $query, 'not finite');
restore();
$idx = rel_file('t_idx');
edit_tuples($idx, 1, sub { my ($p, $o) = @_; substr($$p, $o + 28, 4) = pack('f', 9**9**9); });
expect_xx002('infinity in stored vectors: scan', $query, 'not finite');
restore();

# 12.4: insert_page (metapage offset 24 + 52) of 0 (the metapage itself): INSERT works and stays cancellable.
$idx = rel_file('t_idx');
$node->stop;
{
	open(my $fh, '+<', $idx) or die;
	binmode $fh;
	seek($fh, 24 + 52, 0);
	my $old;
	read($fh, $old, 4);
	my $nblocks = (-s $idx) / $blcksz;
	my $ip = unpack('V', $old);
	ok($ip > 0 && $ip < $nblocks, "insert_page field found ($ip of $nblocks blocks)");
	seek($fh, 24 + 52, 0);
	print $fh pack('V', 0);
	close $fh;
}
$node->start;
($ret, $out, $err, $to) = run_sql(q{SET statement_timeout = '30s'; INSERT INTO t VALUES (501, '[1,1,1,1]')}, 60);
ok(!$to, 'insert_page 0: INSERT does not hang');
is($ret, 0, 'insert_page 0: INSERT succeeds (the bad hint is ignored)') or diag($err);
no_crash('insert_page 0');
if ($to)
{
	$node->stop('immediate');
	$node->start;
}
is($node->safe_psql('postgres', q{SET enable_seqscan = off;
	SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> '[1,1,1,1]' LIMIT 4) s WHERE id IN (1, 456, 501)}), '3',
	'insert_page 0: the index finds the new row beside its two exact duplicates');
is($node->safe_psql('postgres', q{SELECT count(*) FROM s5vector_verify('t_idx') WHERE NOT ok}), '0',
	'insert_page 0: verify is clean after the insert');
$node->safe_psql('postgres', 'DELETE FROM t WHERE id = 501');
restore();

# 12.3: on one page, 1500 line pointers alias one element marked deleted (its neighbour tuple on the same
# page): VACUUM must refuse the page, not overflow an array of MaxOffsetNumber offsets.
$idx = rel_file('t_idx');
my $aliased = 0;
edit_pages($idx, sub {
	my ($blk, $page) = @_;
	return if $aliased;
	my @its = sort { $b->[1] <=> $a->[1] } grep { ord(substr($$page, $_->[1], 1)) == 1 } items($$page);
	return unless @its;
	my $el = $its[0];    # the element nearest the end of the page
	return unless $el->[1] > 24 + 4 * 1500;
	my ($nb_hi, $nb_lo) = unpack('vv', substr($$page, $el->[1] + 10, 4));
	return unless (($nb_hi << 16) | $nb_lo) == $blk;
	substr($$page, $el->[1] + 3, 1) = chr(ord(substr($$page, $el->[1] + 3, 1)) | 1);    # deleted
	my $lp = unpack('V', substr($$page, 24 + 4 * ($el->[0] - 1), 4));
	substr($$page, 24 + 4 * $_, 4) = pack('V', $lp) for 0 .. 1499;
	my $lower = 24 + 4 * 1500;
	substr($$page, 12, 2) = pack('v', $lower);
	substr($$page, 14, 2) = pack('v', $lower) if unpack('v', substr($$page, 14, 2)) < $lower;
	$aliased = $blk;
});
ok($aliased, "aliasing line pointers written on block $aliased");
expect_xx002('aliased line pointers: VACUUM', 'VACUUM t', 'line pointers');
restore();
verify_clean();

sub verify_clean
{
	is($node->safe_psql('postgres', q{SELECT count(*) FROM s5vector_verify('t_idx') WHERE NOT ok}), '0',
		'verify is clean at the end');
}

$node->stop;
done_testing();
