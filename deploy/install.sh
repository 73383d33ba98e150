#!/usr/bin/env bash
# Install FacePro Edge on a Debian/Ubuntu device (JetPack on Jetson, Ubuntu on a NUC).
#
#   deploy/install.sh [--root DIR] [--models PATH] [--flavour auto|cpu|gpu|jetson|openvino]
#                     [--wheel FILE | --source DIR] [--ort-wheel FILE] [--pip-args ARGS]
#                     [--python PATH (default /usr/bin/python3)] [--system-site-packages] [--with-jtop]
#                     [--detect-only]
#
# What it does (each step is skipped when already done, so a second run changes nothing):
#   * /opt/facepro/venv: its own virtual environment with facepro and the onnxruntime
#     flavour for this hardware (JetPack build on a Jetson, GPU build with an NVIDIA
#     driver, CPU otherwise: printed as "onnxruntime flavour: ...");
#     on a Jetson (JetPack 6 only: L4T R36, Python 3.10) it sees the system's packages, installs
#     no OpenCV from PyPI (JetPack's has GStreamer and is built against numpy 1.x) and keeps
#     numpy below 2; jetson-stats (jtop, AGPL-3.0) only with --with-jtop;
#   * the distribution's PyGObject (python3-gi) made importable in the venv where it is
#     installed, for the GStreamer camera source;
#   * /usr/local/bin/facepro: the command line, using /etc/facepro/settings.json and run
#     as the facepro user when called by root;
#   * the facepro system user (groups video, plus plugdev/render where they exist),
#     /var/lib/facepro (data, 0750), /etc/facepro/settings.json (0640, never overwritten);
#   * the model pack from a directory or archive (.zip, .tar, .tar.gz) into
#     /var/lib/facepro/models/face, verified against its SHA256SUMS (refused on mismatch;
#     written from the files when the pack has none);
#   * /etc/systemd/system/facepro.service, enabled.
# Nothing per device is created: the device id, the database and the technician password
# are made by the service on the device's first boot, so one image serves many devices.
#
# --root DIR installs into DIR as a staged tree (tests, inspecting an image): no user is
# created, nothing is chowned and systemctl is not called; those actions are written to
# DIR/opt/facepro/install-actions.txt instead. A venv's scripts name their own absolute
# path, so for a real image build run this script inside the image (chroot/nspawn).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$script_dir")"

usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; }
die() { echo "install.sh: error: $1" >&2; exit "${2:-1}"; }
say() { echo "install.sh: $*"; }

python=python3
# The distribution's interpreter: the service user must be able to run it (not one in /root).
[ ! -x /usr/bin/python3 ] || python=/usr/bin/python3
root=/ models="" flavour=auto wheel="" source_dir="" ort_wheel="" pip_args=""
system_site=auto detect_only=0 with_jtop=0
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="${2:?--root needs a directory}"; shift 2 ;;
        --models) models="${2:?--models needs a path}"; shift 2 ;;
        --flavour|--flavor) flavour="${2:?--flavour needs auto, cpu, gpu, jetson or openvino}"; shift 2 ;;
        --wheel) wheel="${2:?--wheel needs a file}"; shift 2 ;;
        --source) source_dir="${2:?--source needs a directory}"; shift 2 ;;
        --ort-wheel) ort_wheel="${2:?--ort-wheel needs a file}"; shift 2 ;;
        --pip-args) pip_args="${2?--pip-args needs a value}"; shift 2 ;;
        --python) python="${2:?--python needs a path}"; shift 2 ;;
        --system-site-packages) system_site=yes; shift ;;
        --with-jtop) with_jtop=1; shift ;;
        --detect-only) detect_only=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument $1 (see: $0 --help)" 2 ;;
    esac
