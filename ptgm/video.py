"""Record episodes of an agent to a captioned video (``.gif`` or ``.mp4``).

Usage::

    env = gym.make("ptgm/Crafter-v0", task="collect_stone", render_mode="rgb_array")

    def act(obs):
        goal = agent.pick_goal(obs)
        return agent.act(obs, goal), {"caption": f"goal {goal}"}

    record_video(env, act, "runs/demo.mp4", episodes=2, seed=0)

Each frame shows the env's ``render()`` (small frames upscaled with nearest-neighbour to
at least :data:`MIN_HEIGHT` pixels so the text stays readable), the step number and the
caption of what the agent said about that step. ``.gif`` is written with Pillow; ``.mp4``
with imageio's ffmpeg plugin (the ``imageio-ffmpeg`` package).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: tuple[str, ...] = (".gif", ".mp4")
#: Frames shorter than this are upscaled by a whole factor (Crafter's 64 px frames become 256 px).
MIN_HEIGHT = 256


def record_video(
    env: gym.Env,
    act: Callable[[np.ndarray], tuple[Any, dict]],
    path: str | Path,
    episodes: int = 1,
    max_steps: int | None = None,
    fps: int = 15,
    caption: Callable[[dict], str] | None = None,
    seed: int | None = None,
) -> dict:
    """Run ``episodes`` episodes of ``act`` in ``env`` and write them to one video at ``path``.

    Args:
        env: an env made with ``render_mode="rgb_array"``; it is left open.
        act: called with each observation; returns the action and an info dict
            (e.g. ``{"goal": 12, "caption": "goal 12: stone"}``) for the caption.
        path: output file; its suffix picks the format (``.gif`` or ``.mp4``).
        episodes: number of episodes, recorded one after another.
        max_steps: stop an episode after this many steps (``None``: run until the env
            terminates or truncates it).
        fps: frames per second of the video (a GIF stores delays in 1/100 s, so 15 fps
            plays at about 14-17).
        caption: text for a frame from ``act``'s info; default ``info.get("caption", "")``.
        seed: episode ``i`` resets with ``seed + i`` (each episode reproducible on its
            own); ``None`` leaves seeding to the env.

    Returns:
        ``{"path": str, "frames": int, "episodes": int, "returns": [float, ...]}``. An
        episode of ``T`` steps gives ``T + 1`` frames: the state each action was chosen
        in, then the state it ended in.

    Raises:
        ValueError: unsupported suffix, bad arguments, or an env that does not render
            RGB frames.
        ImportError: ``.mp4`` without the ``imageio-ffmpeg`` package.

    The video is written to a temporary file next to ``path`` and moved into place when
    complete, so an interrupted run never leaves a partial video at ``path``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    # Check everything that can fail before running a (possibly long) episode.
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"Cannot write a video to {str(path)!r}: unsupported suffix {path.suffix!r}. "
            f"Supported: {', '.join(SUPPORTED_SUFFIXES)}."
        )
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ImportError(
            f"Writing {str(path)!r} needs the imageio-ffmpeg package (ffmpeg for imageio): "
            "run `pip install imageio-ffmpeg`, or record to a .gif instead."
        )
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}.")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be at least 1 or None, got {max_steps}.")
    if fps < 1:
        raise ValueError(f"fps must be at least 1, got {fps}.")
    if env.render_mode != "rgb_array":
        raise ValueError(
            f"record_video needs an env that renders RGB frames; this one has render_mode={env.render_mode!r}. "
            'Make it with render_mode="rgb_array", e.g. gym.make(env_id, task=..., render_mode="rgb_array").'
        )
    caption = caption or _default_caption

    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory, so os.replace is an atomic rename; the suffix tells the writer the format.
    # (Not tempfile.mkstemp: its file is private, mode 0600, and the video would keep that mode.)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{suffix}")
    writer: _GifWriter | _Mp4Writer | None = None
    returns: list[float] = []
    frames = 0
    try:
        writer = _GifWriter(tmp, fps) if suffix == ".gif" else _Mp4Writer(tmp, fps)
        for episode in range(episodes):
            obs, _ = env.reset(seed=None if seed is None else seed + episode)
            episode_return, step, text = 0.0, 0, ""
            while True:
                action, info = _call_act(act, obs)
                text = caption(info)
                # Frames are drawn before stepping: the caption describes the state the action was chosen in.
                writer.append(annotate_frame(_render(env), _lines(episode, episodes, step, text)))
                frames += 1
                obs, reward, terminated, truncated, _ = env.step(action)
                episode_return += float(reward)
                step += 1
                if terminated or truncated or (max_steps is not None and step >= max_steps):
                    break
            # The state the last action led to (e.g. the achievement unlocked), with the last caption.
            writer.append(annotate_frame(_render(env), _lines(episode, episodes, step, text)))
            frames += 1
            returns.append(episode_return)
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            writer.abort()
        tmp.unlink(missing_ok=True)
        raise
    logger.info("Wrote %d frames (%d episodes, returns %s) to %s", frames, episodes, returns, path)
    return {"path": str(path), "frames": frames, "episodes": episodes, "returns": returns}


