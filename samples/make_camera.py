"""Rebuild samples/camera: the clean samples as a phone camera at high ISO would have written them.

    python samples/make_camera.py   (needs the train extra: restore.training.degrade)

Each photo goes through the simulated camera of restore.training.degrade (unprocess, Bayer mosaic,
shot and read noise, demosaic, reprocess) with a fixed seed and noise levels near the top of the
training range, then JPEG at quality 85, as a phone saves it. Simulated, not real sensor noise: the
public real-noise sets carry research-only licences, and these samples ship with the code.
"""
from pathlib import Path

import numpy as np
from PIL import Image

from restore.training.degrade import Camera, jpeg

HERE = Path(__file__).resolve().parent

for i, name in enumerate(["astronaut", "chelsea"]):
    clean = np.asarray(Image.open(HERE / "clean" / f"{name}.png").convert("RGB")).astype(np.float32) / 255
    clean = clean[: clean.shape[0] // 2 * 2, : clean.shape[1] // 2 * 2]
    rng = np.random.default_rng(100 + i)
    camera = Camera.draw(rng)
    camera = Camera(camera.rgb_to_cam, camera.gains, camera.pattern, "ea", shot=4e-3, read=2e-5, filter_seed=1)
    noisy = jpeg(np.clip(camera.shoot(clean, rng), 0, 1), 85)
    Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(HERE / "camera" / f"{name}.jpg", quality=95)
