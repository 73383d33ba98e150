"""The enrolled faces as one contiguous float32 matrix; matching is one matrix product.

Only embeddings made by the current embedder (same dimension and backend) are loaded:
cosine similarity between two different models' embeddings means nothing, so rows from
another model are refused, counted and reported (``refused``, ``warnings``) and the
people must be re-enrolled with the current pack.
"""
from __future__ import annotations

import logging
import sqlite3
from typing import Any

import numpy as np

from edge.db import faces
from edge.db.connection import data_version, transaction
from edge.errors import FaceproError

log = logging.getLogger(__name__)

NO_MATCH = -1
_blas_limited = False


def limit_blas_threads(threads: int = 1) -> None:
    """Run numpy's BLAS single-threaded in this process (once).

    Matching is memory-bound (100,000 x 128 floats is 51 MB read per query): a second
    BLAS thread adds nothing on an idle CPU, and on a busy small device (ORT and the
    camera decoders own the cores) its thread hand-offs made a match 5-10x slower.
    """
    global _blas_limited
    if _blas_limited:
        return
    _blas_limited = True
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it BLAS keeps its default thread count
        log.debug("threadpoolctl not installed; BLAS thread count left as is")
        return
    threadpool_limits(limits=threads, user_api="blas")


class _ConnectionState:
    """What a connection has seen: commits by others (data_version), its own writes."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn  # a reference, not id(): ids of dead objects get reused
        self.data_version = data_version(conn)
        self.total_changes = conn.total_changes

    def same(self, other: _ConnectionState | None) -> bool:
        return (other is not None and other.conn is self.conn
                and other.data_version == self.data_version and other.total_changes == self.total_changes)


def _connection_state(conn: sqlite3.Connection) -> _ConnectionState:
    return _ConnectionState(conn)


class GalleryMismatchError(FaceproError, ValueError):
    """Embeddings of another dimension or backend than the gallery's."""


