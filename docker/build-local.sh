#!/usr/bin/env bash
# Build the oncograph images on a machine with no container registry (and no package index needed): the
# same docker/*/Dockerfile a normal machine builds from python:3.11-slim-bookworm, here from a Debian bookworm
# base made by debootstrap and with the locks' files handed over as the named build context `wheels`.
#
# Usage: docker/build-local.sh [--report FILE] [APP...]     APP: api ui worker (default: api ui)
#   --report FILE   also write the timings and sizes as JSON to FILE
# Environment:
#   ONCOGRAPH_IMAGES_CACHE  where the base root filesystem and the wheelhouses are kept between runs
#                           (default ~/.cache/oncograph-images); each is keyed by what it is made from
#                           (the debootstrap command; the lock and docker/build-tools.txt), so a rerun with
#                           unchanged inputs reuses them and an edited lock makes a new wheelhouse
#   PIP                     the pip that downloads the wheelhouse (default .venv/bin/pip: the machine's own
#                           package sources, as `make setup` uses them)
#   IMAGE_TAG               tag of the images built (default local): localhost/oncograph-APP:TAG
#
# Needs (as root): apt-get install -y podman buildah debootstrap. Builds run with --isolation chroot (this
# machine's podman cannot run containers: docs STACK.md) and --format docker (the OCI format drops HEALTHCHECK).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${ONCOGRAPH_IMAGES_CACHE:-$HOME/.cache/oncograph-images}
PIP=${PIP:-.venv/bin/pip}
TAG=${IMAGE_TAG:-local}
SUITE=bookworm
INCLUDE=python3,python3-venv,ca-certificates
REPORT=""

die() { echo "build-local: $*" >&2; exit 1; }