done
case "$flavour" in auto|cpu|gpu|jetson|openvino) ;; *) die "--flavour: '$flavour' is not one of auto, cpu, gpu, jetson, openvino" 2 ;; esac
[ -z "$wheel" ] || [ -z "$source_dir" ] || die "--wheel and --source exclude each other" 2
[ -z "$wheel" ] || [ -f "$wheel" ] || die "--wheel: $wheel: no such file" 2
[ -z "$ort_wheel" ] || [ -f "$ort_wheel" ] || die "--ort-wheel: $ort_wheel: no such file" 2
[ -z "$models" ] || [ -e "$models" ] || die "--models: $models: no such file or directory" 2
[ -n "$wheel" ] || source_dir="${source_dir:-$repo_dir}"
[ -z "$source_dir" ] || [ -f "$source_dir/pyproject.toml" ] || die "--source: $source_dir has no pyproject.toml" 2
mkdir -p "$root" 2>/dev/null || die "--root: cannot create $root" 2
root="$(cd "$root" && pwd)"
prefix="${root%/}"                 # "" for the real root
staged=0; [ -z "$prefix" ] || staged=1
if [ "$staged" = 0 ] && [ "$detect_only" = 0 ] && [ "$(id -u)" != 0 ]; then
    die "installing on this machine needs root (sudo $0 ...), or stage it with --root DIR" 2
fi
opt="$prefix/opt/facepro"; venv="$opt/venv"; data="$prefix/var/lib/facepro"
models_dest="$data/models/face"; etc="$prefix/etc/facepro"; unit_dir="$prefix/etc/systemd/system"
export PYTHONDONTWRITEBYTECODE=1   # our own checks must not write into the tree

# -- hardware and flavour ------------------------------------------------------------

detect_flavour() {
    if [ -f "$prefix/etc/nv_tegra_release" ]; then
        echo "jetson ($prefix/etc/nv_tegra_release: $(head -c 60 "$prefix/etc/nv_tegra_release" | tr -d '#\n'))"
    elif command -v nvidia-smi >/dev/null 2>&1; then
        echo "gpu (nvidia-smi found: an NVIDIA driver is installed)"
    elif [ -e /proc/driver/nvidia ]; then
        echo "gpu (/proc/driver/nvidia exists: an NVIDIA driver is loaded)"
    else
        echo "cpu (no /etc/nv_tegra_release, no nvidia-smi, no /proc/driver/nvidia)"
    fi
}
if [ "$flavour" = auto ]; then
    reason="$(detect_flavour)"; flavour="${reason%% *}"
else
    reason="$flavour (chosen with --flavour)"
fi
say "onnxruntime flavour: $reason"
if [ "$flavour" = jetson ] && [ -f "$prefix/etc/nv_tegra_release" ]; then
    l4t="$(sed -n 's/^# R\([0-9]*\) .*/\1/p' "$prefix/etc/nv_tegra_release" | head -n 1)"
    if [ -n "$l4t" ] && [ "$l4t" -lt 36 ]; then
        die "L4T R$l4t is JetPack 5 or older (Python 3.8): FacePro Edge needs Python 3.10, which JetPack 6 (L4T R36) ships; see deploy/JETSON.md"
    fi
fi
[ "$detect_only" = 0 ] || exit 0

command -v "$python" >/dev/null 2>&1 || die "--python: $python not found (install python3 and python3-venv)" 2
"$python" -c 'import sys, venv; assert sys.version_info >= (3, 10)' 2>/dev/null \
    || die "$python: Python 3.10+ with the venv module is needed (apt-get install python3-venv)"

changed=0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Write $2 (a file) to $1 with mode $3 unless it already holds those bytes; set the mode.
put_file() {
    local dest="$1" src="$2" mode="$3"
    if [ -f "$dest" ] && [ ! -L "$dest" ] && cmp -s "$src" "$dest"; then
        [ "$(stat -c %a "$dest")" = "$mode" ] || chmod "$mode" "$dest"
        return 0
    fi
    mkdir -p "$(dirname "$dest")"
    cp "$src" "$dest.tmp.$$"
    chmod "$mode" "$dest.tmp.$$"
    mv -f "$dest.tmp.$$" "$dest"
    changed=1
    say "wrote $dest"
}
put_text() { printf '%s' "$2" > "$work/text"; put_file "$1" "$work/text" "$3"; }
put_dir() {
    [ -d "$1" ] || { mkdir -p "$1"; changed=1; say "created $1"; }
    [ "$(stat -c %a "$1")" = "$2" ] || chmod "$2" "$1"
}

# -- model pack: staged and verified first, so a bad pack changes nothing -------------------

sha256_manifest() {  # the manifest of every regular file in $1 except SHA256SUMS, sorted by name
    (cd "$1" && find . -maxdepth 1 -type f ! -name SHA256SUMS ! -name '.*' -printf '%f\n' | LC_ALL=C sort \
        | while IFS= read -r name; do sha256sum -- "$name"; done)
}

