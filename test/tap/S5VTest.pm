# Shared helpers for the s5vector TAP tests.
package S5VTest;

use strict;
use warnings;
use Exporter 'import';
use Test::More;
use IO::Uncompress::Gunzip qw($GunzipError);

our @EXPORT = qw(vec_sql rand_vec_literal lcg_new verify_all_ok index_sweep_count
  recall_at_k ids_of knn_ids uses_index sqlstate_of poke_file peek_file relation_files
  s5_node_start s5_node_stop s5_random_token s5_conf read_idx_images);

# SQL expression for a deterministic pseudo-random vector of $dim components in
# [-10, 10), keyed by the SQL expression $key (e.g. a generate_series variable).
# With $clusters, the vectors are drawn around $clusters centres (overlapping
# clusters, spread $spread), like real embeddings; without, uniformly.
sub _hash01
{
	my ($x) = @_;
	return "((sin($x) * 43758.5453) - floor(sin($x) * 43758.5453))";
}

sub vec_sql
{
	my ($key, $dim, $clusters, $spread) = @_;
	my $comp;
	if ($clusters)
	{
		$spread //= 0.35;
		my $c = "((($key)::bigint % $clusters) + 0.5)";
		$comp = '(' . _hash01("$c * 12.9898 + j * 78.233") . " * 20 - 10) + $spread * ("
		  . _hash01("($key) * 0.0137 + j * 39.3467 + 11.1") . ' * 20 - 10)';
	}
	else
	{
		$comp = '(' . _hash01("($key) * 12.9898 + j * 78.233 + 0.5") . ' * 20 - 10)';
	}
	return "(SELECT array_agg($comp ORDER BY j)::vector FROM generate_series(1, $dim) j)";
}

# A small deterministic generator (64-bit LCG), independent of Perl's rand().
sub lcg_new
{
	my ($seed) = @_;
	my $state = ($seed * 2654435761 + 12345) % 4294967296;
	return sub {
		# Numerical Recipes LCG, 32 bit, kept in a double-safe range.
		$state = (1664525 * $state + 1013904223) % 4294967296;
		return $state / 4294967296.0;
	};
}

# A vector literal '[...]' with components in [-10, 10).
sub rand_vec_literal
{
	my ($rng, $dim) = @_;
	return '[' . join(',', map { sprintf('%.4f', $rng->() * 20 - 10) } 1 .. $dim) . ']';
}

# Assert that every row of s5vector_verify($index) is ok; print failing rows.
sub verify_all_ok
{
	my ($node, $index, $name, $dbname) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$dbname //= 'postgres';
	my ($ret, $out, $err) = $node->psql($dbname,
		"SELECT check_name || '|' || ok || '|' || detail FROM s5vector_verify('$index'::regclass)");
	if ($ret != 0)
	{
		fail($name);
		diag("s5vector_verify failed: $err");
		return 0;
	}
	my @rows = grep { length } split /\n/, $out;
	my @bad = grep { (split /\|/, $_)[1] ne 'true' } @rows;
	my $ok = ok(@rows >= 1 && !@bad, $name);
	diag("s5vector_verify: $_") for @bad;
	diag("s5vector_verify returned no rows") unless @rows;
	return $ok;
}

# Number of rows an index scan returns when asked for everything, nearest to $q first.
sub index_sweep_count
{
	my ($node, $table, $col, $q, $dbname) = @_;
	$dbname //= 'postgres';
	return $node->safe_psql($dbname, qq{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SET s5vector.ef_search = 1000; SET s5vector.max_scan_tuples = 100000000;
SET s5vector.iterative_scan = on;
SELECT count(*) FROM (SELECT id FROM $table ORDER BY $col <-> '$q' LIMIT 100000000) s;
});
}

# Mean recall@k of lists of approximate ids against lists of exact ids.
sub recall_at_k
{
	my ($exact, $approx, $k) = @_;
	my ($sum, $n) = (0, 0);
	for my $i (0 .. $#$exact)
	{
		my %truth = map { $_ => 1 } @{ $exact->[$i] }[ 0 .. $k - 1 ];
		my $hit = grep { $truth{$_} } @{ $approx->[$i] };
		$sum += $hit / $k;
		$n++;
	}
	return $n ? $sum / $n : 0;
}

sub ids_of
{
	my ($out) = @_;
	return [ grep { length } split /\n/, $out ];
}

# Top-k ids for query literal $q; $mode 'index' or 'exact'.
sub knn_ids
{
	my ($node, $table, $col, $op, $q, $k, $mode, $extra) = @_;
	$extra //= '';
	my $set = $mode eq 'index'
	  ? 'SET enable_seqscan = off; SET enable_bitmapscan = off;'
	  : 'SET enable_indexscan = off; SET enable_bitmapscan = off;';
	my $tie = $mode eq 'index' ? '' : ', id';
	return ids_of($node->safe_psql('postgres',
		"$set $extra SELECT id FROM $table ORDER BY $col $op '$q'$tie LIMIT $k"));
}

# Whether EXPLAIN of $sql shows an index scan on $index.
sub uses_index
{
	my ($node, $sql, $index, $dbname) = @_;
	$dbname //= 'postgres';
	my $plan = $node->safe_psql($dbname,
		"SET enable_seqscan = off; EXPLAIN (COSTS OFF) $sql");
	return ($plan =~ /Index Scan using $index/) ? 1 : 0;
}

# The SQLSTATE and message of the first ERROR (or FATAL) in psql's stderr, when psql ran with
# VERBOSITY=verbose ("ERROR:  XX002: message"); (undef, undef) when there is none.
sub sqlstate_of
{
	my ($err) = @_;
	return ($1, $2) if defined $err && $err =~ /(?:ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}):\s*([^\n]*)/;
	return (undef, undef);
}

