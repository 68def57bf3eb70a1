"""Curation's work on one video: probe, cut clips by time, score them, fingerprint them, and keep the frames
of the clips the per-clip filters pass. A plain function of (video id, path, settings), so a process pool or a
Ray cluster can run it anywhere the file can be read; a file that gives no clip comes back as a record saying
why, never as a failed task."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mobilei2v_pipeline import storage
from mobilei2v_pipeline.storage import VideoLocation
from mobilei2v_pipeline.text import slug
from mobilei2v_pipeline.video.clip_scores import score_clip
from mobilei2v_pipeline.video.decode import ClipSpec, VideoReadError, probe_video, read_clips
from mobilei2v_pipeline.video.fingerprint import frame_hashes
from mobilei2v_pipeline.video.record import VideoRecord

QUARANTINE_COLUMNS = ["video_id", "path", "size_bytes", "reason", "detail"]
THUMBNAIL_WIDTH = 224  # pixels of the contact sheet's tiles
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


def rejection_reasons(row: dict[str, Any], filters: dict[str, float]) -> str:
    """Every filter a clip fails, in CLIP_FILTERS' order, joined by "; " ("" when it passes them all)."""
    failed = [
        reason
        for reason, (score, limit) in CLIP_FILTERS.items()
        if (row[score] < filters[limit] if limit.startswith("min_") else row[score] > filters[limit])
    ]
    return "; ".join(failed)


def clip_id(video_id: str, index: int) -> str:
    """Readable and unique: the file's stem, a hash of its full identity, the clip's index."""
    stem = slug(Path(video_id).stem)[:40]
    digest = hashlib.sha1(video_id.encode()).hexdigest()[:8]
    return f"{stem}-{digest}-{index:02d}"


def shrink(frames: np.ndarray, max_width: int) -> np.ndarray:
    """Frames no wider than max_width, aspect kept: 720p tiles and GIFs would be needlessly heavy."""
    height, width = frames.shape[1:3]
    if width <= max_width:
        return frames
    size = (max_width, round(height * max_width / width))
    return np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames])


def curate_video(
    video_id: str, path: VideoLocation, curation: dict[str, Any], threads: int = 0
) -> VideoRecord:
    """The record of one video under the `curation` parameters; `threads` for the decoder (0: FFmpeg's
    choice). The same inputs give the same record whatever process or machine runs it."""
    spec = ClipSpec(**curation["clips"])
    try:
        info = probe_video(path, curation["min_short_side"])
        clips = read_clips(path, info, spec, threads=threads)
    except VideoReadError as exc:
        try:
            size = storage.size(path)
        except OSError:
            size = 0
        quarantine = dict(
            zip(QUARANTINE_COLUMNS, [video_id, str(path), size, exc.reason, str(exc)], strict=True)
        )
        return VideoRecord(video_id, quarantine=quarantine)
    record = VideoRecord(video_id)
    for index, clip in enumerate(clips):
        name = clip_id(video_id, index)
        row = {
            "clip_id": name,
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
            **score_clip(clip.frames, curation["motion_reference_short_side"]),
        }
        row["reason"] = rejection_reasons(row, curation["filters"])
        record.rows.append(row)
        middle = len(clip.frames) // 2
        record.thumbnails[name] = shrink(clip.frames[middle : middle + 1], THUMBNAIL_WIDTH)[0]
        record.hashes[name] = [int(h) for h in frame_hashes(clip.frames)]
        if not row["reason"]:
            record.frames[name] = clip.frames
    return record
