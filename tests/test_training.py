"""Training data, resumable training and ONNX export (the train extra: torch)."""
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from restore.cli import app  # noqa: E402
from restore.io import Picture  # noqa: E402
from restore.pipeline import run  # noqa: E402
from restore.settings import Settings  # noqa: E402
from restore.tasks.base import Context  # noqa: E402
from restore.training.data import CropSampler  # noqa: E402
from restore.training.export import export_onnx  # noqa: E402
from restore.training.nets import ColorConfig, ColorVAE, DenoiseUNet, UNetConfig, WatermarkUNet  # noqa: E402


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, size in enumerate([(80, 60), (100, 70), (20, 20)]):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    return folder


def test_crop_sampler(photos):
    sampler = CropSampler([photos], patch=48)
    assert len(sampler.images) == 2  # the 20x20 image is too small for a 48 crop
    batch = sampler.batch(5)
    assert batch.shape == (5, 48, 48, 3) and batch.dtype == np.uint8
    with pytest.raises(FileNotFoundError, match="no images"):
        CropSampler([photos / "empty"], patch=48)
    with pytest.raises(ValueError, match="at least 512"):
        CropSampler([photos], patch=512)


@pytest.mark.parametrize("net,channels", [(DenoiseUNet, 3), (WatermarkUNet, 4)])
def test_export_matches_torch(tmp_path, net, channels):
    model = net(UNetConfig(in_channels=channels, widths=(8, 16, 32), blocks=(1, 1, 1))).eval()
    assert export_onnx(model, tmp_path / "m.onnx") < 1e-4


def test_parity_leaves_out_only_ties_at_the_watermark_cut():
    from restore.training.export import _Watermark, off_the_cut

    module = _Watermark(WatermarkUNet(UNetConfig(in_channels=4, widths=(8, 16), blocks=(1, 1))))
    cut = WatermarkUNet.keep_below
    restored = np.zeros((1, 3, 1, 3), np.float32)
    torch_mask = np.array([[[[cut + 1e-9, 0.5, 0.3]]]], np.float32)
    ort_mask = np.array([[[[0.0, 0.5, 0.2]]]], np.float32)  # a tie cut one way, agreement, a real difference
    assert off_the_cut(module, [restored, torch_mask], [restored, ort_mask]).tolist() == [[[[False, True, True]]]]


@pytest.mark.parametrize("latent,hints", [(3, True), (3, False), (0, False)])
def test_colorize_export_matches_torch(tmp_path, latent, hints):
    model = ColorVAE(ColorConfig(widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1), latent=latent, hints=hints)).eval()
    assert export_onnx(model, tmp_path / "c.onnx") < 1e-4


def test_simulated_hints_carry_the_true_colours():
    from restore.training.train_colorize import AB_SCALE, HintDraw, simulate_hints

    rng = np.random.default_rng(0)
    L = np.full((32, 32), 50.0, np.float32)
    ab = np.zeros((2, 32, 32), np.float32)
    ab[0, :, 16:] = 60.0  # a red right half
    counts, none = [], 0
    for _ in range(200):
        hint = simulate_hints(L, ab, rng)
        where = hint[2] > 0
        assert set(np.unique(hint[2])) <= {0.0, 1.0} and not hint[:2, ~where].any()
        none += not where.any()
        counts.append(where.sum())
        # Inside one half, a hint's colour is that half's; a hint across the border is a mix of the two.
        a = hint[0, where] * AB_SCALE
        assert np.all((a >= -1e-4) & (a <= 60 + 1e-4)) and np.allclose(hint[1, where], 0)
    assert 20 < none < 90 and max(counts) > 30  # no hints a quarter of the time, many sometimes
    ten = simulate_hints(L, ab, rng, HintDraw(p_region=0, p_stroke=0, largest=1, exactly=10))
    assert ten[2].sum() <= 10 and ten[2].sum() >= 8  # ten points (two may land on one pixel)


