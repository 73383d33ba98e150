#!/usr/bin/env bash
# Set up everything FacePro Edge needs on a fresh Debian/Ubuntu machine, idempotently:
#   scripts/setup_env.sh run    the service (Python venv with the CPU flavour)
#   scripts/setup_env.sh test   the service plus what the tests need (Mosquitto, Chromium,
#                               Samba, the insightface reference)
# The virtual environment is .venv/ in the repository; re-running skips what is done.
set -euo pipefail
mode="${1:-run}"
case "$mode" in run|test) ;; *) echo "usage: $0 run|test" >&2; exit 2 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

apt_packages=()
if [ "$mode" = test ]; then
    command -v mosquitto >/dev/null || apt_packages+=(mosquitto)
    command -v mosquitto_sub >/dev/null || apt_packages+=(mosquitto-clients)
    command -v chromium >/dev/null || apt_packages+=(chromium)
    command -v chromedriver >/dev/null || apt_packages+=(chromium-driver)
    command -v smbd >/dev/null || apt_packages+=(samba)
    # deploy tests: fetch_models.sh downloads with curl; install.sh builds its venv from the
    # distribution's Python (/usr/bin/python3), which needs python3-venv on Debian/Ubuntu
    command -v curl >/dev/null || apt_packages+=(curl)
    command -v systemd-analyze >/dev/null || apt_packages+=(systemd)
    # camera tests: a real RTSP camera (Debian's GStreamer RTSP server, run by /usr/bin/python3
    # with Debian's PyGObject), clips encoded with ffmpeg, H.264/H.265 payloaders and decoders
    command -v ffmpeg >/dev/null || apt_packages+=(ffmpeg)
    # the service's own GStreamer source reads through PyGObject (python3-gst-1.0 maps buffers
    # without a copy); python3-opencv stands in for JetPack's OpenCV in the Jetson install test
    for pkg in python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
               gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools python3-opencv; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || apt_packages+=("$pkg")
    done
    if [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
        apt_packages+=(python3-venv)
    fi
fi
python_ok=1
python3 -c 'import sys; assert sys.version_info >= (3, 10)' 2>/dev/null || python_ok=0
python3 -m venv --help >/dev/null 2>&1 || python_ok=0
[ "$python_ok" = 1 ] || apt_packages+=(python3 python3-venv python3-pip)
if [ "${#apt_packages[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing system packages: ${apt_packages[*]}; install them as root (apt-get install ${apt_packages[*]})" >&2
        exit 1
    fi
    echo "setup: installing ${apt_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.facepro-$mode-$(sha256sum pyproject.toml scripts/setup_env.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages into .venv ($mode)"
    .venv/bin/python -m pip install -q --upgrade pip
    if [ "$mode" = test ]; then
        .venv/bin/python -m pip install -q -e '.[cpu,dev]'
        # The reference implementation the tests compare against. Its metadata pulls
        # opencv-python and onnxruntime, which clash with the headless and GPU builds,
        # so it goes in without dependencies (what it imports is in the dev extra).
        .venv/bin/python -m pip install -q --no-deps 'insightface==2.1'
    else
        .venv/bin/python -m pip install -q -e '.[cpu]'
    fi
    if .venv/bin/python -m pip show -q opencv-python >/dev/null 2>&1; then
        echo "setup: opencv-python found beside opencv-python-headless; removing it" >&2
        .venv/bin/python -m pip uninstall -y -q opencv-python
        .venv/bin/python -m pip install -q --force-reinstall --no-deps opencv-python-headless
    fi
    touch "$stamp"
fi

# The GStreamer camera source needs the distribution's PyGObject, built for the same Python ABI:
# link it into the venv (install.sh does the same on a device); without it those tests skip.
site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [ ! -e "$site/gi" ] && [ -x /usr/bin/python3 ]; then
    gi_dir="$(/usr/bin/python3 -c 'import gi, os; print(os.path.dirname(gi.__file__))' 2>/dev/null || true)"
    abi() { "$1" -c 'import sysconfig; print(sysconfig.get_config_var("SOABI"))'; }
    if [ -n "$gi_dir" ] && [ "$(abi /usr/bin/python3)" = "$(abi .venv/bin/python)" ]; then
        ln -sfn "$gi_dir" "$site/gi"
        echo "setup: linked the system's PyGObject into .venv"
    fi
fi

# Prometheus's promtool checks the /metrics text in the tests. Only Debian's `prometheus`
# package ships it (a 19 MB download): its promtool alone is unpacked into .venv/bin, so the
# Prometheus server is neither installed nor started on a developer's machine.
if [ "$mode" = test ] && ! command -v promtool >/dev/null && [ ! -x .venv/bin/promtool ]; then
    echo "setup: unpacking promtool from Debian's prometheus package into .venv/bin"
    deb_dir="$(mktemp -d)"
    (cd "$deb_dir" && apt-get download -qq prometheus)
    dpkg-deb --fsys-tarfile "$deb_dir"/prometheus_*.deb | tar -x -C "$deb_dir" ./usr/bin/promtool
    mv "$deb_dir/usr/bin/promtool" .venv/bin/promtool
    rm -rf "$deb_dir"
fi
