"""ArcFace-style embedder: 5-point alignment into a preallocated batch, L2-normalised output.

Alignment is insightface's ``face_align.norm_crop``: the least-squares similarity
transform (as scikit-image's ``SimilarityTransform.estimate``) from the five keypoints to
the ArcFace 112x112 template, applied with ``cv2.warpAffine`` straight into a reused
crop buffer. The crops are then normalised, RGB, (x - 127.5) / 127.5, into the
ORT-bound batch tensor. Models with a dynamic batch run all faces at once; a model
fixed at batch 1 runs face by face through the same bound buffers.
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from edge.pipeline.runtime import BoundSession

CROP_SIZE = 112
INPUT_MEAN = 127.5
INPUT_STD = 127.5

# insightface face_align.arcface_dst: eye centres, nose tip, mouth corners in 112x112.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray = ARCFACE_TEMPLATE) -> np.ndarray:
    """2x3 similarity (rotation, uniform scale, translation) mapping ``src`` points onto
    ``dst`` in the least-squares sense: the transform scikit-image's
    ``SimilarityTransform.estimate`` (Umeyama) finds, which is what insightface's
    ``norm_crop`` uses. In 2-D it has a closed form: with demeaned points as complex
    numbers, scale*rotation is z = sum(conj(s) * d) / sum(|s|^2) (no SVD needed)."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    sx, sy = (src - src_mean).T
    dx, dy = (dst - dst_mean).T
    norm = float(sx @ sx + sy @ sy)
    if norm <= 0.0:
        raise ValueError("degenerate keypoints: cannot estimate an alignment")
    a = float(sx @ dx + sy @ dy) / norm   # scale * cos(angle)
    b = float(sx @ dy - sy @ dx) / norm   # scale * sin(angle)
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[0, 0], matrix[0, 1] = a, -b
    matrix[1, 0], matrix[1, 1] = b, a
    matrix[0, 2] = dst_mean[0] - (a * src_mean[0] - b * src_mean[1])
    matrix[1, 2] = dst_mean[1] - (b * src_mean[0] + a * src_mean[1])
    return matrix


class FaceEmbedder:
    """Embeddings for up to ``max_faces`` faces a call, written into reused buffers."""

    def __init__(self, bound: BoundSession, max_faces: int = 16) -> None:
        spec = bound.input_shape_spec
        if len(spec) != 4 or spec[2] != CROP_SIZE or spec[3] != CROP_SIZE:
            raise ValueError(f"{bound.file}: an embedder needs a [N,3,112,112] input, this model has {spec}")
        self.bound = bound
        self.max_faces = int(max_faces)
        batch = spec[0]
        self.dynamic_batch = not (isinstance(batch, int) and batch > 0)
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else 1
        if not self.dynamic_batch and self.fixed_batch != 1:
            raise ValueError(f"{bound.file}: fixed batch size {self.fixed_batch} is not supported (need 1 or dynamic)")
        # One bound shape per face count (1..max_faces), all over the same batch memory.
        bound.max_shapes = max(bound.max_shapes, self.max_faces + 1)
        self._crops = np.zeros((self.max_faces, CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
        batch = self.max_faces if self.dynamic_batch else 1
        self._batch = np.zeros((batch, 3, CROP_SIZE, CROP_SIZE), dtype=np.float32)
        self._count = 0
        self.dim = self._discover_dim()
        self._embeddings = np.zeros((self.max_faces, self.dim), dtype=np.float32)
        self._norms = np.zeros((self.max_faces, 1), dtype=np.float32)

    @property
    def file(self) -> str:
        return self.bound.file

    @property
    def backend(self) -> str:
        """What enrolled embeddings are tagged with: the model file's stem."""
        return self.bound.path.stem

    @property
    def provider(self) -> str:
        return self.bound.provider

    def aligned_crops(self) -> np.ndarray:
        """(N, 112, 112, 3) uint8 BGR aligned faces of the last :meth:`embed` call (views)."""
        return self._crops[: self._count]

    def align(self, frame_bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
        """Align each face (first ``max_faces``) into the crop buffer; returns the crops."""
        count = min(int(kps.shape[0]), self.max_faces)
        for i in range(count):
            matrix = similarity_transform(kps[i])
            cv2.warpAffine(frame_bgr, matrix, (CROP_SIZE, CROP_SIZE), dst=self._crops[i],
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        self._count = count
        return self._crops[:count]

    def embed(self, frame_bgr: np.ndarray, kps: np.ndarray,
              timings: dict[str, float] | None = None) -> np.ndarray:
        """(N, dim) float32 L2-normalised embeddings for the faces with keypoints ``kps``
        ((N, 5, 2) frame pixels). A view valid until the next call."""
        t0 = time.perf_counter()
        crops = self.align(frame_bgr, kps)
        out = self.embed_crops(crops.shape[0])
        if timings is not None:
            timings["embed"] = time.perf_counter() - t0
        return out

    def embed_crops(self, count: int | None = None) -> np.ndarray:
        """Embeddings of the first ``count`` crops already in the crop buffer."""
        count = self._count if count is None else int(count)
        self._count = count
        out = self._embeddings[:count]
        if count == 0:
            return out
        if self.dynamic_batch:
            for i in range(count):
                _normalise_into(self._crops[i], self._batch[i])
            self.bound.input_buffer((count, 3, CROP_SIZE, CROP_SIZE), backing=self._batch)
            result = self.bound.run()[0]
            out[:] = result.reshape(count, -1)
        else:
            self.bound.input_buffer(self._batch.shape, backing=self._batch)
            for i in range(count):
                _normalise_into(self._crops[i], self._batch[0])
                out[i] = self.bound.run()[0].reshape(-1)
        norms = self._norms[:count]
        np.sqrt(np.einsum("ij,ij->i", out, out), out=norms[:, 0])
        np.maximum(norms, 1e-12, out=norms)
        np.divide(out, norms, out=out)
        return out

    def _discover_dim(self) -> int:
        spec = self.bound.output_shape_specs[0]
        if spec and isinstance(spec[-1], int) and spec[-1] > 0:
            return int(spec[-1])
        shape = (1, 3, CROP_SIZE, CROP_SIZE)
        self.bound.input_buffer(shape, backing=self._batch)
        return int(self.bound.run()[0].reshape(1, -1).shape[1])


def _normalise_into(crop_bgr: np.ndarray, planes: np.ndarray) -> None:
    """uint8 BGR HxWx3 -> float32 RGB 3xHxW, (x - 127.5) / 127.5, into ``planes``."""
    for c in range(3):
        plane = planes[c]
        np.copyto(plane, crop_bgr[:, :, 2 - c], casting="unsafe")  # no ufunc cast buffer
        np.subtract(plane, INPUT_MEAN, out=plane)
        np.multiply(plane, 1.0 / INPUT_STD, out=plane)
