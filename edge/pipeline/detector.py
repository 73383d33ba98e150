"""SCRFD face detector: preprocessing into the bound input, anchor decode, NMS.

Same maths as insightface's ``model_zoo.SCRFD`` (the reference the tests compare
against) with the allocations taken out of the hot path:

* the frame is resized, aspect kept, so its longer side is at most ``max_side`` (the
  detector's, or a camera's own), into a
  preallocated uint8 buffer, then written as normalised RGB planes straight into the
  ORT-bound input tensor, whose size is only rounded up to a multiple of 32
  (a 640x360 frame runs at 640x384, not 640x640); the padding is written once per shape;
* anchor centres are computed once per input shape;
* results land in preallocated arrays; :class:`Detections` holds views of them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from edge.pipeline.runtime import BoundSession

STRIDES = (8, 16, 32)
NUM_ANCHORS = 2
NMS_THRESHOLD = 0.4
INPUT_MEAN = 127.5
INPUT_STD = 128.0
ALIGN = 32
# Candidates above the score threshold kept before NMS (a crowd is a few hundred).
MAX_CANDIDATES = 2000
# Frame sizes (and max sides) whose buffers and anchors are kept (cameras plus the odd photo).
MAX_SHAPES = 8
# 512 rather than insightface's 640: on a 2-core CPU a 640x360 camera runs at 512x288 in
# about 60 % of the time of 640x384; the faces given up are the borderline ones (about
# 45 px wide in a 640-wide frame, scores just above the threshold). README "Detector input".
DEFAULT_DET_MAX_SIDE = 512


@dataclass
class Detections:
    """Faces in one frame, best score first. Arrays are views into the detector's
    buffers: valid until its next ``detect`` call (copy them to keep them)."""

    boxes: np.ndarray   # (N, 4) float32 x1, y1, x2, y2 in frame pixels
    scores: np.ndarray  # (N,) float32
    kps: np.ndarray     # (N, 5, 2) float32 keypoints in frame pixels

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def detector_input_size(width: int, height: int, max_side: int) -> tuple[int, int, int, int]:
    """(resized_w, resized_h, input_w, input_h) for a frame: the longer side scaled to at
    most ``max_side`` (never up), each input side the next multiple of 32."""
    longer = max(width, height)
    if longer > max_side:
        if width >= height:
            new_w = max_side
            new_h = max(int(max_side * height / width), 1)
        else:
            new_h = max_side
            new_w = max(int(max_side * width / height), 1)
    else:
        new_w, new_h = width, height
    in_w = -(-new_w // ALIGN) * ALIGN
    in_h = -(-new_h // ALIGN) * ALIGN
    return new_w, new_h, in_w, in_h


class _ShapeState:
    """Everything that depends on the frame size: resize buffer, anchors, layout."""

    def __init__(self, frame_w: int, frame_h: int, max_side: int, input_tensor: np.ndarray) -> None:
        self.key = (frame_w, frame_h, max_side)
        self.new_w, self.new_h, self.in_w, self.in_h = detector_input_size(frame_w, frame_h, max_side)
        self.label = f"{self.in_w}x{self.in_h}"
        self.scale_x = self.new_w / frame_w
        self.scale_y = self.new_h / frame_h
        self.resized = np.zeros((self.new_h, self.new_w, 3), dtype=np.uint8)
        self.channel = np.zeros((self.new_h, self.new_w), dtype=np.uint8)
        self.input = input_tensor
        self.planes = [input_tensor[0, c, : self.new_h, : self.new_w] for c in range(3)]
        self.anchors: list[np.ndarray] = []
        for stride in STRIDES:
            h, w = self.in_h // stride, self.in_w // stride
            centers = np.stack(list(np.mgrid[:h, :w][::-1]), axis=-1).astype(np.float32)
            centers = (centers * stride).reshape(-1, 2)
            centers = np.repeat(centers, NUM_ANCHORS, axis=0)
            self.anchors.append(np.ascontiguousarray(centers))
        self.masks = [np.zeros(len(a), dtype=bool) for a in self.anchors]


class FaceDetector:
    """SCRFD with 5 keypoints (6- or 9-output exports, strides 8/16/32, 2 anchors)."""

    def __init__(self, bound: BoundSession, max_side: int = DEFAULT_DET_MAX_SIDE, threshold: float = 0.5,
                 max_faces: int = 16, nms_threshold: float = NMS_THRESHOLD) -> None:
        self.bound = bound
        self.max_side = int(max_side)
        self.threshold = float(threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_faces = int(max_faces)
        self._order = _output_order(bound)
        self.has_kps = len(bound.output_names) == 9
        self._shapes: dict[tuple[int, int, int], _ShapeState] = {}
        self._state: _ShapeState | None = None
        self._padded_for: dict[int, tuple[int, int, int]] = {}  # input buffer address -> frame shape key
        self._boxes = np.zeros((self.max_faces, 4), dtype=np.float32)
        self._scores = np.zeros((self.max_faces,), dtype=np.float32)
        self._kps = np.zeros((self.max_faces, 5, 2), dtype=np.float32)

    # -- public ---------------------------------------------------------------------
    @property
    def file(self) -> str:
        return self.bound.file

    @property
    def provider(self) -> str:
        return self.bound.provider

    @property
    def input_shape(self) -> list[int | str | None]:
        """The input tensor shape last used (else the model's declared shape)."""
        current = self.bound.current_input_shape
        return list(current) if current is not None else list(self.bound.input_shape_spec)

    @property
    def input_label(self) -> str | None:
        """The input size of the last frame as "WxH" (e.g. "512x288"); None before one."""
        return self._state.label if self._state is not None else None

    def input_tensor(self) -> np.ndarray | None:
        """The bound input array of the current frame size (for tests and benchmarks)."""
        return self._state.input if self._state is not None else None

    def prepare(self, frame_bgr: np.ndarray, max_side: int | None = None) -> None:
        """Resize and normalise ``frame_bgr`` into the bound input tensor (longer side at
        most ``max_side``, default the detector's)."""
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 BGR frame, got {frame_bgr.shape} {frame_bgr.dtype}")
        frame_h, frame_w = frame_bgr.shape[:2]
        state = self._state_for(frame_w, frame_h, self.max_side if max_side is None else int(max_side))
        if state.new_w == frame_w and state.new_h == frame_h:
            src = frame_bgr
        else:
            cv2.resize(frame_bgr, (state.new_w, state.new_h), dst=state.resized)
            src = state.resized
        # BGR -> RGB planes, (x - mean) / std, written in place into the bound tensor: one
        # channel out into a uint8 plane, then one fused scale-and-shift pass into float32
        # (half the memory passes of cast, subtract, multiply; no temporaries).
        channel = state.channel
        for c, plane in enumerate(state.planes):
            cv2.extractChannel(src, 2 - c, dst=channel)
            cv2.addWeighted(channel, 1.0 / INPUT_STD, channel, 0.0, -INPUT_MEAN / INPUT_STD, dst=plane,
                            dtype=cv2.CV_32F)

    def run(self, threshold: float | None = None) -> Detections:
        """Run the model on the prepared input and decode the faces."""
        state = self._state
        if state is None:
            raise RuntimeError("FaceDetector.run() before prepare(frame)")
        outputs = self.bound.run()
        return self._decode(outputs, state, self.threshold if threshold is None else float(threshold))

    def detect(self, frame_bgr: np.ndarray, threshold: float | None = None,
               timings: dict[str, float] | None = None, max_side: int | None = None) -> Detections:
        """Faces in ``frame_bgr``; ``timings`` (if given) gets "preprocess" and "detect"
        seconds (detect = model + decode + NMS). ``max_side`` overrides the detector's
        (a camera's own setting)."""
        t0 = time.perf_counter()
        self.prepare(frame_bgr, max_side)
        t1 = time.perf_counter()
        detections = self.run(threshold)
        if timings is not None:
            timings["preprocess"] = t1 - t0
            timings["detect"] = time.perf_counter() - t1
        return detections

    # -- internals ------------------------------------------------------------------
    def _state_for(self, frame_w: int, frame_h: int, max_side: int) -> _ShapeState:
        key = (frame_w, frame_h, max_side)
        state = self._state if self._state is not None and self._state.key == key else self._shapes.get(key)
        if state is not None:
            tensor = self.bound.input_buffer(state.input.shape)
            if tensor is not state.input:  # the session dropped that shape: rebuild on the new buffer
                state = None
        else:
            _, _, in_w, in_h = detector_input_size(frame_w, frame_h, max_side)
            tensor = self.bound.input_buffer((1, 3, in_h, in_w))
        if state is None:
            state = _ShapeState(frame_w, frame_h, max_side, tensor)
            if key not in self._shapes and len(self._shapes) >= MAX_SHAPES:
                self._shapes.pop(next(iter(self._shapes)))
            self._shapes[key] = state
            self._padded_for.pop(tensor.ctypes.data, None)  # maybe a new buffer at a reused address
        # Padding is constant (normalised black) and the resize never writes it; it is
        # written again only when a frame size sharing this input shape wrote there
        # (e.g. 640x360 and 640x370 cameras both run at 640x384).
        if self._padded_for.get(tensor.ctypes.data) != key:
            tensor[...] = (0.0 - INPUT_MEAN) / INPUT_STD
            self._padded_for[tensor.ctypes.data] = key
        self._state = state
        return state

    def _decode(self, outputs: list[np.ndarray], state: _ShapeState, threshold: float) -> Detections:
        cand_scores: list[np.ndarray] = []
        cand_boxes: list[np.ndarray] = []
        cand_kps: list[np.ndarray] = []
        for level, stride in enumerate(STRIDES):
            score_idx, box_idx, kps_idx = self._order[level]
            scores = outputs[score_idx].reshape(-1)
            mask = state.masks[level]
            np.greater_equal(scores, threshold, out=mask)
            idx = np.flatnonzero(mask)
            if idx.size == 0:
                continue
            centers = state.anchors[level][idx]
            dist = outputs[box_idx].reshape(-1, 4)[idx] * stride
            boxes = np.empty((idx.size, 4), dtype=np.float32)
            boxes[:, :2] = centers - dist[:, :2]
            boxes[:, 2:] = centers + dist[:, 2:]
            cand_boxes.append(boxes)
            cand_scores.append(scores[idx])
            if kps_idx is not None:
                kd = outputs[kps_idx].reshape(-1, 5, 2)[idx] * stride
                cand_kps.append(kd + centers[:, None, :])
        if not cand_scores:
            return self._result(0)
        scores = np.concatenate(cand_scores)
        boxes = np.concatenate(cand_boxes)
        kps = np.concatenate(cand_kps) if cand_kps else np.zeros((scores.size, 5, 2), np.float32)
        order = np.argsort(-scores, kind="stable")[:MAX_CANDIDATES]
        scores, boxes, kps = scores[order], boxes[order], kps[order]
        keep = _nms(boxes, self.nms_threshold, self.max_faces)
        n = len(keep)
        self._scores[:n] = scores[keep]
        out_boxes = self._boxes[:n]
        out_boxes[:] = boxes[keep]
        out_boxes[:, 0::2] /= state.scale_x
        out_boxes[:, 1::2] /= state.scale_y
        out_kps = self._kps[:n]
        out_kps[:] = kps[keep]
        out_kps[:, :, 0] /= state.scale_x
        out_kps[:, :, 1] /= state.scale_y
        return self._result(n)

    def _result(self, n: int) -> Detections:
        return Detections(self._boxes[:n], self._scores[:n], self._kps[:n])


def _nms(boxes: np.ndarray, threshold: float, limit: int) -> list[int]:
    """Greedy NMS over score-sorted boxes (insightface's +1 pixel area convention)."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.arange(boxes.shape[0])
    keep: list[int] = []
    while order.size > 0 and len(keep) < limit:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[overlap <= threshold]
    return keep


def _output_order(bound: BoundSession) -> list[tuple[int, int, int | None]]:
    """(scores, boxes, kps) output indices per stride. insightface relies on the export
    order (scores x3, boxes x3, kps x3); we check it against the declared widths."""
    count = len(bound.output_names)
    if count not in (6, 9):
        raise ValueError(f"{bound.file}: SCRFD with strides 8/16/32 has 6 or 9 outputs, this model has {count}")
    widths = [spec[-1] if spec else None for spec in bound.output_shape_specs]
    expected = [1, 1, 1, 4, 4, 4] + ([10, 10, 10] if count == 9 else [])
    if all(isinstance(w, int) for w in widths) and widths != expected:
        raise ValueError(f"{bound.file}: unexpected SCRFD output layout {widths} (expected {expected})")
    return [(level, level + 3, (level + 6) if count == 9 else None) for level in range(3)]
