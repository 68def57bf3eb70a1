"""A seeded generator of raw videos for when the user brings none.

Textured backgrounds under a camera pan, several moving sprites, and a spread of motion speeds from
near-static to fast; a few videos are made to be rejected by curation (too dark, static, with a scene cut).
The same seed gives the same frames and, with single-threaded x264, the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from mobilei2v_pipeline.video.encode import encode_mp4

REJECT_KINDS = ("dark", "static", "scene_cut")


@dataclass(frozen=True)
class SyntheticVideoSpec:
    """Everything that determines one synthetic video."""

    name: str
    kind: str  # "normal" or one of REJECT_KINDS
    seed: int
    width: int
    height: int
    fps: float
    num_frames: int
    pan_speed: float  # pixels per source frame
    sprite_speed: float  # pixels per source frame
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
    """Specs of the videos to make: normal ones at log-spaced speeds, then the requested reject kinds."""
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
        specs.append(
            SyntheticVideoSpec(
                name=f"synthetic_{index:03d}_{kind}",
                kind=kind,
                seed=int(rng.integers(2**31)),
                width=width,
                height=height,
                fps=fps,
                num_frames=round(seconds * fps),
                # The pan moves every pixel, so it sets most of the motion score: keep it near the speed.
                pan_speed=speed * float(rng.uniform(0.5, 1.0)) if moving else 0.0,
                sprite_speed=speed * float(rng.uniform(1.0, 2.0)) if moving else 0.0,
                num_sprites=num_sprites,
            )
        )
    return specs


def render_frames(spec: SyntheticVideoSpec) -> Iterator[np.ndarray]:
    """Yield the video's frames (height, width, 3) uint8, one at a time."""
    rng = np.random.default_rng(spec.seed)
    travel = int(np.ceil(spec.pan_speed * spec.num_frames)) + 2
    scenes = [_Scene(rng, spec, travel)]
    if spec.kind == "scene_cut":
        scenes.append(_Scene(rng, spec, travel))
    angle = rng.uniform(0, 2 * np.pi)
    pan = spec.pan_speed * np.array([np.cos(angle), np.sin(angle)])
    for t in range(spec.num_frames):
        scene = scenes[min(len(scenes) - 1, t * len(scenes) // spec.num_frames)]
        frame = scene.draw(t, pan)
        if spec.kind == "dark":
            frame = (frame * 0.06).astype(np.uint8)
        yield frame


def synthetic_video_bytes(
    spec: SyntheticVideoSpec, crf: int = 18, preset: str = "medium", keyint: int = 250
) -> bytes:
    """The video encoded as H.264 MP4 (see `encode_mp4` for the encoder settings)."""
    return encode_mp4(render_frames(spec), spec.fps, crf=crf, preset=preset, keyint=keyint)


class _Scene:
    """A textured canvas larger than the frame (room for the pan) and sprites on linear, bouncing paths."""

    def __init__(self, rng: np.random.Generator, spec: SyntheticVideoSpec, travel: int):
        self.spec = spec
        self.travel = travel
        height, width = spec.height + 2 * travel, spec.width + 2 * travel
        self.canvas = _texture(rng, height, width)
        self.positions = rng.uniform([0, 0], [spec.width, spec.height], size=(spec.num_sprites, 2))
        angles = rng.uniform(0, 2 * np.pi, spec.num_sprites)
        speeds = spec.sprite_speed * rng.uniform(0.5, 1.5, spec.num_sprites)
        self.velocities = np.stack([np.cos(angles), np.sin(angles)], axis=1) * speeds[:, None]
        short = min(spec.width, spec.height)
        self.radii = rng.uniform(0.06, 0.16, spec.num_sprites) * short
        self.colors = rng.integers(0, 256, size=(spec.num_sprites, 3))
        self.round = rng.random(spec.num_sprites) < 0.5

    def draw(self, t: int, pan: np.ndarray) -> np.ndarray:
        spec = self.spec
        # Sub-pixel camera pan: translate the canvas so slow pans move smoothly, not in whole-pixel jumps.
        offset = self.travel + pan * t
        shift = np.float32([[1, 0, -offset[0]], [0, 1, -offset[1]]])
        frame = cv2.warpAffine(
            self.canvas,
            shift,
            (spec.width, spec.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        bounds = np.array([spec.width, spec.height], dtype=float)
        positions = np.abs((self.positions + self.velocities * t) % (2 * bounds))
        positions = np.where(positions > bounds, 2 * bounds - positions, positions)
        for (x, y), radius, color, is_round in zip(
            positions, self.radii, self.colors, self.round, strict=True
        ):
            # cv2 draws with 4 fractional bits (shift=4) for smooth sub-pixel sprite motion.
            centre, r = (int(x * 16), int(y * 16)), int(radius * 16)
            colour = tuple(int(c) for c in color)
            if is_round:
                cv2.circle(frame, centre, r, colour, -1, cv2.LINE_AA, shift=4)
            else:
                cv2.rectangle(
                    frame,
                    (centre[0] - r, centre[1] - r),
                    (centre[0] + r, centre[1] + r),
                    colour,
                    -1,
                    cv2.LINE_AA,
                    shift=4,
                )
        return frame


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour gradients plus fine detail, so optical flow has structure to follow."""
    coarse = rng.uniform(0, 255, size=(4, 6, 3)).astype(np.float32)
    fine = rng.normal(0, 28, size=(max(2, height // 4), max(2, width // 4), 3)).astype(np.float32)
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    texture += cv2.resize(fine, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(texture, 0, 255).astype(np.uint8)