def test_a_model_grown_to_take_hints_colours_as_before_until_trained():
    from restore.training.train_colorize import with_hints

    small = ColorVAE(ColorConfig(widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1), latent=3)).eval()
    state, grown = with_hints({"ema": small.state_dict(), "step": 5, "source": "x"}, small)
    grown.load_state_dict(state["ema"])
    grown.eval()
    L, z = torch.rand(1, 1, 32, 32), torch.randn(1, 3, 1, 1)
    hint = torch.zeros(1, 3, 32, 32)
    hint[:, :, 10:12, 10:12] = torch.tensor([0.5, -0.2, 1.0]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(grown(L, z, hint), small(L, z), atol=1e-6)
    assert grown.config.hints and state["step"] == 5


def test_colorize_losses_use_the_latent(photos):
    from restore.color import ab_bins
    from restore.training.train_colorize import lab_batch, losses

    model = ColorVAE(ColorConfig(widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1), latent=3))
    L, ab = lab_batch(CropSampler([photos], patch=48, rotate=False).batch(2))
    assert L.shape == (2, 1, 48, 48) and float(L.min()) >= 0 and float(L.max()) <= 1
    ce, kl = losses(model, L, ab, torch.from_numpy(ab_bins()), 5.0)
    assert float(ce) > 0 and float(kl) >= 0
    (ce + kl).backward()
    assert model.posterior[1].weight.grad.abs().sum() > 0  # the posterior encoder is trained through z


def test_bf16_runs_the_models_in_bfloat16_and_the_losses_in_float32(photos):
    from restore.color import ab_bins
    from restore.training.loop import low_precision
    from restore.training.train_colorize import lab_batch, losses

    model = ColorVAE(ColorConfig(widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1), latent=3))
    L, ab = lab_batch(CropSampler([photos], patch=48, rotate=False).batch(2))
    ce, kl = losses(model, L, ab, torch.from_numpy(ab_bins()), 5.0, bf16=True)
    assert ce.dtype == kl.dtype == torch.float32 and torch.isfinite(ce + kl)
    # The mask comes from float32 logits: a confidently wrong pixel keeps its gradient (a bfloat16
    # sigmoid is exactly 1 from about 5.5 up, and the loss's clamp would cut it off).
    net = WatermarkUNet(UNetConfig(in_channels=4, widths=(8, 16), blocks=(1, 1)))
    tail = net.tail[0]
    with torch.no_grad():
        tail.weight.zero_()
        tail.bias[:4] = 8.0  # the mask's logit everywhere: sigmoid 0.99966, "watermark" with confidence
    with low_precision(True):
        _, mask, _ = net(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    assert mask.dtype == torch.float32
    torch.nn.functional.binary_cross_entropy(mask.clamp(1e-6, 1 - 1e-6), torch.zeros_like(mask)).backward()
    assert tail.bias.grad[:4].abs().min() > 0


def test_colorize_losses_decode_a_share_at_z_zero(photos, monkeypatch):
    """With p_zero 0.5, the posterior sees the first half of the batch and the second half is decoded
    at z = 0: the default sample is trained to be the prediction from L alone."""
    from restore.color import ab_bins
    from restore.training.train_colorize import lab_batch, losses

    model = ColorVAE(ColorConfig(widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1), latent=3))
    seen = {}
    encode, decode = model.encode, model.decode

    def encode_spy(L, ab):
        seen["encoded"] = len(L)
        return encode(L, ab)

    def decode_spy(L, z=None, hint=None):
        seen["z"] = z
        return decode(L, z, hint)

    monkeypatch.setattr(model, "encode", encode_spy)
    monkeypatch.setattr(model, "decode", decode_spy)
    L, ab = lab_batch(CropSampler([photos], patch=48, rotate=False).batch(4))
    ce, kl = losses(model, L, ab, torch.from_numpy(ab_bins()), 5.0, p_zero=0.5)
    assert seen["encoded"] == 2 and seen["z"].shape == (4, 3, 1, 1)
    assert seen["z"][2:].abs().sum() == 0 and seen["z"][:2].abs().sum() > 0
    assert float(ce) > 0 and float(kl) >= 0


