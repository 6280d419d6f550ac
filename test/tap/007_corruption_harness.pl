# Page-corruption harness (issue 12, item 7).
#
# Builds a small index (300 rows x 8 dimensions with a timestamptz age column, m = 4: several pages), then for
# each case writes bad values into the stopped cluster's index file (metapage fields, element and neighbour
# tuples, line pointers, page headers, special space), starts the cluster and runs, each under a
# statement_timeout:
#   scan    ORDER BY v <-> q LIMIT 10 through the index
#   null    the NULL-query sweep (a generic prepared plan, so the planner cannot fold the NULL away)
#   age     an age-filtered ORDER BY ... LIMIT 10 through the index
#   verify  s5vector_verify
#   stats   s5vector_index_stats
#   insert  an INSERT
#   vacuum  a DELETE (of the element the case aims at, among others), then VACUUM
# and first, EXPLAIN of the three queries, which must show the index (else the case tests nothing).
# A case fails on any crash (the server log), any hang (statement_timeout hit, or a statement deaf to it), any
# growth of the index or heap file from one of the read-only statements (explain .. stats), and any outcome
# that is neither the right answer (that of the pristine index, which with ef_search = 1000 is the exact answer
# of a sequential scan) nor a clean corruption error (SQLSTATE XX001 or XX002). A few corruptions a scan cannot
# tell from a legitimate state (%TOLERATE below) may give wrong scan answers, provided s5vector_verify reports
# them.
#
# Before each case the index and heap files (all forks) are restored from a pristine copy.
# One line per case and statement is printed (note: in the test's log, or with prove -v):
#   <case> <statement> <outcome>
# Failing lines are also printed as diagnostics.
#
# S5V_HARNESS_CASE=name[,name...] runs only those cases (names are exact, or Perl regexes), e.g.
#   S5V_HARNESS_CASE=nb_slot_blk_invalid bash scripts/pg-tests.sh --no-regress test/tap/007_corruption_harness.pl
use strict;
use warnings;
use File::Copy;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S5VTest;

my $BLCKSZ = 8192;
my $STATEMENT_TIMEOUT = '5s';
my $DEAF_TIMEOUT = 20; # seconds: a statement still running then ignored statement_timeout
my $ROWS = 300;
my $DIM = 8;
my $t_start = time;

