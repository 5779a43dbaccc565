"""Clip planning: the last-partial-clip rule, frame choice, per-clip seeds."""
import pytest

from fcap.pseudolabel.clips import clip_bounds, derive_seed, plan_clips
from fcap.pseudolabel.config import ClipConfig


def test_keep_labels_a_long_remainder_as_a_shorter_clip():
    assert clip_bounds(19.0, ClipConfig()) == [(0.0, 8.0), (8.0, 16.0), (16.0, 19.0)]


def test_keep_merges_a_remainder_shorter_than_min_last_seconds():
    assert clip_bounds(17.5, ClipConfig(min_last_seconds=2.0)) == [(0.0, 8.0), (8.0, 17.5)]


def test_merge_and_drop_rules():
    assert clip_bounds(19.0, ClipConfig(last="merge")) == [(0.0, 8.0), (8.0, 19.0)]
    assert clip_bounds(19.0, ClipConfig(last="drop")) == [(0.0, 8.0), (8.0, 16.0)]


def test_short_video_is_one_clip_except_under_drop():
    assert clip_bounds(5.28, ClipConfig()) == [(0.0, 5.28)]
    assert clip_bounds(5.28, ClipConfig(last="merge")) == [(0.0, 5.28)]
    assert clip_bounds(5.28, ClipConfig(last="drop")) == []


def test_remainder_below_one_frame_is_rounding_not_a_clip():
    assert clip_bounds(16.02, ClipConfig(min_last_seconds=0.0), frame_s=0.04) == [(0.0, 8.0), (8.0, 16.0)]


def test_center_frame_is_the_middle_of_each_clip():
    clips = plan_clips(250, 25.0, ClipConfig(), seed=0, video_id="v")  # 10 s
    assert [(c.start, c.end) for c in clips] == [(0.0, 8.0), (8.0, 10.0)]
    assert [c.frame_indices for c in clips] == [(100,), (225,)]
    assert [c.frame_times for c in clips] == [(4.0,), (9.0,)]


def test_even_frames_are_evenly_spaced_and_key_frame_is_nearest_centre():
    (clip,) = plan_clips(200, 25.0, ClipConfig(frames="even", num_frames=4), seed=0, video_id="v")
    assert clip.frame_times == (1.0, 3.0, 5.0, 7.0)
    assert clip.frame_times[clip.key_frame] == 3.0  # 3.0 and 5.0 tie: the first wins


def test_random_frame_is_inside_the_clip_and_seeded():
    cfg = ClipConfig(frames="random")
    a = plan_clips(2500, 25.0, cfg, seed=0, video_id="v")
    assert a == plan_clips(2500, 25.0, cfg, seed=0, video_id="v")
    assert all(c.start <= c.frame_times[0] < c.end for c in a)
    assert [c.frame_indices for c in a] != [c.frame_indices for c in plan_clips(2500, 25.0, cfg, seed=1,
                                                                                 video_id="v")]


def test_derive_seed_depends_on_every_part():
    base = derive_seed(0, "v", 3)
    assert base == derive_seed(0, "v", 3)
    assert len({base, derive_seed(1, "v", 3), derive_seed(0, "w", 3), derive_seed(0, "v", 4),
                derive_seed(0, "v", 3, 1)}) == 5


def test_clip_config_errors_name_the_field():
    with pytest.raises(ValueError, match="num_frames > 1 needs frames 'even'"):
        ClipConfig(num_frames=3)
    with pytest.raises(ValueError, match="seconds must be > 0"):
        ClipConfig(seconds=0)


def test_keyframe_window_snaps_to_the_nearest_keyframe_inside_the_clip():
    keys = [0, 30, 76, 137, 187, 242]  # bikes.mp4's keyframes (250 frames, 25 fps)
    snapped = plan_clips(250, 25.0, ClipConfig(keyframe_window=2.0), seed=0, video_id="v", keyframes=keys)
    assert [c.frame_indices for c in snapped] == [(76,), (242,)]  # centres 100 and 225
    narrow = plan_clips(250, 25.0, ClipConfig(keyframe_window=0.5), seed=0, video_id="v", keyframes=keys)
    assert [c.frame_indices for c in narrow] == [(100,), (225,)]  # no keyframe within 0.5 s
    outside = plan_clips(250, 25.0, ClipConfig(keyframe_window=8.0), seed=0, video_id="v", keyframes=[210])
    assert [c.frame_indices for c in outside] == [(100,), (210,)]  # 210 lies in the second clip only