def test_rebalancing_favours_rare_colours():
    from restore.color import ab_bins
    from restore.training.train_colorize import colour_prior, nearest_bin, prior_shift, rebalancing_weights

    bins = torch.from_numpy(ab_bins())
    dull = np.full((16, 16, 3), 120, np.uint8)
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 200
    prior = colour_prior([dull] * 9 + [red], bins)
    w = rebalancing_weights(prior, uniform=0.5)
    gray_bin = int(nearest_bin(torch.zeros(1, 2, 1, 1), bins))
    red_bin = int(nearest_bin(torch.tensor([[[[70.0]], [[60.0]]]]), bins))
    assert w[gray_bin] < 1 < w.max() and w.min() > 0
    assert w[gray_bin] < w[red_bin]  # red is rarer here than gray
    assert torch.allclose(rebalancing_weights(prior, uniform=1.0), torch.ones(len(bins)))
    # Shifting the logits re-weights the distribution: from training's 0.5 to none at all divides by w.
    logits = torch.randn(len(bins))
    shifted = torch.softmax(logits + prior_shift(prior, 0.5, 1.0), 0)
    assert torch.allclose(shifted, torch.softmax(logits, 0) / w / (torch.softmax(logits, 0) / w).sum(), rtol=1e-4)
    assert torch.allclose(prior_shift(prior, 0.5, 0.5), torch.zeros(len(bins)))
    assert shifted[gray_bin] / shifted[red_bin] > torch.softmax(logits, 0)[gray_bin] / torch.softmax(logits, 0)[red_bin]


def test_export_serves_the_chosen_rebalancing():
    from restore.training.export import shift_rebalancing
    from restore.training.train_colorize import SERVED_REBALANCE, prior_shift

    model = ColorVAE(ColorConfig(widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1), latent=3))
    before = model.logits[-1].bias.detach().clone()
    prior = torch.softmax(torch.randn(model.config.bins), 0)
    shift_rebalancing(model, {"colour_prior": prior, "config": {"rebalance": 0.5}})
    assert torch.allclose(model.logits[-1].bias - before, prior_shift(prior, 0.5, SERVED_REBALANCE), atol=1e-6)
    with pytest.raises(ValueError, match="colour prior"):
        shift_rebalancing(model, {"config": {"rebalance": 0.5}})


def test_colorize_train_export_and_serve(photos, tmp_path):
    """Train the VAE and its deterministic baseline, export both, colorize with the VAE."""
    runner = CliRunner()
    models = tmp_path / "models"
    for latent, name in ((None, "vae"), (0, "ae")):
        train = ["train", "colorize", "--data", str(photos), "--val", str(photos), "--checkpoint", str(tmp_path / f"{name}.pt"),
                 "--minutes", "0.03", "--batch", "2", "--patch", "32", "--threads", "1"] + (["--latent", "0"] if latent == 0 else [])
        result = runner.invoke(app, train)
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["export", "colorize", "--checkpoint", str(tmp_path / f"{name}.pt"), "--out", str(models / f"{name}.onnx"),
                                     "--manifest", str(models / "manifest.json")])
        assert result.exit_code == 0, result.output
    entries = {m["name"]: m for m in json.loads((models / "manifest.json").read_text())["models"]}
    assert entries["colorize-vae"]["task"] == "colorize" and entries["colorize-ae"]["task"] == "colorize-baseline"
    assert entries["colorize-vae"]["input"]["latent"] == 8 and len(entries["colorize-vae"]["output"]["logits"]["bins"]) == 261
    ctx = Context.create(Settings(models_dir=models, device="cpu"))
    gray = np.random.default_rng(0).integers(0, 256, (37, 53, 1), dtype=np.uint8)
    result = run("colorize", Picture(gray, None, "PNG"), {"samples": 2}, ctx)
    assert [p.color.shape for p in result.pictures] == [(37, 53, 3)] * 2


