"""A seeded generator of raw videos for when the user brings none.

Each video is a scene with natural-image statistics, not per-pixel noise: a background of multi-scale smooth
texture (amplitude falling as 1/f, as in photographs) over a sky-to-ground gradient with a few flat-shaded
shapes, and sprites that carry a texture of their own and occlude each other. The camera pans, zooms or rolls
(or stands still while the sprites move), at log-spaced speeds from near-static to fast; a few videos are
made to be rejected by curation (too dark, static, with a scene cut). The same seed gives the same frames and,
with single-threaded x264, the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from mobilei2v_pipeline.video.encode import encode_mp4

REJECT_KINDS = ("dark", "static", "scene_cut")
# How the camera moves; the sprites move in every kind. "still": only the sprites move.
CAMERA_MOTIONS = ("pan", "zoom", "rotate", "still")
MAX_ZOOM = 2.0


@dataclass(frozen=True)
class SyntheticVideoSpec:
    """Everything that determines one synthetic video. Speeds are mean displacements, pixels per source
    frame: the camera's over the whole frame, the sprites' of their centres."""

    name: str
    kind: str  # "normal" or one of REJECT_KINDS
    seed: int
    width: int
    height: int
    fps: float
    num_frames: int
    camera: str  # one of CAMERA_MOTIONS
    camera_speed: float
    sprite_speed: float
    num_sprites: int


def plan_synthetic_videos(
    seed: int,
    num_videos: int,
    width: int,
    height: int,
    fps: float,
    seconds: float,
    min_speed: float,
    max_speed: float,
    num_sprites: int,
    rejects: dict[str, int],
) -> list[SyntheticVideoSpec]:
    """Specs of the videos to make: normal ones at log-spaced speeds with the camera motions taken in turn,
    then the requested reject kinds."""
    unknown = set(rejects) - set(REJECT_KINDS)
    if unknown:
        raise ValueError(f"unknown synthetic reject kinds {sorted(unknown)}; known: {list(REJECT_KINDS)}")
    kinds = [kind for kind in REJECT_KINDS for _ in range(rejects.get(kind, 0))]
    num_normal = num_videos - len(kinds)
    if num_normal < 1:
        raise ValueError(f"num_videos={num_videos} leaves no normal video after {len(kinds)} rejects")
    rng = np.random.default_rng(seed)
    speeds = np.geomspace(min_speed, max_speed, num_normal)
    rng.shuffle(speeds)
    kinds = ["normal"] * num_normal + kinds
    specs = []
    for index, kind in enumerate(kinds):
        speed = float(speeds[index]) if kind == "normal" else float(np.sqrt(min_speed * max_speed))
        moving = kind != "static"
        camera = CAMERA_MOTIONS[index % len(CAMERA_MOTIONS)] if moving else "still"
        specs.append(
            SyntheticVideoSpec(
                name=f"synthetic_{index:03d}_{kind}",
                kind=kind,
                seed=int(rng.integers(2**31)),
                width=width,
                height=height,
                fps=fps,
                num_frames=round(seconds * fps),
                # The camera moves every pixel, so it sets most of the motion score: keep it near the speed.
                camera=camera,
                camera_speed=0.0 if camera == "still" else speed * float(rng.uniform(0.7, 1.0)),
                sprite_speed=speed * float(rng.uniform(1.0, 1.5)) if moving else 0.0,
                num_sprites=num_sprites,
            )
        )
    return specs


def render_frames(spec: SyntheticVideoSpec) -> Iterator[np.ndarray]:
    """Yield the video's frames (height, width, 3) uint8, one at a time."""
    rng = np.random.default_rng(spec.seed)
    scenes = [_Scene(rng, spec)]
    if spec.kind == "scene_cut":
        scenes.append(_Scene(rng, spec))
    for t in range(spec.num_frames):
        scene = scenes[min(len(scenes) - 1, t * len(scenes) // spec.num_frames)]
        frame = scene.draw(t)
        if spec.kind == "dark":
            frame = (frame * 0.06).astype(np.uint8)
        yield frame


def synthetic_video_bytes(
    spec: SyntheticVideoSpec, crf: int = 18, preset: str = "medium", keyint: int = 250
) -> bytes:
    """The video encoded as H.264 MP4 (see `encode_mp4` for the encoder settings)."""
    return encode_mp4(render_frames(spec), spec.fps, crf=crf, preset=preset, keyint=keyint)


def fractal_texture(rng: np.random.Generator, height: int, width: int, channels: int = 3) -> np.ndarray:
    """Smooth multi-scale noise (height, width, channels) float32 of unit std whose amplitude spectrum falls
    as about 1/f: octaves of bicubically upsampled Gaussian noise, each octave's amplitude halving as its
    frequency doubles. Colour varies less than brightness at fine scales, as in photographs."""
    texture = np.zeros((height, width, channels), np.float32)
    cells = 2
    amplitude = 1.0
    while cells <= max(height, width) // 2:
        grid = (
            max(2, round(cells * height / max(height, width))),
            max(2, round(cells * width / max(height, width))),
        )
        luma = rng.normal(size=(*grid, 1))
        chroma = rng.normal(size=(*grid, channels)) * min(1.0, 4.0 / cells)
        octave = (luma + chroma).astype(np.float32)
        texture += amplitude * cv2.resize(octave, (width, height), interpolation=cv2.INTER_CUBIC).reshape(
            height, width, channels
        )
        cells *= 2
        amplitude /= 2
    return (texture - texture.mean()) / max(float(texture.std()), 1e-6)


class _Scene:
    """A background canvas larger than the frame (room for the camera) and textured sprites on linear,
    bouncing paths in screen space, drawn back to front so they occlude each other."""

    def __init__(self, rng: np.random.Generator, spec: SyntheticVideoSpec):
        self.spec = spec
        self.duration = max(spec.num_frames - 1, 1)
        self.angle = rng.uniform(0, 2 * np.pi)  # pan direction
        self.zoom_in = bool(rng.random() < 0.5)
        margin = int(np.ceil(spec.camera_speed * self.duration)) + 8 if spec.camera == "pan" else 8
        # Rolling or zooming out shows the canvas beyond the frame's corners: make room for the diagonal.
        size = int(np.ceil(np.hypot(spec.width, spec.height))) + 2 * margin
        self.canvas = _background(rng, size, size, (spec.width, spec.height))
        short = min(spec.width, spec.height)
        self.radii = rng.uniform(0.08, 0.2, spec.num_sprites) * short
        self.sprites = [_sprite(rng, radius) for radius in self.radii]
        self.positions = rng.uniform([0, 0], [spec.width, spec.height], size=(spec.num_sprites, 2))
        angles = rng.uniform(0, 2 * np.pi, spec.num_sprites)
        speeds = spec.sprite_speed * rng.uniform(0.5, 1.5, spec.num_sprites)
        self.velocities = np.stack([np.cos(angles), np.sin(angles)], axis=1) * speeds[:, None]

    def _camera(self, t: int) -> np.ndarray:
        """The 2x3 affine map from canvas to frame coordinates at frame t."""
        spec = self.spec
        centre = np.array(self.canvas.shape[1::-1], float) / 2
        # Mean distance of a frame pixel from the frame's centre: it turns a mean speed into a rate.
        reach = 0.27 * np.hypot(spec.width, spec.height)
        scale, roll, shift = 1.0, 0.0, np.zeros(2)
        if spec.camera == "pan":
            shift = spec.camera_speed * t * np.array([np.cos(self.angle), np.sin(self.angle)])
        elif spec.camera == "zoom":
            # Log-scale ping-pong between 1x and MAX_ZOOM (never below 1x: no canvas edge comes into view).
            travel = np.log(MAX_ZOOM)
            phase = (spec.camera_speed / reach * t + (0 if self.zoom_in else travel)) % (2 * travel)
            scale = float(np.exp(min(phase, 2 * travel - phase)))
        elif spec.camera == "rotate":
            roll = np.degrees(spec.camera_speed / reach) * t * (1 if self.angle < np.pi else -1)
        matrix = cv2.getRotationMatrix2D(tuple(centre + shift), roll, scale)
        # Then move the canvas's (shifted) centre to the frame's centre.
        matrix[:, 2] += np.array([spec.width, spec.height]) / 2 - centre - shift
        return matrix

    def draw(self, t: int) -> np.ndarray:
        spec = self.spec
        frame = cv2.warpAffine(
            self.canvas,
            self._camera(t),
            (spec.width, spec.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        bounds = np.array([spec.width, spec.height], dtype=float)
        positions = np.abs((self.positions + self.velocities * t) % (2 * bounds))
        positions = np.where(positions > bounds, 2 * bounds - positions, positions)
        for (x, y), (colour, alpha) in zip(positions, self.sprites, strict=True):
            # Sub-pixel placement (bilinear) so slow sprites move smoothly, not in whole-pixel jumps.
            half = colour.shape[0] / 2
            place = np.float32([[1, 0, x - half], [0, 1, y - half]])
            size = (spec.width, spec.height)
            layer = cv2.warpAffine(colour, place, size, flags=cv2.INTER_LINEAR)
            mask = cv2.warpAffine(alpha, place, size, flags=cv2.INTER_LINEAR)[..., None]
            frame = frame * (1 - mask) + layer * mask
        return np.clip(frame, 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator, height: int, width: int, frame: tuple[int, int]) -> np.ndarray:
    """Sky-to-ground gradient, a few flat-shaded shapes (buildings, hills), and 1/f texture: float32 0-255."""
    top, bottom = rng.uniform(40, 220, 3), rng.uniform(30, 200, 3)
    horizon = rng.uniform(0.3, 0.7)
    rows = np.clip((np.arange(height) / height - horizon) * 6 + 0.5, 0, 1)[:, None, None]
    canvas = np.broadcast_to(top * (1 - rows) + bottom * rows, (height, width, 3)).astype(np.float32).copy()
    # Shapes sized to the frame (width, height), as many per frame area whatever the canvas's size.
    per_frame = height * width / (frame[0] * frame[1])
    for _ in range(int(rng.integers(3, 7) * per_frame)):
        colour = tuple(float(c) for c in rng.uniform(20, 235, 3))
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        w, h = rng.uniform(0.05, 0.3) * frame[0], rng.uniform(0.05, 0.3) * frame[1]
        if rng.random() < 0.5:
            cv2.rectangle(canvas, (int(x - w), int(y - h)), (int(x + w), int(y + h)), colour, -1, cv2.LINE_AA)
        else:
            cv2.ellipse(
                canvas,
                (int(x), int(y)),
                (int(w), int(h)),
                rng.uniform(0, 180),
                0,
                360,
                colour,
                -1,
                cv2.LINE_AA,
            )
    canvas += rng.uniform(28, 44) * fractal_texture(rng, height, width)
    return np.clip(canvas, 0, 255)


def _sprite(rng: np.random.Generator, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """A textured sprite: colour (s, s, 3) float32 0-255 and an anti-aliased alpha mask (s, s) in [0, 1]."""
    size = int(np.ceil(2 * radius)) + 4
    colour = rng.uniform(30, 225, 3).astype(np.float32)
    texture = colour + rng.uniform(15, 35) * fractal_texture(rng, size, size)
    mask = np.zeros((size * 4, size * 4), np.uint8)
    centre, r = (size * 2, size * 2), int(radius * 4)
    shape = rng.integers(3)
    if shape == 0:
        cv2.circle(mask, centre, r, 255, -1, cv2.LINE_AA)
    elif shape == 1:
        cv2.rectangle(mask, (centre[0] - r, centre[1] - r), (centre[0] + r, centre[1] + r), 255, -1)
    else:
        cv2.ellipse(mask, centre, (r, r // 2), rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA)
    alpha = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return np.clip(texture, 0, 255), alpha
