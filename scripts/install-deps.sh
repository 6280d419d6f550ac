#!/usr/bin/env bash
# Install everything s5vector needs to build, test, benchmark and demo on Debian 12 (run as root, or with sudo).
set -euo pipefail

PACKAGES=(
	build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
	postgresql-15 postgresql-server-dev-15 libipc-run-perl
	libcurl4-openssl-dev libcbor-dev libxsimd-dev libsodium-dev librust-blake3-dev b3sum
	libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev
	python3 python3-psycopg python3-numpy python3-faiss dataset-fashion-mnist
	rsync util-linux procps
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
