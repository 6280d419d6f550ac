# s5vector_verify answers promptly and correctly beside ordinary traffic: an open transaction holding
# uncommitted updates, inserts and deletes on the table does not make it wait (it used to wait until
# statement_timeout, scanning with SnapshotAny) nor print warnings, and inserts running while it reads are
# reported in its output (a 'concurrent changes' row, failures they explain as inconclusive), never as faults.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);
use S5VTest;

my $dim = 8;
my $node = PostgreSQL::Test::Cluster->new('verify_concurrent');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
$node->safe_psql('postgres', qq{
	CREATE EXTENSION s5vector;
	CREATE TABLE t (id int PRIMARY KEY, v vector($dim), note text) WITH (fillfactor = 50);
	INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, 'x' FROM generate_series(1, 3000) i;
	CREATE INDEX t_idx ON t USING s5vector (v) WITH (m = 8, ef_construction = 32);
});
verify_all_ok($node, 't_idx', 'before: verify all ok');

# Session A: an open transaction with uncommitted changes of every kind (the table has room for HOT updates,
# which made the SnapshotAny scan wait for the updater), left open.
my ($in, $out, $err) = ('', '', '');
my $a = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-f', '-' ],
	'<', \$in, '>', \$out, '2>', \$err);
$in .= qq{BEGIN;
UPDATE t SET v = @{[ vec_sql('id + 100000', $dim) ]} WHERE id <= 200;
UPDATE t SET note = 'hot' WHERE id BETWEEN 201 AND 400;
DELETE FROM t WHERE id BETWEEN 401 AND 500;
INSERT INTO t SELECT i, @{[ vec_sql('i', $dim) ]}, 'new' FROM generate_series(5001, 5300) i;
SELECT 'changes made';
};
my $t0 = time;
while ($out !~ /changes made/ && time - $t0 < 60)
{
	$a->pump_nb;
	usleep(20_000);
}
like($out, qr/changes made/, 'session A holds uncommitted changes');

my $verify_sql = q{SET statement_timeout = '20s';
SELECT check_name || '|' || coalesce(ok::text, 'null') || '|' || detail FROM s5vector_verify('t_idx')};
my $start = time;
my ($ret, $vout, $verr) = $node->psql('postgres', $verify_sql);
my $elapsed = time - $start;
is($ret, 0, 'verify beside an open transaction: answers') or diag($verr);
cmp_ok($elapsed, '<', 5, sprintf('verify beside an open transaction: returns within 5 s (took %.2f s)', $elapsed));
unlike($verr, qr/WARNING/, 'verify beside an open transaction: no warnings');
unlike($vout, qr/\|(false|null)\|/, 'verify beside an open transaction: every check ok') or diag($vout);
like($vout, qr/^heap coverage\|true\|0 of 3000 live heap rows missing/m,
	'verify beside an open transaction: counts the rows its snapshot sees');

$in .= "COMMIT;\nSELECT 'committed';\n";
$t0 = time;
while ($out !~ /committed/ && time - $t0 < 60)
{
	$a->pump_nb;
	usleep(20_000);
}
$in .= "\\q\n";
$a->finish;
like($out, qr/committed/, 'session A committed');
($ret, $vout, $verr) = $node->psql('postgres', $verify_sql);
like($vout, qr/^heap coverage\|true\|0 of 3200 live heap rows missing/m, 'after the commit: the new rows are covered');

# Inserts running while verify reads: it never reports a fault, and says when the index changed under it.
my ($iin, $iout, $ierr) = ('', '', '');
my $sql = '';
for my $b (0 .. 199)
{
	my $lo = 10_001 + $b * 10;
	$sql .= "INSERT INTO t SELECT i, " . vec_sql('i', $dim) . ", 'c' FROM generate_series($lo, @{[ $lo + 9 ]}) i;\n";
}
my $ins = IPC::Run::start([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql ],
	'<', \undef, '>', \$iout, '2>', \$ierr);
my ($runs, $faults, $changed) = (0, 0, 0);
while ($runs < 20 && $ins->pump_nb)
{
	($ret, $vout, $verr) = $node->psql('postgres', $verify_sql);
	$runs++;
	$faults++ if $ret != 0 || $vout =~ /\|false\|/ || $verr =~ /WARNING/;
	diag("fault: $vout $verr") if $vout =~ /\|false\|/;
	$changed++ if $vout =~ /^concurrent changes\|true\|/m;
}
$ins->finish;
cmp_ok($runs, '>', 0, "verify ran $runs times during the inserts");
is($faults, 0, 'verify during inserts: no failed check, no error, no warning');
note "$changed of $runs runs saw the index change";
verify_all_ok($node, 't_idx', 'after the inserts: verify all ok');

$node->stop;
done_testing();
