#!/usr/bin/env python3
"""Model-side benchmark parts, importable by scripts/bench_pipeline.py.

(b) :func:`bench_model_only` — the model-only limit: bare ONNX Runtime sessions (same
    session options as the product, from ``edge.pipeline.runtime``) run on the same
    detector input shape as our pipeline and on the same number of face crops per
    frame, with the inputs prepared beforehand: no decode, no preprocessing, no decode
    of the outputs. Nothing a pipeline does around the models can beat it.
(c) :func:`bench_insightface_reference` — the insightface reference path per frame:
    ``model_zoo`` SCRFD ``detect`` (input 640x640) + ``face_align.norm_crop`` +
    ``ArcFaceONNX.get_feat`` for each face, on sessions with the same options.
(d) :func:`heap_per_frame` — Python heap allocated per frame in steady state (tracemalloc):
    the peak above the frame's starting point, and the net growth.

Also :func:`bench_our_models` (our detector + embedder on pre-decoded frames, no camera
or event code), :func:`decode_frames` and :func:`interleaved` (several paths timed in
alternating chunks, fair on a machine whose load swings). Run directly it prints ours,
(b) and (c) timed interleaved, and (d) for ours and insightface, as JSON:

    .venv/bin/python scripts/bench_models.py [--clip PATH] [--models DIR] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.pipeline.detector import DEFAULT_DET_MAX_SIDE, detector_input_size  # noqa: E402
from edge.pipeline.pack import ModelPack, load_model_pack  # noqa: E402
from edge.pipeline.runtime import choose_providers, create_session, session_options  # noqa: E402

SHARED = REPO.parent / "shared"
DEFAULT_CLIP = SHARED / "media" / "short_hamilton_clip.mp4"
DEFAULT_MODELS = SHARED / "models" / "face"
DETECTOR_FILE = "scrfd_2.5g_bnkps.onnx"
EMBEDDER_FILE = "mobilefacenet.onnx"


def decode_frames(path: str | os.PathLike[str] = DEFAULT_CLIP, limit: int | None = None) -> list[np.ndarray]:
    """All frames of a video file, decoded beforehand (BGR uint8)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SystemExit(f"{path}: cannot open the video")
    frames: list[np.ndarray] = []
    while limit is None or len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def count_faces(pack: ModelPack, frames: Sequence[np.ndarray]) -> list[int]:
    """Faces our detector finds per frame (what our embedder then embeds)."""
    return [len(pack.detector.detect(frame)) for frame in frames]


def _fps(frames: int, seconds: float) -> float:
    return round(frames / seconds, 2) if seconds > 0 else 0.0