# Overwrite bytes of a file at $offset (sysseek/syswrite: no buffering); returns the bytes that were there.
sub poke_file
{
	my ($file, $offset, $bytes) = @_;
	open(my $fh, '+<', $file) or die "open $file: $!";
	binmode $fh;
	my $old = peek_file($file, $offset, length $bytes);
	sysseek($fh, $offset, 0) or die "seek $file: $!";
	my $n = syswrite($fh, $bytes);
	die "write $file: $!" unless defined $n && $n == length $bytes;
	close $fh or die "close $file: $!";
	return $old;
}

# $len bytes of a file at $offset.
sub peek_file
{
	my ($file, $offset, $len) = @_;
	open(my $fh, '<', $file) or die "open $file: $!";
	binmode $fh;
	sysseek($fh, $offset, 0) or die "seek $file: $!";
	my $buf = '';
	my $n = sysread($fh, $buf, $len);
	die "read $file: $!" unless defined $n;
	close $fh;
	return $buf;
}

# Every file of a relation (main fork and its segments, _fsm, _vm, _init forks) given its path in the data
# directory ($node->data_dir . '/' . pg_relation_filepath(...)).
sub relation_files
{
	my ($path) = @_;
	return grep { -f $_ } ($path, glob("$path.[0-9]*"), glob("${path}_*"));
}

# Start an s5vector-node (installed beside postgres) on a free loopback port with a store under $dir. Extra
# arguments (--auth-token, --fail-rate, ...) are passed on. Returns a hash: {url, pid, store, handle}.
sub s5_node_start
{
	my ($dir, @args) = @_;
	require IPC::Run;
	mkdir $dir unless -d $dir;
	my ($in, $out, $err) = ('', '', '');
	my @cmd = ('s5vector-node', '--listen', '127.0.0.1:0', '--store', "$dir/store", @args);
	my $h = IPC::Run::start(\@cmd, \$in, \$out, \$err);
	my $deadline = time + 20;
	while ($out !~ m{listening on (http://\S+)} && time < $deadline)
	{
		$h->pump_nb;
		select(undef, undef, undef, 0.05);
	}
	die "s5vector-node did not start: $err" unless $out =~ m{listening on (http://\S+)};
	my $node = { url => $1, handle => $h, store => "$dir/store", args => [@args], dir => $dir };
	push @S5VTest::started_nodes, $node;
	return $node;
}

# A random auth token for a test node (s5_node_start($dir, '--auth-token', $token)).
sub s5_random_token
{
	return 'tok-' . join('', map { ('a' .. 'z')[ int(rand(26)) ] } 1 .. 24);
}

# postgresql.conf lines for a cluster that talks to the node $s5: autovacuum off, the library preloaded, the
# background worker off (tests drive the steps by hand), one S5 attempt with short timeouts. Options: token,
# timeout (s5vector.s5_timeout, default '5s').
sub s5_conf
{
	my ($s5, %o) = @_;
	my $conf = "autovacuum = off\ns5vector.s5_url = '$s5->{url}'\n";
	$conf .= "s5vector.s5_auth_token = '$o{token}'\n" if defined $o{token};
	$conf .= "s5vector.s5_retries = 1\ns5vector.s5_timeout = '" . ($o{timeout} // '5s') . "'\n";
	$conf .= "s5vector.s5_connect_timeout = '2s'\nshared_preload_libraries = 's5vector'\n";
	$conf .= "s5vector.worker_enabled = off\n";
	return $conf;
}

# Nodes still running when a test script ends (a failed test died before stopping them) are stopped.
our @started_nodes;
END { s5_node_stop($_) for @started_nodes; }

# Stop a node started by s5_node_start (SIGTERM, then wait).
sub s5_node_stop
{
	my ($node) = @_;
	return unless $node->{handle};
	eval { $node->{handle}->signal('TERM'); $node->{handle}->finish; };
	delete $node->{handle};
}


# The first $n images of a gzipped idx3 file (Fashion-MNIST) as vector literals '[p0,...]': a 16-byte header
# (magic 0x00000803, count, rows, cols, big endian), then rows*cols uint8 per image; rows*cols must be $dim.
sub read_idx_images
{
	my ($file, $n, $dim) = @_;
	my $z = IO::Uncompress::Gunzip->new($file) or die "gunzip $file: $GunzipError";
	my $hdr = '';
	$z->read($hdr, 16) == 16 or die "short header in $file";
	my ($magic, $count, $rows, $cols) = unpack('N4', $hdr);
	die "bad idx3 magic in $file" unless $magic == 0x803 && $rows * $cols == $dim;
	die "$file has only $count images" if $count < $n;
	my @images;
	for (1 .. $n)
	{
		my $buf = '';
		my $got = 0;
		while ($got < $dim)
		{
			my $r = $z->read($buf, $dim - $got, $got);
			die "short read in $file" unless $r;
			$got += $r;
		}
		push @images, '[' . join(',', unpack('C*', $buf)) . ']';
	}
	$z->close;
	return \@images;
}

1;
