import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from restore.cli import app


@pytest.fixture
def cli(identity_models):
    runner = CliRunner()
    env = {"RESTORE_MODELS_DIR": str(identity_models), "RESTORE_DEVICE": "cpu", "RESTORE_THREADS": "1"}
    return lambda *args: runner.invoke(app, [str(a) for a in args], env=env)


def make_image(path, size=(40, 30), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((len(mode),) if mode != "L" else ())
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def pixels(path):
    return np.asarray(Image.open(path))


def test_denoise_one_file(cli, tmp_path):
    src = make_image(tmp_path / "a.png")
    result = cli("denoise", src, "-o", tmp_path / "out.png")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(pixels(tmp_path / "out.png"), pixels(src))


def test_denoise_several_files_into_a_folder_with_format(cli, tmp_path):
    a, b = make_image(tmp_path / "a.png"), make_image(tmp_path / "b.jpg", seed=1)
    result = cli("denoise", a, b, "-o", tmp_path / "out", "--format", "webp")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.webp", "b.webp"]
    assert Image.open(tmp_path / "out" / "a.webp").format == "WEBP"


def test_denoise_keeps_the_input_format(cli, tmp_path):
    src = make_image(tmp_path / "a.tif", mode="RGBA")
    assert cli("denoise", src, "-o", tmp_path / "out").exit_code == 0
    out = Image.open(tmp_path / "out" / "a.tif")
    assert out.format == "TIFF" and out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out), pixels(src))


@pytest.mark.parametrize(
    "args,message",
    [
        (["--sigma", "25"], "sigma ('25') was replaced by strength"),
        (["--strength", "2"], "less than or equal to 1"),
        (["--format", "xyz"], "unknown format 'xyz'"),
        (["--options", "{bad"], "not valid JSON"),
        (["--device", "tpu"], "device"),
    ],
)
def test_bad_flags_are_clear_errors(cli, tmp_path, args, message):
    src = make_image(tmp_path / "a.png")
    result = cli("denoise", src, "-o", tmp_path / "o.png", *args)
    assert result.exit_code == 1
    assert message in result.output


def test_bad_input_file_is_a_clear_error(cli, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"this is not a png")
    result = cli("denoise", tmp_path / "bad.png", "-o", tmp_path / "o.png")
    assert result.exit_code == 1 and "bad.png" in result.output and not (tmp_path / "o.png").exists()


