// The build journal: see build_journal.h (and docs/s5.md "CREATE INDEX with S5").
//
// A journal line is one blob: 64 hex digits of its BLAKE3 hash, a space, its size in bytes, a newline. The builder
// appends a line and fsyncs it before each upload, so a crash at any instant leaves every uploaded blob recorded
// (a line may name a blob that never reached the node: its delete answers NotFound). A partly collected journal is
// rewritten (a temporary file renamed over it) without the blobs already deleted.
extern "C" {
#include "postgres.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/transam.h"
#include "access/xact.h"
#include "common/file_perm.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/relfilenodemap.h"
}

#include "pg/build_journal.h"
#include "pg/gucs.h"
#include "pg/offload.h"

#include <cstdio>
#include <cstring>

namespace s5v::pg {

namespace {

// One build's journal, open for appends while its transaction runs.
struct Journal {
	Oid relnode;
	int fd;
	SubTransactionId subxid; // the subtransaction the build belongs to (moves up as subtransactions commit)
	char path[MAXPGPATH];
};

constexpr int kMaxJournals = 64; // builds of one transaction (REINDEX of a table with many s5vector indexes)
Journal journals[kMaxJournals];
int njournals = 0;
bool callbacks_registered = false;
char journal_dir[MAXPGPATH];

void JournalPath(char *out, Oid db, Oid spc, Oid relnode, TransactionId xid) {
	snprintf(out, MAXPGPATH, "%s/%u.%u.%u.%u.journal", BuildJournalDir(), db, spc, relnode, xid);
}

// What became of the (sub)transaction that wrote a journal.
enum class BuildFate { Running, Committed, Aborted };

BuildFate FateOf(TransactionId xid, Oid spc, Oid relnode) {
	if (TransactionIdIsInProgress(xid))
		return BuildFate::Running;
	// The commit log keeps the status of transactions since oldestClogXid; an older journal (older than any grace
	// in practice) is judged by its storage instead: a relation that still has it committed.
	LWLockAcquire(XactTruncationLock, LW_SHARED);
	bool known = TransactionIdFollowsOrEquals(xid, ShmemVariableCache->oldestClogXid);
	bool committed = known && TransactionIdDidCommit(xid);
	LWLockRelease(XactTruncationLock);
	if (!known)
		committed = OidIsValid(RelidByRelfilenode(spc, relnode));
	return committed ? BuildFate::Committed : BuildFate::Aborted;
}

// Close journal i (its flock goes with the descriptor); remove the file when the build committed.
void CloseJournal(int i, bool committed) {
	Journal *j = &journals[i];
	if (j->fd >= 0)
		close(j->fd);
	if (committed && unlink(j->path) != 0 && errno != ENOENT)
		ereport(WARNING, (errcode_for_file_access(), errmsg("could not remove file \"%s\": %m", j->path)));
	journals[i] = journals[--njournals];
}

void JournalXactCallback(XactEvent event, void *) {
	switch (event) {
	case XACT_EVENT_PRE_PREPARE:
		if (njournals > 0)
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			                errmsg("cannot PREPARE a transaction that uploaded segments of an s5vector index build"),
			                errhint("Build the index outside a prepared transaction.")));
		break;
	case XACT_EVENT_COMMIT:
	case XACT_EVENT_PARALLEL_COMMIT:
		while (njournals > 0)
			CloseJournal(njournals - 1, true);
		break;
	case XACT_EVENT_ABORT:
	case XACT_EVENT_PARALLEL_ABORT:
	case XACT_EVENT_PREPARE:
		while (njournals > 0)
			CloseJournal(njournals - 1, false);
		break;
	default:
		break;
	}
}

void JournalSubXactCallback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *) {
	for (int i = njournals - 1; i >= 0; i--) {
		if (journals[i].subxid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			journals[i].subxid = parentSubid; // the build now stands or falls with the parent
		else if (event == SUBXACT_EVENT_ABORT_SUB)
			CloseJournal(i, false); // rolled back: its blobs are orphans, the file stays for collection
	}
}

void WriteAll(int fd, const char *buf, size_t len, const char *path) {
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			ereport(ERROR, (errcode_for_file_access(), errmsg("could not write to file \"%s\": %m", path)));
		}
		buf += w;
		len -= (size_t)w;
	}
}

