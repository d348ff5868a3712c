"""ONNX Runtime sessions: provider choice, threads, one cached session per model per process.

Sessions are built lazily on first use, never at import time: ORT sessions are not fork-safe, so a
Celery pool child must build its own.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from restore.errors import DeviceError, ModelError
from restore.models import ModelInfo, verify
from restore.settings import Settings

log = logging.getLogger(__name__)

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def providers_for(device: str) -> list[str]:
    """Providers for a device choice. cuda where onnxruntime has no CUDA provider is an error, not a fallback."""
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if device == "cuda":
        if CUDA not in available:
            raise DeviceError(f"device 'cuda' asked for, but this onnxruntime has only {available}; install the gpu extra (onnxruntime-gpu) or use --device cpu")
        return [CUDA, CPU]
    if device == "auto":
        return [CUDA, CPU] if CUDA in available else [CPU]
    raise DeviceError(f"unknown device {device!r}; choose auto, cpu or cuda")


def device_of(providers: list[str]) -> str:
    """'cuda' when CUDA leads the providers, else 'cpu'."""
    return "cuda" if providers and providers[0] == CUDA else "cpu"


@dataclass
class Session:
    model: ModelInfo
    inner: ort.InferenceSession
    seconds: float = 0.0  # time spent in ONNX Runtime so far (restore bench speed: the model's share of a job)

    @property
    def providers(self) -> list[str]:
        return self.inner.get_providers()

    @property
    def device(self) -> str:
        return device_of(self.providers)

    def describe(self) -> dict:
        """What a job's metrics say about the model that ran: name@version, precision, providers."""
        return {"model": f"{self.model.name}@{self.model.version}", "precision": self.model.precision, "providers": self.providers}

    def run(self, x: np.ndarray) -> np.ndarray:
        """The first output (the restored image)."""
        return self.outputs(x)[0]

    def outputs(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Every output, for the model's inputs in their declared order."""
        start = time.perf_counter()
        try:
            return self.inner.run(None, {i.name: x for i, x in zip(self.inner.get_inputs(), inputs)})
        finally:
            self.seconds += time.perf_counter() - start


class Engine:
    """Holds one session per model for this process; thread-safe."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def session(self, model: ModelInfo) -> Session:
        with self._lock:
            if model.name not in self._sessions:
                self._sessions[model.name] = self._load(self.variant(model))
            return self._sessions[model.name]

    def variant(self, model: ModelInfo) -> ModelInfo:
        """The precision to run: the setting's, or for auto fp16 on CUDA and, on CPU, int8 where the
        manifest says its int8 variant keeps the model's quality (auto: true), else fp32."""
        precision = self.settings.precision
        if precision == "auto":
            on_cuda = device_of(providers_for(self.settings.device)) == "cuda"
            if on_cuda:
                precision = "fp16" if "fp16" in model.variants else "fp32"
            else:
                precision = "int8" if model.variants.get("int8", {}).get("auto") else "fp32"
        return model.variant(precision)

    def _load(self, model: ModelInfo) -> Session:
        verify(model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.settings.threads  # 0: ORT uses all cores
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = providers_for(self.settings.device)
        try:
            inner = ort.InferenceSession(str(model.path), opts, providers=providers)
        except Exception as e:  # ORT raises its own untyped errors for bad files
            raise ModelError(f"model {model.name}: ONNX Runtime cannot load {model.path}: {e}") from e
        if self.settings.device == "cuda" and inner.get_providers()[0] != CUDA:
            raise DeviceError(f"model {model.name}: CUDA provider failed to initialise (got {inner.get_providers()}); check the CUDA and cuDNN libraries")
        log.info("loaded %s %s (%s) on %s", model.name, model.version, model.precision, inner.get_providers())
        return Session(model, inner)
