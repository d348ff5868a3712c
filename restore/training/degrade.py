"""Realistic noise for training the blind denoiser: what cameras, phones, JPEG and film do to a photo.

One clean sRGB crop in, a (degraded, target) pair out, everything drawn from a numpy Generator so a
seed reproduces it. The camera path follows the published descriptions of a camera's processing:

    sRGB -> inverse tone curve and gamma -> linear RGB -> inverse colour matrix and white balance
    -> Bayer mosaic -> shot + read noise (Poisson-Gaussian: variance = shot * signal + read)
    -> demosaic (OpenCV) -> white balance and colour matrix -> gamma and tone curve
    -> sometimes mild in-camera smoothing or sharpening -> JPEG at quality 30-95, sometimes twice

(Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019, for the inverse pipeline
and the noise levels; Guo et al., "Toward Convolutional Blind Denoising of Real Photographs" (CBDNet),
CVPR 2019, for the demosaic and JPEG stages; Zhang et al., BSRGAN 2021 and SCUNet 2023, for mixing
several degradations, correlated noise and double JPEG.) The target of a camera pair is the same crop
through the same pipeline without noise and without JPEG: what the camera would have written for a
perfectly still, noiseless shot, demosaic and in-camera filters included, as the mean of many real
shots is.

The mix adds spatially correlated Gaussian noise, chroma-heavy noise, film-like grain, JPEG of clean
photos, untouched photos, and the plain i.i.d. Gaussian noise of the published benchmarks (half of it
float and unclipped, as the tables are computed; half clipped and rounded to 8 bits, as files are).
Serving never imports this module.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Camera colour matrices (XYZ -> camera RGB) of four cameras, from Brooks et al.'s unprocessing code,
# which took them from Adobe's DNG converter; a random convex mix of them stands for an unknown camera.
_XYZ_TO_CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
])
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
# OpenCV names a Bayer pattern by the colours of the second row's second and third pixels: a mosaic
# whose top-left 2x2 is R G / G B is "BayerBG" to it. Each entry: (the 2x2 layout, its OpenCV code).
_BAYER = (
    ("RGGB", cv2.COLOR_BayerBG2RGB), ("BGGR", cv2.COLOR_BayerRG2RGB),
    ("GRBG", cv2.COLOR_BayerGB2RGB), ("GBRG", cv2.COLOR_BayerGR2RGB),
)
_CHANNEL = {"R": 0, "G": 1, "B": 2}
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


# ---- the camera pipeline, stage by stage (each image (H, W, 3) float32; sRGB in [0, 1]) ----

def inverse_tone(srgb: np.ndarray) -> np.ndarray:
    """Undo a smoothstep tone curve (3x^2 - 2x^3), as cameras apply an S-curve after gamma."""
    x = np.clip(srgb, 0.0, 1.0)
    return (0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)).astype(np.float32)


def tone(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return (3 * x * x - 2 * x * x * x).astype(np.float32)


def to_linear(srgb: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """sRGB -> approximately linear RGB: inverse tone curve, then the inverse of the gamma."""
    return np.maximum(inverse_tone(srgb), 1e-8) ** gamma


def from_linear(linear: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    return tone(np.maximum(linear, 1e-8) ** (1 / gamma))


def random_rgb_to_cam(rng: np.random.Generator) -> np.ndarray:
    """(3, 3) linear sRGB -> camera RGB for a random mix of the known cameras, rows summing to 1 (so
    gray stays gray before white balance, as Brooks et al. normalise it)."""
    weights = rng.uniform(1e-8, 1e8, len(_XYZ_TO_CAMS))
    xyz_to_cam = np.tensordot(weights / weights.sum(), _XYZ_TO_CAMS, axes=1)
    rgb_to_cam = xyz_to_cam @ _RGB_TO_XYZ
    return (rgb_to_cam / rgb_to_cam.sum(axis=1, keepdims=True)).astype(np.float32)


def random_gains(rng: np.random.Generator) -> np.ndarray:
    """White balance gains (R, G, B) times an overall exposure gain, in Brooks et al.'s ranges."""
    rgb_gain = 1.0 / rng.normal(0.8, 0.1)
    return np.array([rng.uniform(1.9, 2.4), 1.0, rng.uniform(1.5, 1.9)], np.float32) * np.float32(rgb_gain)