// A journal line: true and the blob when it parses.
bool ParseLine(const char *line, uint8 *hash, uint64 *size) {
	if (strlen(line) < 66 || line[64] != ' ')
		return false;
	for (int k = 0; k < 32; k++) {
		unsigned v;
		if (sscanf(line + 2 * k, "%2x", &v) != 1)
			return false;
		hash[k] = (uint8)v;
	}
	char *end = nullptr;
	errno = 0;
	unsigned long long s = strtoull(line + 65, &end, 10);
	if (errno != 0 || end == line + 65 || *end != '\0')
		return false;
	*size = (uint64)s;
	return true;
}

} // namespace

const char *BuildJournalDir() {
	if (journal_dir[0] == '\0')
		snprintf(journal_dir, sizeof(journal_dir), "%s/s5vector_build_journal", DataDir);
	return journal_dir;
}

void BuildJournalRecord(Relation index, const uint8 *hash, uint64 size) {
	Oid relnode = index->rd_node.relNode;
	int i = 0;
	while (i < njournals && journals[i].relnode != relnode)
		i++;
	if (i == njournals) {
		if (njournals == kMaxJournals)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			                errmsg("too many s5vector index builds with S5 uploads in one transaction (at most %d)",
			                       kMaxJournals)));
		if (!callbacks_registered) {
			RegisterXactCallback(JournalXactCallback, nullptr);
			RegisterSubXactCallback(JournalSubXactCallback, nullptr);
			callbacks_registered = true;
		}
		if (MakePGDirectory(BuildJournalDir()) != 0 && errno != EEXIST)
			ereport(ERROR,
			        (errcode_for_file_access(), errmsg("could not create directory \"%s\": %m", BuildJournalDir())));
		Journal *j = &journals[i];
		j->relnode = relnode;
		j->subxid = GetCurrentSubTransactionId();
		// The (sub)transaction's own id: its commit status says whether the index kept the blobs (a subtransaction
		// rolled back under a committed parent counts as aborted).
		JournalPath(j->path, MyDatabaseId, index->rd_rel->reltablespace, relnode, GetCurrentTransactionId());
		j->fd = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | PG_BINARY, pg_file_create_mode);
		if (j->fd < 0)
			ereport(ERROR, (errcode_for_file_access(), errmsg("could not create file \"%s\": %m", j->path)));
		njournals++;
		// Held until the descriptor closes (the end of the transaction, or the process): collectors skip it.
		if (flock(j->fd, LOCK_EX) != 0)
			ereport(ERROR, (errcode_for_file_access(), errmsg("could not lock file \"%s\": %m", j->path)));
		fsync_fname(BuildJournalDir(), true);
	}
	Journal *j = &journals[i];
	char line[96];
	int len = 0;
	for (int k = 0; k < 32; k++)
		len += snprintf(line + len, sizeof(line) - len, "%02x", hash[k]);
	len += snprintf(line + len, sizeof(line) - len, " %llu\n", (unsigned long long)size);
	WriteAll(j->fd, line, (size_t)len, j->path);
	if (pg_fsync(j->fd) != 0)
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not fsync file \"%s\": %m", j->path)));
}

