"""Face model pack discovery: a directory of ONNX files holding a SCRFD detector and an
ArcFace-style embedder, recognised by their inputs and outputs, not their names.

So an InsightFace pack (``buffalo_s``, ``buffalo_l`` ...) or the development pack works
by pointing ``paths.models_dir`` / ``FACEPRO_MODELS_DIR`` at it:

* detector: one NCHW input with a dynamic (or non-112) height and width, 6 or 9 outputs
  (SCRFD scores/boxes[/keypoints] for strides 8, 16, 32);
* embedder: one NCHW input of 112x112 and one output (the embedding).

Files are tried in an order that puts likely names first (``det``/``scrfd`` for the
detector, ``w600k``/``arcface``/``mobileface``... for the embedder) so a pack with
extra models (landmarks, gender/age) does not load every file.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import FaceproError
from edge.pipeline.detector import DEFAULT_DET_MAX_SIDE, FaceDetector
from edge.pipeline.embedder import CROP_SIZE, FaceEmbedder
from edge.pipeline.runtime import BoundSession, create_session

log = logging.getLogger(__name__)

DETECTOR_HINTS = ("scrfd", "det")
EMBEDDER_HINTS = ("w600k", "arcface", "glint", "mobileface", "r50", "r100", "r34", "r18", "rec", "emb")


class ModelPackError(FaceproError):
    """The model pack is missing or unusable; the message names the directory and file."""


@dataclass
class ModelPack:
    models_dir: Path
    detector: FaceDetector
    embedder: FaceEmbedder

    def info(self) -> dict[str, Any]:
        return {
            "models_dir": str(self.models_dir),
            "detector": {
                "file": self.detector.file,
                "provider": self.detector.provider,
                "input_shape": self.detector.input_shape,
            },
            "embedder": {
                "file": self.embedder.file,
                "provider": self.embedder.provider,
                "dim": self.embedder.dim,
                "backend": self.embedder.backend,
            },
        }


def _describe(bound: BoundSession) -> str:
    spec = "x".join(str(v) if isinstance(v, int) else "?" for v in bound.input_shape_spec)
    return f"input {spec}, {len(bound.output_names)} output(s)"


def _is_detector(bound: BoundSession) -> bool:
    spec = bound.input_shape_spec
    if len(spec) != 4 or len(bound.output_names) not in (6, 9):
        return False
    h, w = spec[2], spec[3]
    return not (h == CROP_SIZE and w == CROP_SIZE)


def _is_embedder(bound: BoundSession) -> bool:
    spec = bound.input_shape_spec
    return len(spec) == 4 and spec[2] == CROP_SIZE and spec[3] == CROP_SIZE and len(bound.output_names) == 1


def _ranked(files: list[Path], hints: Sequence[str]) -> list[Path]:
    def rank(path: Path) -> tuple[int, str]:
        stem = path.stem.lower()
        for i, hint in enumerate(hints):
            if hint in stem:
                return i, path.name
        return len(hints), path.name

    return sorted(files, key=rank)


def load_model_pack(
    models_dir: str | os.PathLike[str],
    providers: Sequence[str] | None = None,
    threads: int = 0,
    det_max_side: int = DEFAULT_DET_MAX_SIDE,
    max_faces: int = 16,
    det_threshold: float = 0.5,
    detector_file: str | None = None,
    embedder_file: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ModelPack:
    """Find, load and wrap the pack's detector and embedder.

    ``detector_file`` / ``embedder_file`` pick files by name inside ``models_dir``
    instead of discovery. ``cache_dir`` holds TensorRT engines when that provider is used.
    Raises :class:`ModelPackError` naming the directory and the file.
    """
    directory = Path(models_dir).expanduser()
    if not directory.exists():
        raise ModelPackError(f"model pack directory {directory} does not exist (paths.models_dir / FACEPRO_MODELS_DIR)")
    if not directory.is_dir():
        raise ModelPackError(f"model pack directory {directory} is not a directory")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".onnx" and p.is_file())
    if not files:
        raise ModelPackError(f"model pack directory {directory}: no .onnx files found")

    loaded: dict[Path, BoundSession] = {}
    problems: dict[Path, str] = {}

    def load(path: Path) -> BoundSession | None:
        if path in loaded:
            return loaded[path]
        if path in problems:
            return None
        try:
            session = create_session(path, providers=providers, threads=threads, cache_dir=cache_dir)
            bound = BoundSession(session, path)
        except Exception as exc:  # ORT raises several types for a bad file
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems[path] = f"cannot load: {first_line}"
            log.warning("model pack %s: %s cannot be loaded: %s", directory, path.name, first_line)
            return None
        loaded[path] = bound
        return bound

    def find(role: str, explicit: str | None, hints: Sequence[str], accept: Any,
             exclude: Path | None) -> BoundSession:
        if explicit is not None:
            path = directory / explicit
            if not path.is_file():
                raise ModelPackError(f"model pack directory {directory}: {role} file {explicit} not found")
            bound = load(path)
            if bound is None:
                raise ModelPackError(f"model pack directory {directory}: {role} file {path.name}: {problems[path]}")
            if not accept(bound):
                raise ModelPackError(f"model pack directory {directory}: {path.name} is not a {role} ({_describe(bound)})")
            return bound
        for path in _ranked(files, hints):
            if path == exclude:
                continue
            bound = load(path)
            if bound is not None and accept(bound):
                return bound
        looked = []
        for path in files:
            if path == exclude:
                continue
            if path in problems:
                looked.append(f"{path.name}: {problems[path]}")
            elif path in loaded:
                looked.append(f"{path.name}: {_describe(loaded[path])}")
        wanted = ("a SCRFD detector (NCHW input with dynamic height/width, 6 or 9 outputs)"
                  if role == "detector" else "an ArcFace-style embedder (NCHW 112x112 input, 1 output)")
        detail = "; ".join(looked) if looked else "no other files"
        raise ModelPackError(f"model pack directory {directory}: no usable {role}, expected {wanted}; found {detail}")

    detector_bound = find("detector", detector_file, DETECTOR_HINTS, _is_detector, None)
    embedder_bound = find("embedder", embedder_file, EMBEDDER_HINTS, _is_embedder, detector_bound.path)
    try:
        detector = FaceDetector(detector_bound, max_side=det_max_side, threshold=det_threshold,
                                max_faces=max_faces)
    except ValueError as exc:
        raise ModelPackError(f"model pack directory {directory}: {exc}") from exc
    try:
        embedder = FaceEmbedder(embedder_bound, max_faces=max_faces)
    except Exception as exc:
        raise ModelPackError(f"model pack directory {directory}: {embedder_bound.file}: {exc}") from exc
    # Sessions opened only to inspect a file are dropped here.
    loaded.clear()
    pack = ModelPack(directory.absolute(), detector, embedder)
    log.info("model pack %s: detector %s on %s, embedder %s (dim %d) on %s", directory,
             detector.file, detector.provider, embedder.file, embedder.dim, embedder.provider)
    return pack


def load_model_pack_from_settings(settings: Any) -> ModelPack:
    """The pack configured in ``settings`` (paths.models_dir and the pipeline section)."""
    return load_model_pack(
        settings.models_dir,
        providers=settings.get("pipeline.providers"),
        threads=settings.get("pipeline.intra_op_threads", 0),
        det_max_side=settings.get("pipeline.det_max_side", DEFAULT_DET_MAX_SIDE),
        max_faces=settings.get("pipeline.max_faces", 16),
        det_threshold=settings.get("recognition.det_threshold", 0.5),
        cache_dir=Path(settings.data_dir) / "cache" / "tensorrt",
    )
