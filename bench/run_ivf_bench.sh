#!/bin/bash
# Run bench/ivf_bench.py (pure cold s5vector vs pgvector ivfflat) against a throwaway PostgreSQL cluster, the way
# bench/run_hnsw_bench.sh runs the HNSW benchmark (same environment variables).
#
#   bench/run_ivf_bench.sh [ivf_bench.py options]
#   bench/run_ivf_bench.sh --dataset fashion-mnist --lists 100 --json /tmp/fmnist_ivf.json
set -euo pipefail
S5V_BENCH_SCRIPT=ivf_bench.py exec bash "$(cd "$(dirname "$0")" && pwd)/run_hnsw_bench.sh" "$@"
