"""Nodes of the data_curation pipeline: raw videos in, scored and validated training clips out."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from mobilei2v_pipeline.errors import NoUsableClipsError, ValidationFailedError
from mobilei2v_pipeline.pipelines.data_curation import validation
from mobilei2v_pipeline.video.clip_scores import score_clip
from mobilei2v_pipeline.video.decode import (
    READ_ERROR_REASONS,
    ClipSpec,
    VideoReadError,
    probe_video,
    read_clips,
)
from mobilei2v_pipeline.video.fingerprint import frame_hashes, near_duplicate_groups
from mobilei2v_pipeline.video.synthetic import plan_synthetic_videos, synthetic_video_bytes

logger = logging.getLogger(__name__)

QUARANTINE_COLUMNS = ["video_id", "path", "size_bytes", "reason", "detail"]
THUMBNAIL_WIDTH, PREVIEW_WIDTH = 224, 320  # pixels, for the contact sheet and the preview GIFs
ENCODER_SETTINGS = ("crf", "preset", "keyint")  # the synthetic parameters that go to the encoder
# Why a clip is rejected: (score, threshold parameter); a min_ threshold is a floor, a max_ one a ceiling.
CLIP_FILTERS = {
    "too dark": ("brightness", "min_brightness"),
    "too bright": ("brightness", "max_brightness"),
    "low contrast": ("contrast", "min_contrast"),
    "blurry": ("sharpness", "min_sharpness"),
    "static": ("motion_score", "min_motion"),
    "too much motion": ("motion_score", "max_motion"),
    "scene cut": ("scene_cut_score", "min_scene_cut_score"),
    "frame gap": ("max_gap_ms", "max_frame_gap_ms"),
}


def synthesize_raw_videos(
    user_videos: dict[str, Path], synthetic: dict[str, Any]
) -> dict[str, Callable[[], bytes]]:
    """Synthetic raw videos when the user supplied none; none (and the old ones cleared) when they did.

    The videos are returned as callables so the folder dataset encodes and writes them one at a time.
    """
    if user_videos:
        logger.info("Curating %d user videos; the synthetic generator is not used", len(user_videos))
        return {}
    encoding = {key: synthetic[key] for key in ENCODER_SETTINGS}
    plan = {key: value for key, value in synthetic.items() if key not in ENCODER_SETTINGS}
    specs = plan_synthetic_videos(**plan)
    logger.info("No user videos: generating %d synthetic videos (seed %d)", len(specs), synthetic["seed"])
    return {f"{spec.name}.mp4": partial(synthetic_video_bytes, spec, **encoding) for spec in specs}


def select_source_videos(user_videos: dict[str, Path], synthetic_videos: dict[str, Path]) -> dict[str, Path]:
    """The videos to curate, keyed by a stable identity: the user's if there are any, else synthetic ones."""
    source, videos = ("user", user_videos) if user_videos else ("synthetic", synthetic_videos)
    return {f"{source}/{name}": path for name, path in videos.items()}


def decode_clips(
    source_videos: dict[str, Path], curation: dict[str, Any]
) -> tuple[dict[str, np.ndarray], pd.DataFrame, pd.DataFrame]:
    """Cut fixed-length clips from every video by time, upright, seeking to each clip; quarantine files that
    give none.

    Returns the clip frames by clip id, a table of the clips with their source metadata and how each
    sampled its source (rotation, effective frame rate, largest gap), and the quarantine table (one row per
    unusable file, with the reason).
    """
    spec = ClipSpec(**curation["clips"])
    frames, rows, quarantine = {}, [], []
    for video_id, path in tqdm(sorted(source_videos.items()), desc="decode clips", unit="video"):
        try:
            info = probe_video(path, curation["min_short_side"])
            clips = read_clips(path, info, spec)
        except VideoReadError as exc:
            logger.warning("video %s: %s, quarantined", path, exc)
            size = path.stat().st_size if path.exists() else 0
            quarantine.append(
                dict(zip(QUARANTINE_COLUMNS, [video_id, str(path), size, exc.reason, str(exc)], strict=True))
            )
            continue
        for index, clip in enumerate(clips):
            clip_id = _clip_id(video_id, index)
            frames[clip_id] = clip.frames
            rows.append(
                {
                    "clip_id": clip_id,
                    "video_id": video_id,
                    "start_frame": clip.start_frame,
                    "start_time_s": clip.start_time_s,
                    "rotation": clip.rotation,
                    "effective_fps": clip.effective_fps,
                    "max_gap_ms": clip.max_gap_ms,
                    "frames": spec.frames_per_clip,
                    "frame_interval": spec.frame_interval,
                    "height": spec.height,
                    "width": spec.width,
                    **{f"source_{key}": value for key, value in info.as_dict().items()},
                }
            )
    return frames, pd.DataFrame(rows), pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS)


