"""Recording captioned episode videos (ptgm.video) of Crafter."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest

from ptgm import video
from ptgm.envs import CRAFTER_ID, register_envs
from ptgm.video import record_video

MAX_STEPS = 30
SEED = 1


@pytest.fixture(scope="module")
def env():
    register_envs()
    env = gym.make(CRAFTER_ID, task="collect_stone", render_mode="rgb_array")
    yield env
    env.close()


class RandomAct:
    """Seeded random actions with a fixed caption; counts its calls."""

    def __init__(self, caption: str = "goal 3", seed: int = 0, fail_at: int | None = None):
        self.rng = np.random.default_rng(seed)
        self.caption, self.fail_at, self.calls = caption, fail_at, 0

    def __call__(self, obs: np.ndarray) -> tuple[int, dict]:
        if self.calls == self.fail_at:
            raise RuntimeError("agent crashed")
        self.calls += 1
        return int(self.rng.integers(17)), {"caption": self.caption}


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_records_a_readable_video(env, tmp_path, suffix):
    act = RandomAct()
    path = tmp_path / f"episode{suffix}"
    result = record_video(env, act, path, max_steps=MAX_STEPS, seed=SEED)
    assert path.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left behind
    # This seed's random episode runs all MAX_STEPS steps: one frame per step plus the final state.
    assert act.calls == MAX_STEPS
    assert result == {"path": str(path), "frames": act.calls + 1, "episodes": 1, "returns": result["returns"]}
    assert len(result["returns"]) == 1
    frames = iio.imread(path, index=None)
    assert frames.shape == (result["frames"], 256, 256, 3)  # Crafter's 64 px frames upscaled 4x
    assert frames.dtype == np.uint8


def test_caption_is_drawn_on_the_frame_it_describes(env, tmp_path):
    record_video(env, RandomAct("goal 3"), tmp_path / "with.gif", max_steps=10, seed=SEED)
    record_video(env, RandomAct(""), tmp_path / "without.gif", max_steps=10, seed=SEED)
    with_caption = iio.imread(tmp_path / "with.gif", index=None).astype(int)
    without = iio.imread(tmp_path / "without.gif", index=None).astype(int)
    assert with_caption.shape == without.shape
    changed = np.abs(with_caption - without).max(axis=-1) > 100
    # Every frame has the caption text (white on black outline) ...
    assert (changed.sum(axis=(1, 2)) > 100).all()
    # ... in the top-left text block, and the rest of the frame is the same world from the same seed.
    rows, cols = np.nonzero(changed.any(axis=0))
    assert rows.max() < 256 // 4 and cols.max() < 256 // 2
    assert np.abs(with_caption[:, 128:] - without[:, 128:]).mean() < 1.0
    # The first frame is the env's own render after reset(seed), upscaled by nearest neighbour.
    env.reset(seed=SEED)
    raw = env.render().repeat(4, axis=0).repeat(4, axis=1).astype(int)
    assert np.abs(with_caption[0, 128:] - raw[128:]).mean() < 1.0


def test_custom_caption_and_several_episodes(env, tmp_path):
    act = RandomAct()
    seen: list[dict] = []

    def caption(info: dict) -> str:
        seen.append(info)
        return f"{info['caption']}!"

    result = record_video(env, act, tmp_path / "two.gif", episodes=2, max_steps=4, seed=SEED, caption=caption)
    assert result["episodes"] == 2 and len(result["returns"]) == 2
    assert result["frames"] == act.calls + 2 == len(iio.imread(tmp_path / "two.gif", index=None))
    assert len(seen) == act.calls and all(info == {"caption": "goal 3"} for info in seen)


def test_unsupported_suffix_raises(env, tmp_path):
    act = RandomAct()
    with pytest.raises(ValueError, match=r"\.avi.*Supported: \.gif, \.mp4"):
        record_video(env, act, tmp_path / "episode.avi", max_steps=3)
    assert act.calls == 0 and list(tmp_path.iterdir()) == []


def test_env_must_render_rgb_array(tmp_path):
    register_envs()
    with pytest.raises(ValueError, match="rgb_array"):
        record_video(gym.make(CRAFTER_ID, task="collect_stone"), RandomAct(), tmp_path / "x.gif", max_steps=3)


def test_failed_run_leaves_no_file(env, tmp_path):
    path = tmp_path / "episode.mp4"
    with pytest.raises(RuntimeError, match="agent crashed"):
        record_video(env, RandomAct(fail_at=5), path, max_steps=MAX_STEPS, seed=SEED)
    assert list(tmp_path.iterdir()) == []


def test_mp4_without_imageio_ffmpeg_says_how_to_fix(env, tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(video.importlib.util, "find_spec",
                        lambda name, *args: None if name == "imageio_ffmpeg" else find_spec(name, *args))
    with pytest.raises(ImportError, match=r"pip install imageio-ffmpeg.*\.gif"):
        record_video(env, RandomAct(), tmp_path / "episode.mp4", max_steps=3)
    assert list(tmp_path.iterdir()) == []
