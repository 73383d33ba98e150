"""ONNX Runtime, in one place: provider choice, session options, IOBinding buffers.

Every ORT session in the product is created here (:func:`create_session`), so provider
order, thread settings and the TensorRT engine cache are decided once.

:class:`BoundSession` runs a model through IOBinding with numpy buffers that are
allocated once per input shape and then reused: callers write the input in place
(:meth:`BoundSession.input_buffer`) and read outputs from arrays ORT wrote into.
Binding CPU memory works with every provider (ORT copies to and from the device
itself), so the hot path never allocates a tensor per frame.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

# Preference order; the settings (``pipeline.providers``) filter it, availability too.
PROVIDER_PREFERENCE: tuple[str, ...] = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)
CPU = "CPUExecutionProvider"

# Input shapes remembered per session (a camera stream has one; enrolment photos vary).
MAX_CACHED_SHAPES = 8


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def choose_providers(requested: Sequence[str] | None = None,
                     available: Sequence[str] | None = None) -> list[str]:
    """Providers to use, best first: the preference order filtered by ``requested``
    (None = all) and by what this onnxruntime build offers. CPU always ends the list."""
    have = set(available_providers() if available is None else available)
    wanted = None if requested is None else list(requested)
    chosen: list[str] = []
    for name in PROVIDER_PREFERENCE:
        if name in have and (wanted is None or name in wanted):
            chosen.append(name)
    # Providers outside our preference list (CoreML, DirectML...) when asked for by name.
    for name in wanted or ():
        if name not in PROVIDER_PREFERENCE and name in have and name not in chosen:
            chosen.insert(max(len(chosen) - (CPU in chosen), 0), name)
    if wanted is not None:
        missing = [name for name in wanted if name not in have]
        if missing:
            log.debug("execution providers not available in this onnxruntime build: %s",
                     ", ".join(missing))
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


def session_options(threads: int = 0, spin: bool = False) -> ort.SessionOptions:
    """Options for small CPUs: ``threads`` intra-op threads (0 = ORT's default, one per
    core), one inter-op thread and sequential execution (our graphs are chains).

    ``spin=False`` stops idle intra-op threads from busy-waiting for the next operator.
    Spinning buys a little latency on an idle many-core machine; on a 2-core device that
    also decodes video, it burns the cores the decoder and the other thread need: the
    detector + embedder ran ~1.6x faster without it on the 2-core CI box (8.4-9.0 vs
    13.8-15.2 frames/s, interleaved A/B on the shared clip).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(int(threads), 0)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only; ORT warns about unused initializers
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _provider_options(name: str, cache_dir: Path | None) -> dict[str, str]:
    if name == "TensorrtExecutionProvider" and cache_dir is not None:
        # Building TRT engines takes minutes on a Jetson: keep them across restarts.
        return {
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(cache_dir),
            "trt_fp16_enable": "True",
        }
    return {}


def create_session(model_path: str | os.PathLike[str], providers: Sequence[str] | None = None,
                   threads: int = 0, cache_dir: str | os.PathLike[str] | None = None
                   ) -> ort.InferenceSession:
    """An InferenceSession with the project's options. ``providers`` is the configured
    list (None = any available); the session reports what it really uses in
    ``get_providers()[0]``. Raises whatever ORT raises for an unloadable file."""
    chosen = choose_providers(providers)
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None and "TensorrtExecutionProvider" in chosen:
        cache.mkdir(parents=True, exist_ok=True)
    provider_args = [(name, _provider_options(name, cache)) for name in chosen]
    session = ort.InferenceSession(str(model_path), sess_options=session_options(threads),
                                   providers=provider_args)
    log.debug("session %s: providers %s", Path(model_path).name, session.get_providers())
    return session


_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


