import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest

from restore.engine import CPU, Engine, providers_for
from restore.errors import DeviceError, ModelError
from restore.models import load_manifest, model_for_task, verify
from restore.settings import Settings


def test_providers():
    assert providers_for("cpu") == [CPU]
    assert providers_for("auto")[-1] == CPU
    with pytest.raises(DeviceError, match="unknown device"):
        providers_for("tpu")


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is present here")
def test_cuda_without_gpu_is_an_error_not_a_fallback():
    with pytest.raises(DeviceError, match="onnxruntime-gpu"):
        providers_for("cuda")


def test_engine_caches_one_session_per_model(identity_models):
    engine = Engine(Settings(models_dir=identity_models, device="cpu", threads=1))
    model = model_for_task("denoise", identity_models)
    first = engine.session(model)
    assert engine.session(model) is first
    assert first.providers == [CPU] and first.device == "cpu"
    x = np.random.rand(1, 3, 16, 24).astype(np.float32)
    np.testing.assert_allclose(first.run(x), x, atol=1e-6)


def test_checksum_mismatch_is_refused(identity_models, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(identity_models, folder)
    model = model_for_task("denoise", folder)
    verify(model)
    with open(model.path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="sha256"):
        verify(model_for_task("denoise", folder))
    with pytest.raises(ModelError, match="sha256"):
        Engine(Settings(models_dir=folder)).session(model_for_task("denoise", folder))
    model.path.unlink()
    with pytest.raises(ModelError, match="missing"):
        verify(model)


def test_bad_manifest_and_unknown_task(tmp_path, identity_models):
    with pytest.raises(ModelError, match="cannot read"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        load_manifest(tmp_path)
    with pytest.raises(ModelError, match="no model for task 'sharpen'"):
        model_for_task("sharpen", identity_models)


def test_shipped_manifest_verifies():
    """Every shipped model is listed with its spec, training data and figures, and matches its sha256."""
    manifest = load_manifest()
    assert "denoise" in {m.task for m in manifest.values()}
    for m in manifest.values():
        verify(m)
        assert m.input["multiple_of"] >= 1 and m.training["data"] and m.metrics
    raw = json.loads((next(iter(manifest.values())).path.parent / "manifest.json").read_text())
    assert all(set(e) >= {"name", "version", "file", "sha256", "input", "output", "training", "metrics"} for e in raw["models"])