pack_dir=""
if [ -n "$models" ]; then
    if [ -d "$models" ]; then
        unpacked="$models"
    else
        unpacked="$work/unpacked"; mkdir -p "$unpacked"
        case "$models" in
            *.zip) "$python" -m zipfile -e "$models" "$unpacked" || die "--models: $models: not a readable zip archive" ;;
            *.tar|*.tar.gz|*.tgz|*.tar.xz) tar -xf "$models" -C "$unpacked" || die "--models: $models: not a readable tar archive" ;;
            *) die "--models: $models: expected a directory, .zip, .tar, .tar.gz or .tar.xz" 2 ;;
        esac
    fi
    # The pack is the one directory holding .onnx files (InsightFace zips nest it one level down).
    mapfile -t onnx_dirs < <(find "$unpacked" -name '*.onnx' -type f -printf '%h\n' | LC_ALL=C sort -u)
    [ "${#onnx_dirs[@]}" -gt 0 ] || die "--models: $models: no .onnx files found"
    [ "${#onnx_dirs[@]}" -eq 1 ] || die "--models: $models: .onnx files in several directories: ${onnx_dirs[*]}"
    pack_dir="${onnx_dirs[0]}"
    pack="$work/pack"; mkdir -p "$pack"
    if [ -f "$pack_dir/SHA256SUMS" ]; then
        # Install exactly the files the pack's manifest lists, each verified.
        while read -r digest name; do
            [ -n "$digest" ] || continue
            name="${name#\*}"
            case "$name" in */*|.*|"") die "--models: $pack_dir/SHA256SUMS: bad file name '$name'" ;; esac
            [ -f "$pack_dir/$name" ] || die "--models: $pack_dir/SHA256SUMS lists $name, which is missing"
            cp "$pack_dir/$name" "$pack/$name"
        done < "$pack_dir/SHA256SUMS"
        if ! (cd "$pack" && sha256sum --quiet -c "$pack_dir/SHA256SUMS" >"$work/sumcheck" 2>&1); then
            die "--models: checksum mismatch, refusing the model pack: $(tr '\n' ' ' < "$work/sumcheck")(manifest $pack_dir/SHA256SUMS)"
        fi
        say "model pack $models: $(grep -c . "$pack_dir/SHA256SUMS") file(s) match its SHA256SUMS"
    else
        find "$pack_dir" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$pack/" \;
        say "model pack $models has no SHA256SUMS: writing one from its files"
    fi
    sha256_manifest "$pack" > "$pack/SHA256SUMS"
fi

# -- virtual environment and the facepro wheel --------------------------------------------

if [ "$system_site" = auto ]; then
    # JetPack's onnxruntime-gpu wheel and its OpenCV with GStreamer live in the system Python.
    [ "$flavour" = jetson ] && system_site=yes || system_site=no
fi
if [ ! -x "$venv/bin/python" ]; then
    venv_flags=(); [ "$system_site" = no ] || venv_flags+=(--system-site-packages)
    say "creating the virtual environment $venv"
    changed=1
    mkdir -p "$opt"
    "$python" -m venv "${venv_flags[@]}" "$venv"
fi
vpy="$venv/bin/python"
interpreter="$(readlink -f "$vpy")"
case "$interpreter" in
    /root/*|/home/*)
        # ProtectHome= hides home directories from the service, and /root is not readable by it.
        if [ "$staged" = 0 ]; then
            die "$venv uses $interpreter, inside a home directory the facepro user cannot reach; remove $venv and rerun with --python /usr/bin/python3"
        fi
        say "warning: $venv uses $interpreter (inside a home directory): fine for a staged tree, not for a device" ;;
esac

if [ -n "$source_dir" ]; then
    # Build from a copy so the source tree gets no build/ or egg-info directories.
    mkdir -p "$work/src" "$work/dist"
    tar -C "$source_dir" --exclude=.git --exclude=.venv --exclude=build --exclude=dist --exclude='*.egg-info' \
        --exclude=__pycache__ --exclude=tests --exclude=.demo-data -cf - . | tar -C "$work/src" -xf -
    # shellcheck disable=SC2086
    "$vpy" -m pip wheel -q --no-deps $pip_args -w "$work/dist" "$work/src" >"$work/build.log" 2>&1 \
        || { tail -n 20 "$work/build.log" >&2; die "building the facepro wheel from $source_dir failed"; }
    wheel="$(ls "$work"/dist/facepro_edge-*.whl)"
fi
# What is installed is identified by the wheel's RECORD (hashes of every file), not its
# zip bytes, which change with each build's timestamps.
wheel_id="$("$python" - "$wheel" <<'EOF'
import hashlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as whl:
    record = next(n for n in whl.namelist() if n.endswith(".dist-info/RECORD"))
    print(record.split("/")[0].removesuffix(".dist-info"), hashlib.sha256(whl.read(record)).hexdigest())
EOF
)" || die "--wheel: $wheel is not a wheel"
ort_id=""; [ -z "$ort_wheel" ] || ort_id="$(sha256sum "$ort_wheel" | cut -d' ' -f1)"
stamp_text="wheel=$wheel_id
flavour=$flavour
ort_wheel=$ort_id
pip_args=$pip_args
jtop=$with_jtop
"
check_jetson_opencv() {
    [ "$flavour" = jetson ] || return 0
    "$vpy" -c 'import cv2' 2>/dev/null \
        || die "--flavour jetson: JetPack's OpenCV does not import in $venv; install it (apt-get install nvidia-opencv, or python3-opencv) and rerun (see deploy/JETSON.md)"
    "$vpy" -c 'import numpy, sys; sys.exit(int(numpy.__version__.split(".")[0]) >= 2)' \
        || die "--flavour jetson: numpy 2 is importable in $venv, which JetPack's OpenCV cannot use; remove it from the system Python (pip3 uninstall numpy) and rerun"
    say "OpenCV $("$vpy" -c 'import cv2; print(cv2.__version__, "from", cv2.__file__)'), numpy $("$vpy" -c 'import numpy; print(numpy.__version__)')"
}
pip=("$vpy" -m pip install -q)
case "$flavour" in
    cpu) extra=cpu; unwanted=(onnxruntime-gpu onnxruntime-openvino) ;;
    gpu) extra=gpu; unwanted=(onnxruntime onnxruntime-openvino) ;;
    # PyPI's OpenCV would shadow JetPack's (no GStreamer, and it pulls numpy 2, after which
    # JetPack's cv2 no longer imports): an earlier install's copy goes too.
    jetson) extra=jetson; unwanted=(onnxruntime onnxruntime-openvino opencv-python-headless opencv-python) ;;
    openvino) extra=openvino; unwanted=(onnxruntime onnxruntime-gpu) ;;
esac
if [ "$flavour" = jetson ]; then
    printf 'numpy<2\n' > "$work/constraints.txt"   # JetPack's OpenCV is built against numpy 1.x
    pip+=(-c "$work/constraints.txt")
    if [ "$with_jtop" = 1 ]; then extra="jetson,jtop"; else unwanted+=(jetson-stats); fi
fi
if [ -n "$ort_wheel" ]; then  # the onnxruntime build given on purpose stays, whatever its name
    ort_dist="$(basename "$ort_wheel" | cut -d- -f1 | tr 'A-Z_' 'a-z-')"
    kept=(); for dist in "${unwanted[@]}"; do [ "$dist" = "$ort_dist" ] || kept+=("$dist"); done
    unwanted=("${kept[@]}")
fi
# Never two onnxruntime builds side by side (they overwrite each other's files). Only what
# this venv holds is removed, never a package of the system's (--system-site-packages).
local_dists="$("$vpy" -m pip list --local --format=freeze 2>/dev/null | cut -d= -f1 | tr 'A-Z_' 'a-z-')"
for dist in "${unwanted[@]}"; do
    if printf '%s\n' "$local_dists" | grep -qx "$dist"; then
        say "removing $dist (not part of the $flavour flavour)"
        "$vpy" -m pip uninstall -q -y "$dist"
        changed=1
    fi
done
if [ "$flavour" = jetson ] && printf '%s\n' "$local_dists" | grep -qx numpy \
    && ! "$vpy" -c 'import numpy, sys; sys.exit(int(numpy.__version__.split(".")[0]) >= 2)' 2>/dev/null; then
    say "replacing numpy 2 in $venv (JetPack's OpenCV needs numpy 1.x)"
    "$vpy" -m pip uninstall -q -y numpy
    # shellcheck disable=SC2086
    "${pip[@]}" $pip_args "numpy>=1.24.2" || die "pip could not install numpy<2"
    changed=1
fi
if [ -f "$opt/.install-stamp" ] && [ "$(cat "$opt/.install-stamp")
" = "$stamp_text" ]; then
    say "${wheel_id%% *} already installed in $venv (unchanged)"
else
    say "installing ${wheel_id%% *} into $venv"
    changed=1
    if [ "$flavour" = jetson ]; then
        if [ -n "$ort_wheel" ]; then
            # shellcheck disable=SC2086
            "${pip[@]}" $pip_args "$ort_wheel"
        elif ! "$vpy" -c 'import onnxruntime' 2>/dev/null; then
            die "--flavour jetson: no onnxruntime-gpu for JetPack found; pass --ort-wheel FILE (see deploy/JETSON.md)"
        fi
    fi
    spec="$wheel${extra:+[$extra]}"
    # shellcheck disable=SC2086
    "${pip[@]}" $pip_args "$spec" || die "pip could not install $spec (see the lines above)"
    if [ -f "$opt/.install-stamp" ]; then
        # An upgrade may keep the version number: replace the package itself, keep the dependencies.
        # shellcheck disable=SC2086
        "${pip[@]}" $pip_args --force-reinstall --no-deps "$wheel"
    fi
    check_jetson_opencv
    if [ "$flavour" != jetson ] && "$vpy" -m pip show -q opencv-python >/dev/null 2>&1; then
        say "removing opencv-python (it clashes with opencv-python-headless)"
        "$vpy" -m pip uninstall -q -y opencv-python
        # shellcheck disable=SC2086
        "${pip[@]}" $pip_args --force-reinstall --no-deps opencv-python-headless
    fi
    "$venv/bin/facepro" version >/dev/null || die "the installed facepro does not start: $venv/bin/facepro version"
    # Keep the installed wheel: a reinstall or repair needs no source tree or network.
    for old_wheel in "$opt"/dist/*.whl; do
        [ ! -f "$old_wheel" ] || [ "$(basename "$old_wheel")" = "$(basename "$wheel")" ] || rm -f "$old_wheel"
    done
    put_file "$opt/dist/$(basename "$wheel")" "$wheel" 644
    put_text "$opt/.install-stamp" "$stamp_text" 644
fi
check_jetson_opencv

# The GStreamer camera source uses the distribution's PyGObject (python3-gi, built for this
# very interpreter): a venv without the system's packages gets a link to it, nothing else.
if ! "$vpy" -c 'import gi' 2>/dev/null; then
    gi_dir="$("$python" -c 'import gi, os; print(os.path.dirname(gi.__file__))' 2>/dev/null || true)"
    site="$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    abi() { "$1" -c 'import sysconfig; print(sysconfig.get_config_var("SOABI"))'; }
    if [ -n "$gi_dir" ] && [ "$(abi "$python")" = "$(abi "$vpy")" ]; then
        ln -sfn "$gi_dir" "$site/gi"
        changed=1
        say "linked the system's PyGObject ($gi_dir) into $venv for GStreamer cameras"
    else
        say "note: no PyGObject for $python (apt-get install python3-gi gir1.2-gstreamer-1.0 python3-gst-1.0): GStreamer cameras need it"
    fi
fi

# -- files and directories ------------------------------------------------------------------

put_text "$prefix/usr/local/bin/facepro" '#!/bin/sh
# FacePro Edge command line (installed by deploy/install.sh): the device settings by default,
# and run as the service user when called by root so that files it creates stay the service'"'"'s.
: "${FACEPRO_CONFIG:=/etc/facepro/settings.json}"
export FACEPRO_CONFIG
if [ "$(id -u)" = 0 ] && id facepro >/dev/null 2>&1; then
    exec runuser -u facepro -- env FACEPRO_CONFIG="$FACEPRO_CONFIG" /opt/facepro/venv/bin/facepro "$@"
fi
exec /opt/facepro/venv/bin/facepro "$@"
' 755
put_dir "$prefix/var/lib" 755
put_dir "$data" 750
put_dir "$etc" 755
if [ -f "$etc/settings.json" ]; then
    mode="$(stat -c %a "$etc/settings.json")"
    case "$mode" in *[4-7]) say "warning: $etc/settings.json is readable by every user (mode $mode); chmod 0640 it" ;; esac
else
    put_file "$etc/settings.json" "$script_dir/settings.device.json" 640
fi
if ! check="$("$venv/bin/facepro" --config "$etc/settings.json" config check 2>&1)"; then
    say "warning: the settings do not load, the service will not start until they do: ${check##*error: }"
fi
if [ -n "$pack_dir" ]; then
    put_dir "$data/models" 755
    if [ -f "$models_dest/SHA256SUMS" ] && cmp -s "$pack/SHA256SUMS" "$models_dest/SHA256SUMS" \
        && (cd "$models_dest" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1); then
        say "model pack in $models_dest unchanged"
    else
        rm -rf "$models_dest.new" "$models_dest.old"
        cp -r "$pack" "$models_dest.new"
        chmod 755 "$models_dest.new"; chmod 644 "$models_dest.new"/*
        (cd "$models_dest.new" && sha256sum --quiet -c SHA256SUMS) || die "copying the model pack to $models_dest.new failed verification"
        [ ! -e "$models_dest" ] || mv "$models_dest" "$models_dest.old"
        mv "$models_dest.new" "$models_dest"
        rm -rf "$models_dest.old"
        changed=1
        say "model pack installed in $models_dest ($(grep -c . "$models_dest/SHA256SUMS") files, SHA256SUMS verified)"
    fi
elif [ ! -f "$models_dest/SHA256SUMS" ]; then
    say "warning: no model pack installed; pass --models PATH (or see scripts/fetch_models.sh); facepro doctor fails until then"
fi
for doc in "$script_dir"/*.md "$script_dir"/mosquitto/*; do
    [ -f "$doc" ] && put_file "$opt/doc/${doc#"$script_dir"/}" "$doc" 644
done
put_file "$unit_dir/facepro.service" "$script_dir/systemd/facepro.service" 644
wants="$unit_dir/multi-user.target.wants/facepro.service"
if [ "$(readlink "$wants" 2>/dev/null)" != /etc/systemd/system/facepro.service ]; then
    mkdir -p "$(dirname "$wants")"
    ln -sfn /etc/systemd/system/facepro.service "$wants"
    changed=1
    say "enabled facepro.service ($wants)"
fi

# -- the user, ownership and systemd: done on a real root, recorded under --root ---------------

groups=(video)
for group in plugdev render; do getent group "$group" >/dev/null && groups+=("$group"); done
actions=(
    "getent group facepro >/dev/null || groupadd --system facepro"
    "id facepro >/dev/null 2>&1 || useradd --system --gid facepro --home-dir /var/lib/facepro --no-create-home --shell /usr/sbin/nologin facepro"
    "usermod -a -G $(IFS=,; echo "${groups[*]}") facepro"
    "chown facepro:facepro /var/lib/facepro"
    "chown root:facepro /etc/facepro/settings.json"
    "systemctl daemon-reload"
    "systemctl enable facepro.service"
)
if [ "$staged" = 1 ]; then
    put_text "$opt/install-actions.txt" "# Left to a real install (install.sh without --root on the device or inside the image):
$(printf '%s\n' "${actions[@]}")
" 644
    say "staged install in $root: user, ownership and systemd actions written to $opt/install-actions.txt"
else
    for action in "${actions[@]:0:5}"; do bash -c "$action"; done
    [ -d "$models_dest" ] && chown -R root:root "$models_dest"
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable facepro.service >/dev/null
        # An upgrade takes effect now; an unchanged install leaves the running service alone.
        [ "$changed" = 0 ] || systemctl try-restart facepro.service
        say "facepro.service enabled; start it with: systemctl start facepro; then check: facepro doctor"
    else
        say "systemd is not running here (image build): facepro.service is enabled for the next boot"
        if [ -s /etc/machine-id ]; then
            say "warning: /etc/machine-id is set; empty it before capturing the image (truncate -s 0 /etc/machine-id) or every device flashed from it derives the same device id"
        fi
    fi
fi
if [ "$changed" = 0 ]; then say "done: no changes (already installed)"; else say "done"; fi
