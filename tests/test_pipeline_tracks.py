"""Embedding reuse between a camera's frames (edge.pipeline.tracks), on hand-made boxes."""
from __future__ import annotations

import numpy as np

from edge.pipeline.tracks import EmbeddingReuse, iou_matrix

DIM = 4
THRESHOLD = 0.4


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


class Camera:
    """Frames through one EmbeddingReuse; a computed embedding is filled with a new number."""

    def __init__(self, max_reuse: int) -> None:
        self.reuse = EmbeddingReuse(8, DIM, max_reuse=max_reuse, match_threshold=THRESHOLD)
        self.computed = 0
        self.reused = 0
        self.clock = 1000.0
        self.out = np.zeros((0, DIM), dtype=np.float32)

    def frame(self, faces: np.ndarray, similarities: list[float], after_s: float = 0.033) -> list[int]:
        """A frame captured ``after_s`` after the previous one; returns the indices of the
        faces that had to be embedded."""
        self.clock += after_s
        self.out = np.zeros((len(faces), DIM), dtype=np.float32)
        need = self.reuse.plan(faces, self.out, self.clock)
        for i in need:
            self.computed += 1
            self.out[i] = self.computed
        self.reused += len(faces) - len(need)
        self.reuse.remember(faces, self.out, np.array(similarities, dtype=np.float32))
        return need


def test_iou_matrix() -> None:
    a = boxes((0, 0, 10, 10), (100, 100, 110, 110))
    b = boxes((0, 0, 10, 10), (5, 0, 15, 10))
    assert np.allclose(iou_matrix(a, b), [[1.0, 50 / 150], [0.0, 0.0]])


def test_a_face_that_stays_put_keeps_its_embedding_for_max_reuse_frames() -> None:
    cam = Camera(max_reuse=2)
    face = boxes((100, 100, 160, 170))
    assert cam.frame(face, [0.9]) == [0]
    first = cam.out[0].copy()
    assert cam.frame(face + 2, [0.9]) == []           # moved a little: reused
    assert np.array_equal(cam.out[0], first)
    assert cam.frame(face + 4, [0.9]) == []           # reused twice
    assert cam.frame(face + 4, [0.9]) == [0]          # then embedded again
    assert not np.array_equal(cam.out[0], first)
    assert (cam.computed, cam.reused) == (2, 2)


def test_a_face_that_moved_is_embedded() -> None:
    cam = Camera(max_reuse=4)
    cam.frame(boxes((100, 100, 160, 170)), [0.05])
    assert cam.frame(boxes((140, 100, 200, 170)), [0.05]) == [0]


def test_faces_close_to_another_are_embedded_not_handed_over() -> None:
    """Two people side by side, overlapping: neither keeps an embedding (no identity swap)."""
    cam = Camera(max_reuse=4)
    pair = boxes((100, 100, 160, 170), (130, 100, 190, 170))
    cam.frame(pair, [0.9, 0.05])
    assert cam.frame(pair, [0.9, 0.05]) == [0, 1]
    # A new face appearing next to a known one makes the known one re-embed too.
    cam = Camera(max_reuse=4)
    cam.frame(boxes((100, 100, 160, 170)), [0.9])
    assert cam.frame(pair, [0.9, 0.05]) == [0, 1]


def test_two_separate_faces_each_keep_their_own() -> None:
    cam = Camera(max_reuse=4)
    cam.frame(boxes((0, 0, 50, 60), (300, 0, 350, 60)), [0.9, 0.05])
    kept = cam.out.copy()
    # Same faces, listed in the other order (the detector sorts by score).
    assert cam.frame(boxes((301, 1, 351, 61), (1, 1, 51, 61)), [0.05, 0.9]) == []
    assert np.array_equal(cam.out[0], kept[1]) and np.array_equal(cam.out[1], kept[0])


def test_undecided_faces_are_embedded_every_frame() -> None:
    """A similarity near the threshold moves from frame to frame: each frame is a new chance."""
    cam = Camera(max_reuse=4)
    face = boxes((100, 100, 160, 170))
    cam.frame(face, [0.35])
    assert cam.frame(face, [0.45]) == [0]
    assert cam.frame(face, [0.55]) == [0]   # 0.45 was undecided
    assert cam.frame(face, [0.55]) == []    # 0.55 is clear


def test_zero_max_reuse_embeds_everything() -> None:
    cam = Camera(max_reuse=0)
    face = boxes((100, 100, 160, 170))
    cam.frame(face, [0.9])
    assert cam.frame(face, [0.9]) == [0]


def test_nothing_is_reused_across_a_gap_or_an_empty_frame() -> None:
    """After a stall or a frame without faces, someone else may stand where the last one stood."""
    cam = Camera(max_reuse=4)
    face = boxes((100, 100, 160, 170))
    cam.frame(face, [0.9])
    assert cam.frame(face, [0.9], after_s=2.0) == [0]
    assert cam.frame(face, [0.9]) == []
    cam.clock += 0.033
    cam.reuse.forget(cam.clock)
    assert cam.frame(face, [0.9]) == [0]
    assert cam.frame(face, [0.9], after_s=-1.0) == [0]  # the clock went back