class ModelOnly:
    """(b) bare sessions: per frame one detector run at our input shape plus one embedder
    run per face; inputs are real preprocessed frames/crops prepared beforehand."""

    def __init__(self, frames: Sequence[np.ndarray], faces_per_frame: Sequence[int],
                 models_dir: str | os.PathLike[str] = DEFAULT_MODELS, providers: Sequence[str] | None = None,
                 threads: int = 0, max_side: int = DEFAULT_DET_MAX_SIDE, detector_file: str = DETECTOR_FILE,
                 embedder_file: str = EMBEDDER_FILE, det_input_hw: tuple[int, int] | None = None) -> None:
        models = Path(models_dir)
        self.det = create_session(models / detector_file, providers=providers, threads=threads)
        self.emb = create_session(models / embedder_file, providers=providers, threads=threads)
        self.faces_per_frame = list(faces_per_frame)
        frame_h, frame_w = frames[0].shape[:2]
        if det_input_hw is None:
            new_w, new_h, in_w, in_h = detector_input_size(frame_w, frame_h, max_side)
        else:
            in_h, in_w = det_input_hw
            new_w, new_h = min(in_w, frame_w), min(in_h, frame_h)
        self.input_shape = [1, 3, in_h, in_w]
        # A few real blobs, cycled (all 275 would need ~800 MB).
        self.blobs = []
        for frame in frames[:: max(len(frames) // 8, 1)][:8]:
            canvas = np.zeros((in_h, in_w, 3), np.uint8)
            canvas[:new_h, :new_w] = cv2.resize(frame, (new_w, new_h))
            self.blobs.append(cv2.dnn.blobFromImage(canvas, 1.0 / 128.0, (in_w, in_h), (127.5,) * 3, swapRB=True))
        self.crops = cv2.dnn.blobFromImages(
            [cv2.resize(frame[100:260, 240:400], (112, 112)) for frame in frames[:4]],
            1.0 / 127.5, (112, 112), (127.5,) * 3, swapRB=True)
        self.det_name = self.det.get_inputs()[0].name
        self.emb_name = self.emb.get_inputs()[0].name
        self.det_times: list[float] = []
        self.emb_times: list[float] = []
        for blob in self.blobs[:2]:  # warm-up
            self.det.run(None, {self.det_name: blob})
            self.emb.run(None, {self.emb_name: self.crops[:1]})

    @property
    def provider(self) -> str:
        return self.det.get_providers()[0]

    def __call__(self, index: int) -> int:
        count = self.faces_per_frame[index]
        t0 = time.perf_counter()
        self.det.run(None, {self.det_name: self.blobs[index % len(self.blobs)]})
        t1 = time.perf_counter()
        crops = self.crops
        for j in range(count):
            k = j % len(crops)
            self.emb.run(None, {self.emb_name: crops[k:k + 1]})
        self.det_times.append(t1 - t0)
        if count:
            self.emb_times.append((time.perf_counter() - t1) / count)
        return count

    def stage_medians(self) -> dict[str, Any]:
        return {
            "detect_ms_median": round(statistics.median(self.det_times) * 1000, 2) if self.det_times else None,
            "embed_ms_per_face_median": round(statistics.median(self.emb_times) * 1000, 2) if self.emb_times else None,
        }


def bench_model_only(frames: Sequence[np.ndarray], faces_per_frame: Sequence[int],
                     models_dir: str | os.PathLike[str] = DEFAULT_MODELS,
                     providers: Sequence[str] | None = None, threads: int = 0,
                     max_side: int = DEFAULT_DET_MAX_SIDE, detector_file: str = DETECTOR_FILE,
                     embedder_file: str = EMBEDDER_FILE, det_input_hw: tuple[int, int] | None = None
                     ) -> dict[str, Any]:
    """(b) the model-only limit over all frames (see :class:`ModelOnly`)."""
    runner = ModelOnly(frames, faces_per_frame, models_dir, providers, threads, max_side,
                       detector_file, embedder_file, det_input_hw)
    start = time.perf_counter()
    for i in range(len(runner.faces_per_frame)):
        runner(i)
    seconds = time.perf_counter() - start
    return {
        "frames": len(runner.faces_per_frame),
        "faces": int(sum(runner.faces_per_frame)),
        "seconds": round(seconds, 3),
        "fps": _fps(len(runner.faces_per_frame), seconds),
        "detector_input_shape": runner.input_shape,
        "provider": runner.provider,
        **runner.stage_medians(),
    }


def interleaved(runners: dict[str, Callable[[int], int]], frame_count: int, chunk: int = 25,
                warmup: int = 3) -> dict[str, dict[str, Any]]:
    """Time several per-frame runners (called with the frame index) side by side: chunks
    of ``chunk`` frames in turn, so a busy machine's load swings hit all of them alike."""
    for run in runners.values():
        for i in range(min(warmup, frame_count)):
            run(i)
    seconds = dict.fromkeys(runners, 0.0)
    faces = dict.fromkeys(runners, 0)
    for start in range(0, frame_count, chunk):
        stop = min(start + chunk, frame_count)
        for name, run in runners.items():
            t0 = time.perf_counter()
            for i in range(start, stop):
                faces[name] += run(i)
            seconds[name] += time.perf_counter() - t0
    return {name: {"frames": frame_count, "faces": faces[name], "seconds": round(seconds[name], 3),
                   "fps": _fps(frame_count, seconds[name])} for name in runners}


def load_insightface_reference(models_dir: str | os.PathLike[str] = DEFAULT_MODELS,
                               providers: Sequence[str] | None = None, threads: int = 0,
                               det_size: tuple[int, int] = (640, 640),
                               detector_file: str = DETECTOR_FILE, embedder_file: str = EMBEDDER_FILE
                               ) -> tuple[Any, Any]:
    """insightface's SCRFD and ArcFaceONNX on sessions with our session options."""
    from insightface.model_zoo import get_model

    chosen = choose_providers(providers)
    ctx_id = 0 if any(p in chosen for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")) else -1
    models = Path(models_dir)
    detector = get_model(str(models / detector_file), providers=chosen, sess_options=session_options(threads))
    detector.prepare(ctx_id=ctx_id, input_size=det_size)
    recogniser = get_model(str(models / embedder_file), providers=chosen, sess_options=session_options(threads))
    recogniser.prepare(ctx_id=ctx_id)
    return detector, recogniser


def insightface_frame_fn(detector: Any, recogniser: Any) -> Callable[[np.ndarray], int]:
    """One frame through the reference path; returns the number of faces."""
    from insightface.utils import face_align

    def process(frame: np.ndarray) -> int:
        _, kpss = detector.detect(frame)
        for kps in kpss:
            recogniser.get_feat(face_align.norm_crop(frame, kps))
        return len(kpss)

    return process


def our_frame_fn(pack: ModelPack, gallery: Any = None) -> Callable[[np.ndarray], int]:
    """One frame through our detector + embedder (+ gallery match if given)."""

    def process(frame: np.ndarray) -> int:
        detections = pack.detector.detect(frame)
        if len(detections):
            embeddings = pack.embedder.embed(frame, detections.kps)
            if gallery is not None:
                gallery.match(embeddings)
        return len(detections)

    return process


def _time_frames(process: Callable[[np.ndarray], int], frames: Sequence[np.ndarray]) -> dict[str, Any]:
    for frame in frames[:3]:  # warm-up (first-shape binding, lazy allocations)
        process(frame)
    faces = 0
    start = time.perf_counter()
    for frame in frames:
        faces += process(frame)
    seconds = time.perf_counter() - start
    return {"frames": len(frames), "faces": faces, "seconds": round(seconds, 3), "fps": _fps(len(frames), seconds)}


def bench_insightface_reference(frames: Sequence[np.ndarray], models_dir: str | os.PathLike[str] = DEFAULT_MODELS,
                                providers: Sequence[str] | None = None, threads: int = 0,
                                det_size: tuple[int, int] = (640, 640), measure_heap: bool = True
                                ) -> dict[str, Any]:
    """(c) insightface reference path per frame, on pre-decoded frames."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # skimage estimate() deprecation
        detector, recogniser = load_insightface_reference(models_dir, providers, threads, det_size)
        process = insightface_frame_fn(detector, recogniser)
        result = _time_frames(process, frames)
        result["detector_input_shape"] = [1, 3, det_size[1], det_size[0]]
        result["provider"] = detector.session.get_providers()[0]
        if measure_heap:
            result["heap"] = heap_per_frame(process, frames)
    return result


def bench_our_models(frames: Sequence[np.ndarray], pack: ModelPack, gallery: Any = None,
                     measure_heap: bool = True) -> dict[str, Any]:
    """Our detector + embedder (+ match) on pre-decoded frames (no camera, no events)."""
    process = our_frame_fn(pack, gallery)
    result = _time_frames(process, frames)
    result["detector_input_shape"] = pack.detector.input_shape
    result["provider"] = pack.detector.provider
    if measure_heap:
        result["heap"] = heap_per_frame(process, frames)
    return result


def heap_per_frame(process: Callable[[np.ndarray], Any], frames: Sequence[np.ndarray],
                   warmup: int = 5) -> dict[str, Any]:
    """(d) Python heap per frame in steady state, by tracemalloc: for each frame the peak
    traced memory above the frame's starting point (what the frame allocated at most at
    once, temporaries included), and the net growth over all measured frames."""
    for frame in frames[:warmup]:
        process(frame)
    peaks: list[int] = []
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for frame in frames[warmup:]:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            process(frame)
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
        growth = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    return heap_summary(peaks, growth)


def heap_summary(peaks: Sequence[int], growth: int) -> dict[str, Any]:
    """Per-frame peak traced bytes (median, p95, max) and the net growth over the run."""
    return {
        "frames": len(peaks),
        "peak_bytes_per_frame_median": int(statistics.median(peaks)) if peaks else 0,
        "peak_bytes_per_frame_p95": int(np.percentile(peaks, 95)) if peaks else 0,
        "peak_bytes_per_frame_max": max(peaks) if peaks else 0,
        "net_growth_bytes": int(growth),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default=str(DEFAULT_CLIP))
    parser.add_argument("--models", default=str(DEFAULT_MODELS))
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = ORT default)")
    parser.add_argument("--providers", nargs="*", default=None)
    parser.add_argument("--frames", type=int, default=None, help="limit the frames (default: all)")
    args = parser.parse_args(argv)

    frames = decode_frames(args.clip, args.frames)
    pack = load_model_pack(args.models, providers=args.providers, threads=args.threads)
    faces = count_faces(pack, frames)
    ours = our_frame_fn(pack)
    model_only = ModelOnly(frames, faces, args.models, args.providers, args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # skimage estimate() deprecation
        detector, recogniser = load_insightface_reference(args.models, args.providers, args.threads)
        reference = insightface_frame_fn(detector, recogniser)
        timed = interleaved({
            "ours_models_only_path": lambda i: ours(frames[i]),
            "b_model_only_limit": model_only,
            "c_insightface_reference": lambda i: reference(frames[i]),
        }, len(frames))
        timed["c_insightface_reference"]["heap"] = heap_per_frame(reference, frames)
    timed["ours_models_only_path"]["heap"] = heap_per_frame(ours, frames)
    timed["ours_models_only_path"]["detector_input_shape"] = pack.detector.input_shape
    timed["b_model_only_limit"]["detector_input_shape"] = model_only.input_shape
    timed["b_model_only_limit"].update(model_only.stage_medians())
    timed["c_insightface_reference"]["detector_input_shape"] = [1, 3, 640, 640]
    ours_fps = timed["ours_models_only_path"]["fps"]
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "loadavg_1m_at_end": round(os.getloadavg()[0], 2)},
        "clip": args.clip,
        "frames": len(frames),
        "threads": args.threads,
        "provider": pack.detector.provider,
        "method": "interleaved: 25-frame chunks of each path in turn, on frames decoded beforehand",
        **timed,
        "ratios": {
            "ours_vs_insightface": round(ours_fps / timed["c_insightface_reference"]["fps"], 2),
            "ours_vs_model_only": round(ours_fps / timed["b_model_only_limit"]["fps"], 3),
        },
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