def test_train_resume_export_and_serve(photos, tmp_path):
    """The commands a user runs: train, train again (resumes), export with a slim checkpoint, restore."""
    runner = CliRunner()
    ckpt, models = tmp_path / "ck.pt", tmp_path / "models"
    train = ["train", "denoise", "--data", str(photos), "--checkpoint", str(ckpt), "--minutes", "0.03", "--batch", "2", "--patch", "32", "--threads", "1"]
    assert runner.invoke(app, train).exit_code == 0
    first = torch.load(ckpt, weights_only=False)["step"]
    assert first > 0
    assert runner.invoke(app, train + ["--bf16"]).exit_code == 0  # resumes, in bfloat16 autocast
    resumed = torch.load(ckpt, weights_only=False)
    assert resumed["step"] > first and resumed["config"]["bf16"]
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in resumed["ema"].values() if v.is_floating_point())
    models.mkdir()
    result = runner.invoke(app, ["export", "denoise", "--checkpoint", str(ckpt), "--out", str(models / "d.onnx"),
                                 "--manifest", str(models / "manifest.json"), "--slim", str(tmp_path / "slim.pt")])
    assert result.exit_code == 0, result.output
    entry = json.loads((models / "manifest.json").read_text())["models"][0]
    assert entry["task"] == "denoise" and entry["input"]["multiple_of"] == 16 and entry["training"]["steps"] > first
    ctx = Context.create(Settings(models_dir=models, device="cpu"))
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)  # not a multiple of the stride
    assert run("denoise", Picture(img, None, "PNG"), {}, ctx).picture.color.shape == (37, 53, 3)
    # --average: the mean of two checkpoints' EMA weights, and a clear error for another network.
    result = runner.invoke(app, ["export", "denoise", "--checkpoint", str(ckpt), "--average", str(tmp_path / "slim.pt"), "--out", str(models / "same.onnx"),
                                 "--manifest", str(tmp_path / "m.json"), "--slim", str(tmp_path / "same.pt")])
    assert result.exit_code == 0, result.output
    same = torch.load(tmp_path / "same.pt", weights_only=False)
    assert same["averaged_with"]["step"] == resumed["step"]
    assert all(torch.equal(v, resumed["ema"][k].half()) for k, v in same["ema"].items() if v.is_floating_point())  # a checkpoint and its own slim copy
    other = {**resumed, "config": {**resumed["config"], "net": {**resumed["config"]["net"], "blocks": [3, 3, 3, 3]}}}
    torch.save(other, tmp_path / "other.pt")
    result = runner.invoke(app, ["export", "denoise", "--checkpoint", str(ckpt), "--average", str(tmp_path / "other.pt"), "--out", str(models / "x.onnx"), "--manifest", str(tmp_path / "m.json")])
    assert result.exit_code == 1 and "not a checkpoint of the same network" in result.output
    fresh = tmp_path / "fresh.pt"
    from_slim = train[:5] + [str(fresh), "--init", str(tmp_path / "slim.pt")] + train[6:]
    assert runner.invoke(app, from_slim).exit_code == 0  # the committed slim checkpoint resumes too
    assert torch.load(fresh, weights_only=False)["step"] > torch.load(ckpt, weights_only=False)["step"]