int64 CollectBuildJournals(int64 max_blobs, TimestampTz cutoff) {
	DIR *dir = AllocateDir(BuildJournalDir());
	if (dir == nullptr) {
		if (errno == ENOENT)
			return 0;
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not open directory \"%s\": %m", BuildJournalDir())));
	}
	int64 deleted = 0;
	struct dirent *de;
	while (deleted < max_blobs && (de = ReadDir(dir, BuildJournalDir())) != nullptr) {
		CHECK_FOR_INTERRUPTS();
		unsigned db, spc, relnode, xid;
		char tail[16];
		if (sscanf(de->d_name, "%u.%u.%u.%u.%15s", &db, &spc, &relnode, &xid, tail) != 5 ||
		    strcmp(tail, "journal") != 0 || (Oid)db != MyDatabaseId || !TransactionIdIsNormal((TransactionId)xid))
			continue;
		bool ours = false;
		for (int i = 0; i < njournals; i++)
			ours |= journals[i].relnode == (Oid)relnode;
		if (ours)
			continue; // this transaction's own build
		char path[MAXPGPATH * 2];
		snprintf(path, sizeof(path), "%s/%s", BuildJournalDir(), de->d_name);
		int fd = open(path, O_RDONLY | PG_BINARY, 0);
		if (fd < 0)
			continue; // removed meanwhile
		// A build holding it is running.
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			close(fd);
			continue;
		}
		BuildFate fate = FateOf((TransactionId)xid, (Oid)spc, (Oid)relnode);
		if (fate == BuildFate::Committed) {
			// A crash came between the commit and the file's removal: the index references (or, dropped or
			// rebuilt since, the ledger tracks) the blobs. Nothing to collect, at once (no grace needed).
			if (unlink(path) != 0 && errno != ENOENT)
				ereport(WARNING, (errcode_for_file_access(), errmsg("could not remove file \"%s\": %m", path)));
			close(fd);
			continue;
		}
		// Aborted: orphans, collected once the file is older than the grace.
		struct stat st;
		if (fate == BuildFate::Running || fstat(fd, &st) != 0 || time_t_to_timestamptz(st.st_mtime) > cutoff) {
			close(fd);
			continue;
		}
		// The whole file (about 80 bytes a blob), then each blob deleted (unpinned); those left when max_blobs is
		// reached are written back.
		StringInfoData text, rest;
		initStringInfo(&text);
		initStringInfo(&rest);
		for (;;) {
			char buf[8192];
			ssize_t got = read(fd, buf, sizeof(buf));
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0) {
				close(fd);
				ereport(ERROR, (errcode_for_file_access(), errmsg("could not read file \"%s\": %m", path)));
			}
			if (got == 0)
				break;
			appendBinaryStringInfo(&text, buf, (int)got);
		}
		bool bad = false;
		for (char *line = text.data; line < text.data + text.len;) {
			char *nl = strchr(line, '\n');
			char *next = nl != nullptr ? nl + 1 : text.data + text.len;
			if (nl != nullptr)
				*nl = '\0';
			uint8 hash[32];
			uint64 size;
			if (!ParseLine(line, hash, &size)) {
				bad |= *line != '\0';
			} else if (deleted >= max_blobs) {
				appendStringInfo(&rest, "%s\n", line);
			} else if (DeleteRemoteBlob(psprintf("a blob of an index build that did not commit (journal %s)", path),
			                            hash, size)) {
				deleted++;
			}
			line = next;
		}
		pfree(text.data);
		if (bad)
			ereport(WARNING,
			        (errcode(ERRCODE_DATA_CORRUPTED),
			         errmsg("s5vector build journal \"%s\" has lines that are not blobs; they were skipped", path)));
		if (rest.len == 0) {
			if (unlink(path) != 0 && errno != ENOENT)
				ereport(WARNING, (errcode_for_file_access(), errmsg("could not remove file \"%s\": %m", path)));
		} else {
			char tmp[MAXPGPATH * 2 + 8];
			snprintf(tmp, sizeof(tmp), "%s.tmp", path);
			int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, pg_file_create_mode);
			if (out < 0) {
				close(fd);
				ereport(ERROR, (errcode_for_file_access(), errmsg("could not create file \"%s\": %m", tmp)));
			}
			WriteAll(out, rest.data, (size_t)rest.len, tmp);
			if (pg_fsync(out) != 0 || close(out) != 0)
				ereport(ERROR, (errcode_for_file_access(), errmsg("could not fsync file \"%s\": %m", tmp)));
			if (durable_rename(tmp, path, ERROR) != 0)
				ereport(ERROR, (errcode_for_file_access(), errmsg("could not rename \"%s\": %m", tmp)));
		}
		pfree(rest.data);
		close(fd);
	}
	FreeDir(dir);
	return deleted;
}

} // namespace s5v::pg