class Gallery:
    def __init__(self, dim: int, backend: str, matrix: np.ndarray | None = None,
                 names: list[str] | None = None, user_ids: list[int] | None = None,
                 max_queries: int = 16, refused: int = 0, warnings: list[str] | None = None,
                 signature: tuple[int, int] | None = None) -> None:
        self.dim = int(dim)
        self.backend = backend
        matrix = np.zeros((0, self.dim), np.float32) if matrix is None else matrix
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise GalleryMismatchError(f"gallery matrix has shape {matrix.shape}, expected (N, {self.dim})")
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.names: list[str] = list(names or [])
        self.user_ids: list[int] = list(user_ids or [])
        if len(self.names) != self.matrix.shape[0]:
            raise ValueError("one name per gallery row is required")
        self.refused = int(refused)
        self.warnings: list[str] = list(warnings or [])
        self.signature = signature
        self._seen: _ConnectionState | None = None
        self._max_queries = max(int(max_queries), 1)
        # Reused per-call outputs: scores for every row, the best row and its score.
        self._scores = np.empty((self._max_queries, self.matrix.shape[0]), dtype=np.float32)
        limit_blas_threads()
        self._best = np.full(self._max_queries, NO_MATCH, dtype=np.int64)
        self._best_scores = np.full(self._max_queries, -1.0, dtype=np.float32)

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def load(cls, conn: sqlite3.Connection, dim: int, backend: str, max_queries: int = 16,
             strict: bool = False) -> Gallery:
        """The gallery for an embedder of ``dim``/``backend`` from the database.

        Rows from another model are left out with a warning, or with ``strict`` raise
        :class:`GalleryMismatchError`.
        """
        with transaction(conn, "DEFERRED"):  # signature and rows from one snapshot
            signature = faces.encodings_signature(conn)
            rows = faces.load_encodings(conn)
        keep = [r for r in rows if int(r["embedding_dim"]) == int(dim) and r["backend"] == backend]
        other = [r for r in rows if not (int(r["embedding_dim"]) == int(dim) and r["backend"] == backend)]
        warnings: list[str] = []
        if other:
            kinds = sorted({(int(r["embedding_dim"]), r["backend"]) for r in other})
            people = sorted({r["name"] for r in other})
            message = (
                f"{len(other)} enrolled embedding(s) of {len(people)} person(s) ({', '.join(people[:5])}"
                f"{'...' if len(people) > 5 else ''}) were made by another model "
                f"({', '.join(f'dim {d}, backend {b}' for d, b in kinds)}); the current model pack "
                f"produces dim {dim}, backend {backend}: they are not matched, re-enrol these people"
            )
            if strict:
                raise GalleryMismatchError(message)
            log.warning("gallery: %s", message)
            warnings.append(message)
        matrix = np.zeros((len(keep), int(dim)), dtype=np.float32)
        for i, row in enumerate(keep):
            vector = faces.blob_to_embedding(row["encoding"])
            if vector.size != int(dim):  # the row's embedding_dim lies about its BLOB
                raise GalleryMismatchError(
                    f"face_encodings row {row['id']} ({row['name']}): BLOB holds {vector.size} floats, "
                    f"embedding_dim says {row['embedding_dim']}")
            matrix[i] = vector
        gallery = cls(dim, backend, matrix, [r["name"] for r in keep], [int(r["user_id"]) for r in keep],
                      max_queries=max_queries, refused=len(other), warnings=warnings, signature=signature)
        gallery._seen = _connection_state(conn)
        return gallery

    def changed(self, conn: sqlite3.Connection) -> bool:
        """Whether face_encodings changed since this gallery was loaded.

        Cheap enough to call every frame: when nothing at all was committed to the
        database since the last check (``PRAGMA data_version`` for other connections,
        ``total_changes`` for this one) no table is read; otherwise one query compares
        face_encodings' (count, max id).
        """
        state = _connection_state(conn)
        if state.same(self._seen):
            return False
        if faces.encodings_signature(conn) != self.signature:
            return True
        self._seen = state
        return False

    def reload_if_changed(self, conn: sqlite3.Connection) -> Gallery:
        """This gallery, or a freshly loaded one if enrolment changed meanwhile."""
        if not self.changed(conn):
            return self
        gallery = Gallery.load(conn, self.dim, self.backend, max_queries=self._max_queries)
        log.info("gallery reloaded: %d embedding(s) of %d person(s)", len(gallery), len(gallery.people))
        return gallery

    # -- queries ---------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def people(self) -> list[str]:
        return sorted(set(self.names))

    def person(self, index: int) -> str | None:
        """The name for a row index from :meth:`match` (None for no match)."""
        if index < 0 or index >= len(self.names):
            return None
        return self.names[index]

    def match(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best gallery row and its cosine similarity for each embedding (rows of
        ``embeddings``, L2-normalised). An empty gallery gives index -1, score -1.
        The returned arrays are reused by the next call."""
        queries = np.asarray(embeddings, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries.reshape(1, -1)
        if queries.shape[1] != self.dim:
            raise GalleryMismatchError(
                f"cannot match {queries.shape[1]}-d embeddings against a gallery of {self.dim}-d "
                f"embeddings (backend {self.backend}): the model pack and the enrolled faces differ; re-enrol")
        count = queries.shape[0]
        if count > self._max_queries:
            self._grow(count)
        best = self._best[:count]
        best_scores = self._best_scores[:count]
        if len(self) == 0 or count == 0:
            best.fill(NO_MATCH)
            best_scores.fill(-1.0)
            return best, best_scores
        scores = self._scores[:count]
        if count == 1:  # matrix-vector product: the common case, a little faster than gemm
            np.dot(self.matrix, queries[0], out=scores[0])
        else:
            np.matmul(queries, self.matrix.T, out=scores)
        np.argmax(scores, axis=1, out=best)
        for i in range(count):
            best_scores[i] = scores[i, best[i]]
        return best, best_scores

    def info(self) -> dict[str, Any]:
        return {"embeddings": len(self), "people": len(self.people), "dim": self.dim,
                "backend": self.backend, "refused": self.refused, "warnings": list(self.warnings)}

    def _grow(self, count: int) -> None:
        self._max_queries = count
        self._scores = np.empty((count, self.matrix.shape[0]), dtype=np.float32)
        self._best = np.full(count, NO_MATCH, dtype=np.int64)
        self._best_scores = np.full(count, -1.0, dtype=np.float32)
