"""Doctor checks of inference: the model pack, ONNX Runtime's providers, GPU telemetry."""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import time
from pathlib import Path

from edge.config import Settings
from edge.doctor.check import FAIL, INFO, PASS, TEGRA_RELEASE, WARN, Check

log = logging.getLogger(__name__)

def check_model_pack(settings: Settings) -> Check:
    import numpy as np

    from edge.pipeline.pack import ModelPackError as pack_error
    from edge.pipeline.pack import load_model_pack
    models_dir = settings.models_dir
    fix = (f"install a model pack into {models_dir}: deploy/install.sh --models PATH (a directory or .zip "
           "holding a SCRFD detector and an ArcFace embedder), or point paths.models_dir at one")
    try:
        pack = load_model_pack(models_dir, providers=settings["pipeline.providers"],
                               threads=settings["pipeline.intra_op_threads"],
                               det_max_side=settings["pipeline.det_max_side"],
                               max_faces=settings["pipeline.max_faces"],
                               det_threshold=settings["recognition.det_threshold"],
                               cache_dir=settings.data_dir / "cache" / "tensorrt")
    except pack_error as exc:
        return Check("model pack", FAIL, str(exc), fix)
    problem = _verify_manifest(models_dir)
    if problem:
        return Check("model pack", FAIL, problem, fix)
    # One inference through each model: a grey frame (no faces) and one face-shaped crop.
    from edge.pipeline.embedder import ARCFACE_TEMPLATE

    frame = np.full((480, 640, 3), 127, dtype=np.uint8)
    t0 = time.perf_counter()
    faces = pack.detector.detect(frame)
    t1 = time.perf_counter()
    keypoints = (ARCFACE_TEMPLATE.astype(np.float32) + 200.0)[None, :, :]
    embedding = np.array(pack.embedder.embed(frame, keypoints), copy=True)
    t2 = time.perf_counter()
    if embedding.shape != (1, pack.embedder.dim) or not np.all(np.isfinite(embedding)):
        return Check("model pack", FAIL, f"{models_dir}: the embedder returned {embedding.shape} "
                     "or non-finite values", fix)
    info = pack.info()
    det, emb = info["detector"], info["embedder"]
    return Check("model pack", PASS,
                 f"{models_dir}: detector {det['file']} on {det['provider']} ({(t1 - t0) * 1000:.0f} ms, "
                 f"{len(faces)} faces in a blank frame), embedder {emb['file']} on {emb['provider']} "
                 f"(dim {emb['dim']}, {(t2 - t1) * 1000:.0f} ms)")


def _verify_manifest(models_dir: Path) -> str | None:
    """Files listed in the pack's SHA256SUMS (written by deploy/install.sh) must match."""
    import hashlib

    manifest = models_dir / "SHA256SUMS"
    if not manifest.is_file():
        return None
    for line in manifest.read_text().splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        path = models_dir / name.strip()
        if not path.is_file():
            return f"{path}: listed in {manifest} but missing"
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        if sha.hexdigest() != digest.strip():
            return f"{path}: SHA-256 does not match {manifest} (corrupted or replaced)"
    return None


def check_providers(settings: Settings) -> Check:
    from edge.pipeline.runtime import available_providers
    available = available_providers()
    configured = list(settings["pipeline.providers"])
    usable = [p for p in configured if p in available]
    dists = {d: _installed(d) for d in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino")}
    flavours = [name for name, version in dists.items() if version]
    if len(flavours) > 1:
        return Check("onnxruntime", FAIL, f"several onnxruntime builds installed side by side: {', '.join(flavours)}",
                     "uninstall all of them, then reinstall one: deploy/install.sh --flavour cpu|gpu|jetson")
    build = f"{flavours[0]} {dists[flavours[0]]}" if flavours else "onnxruntime"
    if not usable:
        return Check("onnxruntime", FAIL, f"{build}: none of the configured providers "
                     f"({', '.join(configured)}) is available (available: {', '.join(available)})",
                     "add CPUExecutionProvider to pipeline.providers or install the matching onnxruntime build")
    absent = [p for p in configured if p not in available]
    detail = f"{build}: using {usable[0]}; available {', '.join(available)}"
    if absent:
        detail += f"; configured but absent: {', '.join(absent)}"
    if _nvidia_present() and not any(p in available for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")):
        return Check("onnxruntime", WARN, detail + "; an NVIDIA GPU is present but unused",
                     "install the GPU build: deploy/install.sh --flavour gpu (or jetson on a Jetson)")
    return Check("onnxruntime", PASS, detail)


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nvidia_present() -> bool:
    return TEGRA_RELEASE.exists() or Path("/proc/driver/nvidia").exists()


def check_gpu() -> Check:
    from edge.telemetry.gpu import probe_gpu
    result = probe_gpu()
    if result.get("available"):
        parts = [f"{key} {result[key]}" for key in ("name", "gpu_percent", "temperature_c", "memory_used_mb")
                 if result.get(key) is not None]
        return Check("gpu telemetry", PASS, f"source {result.get('source')}" + (": " + ", ".join(parts) if parts else ""))
    reason = result.get("reason") or "no GPU source"
    if TEGRA_RELEASE.exists():
        return Check("gpu telemetry", WARN, f"unavailable on this Jetson: {reason}",
                     "check that /sys/devices/gpu.0/load is readable by the facepro user (group video) "
                     "or that tegrastats is on PATH; jtop is an opt-in (install.sh --with-jtop, deploy/JETSON.md)")
    return Check("gpu telemetry", INFO, f"no GPU telemetry: {reason}")