def apply_matrix(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return (image @ matrix.T).astype(np.float32)


def mosaic(image: np.ndarray, pattern: str) -> np.ndarray:
    """(H, W, 3) -> (H, W) Bayer mosaic: each pixel keeps the one colour its filter passes. H, W even."""
    out = np.empty(image.shape[:2], image.dtype)
    for i, colour in enumerate(pattern):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = image[dy::2, dx::2, _CHANNEL[colour]]
    return out


def demosaic(raw: np.ndarray, pattern: str, method: str = "bilinear") -> np.ndarray:
    """(H, W) mosaic in [0, 1] -> (H, W, 3) RGB with OpenCV, through 16-bit integers (bilinear, edge-aware)
    or 8-bit (VNG, which OpenCV implements for 8 bits only)."""
    code = dict(_BAYER)[pattern]
    if method == "vng":
        u8 = np.round(np.clip(raw, 0, 1) * 255).astype(np.uint8)
        return cv2.demosaicing(u8, code + (cv2.COLOR_BayerBG2RGB_VNG - cv2.COLOR_BayerBG2RGB)).astype(np.float32) / 255
    u16 = np.round(np.clip(raw, 0, 1) * 65535).astype(np.uint16)
    if method == "ea":
        code = code + (cv2.COLOR_BayerBG2RGB_EA - cv2.COLOR_BayerBG2RGB)
    return cv2.demosaicing(u16, code).astype(np.float32) / 65535


def random_noise_levels(rng: np.random.Generator) -> tuple[float, float]:
    """(shot, read) variances on the linear [0, 1] scale: log shot uniform over a range that spans base
    ISO to about ISO 12800 on phones and cameras, read noise tied to it on a log-linear line with
    scatter (Brooks et al.'s fit, widened at both ends: large sensors at base ISO leave less noise than their phones,
    small sensors at high ISO more)."""
    log_shot = rng.uniform(np.log(3e-5), np.log(1.5e-2))
    log_read = 2.18 * log_shot + 1.20 + rng.normal(0.0, 0.26)
    return float(np.exp(log_shot)), float(np.exp(log_read))


def shot_read_noise(raw: np.ndarray, shot: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """Heteroscedastic Gaussian approximation of Poisson-Gaussian noise: variance shot * x + read."""
    std = np.sqrt(np.maximum(raw, 0.0) * shot + read).astype(np.float32)
    return raw + rng.standard_normal(raw.shape, dtype=np.float32) * std


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """A round trip through JPEG (OpenCV's libjpeg, 4:2:0 chroma as cameras and most encoders write)."""
    u8 = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255


def in_camera_filter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The camera's own mild smoothing (its noise reduction) or sharpening, or nothing. A linear filter,
    so applying it to the noiseless target as well gives the mean of many filtered shots."""
    kind = rng.random()
    if kind < 0.3:
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 0.8), borderType=cv2.BORDER_REFLECT)
    if kind < 0.6:
        amount = rng.uniform(0.2, 1.0)
        soft = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.6, 1.5), borderType=cv2.BORDER_REFLECT)
        return image + amount * (image - soft)
    return image


@dataclass(frozen=True)
class Camera:
    """One draw of everything a camera does, so the noisy shot and its noiseless target share it."""

    rgb_to_cam: np.ndarray
    gains: np.ndarray
    pattern: str
    demosaic: str
    shot: float
    read: float
    filter_seed: int

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Camera:
        shot, read = random_noise_levels(rng)
        return cls(random_rgb_to_cam(rng), random_gains(rng), _BAYER[rng.integers(4)][0],
                   str(rng.choice(["bilinear", "ea", "vng"], p=[0.4, 0.4, 0.2])), shot, read, int(rng.integers(2**31)))

    def shoot(self, srgb: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """The camera's sRGB output for a clean sRGB image; noiseless when rng is None."""
        cam = apply_matrix(to_linear(srgb), self.rgb_to_cam) / self.gains  # what the sensor saw
        raw = mosaic(cam, self.pattern)
        if rng is not None:
            raw = shot_read_noise(raw, self.shot, self.read, rng)
        rgb = demosaic(raw, self.pattern, self.demosaic) * self.gains
        out = from_linear(apply_matrix(rgb, np.linalg.inv(self.rgb_to_cam)))
        return in_camera_filter(out, np.random.default_rng(self.filter_seed))


# ---- the other kinds of noise in the mix ----

def gaussian(clean: np.ndarray, sigma: float, quantize: bool, rng: np.random.Generator) -> np.ndarray:
    """i.i.d. Gaussian noise, sigma on the 0-255 scale; quantized: clipped and rounded to 8 bits."""
    noisy = clean + rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(sigma / 255)
    return np.round(np.clip(noisy, 0, 1) * 255) / 255 if quantize else noisy


def correlated_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise correlated over a few pixels: white noise blurred, or drawn at a lower
    resolution and enlarged (as resizing a noisy photo leaves it)."""
    h, w = shape[:2]
    if rng.random() < 0.5:
        noise = cv2.GaussianBlur(rng.standard_normal(shape, dtype=np.float32), (0, 0), rng.uniform(0.5, 1.5), borderType=cv2.BORDER_REFLECT)
    else:
        scale = rng.uniform(1.5, 3.0)
        small = rng.standard_normal((max(2, int(h / scale)), max(2, int(w / scale)), *shape[2:]), dtype=np.float32)
        noise = cv2.resize(small, (w, h), interpolation=int(rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC])))
        noise = noise.reshape(shape)
    return noise / max(float(noise.std()), 1e-6)


def chroma_heavy(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise stronger, and coarser, in colour than in brightness, as in-camera processing leaves it."""
    luma_sigma = rng.uniform(1, 12) / 255
    luma = rng.standard_normal(clean.shape[:2], dtype=np.float32) * luma_sigma
    chroma = correlated_noise((*clean.shape[:2], 2), rng) * luma_sigma * rng.uniform(2, 5)
    # Opponent axes: add the same luma to every channel, chroma along red-green and yellow-blue.
    cb, cr = chroma[..., 0], chroma[..., 1]
    noise = np.stack([luma + 1.4 * cr, luma - 0.34 * cb - 0.71 * cr, luma + 1.77 * cb], axis=2)
    return clean + noise


def film_grain(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Film-like grain: clumps of a pixel or two, strongest in the mid-tones, mostly monochrome."""
    amount = rng.uniform(3, 20) / 255
    grain = correlated_noise(clean.shape[:2], rng)[..., None]
    if rng.random() < 0.5:  # colour film: dye clouds differ a little per layer
        grain = grain + 0.35 * correlated_noise(clean.shape, rng)
    luma = (clean @ _LUMA)[..., None]
    return clean + amount * grain * (0.4 + 2.4 * luma * (1 - luma))


# ---- the mix ----

KINDS = ("camera", "gaussian", "correlated", "chroma", "grain", "jpeg", "clean")


@dataclass(frozen=True)
class Mix:
    """Shares of each kind of degradation (normalised when drawn) and the JPEG applied after noise."""

    camera: float = 0.32
    gaussian: float = 0.28
    correlated: float = 0.07
    chroma: float = 0.06
    grain: float = 0.06
    jpeg: float = 0.17
    clean: float = 0.04
    sigma_max: float = 55.0  # i.i.d. Gaussian: sigma ~ U(0, sigma_max) on the 0-255 scale
    p_camera_jpeg: float = 0.85  # cameras and phones write JPEGs
    p_noise_jpeg: float = 0.4  # correlated, chroma and grain photos that were saved as JPEG
    p_double_jpeg: float = 0.25
    p_gray: float = 0.15  # gray photos: one noise field in every channel, as gray is served

    def shares(self) -> np.ndarray:
        p = np.array([getattr(self, k) for k in KINDS], np.float64)
        return p / p.sum()


def random_jpeg(image: np.ndarray, rng: np.random.Generator, p_double: float, low: int = 30) -> np.ndarray:
    out = jpeg(image, int(rng.integers(low, 96)))
    if rng.random() < p_double:
        out = jpeg(out, int(rng.integers(low, 96)))
    return out


def _gray(image: np.ndarray) -> np.ndarray:
    return np.repeat((image @ _LUMA)[..., None], 3, axis=2)


def degrade(clean: np.ndarray, rng: np.random.Generator, mix: Mix = Mix()) -> tuple[np.ndarray, np.ndarray, str]:
    """clean (H, W, 3) float32 in [0, 1], H and W even -> (degraded, target, kind).

    degraded is float32 (the 'paper' Gaussian share is not clipped; everything else is in [0, 1]);
    target is what a perfect denoiser returns: the clean crop, or, for the camera, the camera's own
    noiseless output. Gray draws (p_gray) make a gray photo of both, with noise equal in every channel.
    """
    kind = KINDS[rng.choice(len(KINDS), p=mix.shares())]
    gray = rng.random() < mix.p_gray
    if gray:
        clean = _gray(clean)
    target = clean
    if kind == "camera":
        camera = Camera.draw(rng)
        target = np.clip(camera.shoot(clean, None), 0, 1)
        noisy = np.clip(camera.shoot(clean, rng), 0, 1)
        if gray:
            target, noisy = _gray(target), _gray(noisy)
        if rng.random() < mix.p_camera_jpeg:
            noisy = random_jpeg(noisy, rng, mix.p_double_jpeg)
    elif kind == "gaussian":
        noise_clean = clean[..., :1] if gray else clean
        noisy = gaussian(noise_clean, rng.uniform(0, mix.sigma_max), rng.random() < 0.5, rng)
        noisy = np.repeat(noisy, 3, axis=2) if gray else noisy
    elif kind in ("correlated", "chroma", "grain"):
        if kind == "correlated":
            noisy = clean + correlated_noise(clean.shape, rng) * np.float32(rng.uniform(2, 30) / 255)
        else:
            noisy = chroma_heavy(clean, rng) if kind == "chroma" else film_grain(clean, rng)
        noisy = np.clip(_gray(noisy) if gray else noisy, 0, 1)
        if rng.random() < mix.p_noise_jpeg:
            noisy = random_jpeg(noisy, rng, mix.p_double_jpeg)
        else:
            noisy = np.round(noisy * 255) / 255
    elif kind == "jpeg":
        noisy = random_jpeg(clean, rng, mix.p_double_jpeg, low=15)
    else:
        noisy = clean
    if gray and kind in ("camera", "jpeg"):  # JPEG's chroma rounding would leave a gray photo's channels unequal
        noisy = _gray(noisy)
    return noisy.astype(np.float32), target.astype(np.float32), kind
