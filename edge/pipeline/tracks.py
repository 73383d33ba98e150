"""Embedding reuse for faces that stay put between a camera's frames.

A face found again where it was in the camera's previous processed frame (box overlap at
least ``MIN_IOU``, and no other face close enough to be confused with it) keeps the
embedding computed for it, for at most ``max_reuse`` frames in a row; then, or whenever
the match is not clear, it is embedded again. A face whose best gallery similarity was
close to the match threshold (within ``UNDECIDED_MARGIN``) is embedded on every frame:
its similarity moves from frame to frame, and each frame is a chance to recognise it.

On video most faces are the same faces as a frame ago, so this saves most embedder runs (the embedder is about a third of the work per
frame with a few faces, and most of it in a crowd) without changing who is recognised:
matching against the gallery still runs on every face of every frame.

Per camera; all buffers preallocated for ``max_faces``.
"""
from __future__ import annotations

import numpy as np

# A face is "the same face" when its box overlaps the previous one this much...
MIN_IOU = 0.6
# ...and no other box of either frame overlaps it more than this (two people crossing).
MAX_OTHER_IOU = 0.3
# Faces whose similarity was within this of the match threshold are not reused.
UNDECIDED_MARGIN = 0.1
# Nothing is reused across a longer gap between frames (a stall, a reconnect, dropped
# frames): by then someone else may stand where the last person stood.
MAX_GAP_S = 0.5


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of x1, y1, x2, y2 boxes."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


class EmbeddingReuse:
    """One camera's faces of its previous processed frame, with their embeddings."""

    def __init__(self, max_faces: int, dim: int, max_reuse: int, match_threshold: float) -> None:
        self.max_reuse = int(max_reuse)
        self.match_threshold = float(match_threshold)
        self._boxes = np.zeros((max_faces, 4), dtype=np.float32)
        self._embeddings = np.zeros((max_faces, dim), dtype=np.float32)
        self._ages = np.zeros((max_faces,), dtype=np.int64)
        self._undecided = np.zeros((max_faces,), dtype=bool)
        self._new_ages = np.zeros((max_faces,), dtype=np.int64)
        self._count = 0
        self._captured_at = 0.0

    def plan(self, boxes: np.ndarray, out: np.ndarray, captured_at: float) -> list[int]:
        """Copy the reusable embeddings of this frame's ``boxes`` into ``out`` (rows in box
        order) and return the indices of the faces that must be embedded. ``captured_at``
        (seconds) is when the frame was captured."""
        n = int(boxes.shape[0])
        prev = self._count
        gap = captured_at - self._captured_at
        self._captured_at = captured_at
        if self.max_reuse <= 0 or prev == 0 or n == 0 or not 0.0 <= gap <= MAX_GAP_S:
            self._new_ages[:n] = 0
            return list(range(n))
        overlap = iou_matrix(boxes, self._boxes[:prev])
        best_prev = overlap.argmax(axis=1)
        need: list[int] = []
        for i in range(n):
            j = int(best_prev[i])
            best = overlap[i, j]
            if best < MIN_IOU or self._ages[j] >= self.max_reuse or self._undecided[j]:
                need.append(i)
                continue
            # overlap[i, j] itself counts once in its row and its column (it is above MIN_IOU).
            if (overlap[i] > MAX_OTHER_IOU).sum() > 1 or (overlap[:, j] > MAX_OTHER_IOU).sum() > 1:
                need.append(i)  # another face is close: do not risk handing over an identity
                continue
            out[i] = self._embeddings[j]
            self._new_ages[i] = self._ages[j] + 1
        for i in need:
            self._new_ages[i] = 0
        return need

    def forget(self, captured_at: float) -> None:
        """A frame without faces: nothing to carry over to the next one."""
        self._count = 0
        self._captured_at = captured_at

    def remember(self, boxes: np.ndarray, embeddings: np.ndarray, similarities: np.ndarray) -> None:
        """Keep this frame's faces (after :meth:`plan`, embedding the needed ones and
        matching all of them: ``similarities`` are their best gallery similarities)."""
        n = int(boxes.shape[0])
        self._boxes[:n] = boxes
        self._embeddings[:n] = embeddings[:n]
        self._ages[:n] = self._new_ages[:n]
        np.less(np.abs(similarities[:n] - self.match_threshold), UNDECIDED_MARGIN, out=self._undecided[:n])
        self._count = n
