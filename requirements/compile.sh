#!/usr/bin/env bash
# Regenerate the locks in requirements/ from pyproject.toml (`make lock`; ADR 0006).
#
# uv RESOLVES only; every install is pip's (`make setup`, the Docker images), because pip alone takes torch
# from the machine's local disk (docs STACK.md). uv is shown pip's own package sources (pip config: index-url,
# extra-index-url, find-links) and picks among them as pip does (--index-strategy unsafe-best-match), so
# every pinned file is one pip can find. Pins already in a lock are kept unless pyproject.toml needs
# otherwise; UPGRADE=1 lets every pin move.
#
# Usage: requirements/compile.sh [--check]     (UV=path/to/uv, PIP_PYTHON=python with pip, UPGRADE=1)
#   --check: resolve into a temporary copy and fail if any lock would change (pyproject.toml edited, lock not).
set -euo pipefail
cd "$(dirname "$0")/.."

UV=${UV:-.venv/bin/uv}
PIP_PYTHON=${PIP_PYTHON:-.venv/bin/python}
OUT=requirements
CHECK=0
[[ "${1:-}" == "--check" ]] && CHECK=1

sources=()
pip_config() { "$PIP_PYTHON" -m pip config get "$1" 2>/dev/null || true; }
index_url=${PIP_INDEX_URL:-$(pip_config global.index-url)}
[[ -n "$index_url" ]] && sources+=(--index-url "$index_url")
for url in ${PIP_EXTRA_INDEX_URL:-$(pip_config global.extra-index-url)}; do sources+=(--extra-index-url "$url"); done
for dir in ${PIP_FIND_LINKS:-$(pip_config global.find-links)}; do sources+=(--find-links "$dir"); done

common=(
  --python-version 3.11 --python-platform x86_64-manylinux_2_35
  --index-strategy unsafe-best-match --generate-hashes --quiet
  --custom-compile-command "make lock"
)
[[ "${UPGRADE:-0}" == "1" ]] && common+=(--upgrade)

work=$OUT
if (( CHECK )); then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp "$OUT"/lock-*.txt "$work"/ 2>/dev/null || true
fi

compile() {  # compile <lock name> <extras, comma-separated> [more uv args]
  local name=$1 extras=$2
  shift 2
  local args=()
  for extra in ${extras//,/ }; do args+=(--extra "$extra"); done
  "$UV" pip compile pyproject.toml "${args[@]}" "${common[@]}" "${sources[@]}" "$@" -o "$work/lock-$name.txt"
  # the pins file is temporary: name what it holds instead, so that the lock reads the same on every run
  [[ -n "${pins:-}" ]] && sed -i "s|-c $pins\$|-c lock-all.txt|" "$work/lock-$name.txt"
  return 0
}

# 1. One resolution of everything: every other lock is cut from it, so a package has one version everywhere.
compile all all,dev
# The same pins as constraints for every other lock.
pins=$(mktemp)
trap 'rm -f "$pins"; [[ $CHECK == 1 ]] && rm -rf "$work"' EXIT
grep -oE '^[A-Za-z0-9_.-]+==[^ ]+' "$work/lock-all.txt" > "$pins"

# 2. What make setup and CI install: core + dev + ml + api + ui + flows + embed (the embedding tests run the
#    real encoders, slides and Ray: torch 2.14.1 + torchvision 0.29.1 from the machines' local disk, ~5.5 GB;
#    the UI tests run Streamlit against the real API, and Playwright drives Debian's Chromium).
compile test dev,ml,api,ui,flows,embed -c "$pins"
# 3. One per image (docker/): core + that app's extra.
compile api api -c "$pins"
compile ui ui -c "$pins"
compile worker worker -c "$pins"
# 4. Tools with a venv of their own (make tools): checkov pins packages the project needs newer.
echo "checkov==3.3.30" > "$work/.checkov.in"
"$UV" pip compile "$work/.checkov.in" "${common[@]}" "${sources[@]}" -o "$work/lock-checkov.txt"
sed -i "s|$work/.checkov.in|checkov==3.3.30 (requirements/compile.sh)|" "$work/lock-checkov.txt"
rm -f "$work/.checkov.in"

if (( CHECK )); then
  status=0
  for lock in "$work"/lock-*.txt; do
    if ! diff -q "$lock" "$OUT/$(basename "$lock")" >/dev/null 2>&1; then
      echo "requirements/$(basename "$lock") is out of date with pyproject.toml: run make lock" >&2
      status=1
    fi
  done
  exit $status
fi