def annotate_frame(frame: np.ndarray, lines: list[str], min_height: int = MIN_HEIGHT) -> np.ndarray:
    """``frame`` (H x W x 3 uint8) upscaled to at least ``min_height`` tall, with ``lines`` drawn top-left."""
    image = Image.fromarray(frame)
    scale = max(1, math.ceil(min_height / image.height))
    if scale > 1:
        # Nearest-neighbour by a whole factor keeps pixel art (Crafter) sharp.
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    text = "\n".join(line for line in lines if line)
    if text:
        font_size = max(12, image.height // 16)
        draw = ImageDraw.Draw(image)
        # White text with a black outline reads on any background without hiding the frame behind a box.
        draw.multiline_text(
            (font_size // 2, font_size // 3), text, font=_font(font_size), fill=(255, 255, 255),
            stroke_width=max(1, font_size // 8), stroke_fill=(0, 0, 0), spacing=font_size // 4,
        )
    return np.asarray(image)


# -- helpers -------------------------------------------------------------------------
def _default_caption(info: dict) -> str:
    return str(info.get("caption", ""))


def _lines(episode: int, episodes: int, step: int, text: str) -> list[str]:
    header = f"episode {episode + 1}/{episodes}  step {step}" if episodes > 1 else f"step {step}"
    return [header, *str(text).splitlines()]


def _call_act(act: Callable[[np.ndarray], tuple[Any, dict]], obs: np.ndarray) -> tuple[Any, Mapping]:
    result = act(obs)
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Mapping)):
        raise TypeError(
            f"act(obs) must return (action, info_dict), e.g. (action, {{'caption': 'goal 3'}}); got {result!r}."
        )
    return result


def _render(env: gym.Env) -> np.ndarray:
    frame = env.render()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(
            f"env.render() must return an RGB frame (H x W x 3 array); got "
            f"{getattr(frame, 'shape', type(frame).__name__)}. Make the env with render_mode='rgb_array'."
        )
    if frame.dtype != np.uint8:
        raise ValueError(f"env.render() must return uint8 pixels, got {frame.dtype}.")
    return np.ascontiguousarray(frame[:, :, :3])


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (needs FreeType)
    except (ImportError, OSError):
        return ImageFont.load_default()  # fixed-size bitmap font; small but readable


class _GifWriter:
    """Collects frames and saves them as one looping GIF on :meth:`close` (Pillow writes GIFs whole)."""

    def __init__(self, path: Path, fps: int):
        self.path, self.fps = path, fps
        self.frames: list[Image.Image] = []

    def append(self, frame: np.ndarray) -> None:
        self._check_size(frame)
        # Paletted now (as the GIF stores it) takes a third of the memory of RGB.
        self.frames.append(Image.fromarray(frame).quantize(colors=256, method=Image.Quantize.MEDIANCUT))

    def _check_size(self, frame: np.ndarray) -> None:
        if self.frames and self.frames[0].size != (frame.shape[1], frame.shape[0]):
            raise ValueError(f"Frame size changed mid-video: {self.frames[0].size} then {frame.shape[1::-1]}.")

    def close(self) -> None:
        # Every frame shows a different step number, so Pillow never merges two frames into one.
        first, *rest = self.frames
        first.save(self.path, format="GIF", save_all=True, append_images=rest, duration=1000 / self.fps, loop=0)

    def abort(self) -> None:
        self.frames.clear()


class _Mp4Writer:
    """Streams frames to ffmpeg (H.264, yuv420p: plays in browsers and players)."""

    def __init__(self, path: Path, fps: int):
        import imageio.v2 as imageio

        # macro_block_size=1: keep the frame size as is (even sizes are padded in append)
        # instead of letting imageio rescale to a multiple of 16 with a warning.
        self.writer = imageio.get_writer(
            path, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
            macro_block_size=1, ffmpeg_log_level="error",
        )
        self.size: tuple[int, int] | None = None

    def append(self, frame: np.ndarray) -> None:
        # yuv420p stores colour at half resolution, so both sides must be even.
        pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)))
        if self.size is None:
            self.size = frame.shape[:2]
        elif self.size != frame.shape[:2]:
            raise ValueError(f"Frame size changed mid-video: {self.size} then {frame.shape[:2]}.")
        self.writer.append_data(frame)

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        try:
            self.writer.close()
        except Exception:  # already failing; the original error is the one to report
            logger.debug("closing the ffmpeg writer after an error failed", exc_info=True)