def test_grow_blocks_starts_from_what_the_smaller_model_computed(photos, tmp_path):
    """--grow-blocks adds residual blocks to --init's architecture; before any step the grown model
    computes what the trained one did, and the run goes on from there in the grown architecture."""
    from restore.training.loop import start
    from restore.training.train_denoise import DenoiseTrainConfig, build_model

    runner = CliRunner()
    small, grown = tmp_path / "small.pt", tmp_path / "grown.pt"
    base = ["train", "denoise", "--data", str(photos), "--minutes", "0.02", "--batch", "2", "--patch", "32", "--threads", "1"]
    assert runner.invoke(app, base + ["--checkpoint", str(small)]).exit_code == 0
    state = torch.load(small, weights_only=False)
    blocks = tuple(state["config"]["net"]["blocks"])
    wider = (blocks[0] + 1, *blocks[1:])
    cfg = DenoiseTrainConfig(init=str(small), checkpoint=str(grown), grow_blocks=wider)
    loaded, model, step = start(cfg, build_model)
    model.load_state_dict(loaded["ema"])
    trained = build_model(state["config"]["net"])
    trained.load_state_dict(state["ema"])
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), trained.eval()(x), atol=1e-6)
    assert step == state["step"] and len(model.enc[0]) == blocks[0] + 1

    grow = base + ["--checkpoint", str(grown), "--init", str(small), "--grow-blocks", ",".join(map(str, wider))]
    result = runner.invoke(app, grow)
    assert result.exit_code == 0, result.output
    assert tuple(torch.load(grown, weights_only=False)["config"]["net"]["blocks"]) == wider
    assert runner.invoke(app, grow).exit_code == 0  # resuming the grown run: nothing more to grow
    fewer = base + ["--checkpoint", str(tmp_path / "x.pt"), "--init", str(small), "--grow-blocks", "1,1"]
    result = runner.invoke(app, fewer)
    assert result.exit_code == 1 and "can only add blocks" in result.output
    result = runner.invoke(app, base + ["--grow-blocks", "two"])
    assert result.exit_code == 2 and "counts separated by commas" in result.output


def test_dewatermark_validation_set_train_and_export(photos, tmp_path):
    runner = CliRunner()
    val, ckpt, models = tmp_path / "val", tmp_path / "wm.pt", tmp_path / "models"
    result = runner.invoke(app, ["synth-watermarks", str(photos), str(val), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert all(len(list((val / sub).glob("*.png"))) == 3 for sub in ("clean", "marked", "mask"))
    first = np.asarray(Image.open(val / "mask" / "0.png"))
    runner.invoke(app, ["synth-watermarks", str(photos), str(val), "--seed", "3"])
    assert np.array_equal(first, np.asarray(Image.open(val / "mask" / "0.png")))  # seeded: the same set again
    train = ["train", "dewatermark", "--data", str(photos), "--checkpoint", str(ckpt), "--val", str(val),
             "--minutes", "0.03", "--batch", "2", "--patch", "32", "--threads", "1", "--bf16"]
    result = runner.invoke(app, train)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", "dewatermark", "--checkpoint", str(ckpt), "--out", str(models / "wm.onnx"),
                                 "--manifest", str(models / "manifest.json")])
    assert result.exit_code == 0, result.output
    entry = json.loads((models / "manifest.json").read_text())["models"][0]
    assert entry["task"] == "dewatermark" and set(entry["output"]) == {"restored", "mask"}


def test_hints_range_from_the_exact_mask_to_a_loose_brush():
    from restore.training.train_dewatermark import coarse_hint

    mask = torch.zeros(64, 1, 80, 80)
    mask[:, :, 38:42, 30:50] = 1
    use = torch.arange(64) % 4 != 0
    hints = coarse_hint(mask, use, torch.Generator().manual_seed(0))
    assert hints.shape == mask.shape and not hints[~use].any()
    assert (hints[use] >= mask[use]).all()  # a user's mask covers the mark
    # How far each hint reaches past the mark, in pixels above it: exact (0), brushed (1-4) and loose (5-24).
    reach = 38 - hints[use, 0, :, 40].argmax(dim=1)
    assert (reach == 0).any() and ((reach >= 1) & (reach <= 4)).any() and (reach > 4).any() and reach.max() <= 24
