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


def with_variants(identity_models, tmp_path, auto: bool):
    """A copy of the tiny models whose denoiser lists an int8 and an fp16 variant (copies of the fp32
    file, so the outputs agree exactly and only the selection is under test)."""
    import hashlib

    folder = tmp_path / "m"
    shutil.copytree(identity_models, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = next(m for m in manifest["models"] if m["task"] == "denoise")
    entry["variants"] = {}
    for variant in ("int8", "fp16"):
        name = f"tiny-denoise.{variant}.onnx"
        shutil.copy(folder / entry["file"], folder / name)
        entry["variants"][variant] = {"file": name, "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(),
                                      **({"auto": auto} if variant == "int8" else {})}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("asked,auto,expected", [
    ("auto", True, "int8"), ("auto", False, "fp32"), ("fp32", True, "fp32"), ("int8", False, "int8"), ("fp16", False, "fp16"),
])
def test_precision_selection(identity_models, tmp_path, asked, auto, expected):
    folder = with_variants(identity_models, tmp_path, auto)
    engine = Engine(Settings(models_dir=folder, device="cpu", threads=1, precision=asked))
    session = engine.session(model_for_task("denoise", folder))
    assert session.model.precision == expected and session.model.path.name.endswith(("" if expected == "fp32" else expected) + ".onnx")
    assert session.describe()["precision"] == expected


def test_a_missing_variant_or_a_wrong_checksum_is_refused(identity_models, tmp_path):
    folder = with_variants(identity_models, tmp_path, False)
    with pytest.raises(ModelError, match="has no int8 variant"):
        Engine(Settings(models_dir=folder, device="cpu", precision="int8")).session(model_for_task("dewatermark", folder))
    (folder / "tiny-denoise.int8.onnx").write_bytes(b"changed")
    with pytest.raises(ModelError, match="sha256"):
        Engine(Settings(models_dir=folder, device="cpu", precision="int8")).session(model_for_task("denoise", folder))


def test_every_shipped_variant_matches_its_checksum_and_its_fp32_model():
    """Each variant of each shipped model loads (its sha256 is the manifest's) and gives nearly what fp32
    gives on a small photo: fp16 within rounding, int8 within its calibrated steps."""
    from restore.io import read_image, to_float
    from conftest import REPO

    photo = to_float(read_image(REPO / "samples" / "noisy" / "astronaut.png"))[:128, :160]
    for model in load_manifest(None).values():
        if model.task not in ("denoise", "dewatermark") or not model.variants:
            continue
        outputs = {}
        for precision in ("fp32", *model.variants):
            variant = model.variant(precision)
            verify(variant)
            session = Engine(Settings(_env_file=None, device="cpu", threads=1, precision=precision)).session(model)
            x = np.ascontiguousarray(photo.transpose(2, 0, 1)[None])
            inputs = (x, np.zeros_like(x[:, :1])) if model.task == "dewatermark" else (x,)
            outputs[precision] = session.outputs(*inputs)[0]
        for precision, out in outputs.items():
            error = float(np.sqrt(np.mean((out - outputs["fp32"]) ** 2)))
            assert error < (1e-3 if precision == "fp16" else 0.02), (model.name, precision, error)


def test_colorize_int8_keeps_the_samples_apart():
    """The int8 colorizer, calibrated with drawn latents, keeps both the most likely colouring and how
    much the samples differ (calibrated on z = 0 alone, its samples came out nearly alike)."""
    from restore.bench.colorize import diversity
    from restore.io import read_image
    from restore.tasks import colorize
    from conftest import REPO

    model = load_manifest(None)["colorize-vae"]
    if "int8" not in model.variants:
        pytest.skip("no int8 colorize variant")
    gray = read_image(REPO / "samples" / "noisy" / "astronaut.png").color.mean(axis=2, keepdims=True).astype(np.uint8)
    results = {}
    for precision in ("fp32", "int8"):
        session = Engine(Settings(_env_file=None, device="cpu", threads=1, precision=precision)).session(model)
        results[precision] = [s.astype(np.float32) / 255 for s in colorize.colorize_image(session, gray, 6, seed=3)]
    assert diversity(results["int8"]) > 0.8 * diversity(results["fp32"])
    assert float(np.sqrt(np.mean((results["int8"][0] - results["fp32"][0]) ** 2))) < 0.02