def score_clips(
    clip_frames: dict[str, np.ndarray], clip_index: pd.DataFrame, curation: dict[str, Any]
) -> pd.DataFrame:
    """Add motion, sharpness, brightness, contrast and scene-cut scores to every clip."""
    reference = curation["motion_reference_short_side"]
    scores = [
        score_clip(clip_frames[clip_id], reference)
        for clip_id in tqdm(clip_index.get("clip_id", []), desc="score clips", unit="clip")
    ]
    return pd.concat([clip_index.reset_index(drop=True), pd.DataFrame(scores)], axis=1)


def filter_clips(clip_scores: pd.DataFrame, filters: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split clips into kept and rejected by the thresholds; each rejected clip keeps all its reasons."""
    if clip_scores.empty:
        return clip_scores, clip_scores.assign(reason=pd.Series(dtype=str))
    failed = pd.DataFrame(
        {
            reason: clip_scores[score] < filters[limit]
            if limit.startswith("min_")
            else clip_scores[score] > filters[limit]
            for reason, (score, limit) in CLIP_FILTERS.items()
        }
    )
    reasons = failed.apply(lambda row: "; ".join(row.index[row]), axis=1)
    rejected = reasons != ""
    kept = clip_scores[~rejected].reset_index(drop=True)
    return kept, clip_scores[rejected].assign(reason=reasons[rejected]).reset_index(drop=True)


def group_near_duplicates(
    clip_frames: dict[str, np.ndarray], kept_clips: pd.DataFrame, split: dict[str, Any]
) -> pd.DataFrame:
    """Give each kept clip its source's `duplicate_group`: the first video id of the sources that share
    footage with it (a perceptual hash of a frame of their clips within `near_duplicate_max_distance` bits),
    so a recompressed or trimmed copy goes to the split of its original. A source like no other is its own
    group."""
    if kept_clips.empty:
        return kept_clips.assign(duplicate_group=pd.Series(dtype=str))
    hashes = {
        video_id: np.concatenate([frame_hashes(clip_frames[clip_id]) for clip_id in clips["clip_id"]])
        for video_id, clips in kept_clips.groupby("video_id")
    }
    groups = near_duplicate_groups(hashes, split["near_duplicate_max_distance"])
    members: dict[str, list[str]] = {}
    for video_id, group in groups.items():
        members.setdefault(group, []).append(video_id)
    for videos in members.values():
        if len(videos) > 1:
            logger.info("near-duplicate sources, kept in one split: %s", ", ".join(videos))
    return kept_clips.assign(duplicate_group=kept_clips["video_id"].map(groups))


def assign_splits(
    kept_clips: pd.DataFrame, rejected_clips: pd.DataFrame, quarantine: pd.DataFrame, split: dict[str, Any]
) -> pd.DataFrame:
    """Mark each clip train or val by a hash of its duplicate group's identity (its source video's, unless
    the source has near-duplicates).

    The hash of the identity alone decides, so adding a video never moves another between splits (unless it
    joins that video's group under a name sorted first). Stops the run when no clip survived curation,
    saying why.
    """
    if kept_clips.empty:
        raise NoUsableClipsError(_no_usable_clips_message(rejected_clips, quarantine))
    fraction = kept_clips["duplicate_group"].map(partial(_hash_fraction, salt=split["salt"]))
    return kept_clips.assign(split=np.where(fraction < split["val_fraction"], "val", "train"))


def validate_clip_table(
    clip_candidates: pd.DataFrame, clip_validation: dict[str, Any], curation: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Run the Great Expectations suite on the clip table: a JSON summary and GE's HTML page."""
    result = validation.validate(clip_candidates, clip_validation, curation["clips"])
    summary = validation.summarize(result)
    if not summary["success"]:
        logger.error("Clip table failed validation: %s", validation.describe_failures(summary))
    return summary, validation.render_html(result)


def summarize_curation(
    source_videos: dict[str, Path],
    quarantine: pd.DataFrame,
    clip_scores: pd.DataFrame,
    rejected_clips: pd.DataFrame,
    clip_candidates: pd.DataFrame,
    validation_summary: dict[str, Any],
) -> dict[str, float]:
    """The stage's figures, flat numbers for `dvc metrics` and MLflow."""
    split_counts = clip_candidates["split"].value_counts()
    group_sizes = clip_candidates.groupby("duplicate_group")["video_id"].nunique()
    metrics: dict[str, float] = {
        "videos_total": len(source_videos),
        "videos_quarantined": len(quarantine),
        "clips_total": len(clip_scores),
        "clips_kept": len(clip_candidates),
        "clips_rejected": len(rejected_clips),
        "clips_train": int(split_counts.get("train", 0)),
        "clips_val": int(split_counts.get("val", 0)),
        "near_duplicate_groups": int((group_sizes > 1).sum()),
        "near_duplicate_videos": int(group_sizes[group_sizes > 1].sum()),
        "validation_success": int(validation_summary["success"]),
        "validation_failed_expectations": len(validation_summary["failed"]),
    }
    for column in ("motion_score", "sharpness", "brightness"):
        metrics[f"{column}_mean"] = float(clip_candidates[column].mean())
    metrics["motion_score_min"] = float(clip_candidates["motion_score"].min())
    metrics["motion_score_max"] = float(clip_candidates["motion_score"].max())
    # Every reason gets a key, zero or not, so `dvc metrics diff` compares like with like.
    quarantined = quarantine["reason"].value_counts()
    for reason in READ_ERROR_REASONS:
        metrics[f"quarantined_{reason}"] = int(quarantined.get(reason, 0))
    rejected = rejected_clips["reason"].str.split("; ").explode().value_counts()
    for reason in CLIP_FILTERS:
        metrics[f"rejected_{_slug(reason)}"] = int(rejected.get(reason, 0))
    return metrics


def publish_clip_table(
    clip_candidates: pd.DataFrame, validation_summary: dict[str, Any], curation_metrics: dict[str, float]
) -> pd.DataFrame:
    """The clip table later stages read, released only when validation passed.

    Takes the metrics so it runs after they are written: a failed run still leaves its figures and report.
    """
    if not validation_summary["success"]:
        reason = _empty_split_message(clip_candidates) or (
            f"the clip table failed {len(validation_summary['failed'])} expectation(s): "
            f"{validation.describe_failures(validation_summary)}"
        )
        raise ValidationFailedError(
            f"{reason}. See the validation report (catalog entry clip_validation_report) in "
            "data/08_reporting/."
        )
    logger.info(
        "Curated %d clips (%d videos quarantined)",
        len(clip_candidates),
        curation_metrics["videos_quarantined"],
    )
    return clip_candidates


def select_curated_frames(
    clip_frames: dict[str, np.ndarray], clip_table: pd.DataFrame
) -> dict[str, np.ndarray]:
    """The frames of the published clips, one array per clip id."""
    return {clip_id: clip_frames[clip_id] for clip_id in clip_table["clip_id"]}


def render_contact_sheet(
    clip_frames: dict[str, np.ndarray],
    clip_scores: pd.DataFrame,
    rejected_clips: pd.DataFrame,
    columns: int = 6,
) -> Image.Image:
    """A grid of each clip's middle frame, captioned with its motion score, or its rejection reason in red."""
    reasons = dict(zip(rejected_clips.get("clip_id", []), rejected_clips.get("reason", []), strict=True))
    tiles = []
    for row in clip_scores.itertuples():
        clip = clip_frames[row.clip_id]
        frames = _shrink(clip[len(clip) // 2 : len(clip) // 2 + 1])
        tile = Image.new("RGB", (frames.shape[2], frames.shape[1] + 28), "white")
        tile.paste(Image.fromarray(frames[0]), (0, 0))
        draw = ImageDraw.Draw(tile)
        reason = reasons.get(row.clip_id)
        caption = f"{row.clip_id[:28]}\nmotion {row.motion_score:.2f}" + (f" | {reason}" if reason else "")
        draw.multiline_text((3, frames.shape[1] + 1), caption, fill="red" if reason else "black", spacing=1)
        tiles.append(tile)
    if not tiles:
        return Image.new("RGB", (64, 64), "white")
    width, height = tiles[0].size
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (width * min(columns, len(tiles)), height * rows), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * width, (i // columns) * height))
    return sheet


def select_clip_previews(
    clip_frames: dict[str, np.ndarray], clip_table: pd.DataFrame, count: int
) -> dict[str, np.ndarray]:
    """A few published clips, spread over the motion range, to look at in MLflow."""
    ordered = clip_table.sort_values("motion_score")
    picks = ordered.iloc[
        np.unique(np.linspace(0, len(ordered) - 1, min(count, len(ordered))).round().astype(int))
    ]
    return {
        f"motion_{row.motion_score:05.2f}_{row.clip_id}": _shrink(clip_frames[row.clip_id], PREVIEW_WIDTH)
        for row in picks.itertuples()
    }


def _shrink(frames: np.ndarray, max_width: int = THUMBNAIL_WIDTH) -> np.ndarray:
    """Frames no wider than max_width, aspect kept: 720p tiles and GIFs would be needlessly heavy."""
    height, width = frames.shape[1:3]
    if width <= max_width:
        return frames
    size = (max_width, round(height * max_width / width))
    return np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames])


def _clip_id(video_id: str, index: int) -> str:
    """Readable and unique: the file's stem, a hash of its full identity, the clip's index."""
    stem = _slug(Path(video_id).stem)[:40]
    digest = hashlib.sha1(video_id.encode()).hexdigest()[:8]
    return f"{stem}-{digest}-{index:02d}"


def _hash_fraction(identity: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{identity}".encode()).hexdigest()
    return int(digest[:12], 16) / 16**12


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _empty_split_message(clip_candidates: pd.DataFrame) -> str | None:
    """What to do when every clip landed in one split (too few videos for the fraction); None otherwise."""
    present = set(clip_candidates["split"])
    for missing, other, fix in (("val", "train", "raise"), ("train", "val", "lower")):
        if missing not in present:
            videos = clip_candidates["video_id"].nunique()
            return (
                f"no {missing} clips: {_count(videos, 'video')} gave {_count(len(clip_candidates), 'clip')}, "
                f"all in {other}; add videos or {fix} curation.split.val_fraction"
            )
    return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _no_usable_clips_message(rejected: pd.DataFrame, quarantine: pd.DataFrame) -> str:
    parts = []
    if len(quarantine):
        counts = quarantine["reason"].value_counts()
        parts.append(
            f"{len(quarantine)} video(s) quarantined ({', '.join(f'{n} {r}' for r, n in counts.items())})"
        )
    if len(rejected):
        counts = rejected["reason"].value_counts()
        parts.append(f"{len(rejected)} clip(s) rejected ({', '.join(f'{n} {r}' for r, n in counts.items())})")
    return (
        "no usable clips: "
        + ("; ".join(parts) or "no videos found")
        + ". See the quarantine table (catalog entry video_quarantine) and the rejected-clip table "
        "(rejected_clips) in data/08_reporting/."
    )