my @only = grep { length } split /,/, ($ENV{S5V_HARNESS_CASE} // '');

my $node = PostgreSQL::Test::Cluster->new('harness');
$node->init;
$node->append_conf('postgresql.conf', qq{
autovacuum = off
restart_after_crash = on
log_min_messages = warning
});
$node->start;

is($node->safe_psql('postgres', 'SHOW data_checksums'), 'off', 'no data checksums (pages are edited raw)');

$node->safe_psql('postgres', qq{
	CREATE EXTENSION s5vector;
	CREATE TABLE t (id int, v vector($DIM), ts timestamptz);
	INSERT INTO t SELECT i, } . vec_sql('i', $DIM) . qq{, '2025-01-01 00:00+00'::timestamptz + i * interval '1 hour'
	  FROM generate_series(1, $ROWS) i;
	CREATE INDEX t_idx ON t USING s5vector (v, ts) WITH (m = 4, ef_construction = 16, hot_window = 'infinity');
	VACUUM (FREEZE, ANALYZE) t;
	CHECKPOINT;
});

my $datadir = $node->data_dir;
my $heap_path = "$datadir/" . $node->safe_psql('postgres', "SELECT pg_relation_filepath('t')");
my $idx_path = "$datadir/" . $node->safe_psql('postgres', "SELECT pg_relation_filepath('t_idx')");

# Heap row of every ctid, and every row's vector and age.
my (%id_of_ctid, %vec_of_id, %ts_of_id);
for my $line (split /\n/, $node->safe_psql('postgres', 'SELECT ctid, id, v, ts FROM t'))
{
	my ($ctid, $id, $v, $ts) = split /\|/, $line;
	$ctid =~ /\((\d+),(\d+)\)/ or die "ctid $ctid";
	$id_of_ctid{"$1/$2"} = $id;
	$vec_of_id{$id} = $v;
	$ts_of_id{$id} = $ts;
}

$node->stop;

# ---------------------------------------------------------------------------------------------------------------
# The pristine index, parsed (layouts: src/pg/index.h).

my $pristine_dir = $node->basedir . '/pristine';
mkdir $pristine_dir or die "mkdir $pristine_dir: $!";
my %pristine; # live path -> copy
for my $f (relation_files($heap_path), relation_files($idx_path))
{
	(my $base = $f) =~ s{.*/}{};
	copy($f, "$pristine_dir/$base") or die "copy $f: $!";
	$pristine{$f} = "$pristine_dir/$base";
}

my $image = peek_file($idx_path, 0, -s $idx_path);
my $nblocks = length($image) / $BLCKSZ;
my $heap_nblocks = (-s $heap_path) / $BLCKSZ;

# Metapage fields: page offset (the contents start after the 24-byte page header) and pack format.
my %MF = (
	magic => [ 24, 'V' ],
	version => [ 28, 'V' ],
	dimensions => [ 32, 'V' ],
	metric => [ 36, 'C' ],
	age_kind => [ 37, 'C' ],
	m => [ 38, 'v' ],
	ef_construction => [ 40, 'v' ],
	max_level => [ 42, 'v' ],
	entry_blkno => [ 68, 'V' ],
	entry_offno => [ 72, 'v' ],
	entry_level => [ 74, 'v' ],
	lists => [ 44, 'l<' ],
	hot_window_infinite => [ 64, 'C' ],
	insert_page => [ 76, 'V' ],);
# Format version 2 moved the counters (hot_elements at contents offset 64 instead of 72); the fields above did
# not move.
my $format = unpack('V', substr($image, 28, 4));
$MF{hot_elements} = [ $format >= 2 ? 24 + 64 : 24 + 72, 'q<' ];
my %meta = map { $_ => unpack($MF{$_}[1], substr($image, $MF{$_}[0], 8)) } keys %MF;

# Every line pointer and tuple of the data pages.
my %items; # "blk/off" -> { blk, off, lp_off, lp_flags, lp_len, type, ... }
my %page;  # blk -> { lower, upper, special, maxoff }
for my $blk (1 .. $nblocks - 1)
{
	my $base = $blk * $BLCKSZ;
	my ($lower, $upper, $special) = unpack('vvv', substr($image, $base + 12, 6));
	my $maxoff = ($lower - 24) / 4;
	$page{$blk} = { lower => $lower, upper => $upper, special => $special, maxoff => $maxoff };
	for my $off (1 .. $maxoff)
	{
		my $lp = unpack('V', substr($image, $base + 24 + 4 * ($off - 1), 4));
		my %it = (blk => $blk, off => $off, lp_off => $lp & 0x7fff, lp_flags => ($lp >> 15) & 3, lp_len => $lp >> 17);
		if ($it{lp_flags} == 1 && $it{lp_len} > 0)
		{
			my $tup = substr($image, $base + $it{lp_off}, $it{lp_len});
			$it{type} = ord($tup);
			if ($it{type} == 1)
			{
				my ($level, $flags, $hh, $hl, $ho, $nh, $nl, $no) = unpack('x2CCv3v3', $tup);
				@it{qw(level flags heap_blk heap_off nb_blk nb_off)} = ($level, $flags, ($hh << 16) | $hl, $ho,
					($nh << 16) | $nl, $no);
				$it{id} = $id_of_ctid{"$it{heap_blk}/$it{heap_off}"};
			}
			elsif ($it{type} == 2)
			{
				$it{count} = unpack('x2v', $tup);
				$it{slots} = [ map { my ($h, $l, $o) = unpack('v3', substr($tup, 4 + 6 * $_, 6)); [ ($h << 16) | $l, $o ] }
					  0 .. $it{count} - 1 ];
			}
		}
		$items{"$blk/$off"} = \%it;
	}
}
my @elements = sort { $a->{blk} <=> $b->{blk} || $a->{off} <=> $b->{off} } grep { ($_->{type} // 0) == 1 } values %items;

# The layout is what index.h says, or the offsets below are wrong: stop here.
my $layout_ok = ok(
	$meta{magic} == 0x53355643 && ($meta{version} == 1 || $meta{version} == 2) && $meta{dimensions} == $DIM && $meta{m} == 4
	  && $meta{ef_construction} == 16 && $meta{hot_elements} == $ROWS && $meta{entry_blkno} >= 1
	  && $meta{entry_blkno} < $nblocks && $meta{insert_page} >= 1 && $meta{insert_page} < $nblocks
	  && @elements == $ROWS && !grep({ !defined $_->{id} } @elements),
	"pristine index (format $format) parsed: $nblocks blocks, " . scalar(@elements) . " elements, heap $heap_nblocks blocks");
BAIL_OUT('index layout differs from src/pg/index.h: update the harness') unless $layout_ok && $nblocks >= 4;

sub item { my ($blk, $off) = @_; return $items{"$blk/$off"} // die "no item $blk/$off"; }
sub nbr_of { my ($e) = @_; return item($e->{nb_blk}, $e->{nb_off}); }

my $entry = item($meta{entry_blkno}, $meta{entry_offno});
die 'entry point is not an element' unless $entry->{type} == 1;
die 'entry point has level 0' unless $entry->{level} >= 1;

# The element most cases corrupt: on block 2, level 0, its neighbour tuple on its own page, not the entry.
my $mid_blk = 2;
my @cands = grep { $_->{blk} == $mid_blk && $_->{level} == 0 && $_->{nb_blk} == $mid_blk && $_ != $entry } @elements;
die "no level-0 element on block $mid_blk" unless @cands;
my $mid = $cands[ int(@cands / 2) ];
my $mid_nbr = nbr_of($mid);
# Another element of that page, and the element of that page stored highest (first written) whose neighbour
# tuple also lies high on the page.
my ($other) = grep { $_ != $mid && $_ != $entry } @cands;
my ($high) = sort { $b->{lp_off} <=> $a->{lp_off} }
  grep { $_->{blk} == $mid_blk && $_ != $entry && nbr_of($_)->{blk} == $mid_blk && nbr_of($_)->{lp_off} > 5200 }
  @elements;
die 'no element high on the page' unless $high;
my $ins_blk = $meta{insert_page};
my $ins_el = (grep { $_->{blk} == $ins_blk } @elements)[0] // die "no element on the insert page";

note(sprintf('index: %d blocks; entry %d/%d (level %d, id %d); mid element %d/%d (id %d, neighbours at %d/%d); '
	  . 'insert page %d; heap %d blocks',
	$nblocks, $entry->{blk}, $entry->{off}, $entry->{level}, $entry->{id}, $mid->{blk}, $mid->{off}, $mid->{id},
	$mid->{nb_blk}, $mid->{nb_off}, $ins_blk, $heap_nblocks));

# ---------------------------------------------------------------------------------------------------------------
# The cases: name, the element the queries aim at (its vector is the query; the age filter keeps it), and the
# writes into the index file (file offset, bytes).

sub tid { my ($blk, $off) = @_; return pack('v3', $blk >> 16, $blk & 0xffff, $off); }
sub lp { my ($off, $flags, $len) = @_; return pack('V', ($off & 0x7fff) | ($flags << 15) | ($len << 17)); }
sub meta_w { my ($f, $val) = @_; return [ $MF{$f}[0], pack($MF{$f}[1], $val) ]; }
sub el_w { my ($e, $at, $bytes) = @_; return [ $e->{blk} * $BLCKSZ + $e->{lp_off} + $at, $bytes ]; }
sub lp_w { my ($blk, $off, $bytes) = @_; return [ $blk * $BLCKSZ + 24 + 4 * ($off - 1), $bytes ]; }
sub hdr_w { my ($blk, $at, $fmt, $val) = @_; return [ $blk * $BLCKSZ + $at, pack($fmt, $val) ]; }
sub slot_w { my ($n, $slot, $blk, $off) = @_; return el_w($n, 4 + 6 * $slot, tid($blk, $off)); }

my $beyond = $nblocks + 5;
my $mid_maxoff = $page{$mid_blk}{maxoff};
my @cases;
sub add_case { my ($name, $target, @writes) = @_; push @cases, { name => $name, target => $target, writes => \@writes }; }

add_case('pristine', $mid);

# Metapage.
add_case('meta_magic', $mid, meta_w('magic', 0xdeadbeef));
add_case('meta_version', $mid, meta_w('version', 999));
add_case('meta_dims_0', $mid, meta_w('dimensions', 0));
add_case('meta_dims_ffffffff', $mid, meta_w('dimensions', 0xffffffff));
add_case('meta_dims_7', $mid, meta_w('dimensions', 7));
add_case('meta_dims_4000', $mid, meta_w('dimensions', 4000));
add_case('meta_metric_9', $mid, meta_w('metric', 9));
add_case('meta_age_kind_7', $mid, meta_w('age_kind', 7));
add_case('meta_age_kind_0', $mid, meta_w('age_kind', 0));
add_case("meta_m_$_", $mid, meta_w('m', $_)) for (0, 1, 65535);
add_case("meta_efc_$_", $mid, meta_w('ef_construction', $_)) for (0, 1, 65535);
add_case('meta_max_level_65535', $mid, meta_w('max_level', 65535));
add_case('meta_entry_blk_beyond', $mid, meta_w('entry_blkno', $beyond));
add_case('meta_entry_blk_ffffffff', $mid, meta_w('entry_blkno', 0xffffffff));
add_case('meta_entry_blk_0', $mid, meta_w('entry_blkno', 0));
add_case('meta_entry_off_beyond', $mid, meta_w('entry_offno', $page{ $entry->{blk} }{maxoff} + 3));
add_case('meta_entry_off_0', $mid, meta_w('entry_offno', 0));
add_case('meta_entry_to_nbr', $mid, meta_w('entry_blkno', $entry->{nb_blk}), meta_w('entry_offno', $entry->{nb_off}));
add_case('meta_entry_level_1000', $mid, meta_w('entry_level', 1000));
add_case('meta_entry_level_neg', $mid, meta_w('entry_level', 0xffff)); # -1
add_case('meta_lists_neg', $mid, meta_w('lists', -1));
add_case('meta_hot_window_infinite_7', $mid, meta_w('hot_window_infinite', 7));
add_case('meta_insert_page_0', $mid, meta_w('insert_page', 0));
add_case('meta_insert_page_beyond', $mid, meta_w('insert_page', $beyond));
add_case('meta_insert_page_ffffffff', $mid, meta_w('insert_page', 0xffffffff));
add_case('meta_pd_special', $mid, hdr_w(0, 16, 'v', 8000));
add_case('meta_page_type_hot', $mid, hdr_w(0, $BLCKSZ - 4, 'v', 2));

# Element tuples (type 0, version 1, level 2, flags 3, heaptid 4, neighbortid 10, age 16, vector 24).
add_case('el_type_9', $mid, el_w($mid, 0, pack('C', 9)));
add_case('el_type_nbr', $mid, el_w($mid, 0, pack('C', 2)));
add_case('el_version_7', $mid, el_w($mid, 1, pack('C', 7)));
add_case('el_level_200', $mid, el_w($mid, 2, pack('C', 200)));
add_case('el_level_1', $mid, el_w($mid, 2, pack('C', 1)));
add_case('el_flags_fc', $mid, el_w($mid, 3, pack('C', 0xfc)));
add_case('el_heaptid_blk_invalid', $mid, el_w($mid, 4, tid(0xffffffff, 1)));
add_case('el_heaptid_blk_beyond', $mid, el_w($mid, 4, tid($heap_nblocks + 10, 1)));
add_case('el_heaptid_off_0', $mid, el_w($mid, 4, tid($mid->{heap_blk}, 0)));
add_case('el_heaptid_off_2000', $mid, el_w($mid, 4, tid($mid->{heap_blk}, 2000))); # > MaxHeapTuplesPerPage
add_case('el_nbrtid_invalid', $mid, el_w($mid, 10, tid(0xffffffff, 0)));
add_case('el_nbrtid_pnew', $mid, el_w($mid, 10, tid(0xffffffff, 1)));
add_case('el_nbrtid_beyond', $mid, el_w($mid, 10, tid($beyond, 1)));
add_case('el_nbrtid_meta', $mid, el_w($mid, 10, tid(0, 1)));
add_case('el_nbrtid_off_beyond', $mid, el_w($mid, 10, tid($mid_blk, $mid_maxoff + 3)));
add_case('el_nbrtid_element', $mid, el_w($mid, 10, tid($other->{blk}, $other->{off})));
# A NaN or infinity cannot be stored through the vector type (its input refuses them): on a page it is corruption.
add_case('el_vector_nan', $mid, el_w($mid, 24, pack('V', 0x7fc00000)));
add_case('el_vector_inf', $mid, el_w($mid, 24 + 4, pack('V', 0x7f800000)));
add_case('entry_type_9', $entry, el_w($entry, 0, pack('C', 9)));
add_case('entry_nbrtid_pnew', $entry, el_w($entry, 10, tid(0xffffffff, 1)));

# Neighbour tuples (type 0, version 1, count 2, slots from 4, 6 bytes each).
add_case('nb_type_9', $mid, el_w($mid_nbr, 0, pack('C', 9)));
add_case('nb_version_7', $mid, el_w($mid_nbr, 1, pack('C', 7)));
add_case('nb_count_0', $mid, el_w($mid_nbr, 2, pack('v', 0)));
add_case('nb_count_65535', $mid, el_w($mid_nbr, 2, pack('v', 65535)));
add_case('nb_count_plus1', $mid, el_w($mid_nbr, 2, pack('v', $mid_nbr->{count} + 1)));
add_case('nb_count_minus1', $mid, el_w($mid_nbr, 2, pack('v', $mid_nbr->{count} - 1)));
add_case('nb_slot_blk_invalid', $mid, slot_w($mid_nbr, 0, 0xffffffff, 1));
add_case('nb_slot_blk_beyond', $mid, slot_w($mid_nbr, 0, $beyond, 1));
add_case('nb_slot_off_beyond', $mid, slot_w($mid_nbr, 0, $mid_blk, $mid_maxoff + 3));
add_case('nb_slot_meta', $mid, slot_w($mid_nbr, 0, 0, 1));
add_case('nb_slot_to_nbr', $mid, slot_w($mid_nbr, 0, $other->{nb_blk}, $other->{nb_off}));
add_case('nb_slot_self', $mid, slot_w($mid_nbr, 0, $mid->{blk}, $mid->{off}));
add_case('entry_nb_upper_blk_invalid', $entry, slot_w(nbr_of($entry), 8, 0xffffffff, 1));
add_case('entry_nb_upper_blk_beyond', $entry, slot_w(nbr_of($entry), 8, $beyond, 1));

# Line pointers (lp_off 15 bits, lp_flags 2, lp_len 15).
add_case('lp_off_beyond', $mid, lp_w($mid_blk, $mid->{off}, lp(8190, 1, $mid->{lp_len})));
add_case('lp_len_0', $mid, lp_w($mid_blk, $mid->{off}, lp($mid->{lp_off}, 1, 0)));
add_case('lp_len_huge', $mid, lp_w($mid_blk, $mid->{off}, lp($mid->{lp_off}, 1, 0x7fff)));
add_case('lp_unused', $mid, lp_w($mid_blk, $mid->{off}, lp(0, 0, 0)));
add_case('lp_redirect', $mid, lp_w($mid_blk, $mid->{off}, lp($other->{off}, 2, 0)));
add_case('lp_alias_two', $mid, lp_w($mid_blk, $other->{off}, lp($mid->{lp_off}, 1, $mid->{lp_len})));
{
	# As many line pointers to one element as fit below it and its neighbour tuple (over 1000: more than
	# MaxOffsetNumber / 2); they overwrite the tuples stored lower on the page.
	my $top = $high->{lp_off} < nbr_of($high)->{lp_off} ? $high->{lp_off} : nbr_of($high)->{lp_off};
	my $n = int(($top - 24) / 4);
	my $lower = 24 + 4 * $n;
	die "high element too low ($n line pointers)" unless $n > 1100;
	add_case('lp_alias_many', $high, [ $mid_blk * $BLCKSZ + 24, lp($high->{lp_off}, 1, $high->{lp_len}) x $n ],
		hdr_w($mid_blk, 12, 'v', $lower), hdr_w($mid_blk, 14, 'v', $lower));
}

# Page headers (pd_lower 12, pd_upper 14, pd_special 16) and special space (nextblkno, page_type, page_id).
add_case('pd_lower_small', $mid, hdr_w($mid_blk, 12, 'v', 10));
add_case('pd_lower_gt_upper', $mid, hdr_w($mid_blk, 12, 'v', $page{$mid_blk}{upper} + 8));
add_case('pd_upper_beyond', $mid, hdr_w($mid_blk, 14, 'v', 9000));
add_case('pd_special_8000', $mid, hdr_w($mid_blk, 16, 'v', 8000));
add_case('sp_page_type_meta', $mid, hdr_w($mid_blk, $BLCKSZ - 4, 'v', 1));
add_case('sp_page_type_77', $mid, hdr_w($mid_blk, $BLCKSZ - 4, 'v', 77));
add_case('sp_page_id', $mid, hdr_w($mid_blk, $BLCKSZ - 2, 'v', 0x1234));
add_case('ins_pd_upper_small', $ins_el, hdr_w($ins_blk, 14, 'v', 20));
add_case('ins_lp_len_0', $ins_el, lp_w($ins_blk, $ins_el->{off}, lp($ins_el->{lp_off}, 1, 0)));

add_case('pristine_again', $entry);

# Corruptions a scan cannot tell from a state that concurrent VACUUM and inserts legitimately leave behind (a link
# to a line pointer VACUUM freed, or that an insert reused for a neighbour tuple): the element is skipped, as if
# deleted. Line pointers aliasing one tuple could only be seen by checking every page for overlapping items.
# For these the scans may miss (or repeat) the rows involved, but s5vector_verify must report the corruption
# (a failing check or a clean error); a crash, hang or growth still fails, and so does VACUUM going wrong.
my %TOLERATE = (
	lp_unused => 'the element looks freed by VACUUM',
	el_type_nbr => 'the element looks like a neighbour tuple in a reused slot',
	lp_alias_two => 'two line pointers share one element',
	lp_alias_many => 'over 1100 line pointers share one element',);
my %TOLERATED_STATEMENTS = map { $_ => 1 } qw(scan null age);

if (@only)
{
	my @sel = grep { my $n = $_->{name}; grep { $n eq $_ || $n =~ /^(?:$_)$/ } @only } @cases;
	BAIL_OUT("S5V_HARNESS_CASE=$ENV{S5V_HARNESS_CASE} matches no case") unless @sel;
	@cases = @sel;
}

# ---------------------------------------------------------------------------------------------------------------
# The statements.

my $SETUP = "SET statement_timeout = '$STATEMENT_TIMEOUT'; SET enable_seqscan = off; SET enable_bitmapscan = off; "
  . "SET s5vector.ef_search = 1000;\n";
my $NULL_PREP = "PREPARE p(vector) AS SELECT id FROM t ORDER BY v <-> \$1 LIMIT 1000;\n"
  . "SET plan_cache_mode = force_generic_plan;\n";

sub q_of { my ($c) = @_; return $vec_of_id{ $c->{target}{id} }; }
sub age_of { my ($c) = @_; return $ts_of_id{ $c->{target}{id} }; }

sub scan_sql { return "SELECT id FROM t ORDER BY v <-> '" . q_of(@_) . "' LIMIT 10;"; }
sub age_sql
{
	return "SELECT id FROM t WHERE ts >= '" . age_of(@_) . "'::timestamptz - interval '60 hours' "
	  . "ORDER BY v <-> '" . q_of(@_) . "' LIMIT 10;";
}

my @statements = (
	{ name => 'explain', ro => 1, plans => 3,
	  sql => sub { 'EXPLAIN (COSTS OFF) ' . scan_sql(@_) . "\n" . $NULL_PREP . "EXPLAIN (COSTS OFF) EXECUTE p(NULL);\n"
		  . 'EXPLAIN (COSTS OFF) ' . age_sql(@_) } },
	{ name => 'scan', ro => 1, sql => \&scan_sql },
	{ name => 'null', ro => 1, unordered => 1, prep => $NULL_PREP, sql => sub { 'EXECUTE p(NULL);' } },
	{ name => 'age', ro => 1, sql => \&age_sql },
	{ name => 'verify', ro => 1, sql => sub { "SELECT check_name || '=' || ok FROM s5vector_verify('t_idx');" } },
	{ name => 'stats', ro => 1, sql => sub { "SELECT * FROM s5vector_index_stats('t_idx');" } },
	{ name => 'insert', sql => sub { "INSERT INTO t VALUES (1001, '" . q_of(@_) . "', now());" } },
	{ name => 'vacuum', sql => sub { "DELETE FROM t WHERE id % 10 = 0 OR id = $_[0]{target}{id};\nVACUUM t;" } },);

# Runs SQL in a fresh session; returns { out, err, deaf }.
sub run_sql
{
	my ($sql) = @_;
	my ($out, $err, $deaf) = ('', '', 0);
	$node->psql('postgres', $sql, stdout => \$out, stderr => \$err, on_error_stop => 0,
		extra_params => [ '-v', 'VERBOSITY=verbose' ], timeout => $DEAF_TIMEOUT, timed_out => \$deaf);
	return { out => $out // '', err => $err // '', deaf => $deaf };
}

sub log_since
{
	my ($pos) = @_;
	open(my $fh, '<', $node->logfile) or return '';
	seek($fh, $pos, 0);
	local $/;
	my $s = <$fh> // '';
	close $fh;
	return $s;
}

sub file_sizes { return join('/', map { -s $_ // 0 } ($idx_path, $heap_path)); }

sub wait_ready
{
	for (1 .. 120)
	{
		my ($ret) = $node->psql('postgres', 'SELECT 1', timeout => 5, timed_out => \my $to);
		return 1 if !$to && defined $ret && $ret == 0;
		sleep 1;
	}
	return 0;
}

sub restart_immediate
{
	$node->stop('immediate', fail_ok => 1);
	if ($node->{_pid})
	{
		# Still there: kill whatever is left of it.
		kill 'KILL', $node->{_pid};
		sleep 1;
		$node->_update_pid(-1);
	}
	$node->start;
}

# ---------------------------------------------------------------------------------------------------------------
# The expected answers, from the pristine cluster: the exact answer (a sequential scan), and the index's, which
# must agree (ef_search = 1000 over 300 elements); EXPLAIN must show the index.

$node->start;
my %expect; # case name -> statement -> expected output
my $stats_pristine = $node->safe_psql('postgres', "SELECT * FROM s5vector_index_stats('t_idx')");
my $all_ids = join("\n", 1 .. $ROWS);
my %expect_of_target; # element id -> statement -> exact answer
for my $c (@cases)
{
	my %e;
	for my $s (grep { $_->{name} =~ /^(scan|age)$/ } @statements)
	{
		if (my $known = $expect_of_target{ $c->{target}{id} }{ $s->{name} })
		{
			$e{ $s->{name} } = $known;
			next;
		}
		my $sql = $s->{sql}->($c);
		my $exact = $node->safe_psql('postgres', "SET enable_indexscan = off; SET enable_bitmapscan = off;\n"
			  . ($sql =~ s/ LIMIT 10/, id LIMIT 10/r));
		my $via_index = $node->safe_psql('postgres', $SETUP . $sql);
		my $plan = $node->safe_psql('postgres', $SETUP . "EXPLAIN (COSTS OFF) $sql");
		die "$c->{name} $s->{name}: not an index scan:\n$plan" unless $plan =~ /Index Scan using t_idx/;
		die "$c->{name} $s->{name}: index and exact answers differ on the pristine index:\n$via_index\n--\n$exact"
		  unless $via_index eq $exact;
		die "$c->{name} $s->{name}: target $c->{target}{id} not first" unless (split /\n/, $exact)[0] == $c->{target}{id};
		$e{ $s->{name} } = $expect_of_target{ $c->{target}{id} }{ $s->{name} } = $exact;
	}
	$e{null} = $all_ids;
	$e{stats} = $stats_pristine;
	$expect{ $c->{name} } = \%e;
}
my $null_plan = $node->safe_psql('postgres', $SETUP . $NULL_PREP . 'EXPLAIN (COSTS OFF) EXECUTE p(NULL);');
like($null_plan, qr/Index Scan using t_idx/, 'the NULL-query sweep goes through the index');
note("NULL sweep plan:\n$null_plan");

# ---------------------------------------------------------------------------------------------------------------
# Run the cases.

my (@failures, @verify_silent);
for my $c (@cases)
{
	my $t0 = time;
	$node->stop('fast', fail_ok => 1) or restart_immediate() && $node->stop('fast');
	for my $f (relation_files($heap_path), relation_files($idx_path))
	{
		unlink $f or die "unlink $f: $!";
	}
	for my $f (sort keys %pristine)
	{
		copy($pristine{$f}, $f) or die "copy $pristine{$f}: $!";
	}
	poke_file($idx_path, @$_) for @{ $c->{writes} };
	$node->start;

	my @bad;
	my $verify_silent = 0;
	for my $s (@statements)
	{
		my $sql = $SETUP . ($s->{prep} // '') . $s->{sql}->($c);
		my $logpos = -s $node->logfile;
		my $before = file_sizes();
		my $r = run_sql($sql);
		my $after = file_sizes();
		my $log = log_since($logpos);
		my ($state, $msg) = sqlstate_of($r->{err});
		my ($outcome, $fail);
		if ($r->{deaf})
		{
			($outcome, $fail) = ("HANG: still running after ${DEAF_TIMEOUT}s (deaf to statement_timeout)", 1);
			restart_immediate();
		}
		elsif ($log =~ /(terminated by signal \d+[^\n]*|was terminated by exception[^\n]*)/
			|| $r->{err} =~ /(server closed the connection unexpectedly|connection to server was lost)/)
		{
			my $what = $1;
			# The postmaster may log the signal just after the client saw the connection go.
			for (1 .. 20)
			{
				last if $what =~ /terminated by/;
				select(undef, undef, undef, 0.1);
				$what = $1 if log_since($logpos) =~ /(terminated by signal \d+[^\n]*|was terminated by exception[^\n]*)/;
			}
			($outcome, $fail) = ("CRASH: $what", 1);
			wait_ready() or BAIL_OUT("server did not come back after a crash in $c->{name} $s->{name}");
		}
		elsif (defined $state && $state eq '57014')
		{
			($outcome, $fail) = ("HANG: statement_timeout ($msg)", 1);
		}
		elsif ($s->{ro} && $after ne $before)
		{
			($outcome, $fail) = ("GROWTH: index/heap bytes $before -> $after", 1);
			$outcome .= " ($state: $msg)" if defined $state;
		}
		elsif (defined $state)
		{
			$fail = $state !~ /^XX00[12]$/;
			$outcome = ($fail ? "WRONG SQLSTATE $state" : "clean $state") . ": $msg";
		}
		elsif ($r->{err} =~ /ERROR/)
		{
			($outcome, $fail) = ("ERROR without SQLSTATE: $r->{err}", 1);
		}
		elsif (exists $expect{ $c->{name} }{ $s->{name} })
		{
			my ($got, $want) = ($r->{out}, $expect{ $c->{name} }{ $s->{name} });
			if ($s->{name} eq 'stats')
			{
				# pages and local_bytes are those of the file now (a growth is reported where it happened).
				my $size = -s $idx_path;
				my @w = split /\|/, $want, -1; # -1: a trailing NULL column (last_migration, last_offload, last_gc, last_error) stays a field
				$want = join('|', @w[ 0 .. 7 ], $size / $BLCKSZ, $size, @w[ 10 .. $#w ]); # then the cold columns
			}
			if ($s->{unordered})
			{
				my @g = split /\n/, $got;
				$got = join("\n", sort { $a <=> $b } @g);
			}
			if ($got eq $want)
			{
				($outcome, $fail) = ('ok', 0);
			}
			else
			{
				my @g = split /\n/, $got;
				my $shown = @g > 12 ? scalar(@g) . ' rows: ' . join(',', @g[ 0 .. 11 ]) . ',...' : join(',', @g);
				my $wanted = $s->{unordered} ? "ids 1..$ROWS once each" : join(',', split /\n/, $want);
				$wanted = join(',', split /\|/, $want) if $s->{name} eq 'stats';
				$shown = join(',', split /\|/, $got) if $s->{name} eq 'stats';
				($outcome, $fail) = ("WRONG ANSWER: got [$shown], want [$wanted]", 1);
				($outcome, $fail) = ("tolerated wrong answer ($TOLERATE{ $c->{name} }): got [$shown]", 0)
				  if $TOLERATE{ $c->{name} } && $TOLERATED_STATEMENTS{ $s->{name} };
			}
		}
		elsif ($s->{plans})
		{
			my $n = () = $r->{out} =~ /Index Scan using t_idx/g;
			$fail = $n != $s->{plans};
			$outcome = $fail ? "NOT AN INDEX SCAN (the harness tests nothing): $r->{out}" : 'ok';
		}
		elsif ($s->{name} eq 'verify')
		{
			my @rows = split /\n/, $r->{out};
			my @failed = map { (split /=/)[0] } grep { /=(?:f|false)$/ } @rows;
			die "verify output not understood: $r->{out}" if grep { !/=(?:t|true|f|false)$/ } @rows;
			$fail = 0;
			$outcome = @failed ? 'ok, reports: ' . join(', ', @failed) : 'ok, all checks pass';
			$verify_silent = 1 unless @failed;
		}
		else
		{
			($outcome, $fail) = ('ok', 0);
		}
		my $line = sprintf('%-28s %-7s %s', $c->{name}, $s->{name}, $outcome);
		note($line);
		push @bad, $line if $fail;
	}
	if ($TOLERATE{ $c->{name} } && $verify_silent)
	{
		my $line = sprintf('%-28s %-7s %s', $c->{name}, 'verify', 'VERIFY SILENT: reports nothing, and the scans may not notice');
		note($line);
		push @bad, $line;
	}
	push @verify_silent, $c->{name} if $verify_silent && $c->{name} !~ /^pristine/;
	ok(!@bad, sprintf('%s (%.1fs)', $c->{name}, time - $t0)) or diag(join("\n", @bad));
	push @failures, @bad;
}

note('s5vector_verify reports nothing (all checks pass) for: ' . join(' ', @verify_silent));
note(scalar(@failures) . " failing statements in " . scalar(@cases) . " cases");
note(sprintf('harness ran in %.0fs', time - $t_start));
$node->stop('immediate', fail_ok => 1);
done_testing();