class _ShapeBinding:
    """Buffers and the IOBinding for one input shape."""

    def __init__(self, session: ort.InferenceSession, input_name: str, input_dtype: np.dtype,
                 shape: tuple[int, ...], backing: np.ndarray | None = None) -> None:
        self.shape = shape
        if backing is None:
            self.input = np.zeros(shape, dtype=input_dtype)
        else:
            size = int(np.prod(shape))
            if backing.dtype != input_dtype or not backing.flags.c_contiguous or backing.size < size:
                raise ValueError(f"backing buffer {backing.shape} {backing.dtype} cannot hold input {shape}")
            self.input = backing.reshape(-1)[:size].reshape(shape)
        self.outputs: list[np.ndarray] | None = None
        self.binding = session.io_binding()
        self.binding.bind_input(input_name, "cpu", 0, self.input.dtype, list(shape),
                                self.input.ctypes.data)


class BoundSession:
    """One model run through IOBinding with reused numpy input/output buffers.

    ``input_buffer(shape)`` returns the array bound as the model input for that shape
    (allocated on first use, the same array on every later call). ``run()`` executes
    the model and returns the output arrays, which ORT wrote into in place; they stay
    valid until the next ``run`` with the same shape.
    """

    def __init__(self, session: ort.InferenceSession, path: str | os.PathLike[str]) -> None:
        self.session = session
        self.path = Path(path)
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"{self.path}: expected one input, the model has {len(inputs)}")
        self.input_name = inputs[0].name
        self.input_shape_spec: list[int | str | None] = list(inputs[0].shape)
        self.input_dtype = np.dtype(_NUMPY_TYPES.get(inputs[0].type, np.float32))
        self.output_names = [o.name for o in session.get_outputs()]
        self.output_shape_specs = [list(o.shape) for o in session.get_outputs()]
        self._bindings: dict[tuple[int, ...], _ShapeBinding] = {}
        self._current: _ShapeBinding | None = None
        self.max_shapes = MAX_CACHED_SHAPES

    @property
    def provider(self) -> str:
        """The execution provider actually in use (ORT's first active provider)."""
        return self.session.get_providers()[0]

    @property
    def file(self) -> str:
        return self.path.name

    @property
    def current_input_shape(self) -> tuple[int, ...] | None:
        return self._current.shape if self._current is not None else None

    @property
    def output_buffers(self) -> list[np.ndarray] | None:
        """The bound output arrays of the current shape (None before its first run)."""
        return self._current.outputs if self._current is not None else None

    def input_buffer(self, shape: Sequence[int], backing: np.ndarray | None = None) -> np.ndarray:
        """The bound input array for ``shape``; selects it for the next :meth:`run`.

        ``backing`` (C-contiguous, same dtype) lends the memory for a new shape: the
        input is then a view of its first elements, so several batch sizes can share
        one buffer. Without it the array is allocated on the shape's first use.
        """
        key = tuple(map(int, shape))
        current = self._current
        if current is not None and current.shape == key:
            return current.input
        binding = self._bindings.get(key)
        if binding is None:
            if len(self._bindings) >= self.max_shapes:
                self._bindings.pop(next(iter(self._bindings)))
            binding = _ShapeBinding(self.session, self.input_name, self.input_dtype, key, backing)
            self._bindings[key] = binding
        self._current = binding
        return binding.input

    def run(self) -> list[np.ndarray]:
        """Run on the selected input buffer; returns the bound output arrays."""
        binding = self._current
        if binding is None:
            raise RuntimeError("BoundSession.run() before input_buffer(shape)")
        if binding.outputs is None:
            # First run at this shape: let ORT size the outputs, then bind arrays of
            # those shapes so every later run writes into them.
            for name in self.output_names:
                binding.binding.bind_output(name, "cpu")
            self.session.run_with_iobinding(binding.binding)
            first = binding.binding.copy_outputs_to_cpu()
            binding.outputs = [np.ascontiguousarray(arr) for arr in first]
            binding.binding.clear_binding_outputs()
            for name, arr in zip(self.output_names, binding.outputs):
                binding.binding.bind_output(name, "cpu", 0, arr.dtype, list(arr.shape),
                                            arr.ctypes.data)
            return binding.outputs
        self.session.run_with_iobinding(binding.binding)
        return binding.outputs
