import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import smooth_image
from restore.bench.denoise import noisy_version, run_bench
from restore.bench.metrics import psnr, ssim
from restore.cli import app
from restore.commands.bench_cmd import expand_list_flags


def test_metrics():
    a = smooth_image(64, 64)
    assert psnr(a, a) == float("inf") and ssim(a, a) == 1.0
    b = np.clip(a + 0.1, 0, 1)
    assert 15 < psnr(a, b) < 25 and ssim(a, b) < 1


def test_noise_is_seeded_and_protocols_differ():
    clean = smooth_image(32, 32)
    assert np.array_equal(noisy_version(clean, 25, "8bit", 1), noisy_version(clean, 25, "8bit", 1))
    assert noisy_version(clean, 50, "paper", 1).min() < 0 <= noisy_version(clean, 50, "8bit", 1).min()


def test_bench_runs_the_baselines_on_the_same_inputs(identity_ctx, identity_models, tmp_path):
    for i in range(2):
        Image.fromarray(np.round(smooth_image(48, 64, seed=i) * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    rows = run_bench(sorted(tmp_path.glob("*.png")), [25], ["8bit", "paper"], identity_ctx, ["nlm", "bm3d"])
    by = {(r.protocol, r.method): r for r in rows}
    assert len(rows) == 8 and all(r.images == 2 for r in rows)
    # The identity model returns its input: it must score exactly as the noisy input does.
    assert by[("8bit", "restore (ours)")].psnr == by[("8bit", "noisy input")].psnr
    for protocol in ("8bit", "paper"):
        assert by[(protocol, "bm3d")].psnr > by[(protocol, "noisy input")].psnr + 5
        assert by[(protocol, "nlm")].psnr > by[(protocol, "noisy input")].psnr + 3
    result = CliRunner().invoke(app, ["bench", "denoise", "--data", str(tmp_path), "--sigma", "15", "--protocol", "8bit",
                                      "--baseline", "nlm", "--json", str(tmp_path / "b.json")],
                                env={"RESTORE_MODELS_DIR": str(identity_models)})
    assert result.exit_code == 0, result.output
    assert "| 8bit 15 | nlm |" in result.output and "CBM3D 33.52" in result.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert len(report["rows"]) == 3 and report["rows"][0]["images"] == 2 and report["large_image_sec_per_mp"]["restore (ours)"] > 0
    # Several values after one flag, as the command line spells them.
    args = expand_list_flags(["bench", "denoise", "--data", str(tmp_path), "--sigma", "15", "25", "--protocol", "8bit",
                              "--baseline", "nlm", "--json", str(tmp_path / "c.json")])
    result = CliRunner().invoke(app, args, env={"RESTORE_MODELS_DIR": str(identity_models)})
    assert result.exit_code == 0, result.output
    assert {r["sigma"] for r in json.loads((tmp_path / "c.json").read_text())["rows"]} == {15, 25}


def test_dewatermark_bench(identity_ctx, tmp_path):
    from restore.bench.dewatermark import run_bench as run_watermark_bench

    for i in range(2):
        Image.fromarray(np.round(smooth_image(96, 128, seed=i) * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    rows = {r.method: r for r in run_watermark_bench(sorted(tmp_path.glob("*.png")), identity_ctx, seed=5)}
    ours, marked = rows["restore (ours)"], rows["watermarked input"]
    # The tiny model returns its input and calls bright pixels marks, which the task half-inpaints: it
    # finds some of the true marks and touches pixels outside them, which the input does not.
    assert ours.psnr != marked.psnr and 0 < ours.mask_f1 < 1 and ours.psnr_outside < float("inf")
    one_pass = rows["restore, one pass"]  # a pixel-wise model: the half-turn changes nothing
    assert one_pass.psnr == pytest.approx(ours.psnr, abs=0.01) and one_pass.mask_f1 == ours.mask_f1
    # The tiny model's mask is at least the hint: given the true mask it finds every marked pixel, and a
    # loose mask's overshoot comes back as found.
    exact, loose = rows["restore, given the true mask"], rows["restore, given a mask 8 px loose"]
    assert exact.mask_f1 > ours.mask_f1 and exact.mask_f1 > loose.mask_f1
    assert rows["cv2.inpaint Telea, true mask"].psnr_in_mask > marked.psnr_in_mask
    # Outside the true mask a saved watermarked file is the photo, and inpainting leaves it exactly so.
    assert marked.psnr_outside == float("inf") and rows["cv2.inpaint NS, true mask"].psnr_outside == float("inf")


def test_dewatermark_bench_with_held_out_logos(identity_models, tmp_path):
    from typer.testing import CliRunner

    from restore.cli import app

    photos, logos = tmp_path / "photos", tmp_path / "logos"
    photos.mkdir(), logos.mkdir()
    Image.fromarray(np.round(smooth_image(96, 128) * 255).astype(np.uint8)).save(photos / "0.png")
    logo = np.zeros((40, 40, 4), np.uint8)
    logo[8:32, 8:32] = (20, 60, 170, 255)
    Image.fromarray(logo).save(logos / "square.png")
    env = {"RESTORE_MODELS_DIR": str(identity_models)}
    result = CliRunner().invoke(app, ["bench", "dewatermark", "--data", str(photos), "--logos", str(logos)], env=env)
    assert result.exit_code == 0, result.output
    assert f"every mark a logo from {logos}" in result.output and "| restore (ours) |" in result.output
    result = CliRunner().invoke(app, ["bench", "dewatermark", "--data", str(photos), "--turned"], env=env)
    assert result.exit_code == 0 and "every mark turned a quarter" in result.output
    empty = tmp_path / "none"
    empty.mkdir()
    result = CliRunner().invoke(app, ["bench", "dewatermark", "--data", str(photos), "--logos", str(empty)], env=env)
    assert result.exit_code == 1 and "no logo images" in result.output


def test_colorize_bench_command(tmp_path):
    """The shipped models on two small colour photos: every row, both colourfulness readings, the JSON."""
    for i in range(2):
        Image.fromarray(np.round(smooth_image(64, 96, seed=i) * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    result = CliRunner().invoke(app, ["bench", "colorize", "--data", str(tmp_path), "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert "minus truth's" in result.output and "| VAE, best of 8 |" in result.output
    report = json.loads((tmp_path / "c.json").read_text())
    rows = {r["method"]: r for r in report["rows"]}
    hinted = {f"VAE, {k} hint points" for k in (1, 5, 10, 20)}
    assert set(rows) == {"gray input (ab = 0)", "deterministic autoencoder", "VAE, default sample", "VAE, best of 8"} | hinted
    assert report["hint_misses"] == 0 and report["hinted_pixels"] == 2 * 36  # every hinted pixel has its colour
    assert rows["VAE, 20 hint points"]["psnr"] > rows["VAE, default sample"]["psnr"]
    assert report["diversity_local_ab"] <= report["diversity_ab"] and rows["VAE, default sample"]["cast"] >= 0
    assert rows["VAE, best of 8"]["psnr"] >= rows["VAE, default sample"]["psnr"]
    assert rows["gray input (ab = 0)"]["colourfulness"] == 0 and report["truth_colourfulness"] > 0


def test_speed_bench_times_each_precision_and_explains_int8(tmp_path):
    """restore bench speed on a small photo with the shipped denoiser: a row per precision, the share of
    the time inside the model, and for int8 the bound its convolutions allow, in the table and the JSON."""
    out = tmp_path / "speed.json"
    result = CliRunner().invoke(app, ["bench", "speed", "--megapixels", "0.05", "--threads", "1", "--json", str(out)], catch_exceptions=False)
    assert CliRunner().invoke(app, ["bench", "speed", "--model", "sharpen"]).exit_code != 0
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    rows = {(r["task"], r["precision"]): r for r in report["rows"]}
    assert {("denoise", "fp32"), ("denoise", "int8"), ("denoise", "fp16")} <= set(rows)
    assert all(0 < r["model_share"] <= 1 for r in rows.values())
    int8 = rows[("denoise", "int8")]
    assert 0 < int8["int8_detail"]["quantized_share_of_model"] <= 1 and int8["int8_detail"]["int8_conv_time_vs_float"] > 0
    assert 0 < int8["int8_expected"] <= 1
    assert "of the fp32 time is in the convolutions it quantizes" in result.output and report["cpu_features"] in result.output