def tree(tmp_path):
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    make_image(src / "a.png")
    make_image(src / "a.jpg", seed=1)
    make_image(src / "sub" / "a.png", seed=2)
    make_image(src / "sub" / "deeper" / "c.bmp", seed=3, mode="L")
    (src / "notes.txt").write_text("not an image")
    (src / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    return src


def test_an_output_folder_that_cannot_be_made_is_a_clear_error(cli, tmp_path):
    src = make_image(tmp_path / "a.png")
    (tmp_path / "afile").write_text("")
    result = cli("denoise", src, "-o", tmp_path / "afile" / "x.png")
    assert result.exit_code == 1 and "cannot create the output folder" in result.output and "Traceback" not in result.output, result.output
    result = cli("batch", tmp_path, tmp_path / "afile" / "out", "--task", "denoise")
    assert result.exit_code == 1 and "cannot create the output folder" in result.output, result.output


def test_a_bad_setting_is_a_clear_error(cli, tmp_path, monkeypatch, capsys):
    from restore.cli import main

    result = cli("denoise", make_image(tmp_path / "a.png"), "-o", tmp_path / "b.png", "--tile", "5")
    assert result.exit_code == 1 and "tile_size (RESTORE_TILE_SIZE) = 5: Input should be greater than or equal to 64" in result.output
    monkeypatch.setenv("RESTORE_THREADS", "many")
    monkeypatch.setattr("sys.argv", ["restore", "models"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1 and "threads (RESTORE_THREADS) = 'many'" in capsys.readouterr().err


def test_batch_recursive_mirrors_folders_and_reports_failures(cli, tmp_path):
    src, out = tree(tmp_path), tmp_path / "out"
    result = cli("batch", src, out, "--task", "denoise", "--recursive")
    assert result.exit_code == 1  # one broken file; the others are done
    summary = json.loads((out / "restore-summary.json").read_text())
    assert (summary["total"], summary["ok"], summary["failed"]) == (5, 4, 1)
    failed = [f for f in summary["files"] if f["status"] == "failed"]
    assert failed[0]["input"].endswith("broken.png") and failed[0]["error"]
    for rel in ("a.png", "a.jpg", "sub/a.png", "sub/deeper/c.bmp"):
        np.testing.assert_array_equal(pixels(out / rel), pixels(src / rel)) if not rel.endswith("jpg") else None
        assert (out / rel).is_file()
    assert not (out / "notes.txt").exists()


def test_batch_flat_include_format_and_name_clashes(cli, tmp_path):
    src, out = tree(tmp_path), tmp_path / "out"
    result = cli("batch", src, out, "--include", "a.*", "--format", "png")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg.png", "a.png.png", "restore-summary.json"]


def test_batch_skip_existing(cli, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_image(src / "a.png")
    make_image(src / "b.png", seed=1)
    assert cli("batch", src, out).exit_code == 0
    (out / "a.png").write_bytes(b"sentinel")
    result = cli("batch", src, out, "--skip-existing")
    assert result.exit_code == 0
    summary = json.loads((out / "restore-summary.json").read_text())
    assert (summary["skipped"], summary["ok"]) == (2, 0)
    assert (out / "a.png").read_bytes() == b"sentinel"


def test_batch_bad_options_fail_once_up_front(cli, tmp_path):
    src = tree(tmp_path)
    result = cli("batch", src, tmp_path / "out", "--options", '{"strength": "loud"}')
    assert result.exit_code == 1 and "bad options for denoise" in result.output
    assert not (tmp_path / "out").exists()


def test_batch_missing_folder(cli, tmp_path):
    result = cli("batch", tmp_path / "nope", tmp_path / "out")
    assert result.exit_code == 1 and "does not exist" in result.output


def test_batch_refuses_to_replace_its_inputs_and_takes_a_parent_output_folder(cli, tmp_path):
    src = tmp_path / "photos" / "raw"
    src.mkdir(parents=True)
    make_image(src / "a.png")
    result = cli("batch", src, src)
    assert result.exit_code == 1 and "would replace the originals" in result.output
    assert sorted(p.name for p in src.iterdir()) == ["a.png"]
    # An output folder above the input folder is an ordinary destination, not a reason to find nothing.
    result = cli("batch", src, tmp_path / "photos")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(pixels(tmp_path / "photos" / "a.png"), pixels(src / "a.png"))


def test_batch_with_nothing_to_do_says_so(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("batch", tmp_path / "empty", tmp_path / "out")
    assert result.exit_code == 1 and "no images found" in result.output
    result = cli("batch", tree(tmp_path), tmp_path / "out2", "--include", "*.tif")
    assert result.exit_code == 1 and "no *.tif found" in result.output


def test_batch_outputs_never_overwrite_each_other(cli, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.jpg", "a.png", "a.jpg.png"):  # a.jpg and a.png meet on a.png; a.jpg then on a.jpg.png
        make_image(src / name, seed=len(name))
    result = cli("batch", src, out, "--format", "png")
    assert result.exit_code == 1
    summary = json.loads((out / "restore-summary.json").read_text())
    assert (summary["ok"], summary["failed"]) == (2, 1)
    failed = next(f for f in summary["files"] if f["status"] == "failed")
    assert failed["input"].endswith("a.jpg.png") and "would overwrite the result of" in failed["error"]
    np.testing.assert_array_equal(pixels(out / "a.jpg.png"), pixels(src / "a.jpg"))  # the first keeps its name


def test_colorize_samples_never_overwrite_another_file(cli, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_image(src / "b.png", mode="L")
    make_image(src / "b_1.png", mode="L", seed=1)  # b.png's second colouring would be b_1.png
    result = cli("batch", src, out, "--task", "colorize", "--options", '{"samples": 2}')
    assert result.exit_code == 1
    summary = json.loads((out / "restore-summary.json").read_text())
    assert [f["status"] for f in summary["files"]] == ["ok", "failed"]  # b.png first, then b_1.png
    assert sorted(p.name for p in out.iterdir()) == ["b.png", "b_1.png", "restore-summary.json"]


def test_files_with_one_name_into_one_folder(cli, tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        make_image(tmp_path / folder / "a.png", seed=len(folder))
    result = cli("denoise", tmp_path / "x" / "a.png", tmp_path / "y" / "a.png", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "would overwrite the result of" in result.output
    np.testing.assert_array_equal(pixels(tmp_path / "out" / "a.png"), pixels(tmp_path / "x" / "a.png"))
    result = cli("denoise", tmp_path / "x" / "a.png", "-o", tmp_path / "x" / "a.png")
    assert result.exit_code == 1 and "would overwrite the input" in result.output


def test_a_size_the_output_format_cannot_hold_is_refused_before_the_work(cli, tmp_path):
    src = make_image(tmp_path / "wide.png", size=(17000, 2))
    result = cli("denoise", src, "-o", tmp_path / "wide.webp")
    assert result.exit_code == 1 and "WEBP holds at most 16383 px" in result.output
    assert not (tmp_path / "wide.webp").exists()


def test_models_lists_and_verifies(cli):
    result = cli("models")
    assert result.exit_code == 0 and "tiny-denoise" in result.output and "ok" in result.output


def test_stdin_to_stdout_through_the_installed_command(identity_models, tmp_path):
    """The installed `restore` console script, '-' in and out, as a pipe would use it."""
    src = make_image(tmp_path / "a.png")
    script = Path(sys.executable).parent / "restore"
    env = {"RESTORE_MODELS_DIR": str(identity_models), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(script), "denoise", "-", "-o", "-"], input=src.read_bytes(), capture_output=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    (tmp_path / "out.png").write_bytes(proc.stdout)
    np.testing.assert_array_equal(pixels(tmp_path / "out.png"), pixels(src))


@pytest.mark.parametrize("args", [["denoise"], ["dewatermark", "--one-pass", "--mask", "MASK"]], ids=["denoise", "guided-dewatermark"])
def test_50_megapixel_photo_in_bounded_memory(identity_models, tmp_path, args):
    """The whole command on a 50 MP photo (decode, tiles, encode; with a mask, its parsing too) peaks well under 2 GB."""
    import cv2

    src, mask = tmp_path / "big.bmp", tmp_path / "mask.png"
    rng = np.random.default_rng(0)
    # Dark, so the identity dewatermark model (its 'mask' is the channel mean) finds only what the mask marks.
    cv2.imwrite(str(src), rng.integers(0, 100, (6000, 8400, 3), dtype=np.uint8))
    if "MASK" in args:
        marked = np.zeros((6000, 8400), np.uint8)
        marked[2000:2300, 3000:3600] = 255
        cv2.imwrite(str(mask), marked)
    args = [str(mask) if a == "MASK" else a for a in args]
    script = Path(sys.executable).parent / "restore"
    code = (
        "import resource, subprocess, sys; "
        f"r = subprocess.run([{str(script)!r}, *{args!r}, {str(src)!r}, '-o', {str(tmp_path / 'out.bmp')!r}]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
    )
    env = {"RESTORE_MODELS_DIR": str(identity_models), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    peak_mb = int(proc.stdout.split()[-1]) / 1024
    assert (tmp_path / "out.bmp").stat().st_size == src.stat().st_size
    assert peak_mb < 2048, f"peak {peak_mb:.0f} MB"
    print(f"50 MP peak memory: {peak_mb:.0f} MB")


def test_dewatermark_with_and_without_a_mask(cli, tmp_path):
    src = make_image(tmp_path / "a.png")
    hint = make_image(tmp_path / "m.png", mode="L")
    result = cli("dewatermark", src, "-o", tmp_path / "blind.png")
    assert result.exit_code == 0 and '"ensemble": true' in result.output
    result = cli("dewatermark", src, "--one-pass", "-o", tmp_path / "once.png")
    assert result.exit_code == 0 and '"ensemble": false' in result.output
    result = cli("dewatermark", src, "--mask", hint, "-o", tmp_path / "guided.png")
    assert result.exit_code == 0, result.output
    assert '"guided": true' in result.output
    marked = pixels(hint) > 127
    guided, original = pixels(tmp_path / "guided.png"), pixels(src)
    np.testing.assert_array_equal(guided[~marked & (original.mean(2) <= 127)], original[~marked & (original.mean(2) <= 127)])
    assert (guided[marked] != original[marked]).any()  # repainted where the user's mask says
    result = cli("dewatermark", src, src, "--mask", hint, "-o", tmp_path / "out")
    assert result.exit_code == 1 and "single input" in result.output


def test_an_unknown_output_suffix_is_an_error_before_any_work(cli, tmp_path):
    src = make_image(tmp_path / "a.png")
    result = cli("denoise", src, "-o", tmp_path / "out.gif")
    assert result.exit_code == 1 and ".gif is not a format restore writes" in result.output
    assert not (tmp_path / "out.gif").exists()
    assert cli("denoise", src, "-o", tmp_path / "out.gif", "--format", "png").exit_code == 0  # said outright: PNG bytes


def test_each_command_shows_its_own_example_and_its_defaults(cli):
    for task, example in (("denoise", "restore denoise photo.jpg"), ("dewatermark", "restore dewatermark marked.jpg"),
                          ("colorize", "restore colorize old.jpg")):
        text = cli(task, "--help").output
        assert example in text and "<bool>" not in text and "<str>" not in text
        other = {"denoise", "dewatermark", "colorize"} - {task}
        assert not any(f"restore {o} " in text for o in other)
    assert "[default: 1.0]" in cli("denoise", "--help").output
    assert "[default: 1]" in cli("colorize", "--help").output
    serve = cli("serve", "--help").output
    assert "RESTORE_REDIS_URL = 'redis://127.0.0.1:6379/0'" in serve and "RESTORE_API_KEYS" in serve
