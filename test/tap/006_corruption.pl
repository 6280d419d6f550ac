# A corrupted index (bad metapage magic, bad format version, a data page with a broken header, a tuple with
# impossible bounds) gives a clear index_corrupted error (XX002), never a crash or a wrong answer.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('corrupt');
$node->init;
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

my $file = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('t_idx')");
my $blcksz = 8192;

# Overwrite bytes of the index file at an offset; the cluster is stopped around it.
sub poke {
	my ($offset, $bytes) = @_;
	$node->stop;
	open(my $fh, '+<', $file) or die "open $file: $!";
	binmode $fh;
	my $old;
	seek($fh, $offset, 0);
	read($fh, $old, length($bytes));
	seek($fh, $offset, 0);
	print $fh $bytes;
	close $fh;
	$node->start;
	return $old;
}

sub expect_corrupt {
	my ($what, $pattern) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$query");
	isnt($ret, 0, "$what: query fails");
	like($err, qr/ERROR:  XX002: .*$pattern/, "$what: index_corrupted error");
	is($out, '', "$what: no rows returned");
}

# Metapage contents start after the page header (24 bytes): magic, then version.
my $old = poke(24, pack('V', 0xdeadbeef));
expect_corrupt('bad magic', 'bad magic number');
poke(24, $old);
is($node->safe_psql('postgres', $query), $good, 'restored magic: same answers');

$old = poke(28, pack('V', 999));
expect_corrupt('bad version', 'format version 999');
poke(28, $old);

# The header of data page 1: pd_special (offset 16) no longer points at our special space.
$old = poke($blcksz + 16, pack('v', 8000));
expect_corrupt('bad page header', 'corrupted page at block 1');
poke($blcksz + 16, $old);

# The page id at the very end of data page 1. Searches check only the page header (the id sits on a cache
# line of its own); the data is intact, so answers stay right, and s5vector_verify reports the page.
$old = poke(2 * $blcksz - 2, pack('v', 0x1234));
is($node->safe_psql('postgres', $query), $good, 'bad page id: searches still give the right answers');
is($node->safe_psql('postgres', "SELECT ok FROM s5vector_verify('t_idx') WHERE check_name = 'pages'"), 'f',
	'bad page id: verify reports the page');
poke(2 * $blcksz - 2, $old);

# The first line pointer of data page 1 (after the 24-byte header): offset 8000, length 4000 is past the page.
my $lp = (8000 & 0x7fff) | (1 << 15) | (4000 << 17);
$old = poke($blcksz + 24, pack('V', $lp));
expect_corrupt('item out of bounds', 'corrupted tuple');
poke($blcksz + 24, $old);

is($node->safe_psql('postgres', $query), $good, 'restored index: same answers');
is($node->safe_psql('postgres', "SELECT count(*) FROM s5vector_verify('t_idx') WHERE NOT ok"), '0', 'verify is clean again');

$node->stop;
done_testing();
