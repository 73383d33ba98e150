#!/usr/bin/env bash
# Download a face model pack for a device image build and verify its pinned SHA-256.
#
#   scripts/fetch_models.sh [--pack NAME] [--url URL --sha256 HEX] [--dest DIR] [--lock FILE]
#
# NAME is a line of scripts/model-packs.lock (default buffalo_s); --url with --sha256 fetches
# any archive instead. The archive lands in DIR (default build/models) only when its SHA-256
# matches; a mismatch deletes the download and exits 1. An archive already in DIR that matches
# is not downloaded again. Then: deploy/install.sh --models DIR/NAME.zip
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "fetch_models.sh: error: $1" >&2; exit "${2:-1}"; }
say() { echo "fetch_models.sh: $*"; }

pack=buffalo_s url="" sha="" dest="$here/../build/models" lock="$here/model-packs.lock"
while [ $# -gt 0 ]; do
    case "$1" in
        --pack) pack="${2:?--pack needs a name}"; shift 2 ;;
        --url) url="${2:?--url needs a URL}"; shift 2 ;;
        --sha256) sha="${2:?--sha256 needs a hex digest}"; shift 2 ;;
        --dest) dest="${2:?--dest needs a directory}"; shift 2 ;;
        --lock) lock="${2:?--lock needs a file}"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see: $0 --help)" 2 ;;
    esac
done
if [ -z "$url" ]; then
    [ -f "$lock" ] || die "--lock: $lock: no such file" 2
    line="$(awk -v name="$pack" '$1 == name && $1 !~ /^#/ {print; exit}' "$lock")"
    [ -n "$line" ] || die "--pack: $pack is not in $lock (packs: $(awk '$1 !~ /^#/ && NF {printf "%s ", $1}' "$lock"))" 2
    read -r _ url pinned <<<"$line"
    [ -n "$sha" ] || sha="$pinned"
fi
[ -n "$sha" ] || die "--url needs --sha256 (the archive's pinned SHA-256)" 2
[ "$sha" != unpinned ] || die "$pack has no pinned SHA-256 in $lock: download it once on a trusted machine, check it, and write its sha256sum there (or pass --sha256)" 2
sha="$(echo "$sha" | tr 'A-F' 'a-f')"
[[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "--sha256: '$sha' is not 64 hex digits" 2

name="$(basename "${url%%\?*}")"
case "$name" in *.zip|*.tar|*.tar.gz|*.tgz|*.tar.xz|*.onnx) ;; *) name="$pack.zip" ;; esac
mkdir -p "$dest"
target="$dest/$name"
if [ -f "$target" ] && [ "$(sha256sum "$target" | cut -d' ' -f1)" = "$sha" ]; then
    say "$target already present and verified (sha256 $sha)"
    exit 0
fi
part="$target.part.$$"
trap 'rm -f "$part"' EXIT
say "downloading $url"
curl --fail --location --silent --show-error --retry 3 --connect-timeout 20 -o "$part" "$url" \
    || die "download of $url failed"
actual="$(sha256sum "$part" | cut -d' ' -f1)"
if [ "$actual" != "$sha" ]; then
    die "SHA-256 mismatch for $url: expected $sha, got $actual; refusing it (nothing kept)"
fi
mv -f "$part" "$target"
say "verified $target (sha256 $sha); install it with: deploy/install.sh --models $target"