apps=()
while (($#)); do
  case $1 in
    --report) [[ $# -ge 2 ]] || die "--report needs a file"; REPORT=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    api|ui|worker) apps+=("$1"); shift ;;
    *) die "unknown argument '$1' (apps: api ui worker; option: --report FILE)" ;;
  esac
done
((${#apps[@]})) || apps=(api ui)

for tool in buildah podman debootstrap; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install -y podman buildah debootstrap"
done
[[ -x $PIP ]] || die "$PIP not found: run make setup (or set PIP)"
[[ $(id -u) == 0 ]] || die "debootstrap and buildah's chroot isolation need root here"
mkdir -p "$CACHE/wheels"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
key() { sha256sum | cut -c1-16; }
records=()  # JSON members of the report, one per step

# 1. The base: Debian's own packages, no registry. Keyed by the debootstrap command; the root filesystem is
#    kept as a tarball so that a machine whose container storage was wiped re-imports it in seconds.
base_key=$(echo "debootstrap --variant=minbase --include=$INCLUDE $SUITE" | key)
BASE=localhost/oncograph-base:$SUITE-$base_key
t=$(now)
if podman image exists "$BASE"; then
  base_how=cached-image
else
  tarball=$CACHE/base-$SUITE-$base_key.tar
  if [[ ! -s $tarball ]]; then
    root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    echo "build-local: debootstrap $SUITE ($INCLUDE) ..."
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" >"$CACHE/debootstrap.log" 2>&1 \
      || die "debootstrap failed (log: $CACHE/debootstrap.log)"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
    trap - EXIT
    base_how=debootstrap
  else
    base_how=cached-tarball
  fi
  podman import --quiet "$tarball" "$BASE" >/dev/null
fi
podman tag "$BASE" "localhost/oncograph-base:$SUITE"
records+=("\"base\": {\"seconds\": $(since "$t"), \"how\": \"$base_how\", \"image\": \"$BASE\"}")
echo "build-local: base $BASE ($base_how, $(since "$t") s)"

revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[[ -n $(git status --porcelain -- platform flows api ui cli pyproject.toml requirements docker 2>/dev/null) ]] \
  && revision="$revision-dirty"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

for app in "${apps[@]}"; do
  lock=requirements/lock-$app.txt
  [[ -f $lock ]] || die "$lock not found"
  # 2. The wheelhouse: exactly the files the lock's hashes name (pip download, not pip wheel: an sdist stays
  #    the sdist whose hash is in the lock, and the image builds it), plus the build tools.
  wh_key=$(cat "$lock" docker/build-tools.txt | key)
  wheels=$CACHE/wheels/$app-$wh_key
  t=$(now)
  if [[ -d $wheels ]]; then
    wh_how=cached
  else
    tmp=$(mktemp -d "$CACHE/wheels/.$app.XXXXXX")
    echo "build-local: wheelhouse for $lock ..."
    for req in docker/build-tools.txt "$lock"; do
      "$PIP" download --quiet --no-deps --require-hashes -r "$req" -d "$tmp" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
      [[ ${PIPESTATUS[0]} == 0 ]] || { rm -rf "$tmp"; die "pip download -r $req failed"; }
    done
    mv "$tmp" "$wheels"
    wh_how=downloaded
  fi
  wh_size=$(du -sm "$wheels" | cut -f1)
  records+=("\"wheelhouse-$app\": {\"seconds\": $(since "$t"), \"how\": \"$wh_how\", \"mb\": $wh_size}")
  echo "build-local: wheelhouse $wheels ($wh_how, ${wh_size} MB, $(since "$t") s)"

  # 3. The image, with the Dockerfile every machine uses. --layers (api, ui): an unchanged lock reuses the
  #    installed venv's layer, so a source edit rebuilds in seconds. Not for the worker: its venv (torch + CUDA,
  #    ~6 GB) kept as a cached layer beside the image would double its disk use; its peak is ~3x the venv.
  image=localhost/oncograph-$app:$TAG
  layers=--layers
  [[ $app == worker ]] && layers=--layers=false
  t=$(now)
  if [[ $app == worker ]]; then
    # measured: the worker's ~7 GB venv is held ~3 times at its peak (the build stage's layer, buildah's blob in
    # /var/tmp while committing, the image's layer), beside a 3.5 GB wheelhouse
    free_gb=$(df -Pk /var/lib/containers /var/tmp | awk 'NR > 1 { print int($4 / 1048576) }' | sort -n | head -1)
    ((free_gb >= ${WORKER_MIN_FREE_GB:-30})) \
      || die "the worker image needs ~${WORKER_MIN_FREE_GB:-30} GB free on /var/lib/containers and /var/tmp (${free_gb} GB free)"
  fi
  # the image this build replaces under the same tag: removed once the new one is tagged, so rebuilds (every CI
  # run) do not pile up untagged 1 GB images until the disk is full
  previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  buildah bud --quiet --isolation chroot --format docker "$layers" --force-rm \
    --ignorefile docker/dockerignore -f "docker/$app/Dockerfile" \
    --build-context "wheels=$wheels" \
    --build-arg "BASE=$BASE" --build-arg "VERSION=$version" \
    --build-arg "REVISION=$revision" --build-arg "CREATED=$created" \
    -t "$image" . >/dev/null || die "building $image failed"
  current=$(podman image inspect --format '{{.Id}}' "$image")
  if [[ -n $previous && $previous != "$current" ]]; then
    # only that one image (never a prune of the store); one still used by a container or another tag stays
    podman rmi "$previous" >/dev/null 2>&1 || echo "build-local: kept the replaced image $previous (still in use)"
  fi
  size=$(podman image inspect --format '{{.Size}}' "$image")
  records+=("\"build-$app\": {\"seconds\": $(since "$t"), \"image\": \"$image\", \"mb\": $((size / 1000000))}")
  echo "build-local: $image built in $(since "$t") s, $((size / 1000000)) MB"
done

if [[ -n $REPORT ]]; then
  (IFS=,; echo "{${records[*]}}") >"$REPORT"
fi
