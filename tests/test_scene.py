"""Scene tracking and crossfades: synthetic embeddings with known angles, explicit times."""
from __future__ import annotations

import math

import numpy as np
import pytest

from installation.image.scene import Crossfade, SceneConfig, SceneTracker, cosine_distance

DIM = 1280


def unit(i, dim=DIM):
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


def rotated(angle, dim=DIM):
    """A unit vector at ``angle`` radians from unit(0), in the plane of unit(0) and unit(1)."""
    return (math.cos(angle) * unit(0, dim) + math.sin(angle) * unit(1, dim)).astype(np.float32)


# --- smoothing ---------------------------------------------------------------------

def test_first_embedding_starts_scene_zero():
    tr = SceneTracker()
    x = np.random.default_rng(0).standard_normal(DIM).astype(np.float32)
    u = tr.update(10.0, x)
    assert u.scene_id == 0 and not u.changed and u.distance == 0.0
    assert u.smoothed.dtype == np.float32
    np.testing.assert_array_equal(u.smoothed, x)
    x[:] = 0                                            # the tracker kept its own copy
    assert tr.smoothed[0] != 0


def test_ema_step_uses_alpha_from_dt_and_converges():
    tr = SceneTracker(SceneConfig(smoothing_s=1.5))
    a, b = rotated(0.0), rotated(0.3)                   # cosine distance ~0.045: same scene
    tr.update(0.0, a)
    u = tr.update(1.5, b)                               # dt = tau: alpha = 1 - 1/e
    alpha = 1 - math.exp(-1)
    np.testing.assert_allclose(u.smoothed, a + alpha * (b - a), rtol=0, atol=1e-6)
    assert u.distance == pytest.approx(1 - math.cos(0.3), abs=1e-6)
    s1 = u.smoothed
    u = tr.update(3.0, b)                               # dt counts from the previous embedding
    np.testing.assert_allclose(u.smoothed, s1 + alpha * (b - s1), rtol=0, atol=1e-6)
    for k in range(1, 40):
        u = tr.update(3.0 + k * 0.5, b)
    np.testing.assert_allclose(u.smoothed, b, atol=1e-4)
    assert u.scene_id == 0


def test_ema_with_no_time_passed_does_not_move():
    tr = SceneTracker()
    tr.update(1.0, rotated(0.0))
    u = tr.update(1.0, rotated(0.2))
    np.testing.assert_array_equal(u.smoothed, rotated(0.0))


def test_slow_drift_is_followed_without_a_change():
    tr = SceneTracker(SceneConfig(smoothing_s=1.5, change_threshold=0.25, change_frames=2))
    for k in range(601):                                # 0 -> 90 degrees over 60 s at 10 fps
        x = rotated(k / 600 * math.pi / 2)
        u = tr.update(k * 0.1, x)
        assert not u.changed
    assert u.scene_id == 0
    assert cosine_distance(u.smoothed, x) < 0.01        # it kept up with the drift
    assert cosine_distance(u.smoothed, rotated(0.0)) > 0.9


# --- scene changes -------------------------------------------------------------------

def test_hard_cut_is_confirmed_after_change_frames_and_not_before():
    for frames in (1, 2, 3):
        tr = SceneTracker(SceneConfig(change_frames=frames))
        for k in range(5):
            tr.update(k * 0.1, unit(0))
        for j in range(frames):
            u = tr.update(1.0 + j * 0.1, unit(1))
            assert u.distance == pytest.approx(1.0)
            assert u.changed == (j == frames - 1)
            assert u.scene_id == (1 if j == frames - 1 else 0)
        np.testing.assert_array_equal(u.smoothed, unit(1))      # restarted, no blend across the cut
        u = tr.update(2.0, unit(1))
        assert not u.changed and u.scene_id == 1 and u.distance == pytest.approx(0.0, abs=1e-6)


def test_a_single_outlier_frame_is_not_a_change_and_is_not_blended_in():
    tr = SceneTracker(SceneConfig(change_frames=2))
    tr.update(0.0, unit(0))
    before = tr.update(0.1, rotated(0.1)).smoothed.copy()
    u = tr.update(0.2, unit(5))
    assert not u.changed and u.scene_id == 0 and u.distance == pytest.approx(1.0)
    np.testing.assert_array_equal(u.smoothed, before)
    u = tr.update(0.3, rotated(0.1))
    assert not u.changed and u.scene_id == 0
    u = tr.update(0.4, unit(5))                         # distant again, but not consecutive
    assert not u.changed and u.scene_id == 0


def test_threshold_is_the_boundary():
    angle = math.acos(1 - 0.25)                          # exactly the threshold
    tr = SceneTracker(SceneConfig(change_threshold=0.25, change_frames=1))
    tr.update(0.0, rotated(0.0))
    assert not tr.update(0.1, rotated(angle * 0.98)).changed
    tr2 = SceneTracker(SceneConfig(change_threshold=0.25, change_frames=1))
    tr2.update(0.0, rotated(0.0))
    assert tr2.update(0.1, rotated(angle * 1.02)).changed


def test_scene_id_increments_with_each_cut():
    tr = SceneTracker(SceneConfig(change_frames=2))
    ids, changes = [], 0
    for k, scene in enumerate([0] * 5 + [1] * 5 + [2] * 5 + [0] * 5):
        u = tr.update(k * 0.1, unit(scene))
        ids.append(u.scene_id)
        changes += u.changed
    assert changes == 3
    assert ids == [0] * 6 + [1] * 5 + [2] * 5 + [3] * 4


def test_shape_change_is_an_error():
    tr = SceneTracker()
    tr.update(0.0, unit(0))
    with pytest.raises(ValueError):
        tr.update(0.1, unit(0, dim=64))


def test_cosine_distance_of_zero_vectors():
    z = np.zeros(8, dtype=np.float32)
    assert cosine_distance(z, z) == 0.0
    assert cosine_distance(z, unit(0, 8)) == 1.0
    assert cosine_distance(unit(0, 8), -unit(0, 8)) == pytest.approx(2.0)


# --- crossfade ---------------------------------------------------------------------------

def test_crossfade_is_exact_at_start_midpoint_and_end():
    a, b = np.full(128, 1.0, np.float32), np.full(128, 3.0, np.float32)
    cf = Crossfade(2.0)
    cf.set(0.0, a)                                       # the first target: no glide from nothing
    np.testing.assert_array_equal(cf.value(0.0), a)
    cf.set(10.0, b)
    np.testing.assert_array_equal(cf.value(10.0), a)
    np.testing.assert_array_equal(cf.value(11.0), np.full(128, 2.0, np.float32))
    np.testing.assert_allclose(cf.value(10.5), np.full(128, 1.5), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(cf.value(12.0), b)
    np.testing.assert_array_equal(cf.value(99.0), b)
    np.testing.assert_array_equal(cf.value(9.0), a)     # before the new target was set
    assert cf.value(11.0).dtype == np.float32


def test_new_target_mid_fade_starts_from_the_blended_value():
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal(64).astype(np.float32) for _ in range(3))
    cf = Crossfade(2.0)
    cf.set(0.0, a)
    cf.set(1.0, b)
    mid = cf.value(1.5)                                  # a quarter of the way from a to b
    np.testing.assert_allclose(mid, a + 0.25 * (b - a), atol=1e-6)
    cf.set(1.5, c)
    np.testing.assert_array_equal(cf.value(1.5), mid)   # no jump
    np.testing.assert_allclose(cf.value(2.5), mid + 0.5 * (c - mid), atol=1e-6)
    np.testing.assert_array_equal(cf.value(3.5), c)


def test_immediate_and_zero_length_crossfades_jump():
    a, b = unit(0, 16), unit(1, 16)
    cf = Crossfade(2.0)
    cf.set(0.0, a)
    cf.set(1.0, b, immediate=True)
    np.testing.assert_array_equal(cf.value(1.0), b)
    cf0 = Crossfade(0.0)
    cf0.set(0.0, a)
    cf0.set(1.0, b)
    np.testing.assert_array_equal(cf0.value(1.0), b)


def test_crossfade_value_is_a_copy_and_needs_a_target():
    cf = Crossfade(1.0)
    with pytest.raises(RuntimeError):
        cf.value(0.0)
    target = unit(0, 8)
    cf.set(0.0, target)
    target[0] = 7.0                                      # the caller's buffer is not kept
    v = cf.value(5.0)
    v[0] = 9.0
    np.testing.assert_array_equal(cf.value(5.0), unit(0, 8))
    with pytest.raises(ValueError):
        cf.set(6.0, unit(0, 16))


# --- the cheap change signal ------------------------------------------------------------

def test_a_distant_embedding_of_an_unchanged_picture_is_smoothed_in_not_counted():
    tr = SceneTracker(SceneConfig(change_frames=2))
    tr.update(0.0, unit(0))
    for k in range(1, 6):                               # people in front: distant, but the picture is the same
        u = tr.update(k * 0.25, unit(1), cut=False)
        assert not u.changed and tr.pending == 0
    assert cosine_distance(u.smoothed, unit(1)) < cosine_distance(u.smoothed, unit(0))   # followed, slowly
    tr.update(2.0, unit(2))                             # a cut counts; without a confirming frame it waits
    u = tr.update(2.1, unit(2), confirm=False)
    assert not u.changed and tr.pending == 2
    assert tr.update(2.2, unit(2)).changed


def picture(seed, h=48, w=64):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def with_figure(img, x, w=12):
    out = img.copy()
    out[10:, x:x + w] = (60, 40, 90)                     # a figure: a sixth of the width, most of the height
    return out


def test_cut_watch_embeds_a_new_picture_at_once_but_not_a_figure():
    from installation.image.scene import CutWatch
    cfg = SceneConfig(confirm_gap_s=0.03)
    watch, tr = CutWatch(cfg), SceneTracker(cfg)
    a, b = picture(1), picture(2)
    for k in range(8):                                   # the scene's background
        thumb = watch.thumbnail(a)
        watch.embedded(k * 0.25, thumb, tr.update(k * 0.25, unit(0)), tr.pending)
    for x in range(0, 50, 5):                            # a figure walking across: never a cut
        thumb = watch.thumbnail(with_figure(a, x))
        assert not watch.is_cut(thumb) and not watch.wants(2.0 + x / 100, thumb, tr.pending)
    t = 3.0
    thumb = watch.thumbnail(b)                           # a new picture: embed now
    assert watch.wants(t, thumb, tr.pending)
    watch.embedded(t, thumb, tr.update(t, unit(1), cut=True, confirm=watch.confirms(thumb, 0)), tr.pending)
    assert tr.pending == 1
    assert not watch.wants(t + 0.01, thumb, tr.pending)  # too soon after the first look
    moved = watch.thumbnail(with_figure(b, 0, w=40))     # not holding still: waits for the cadence
    assert not watch.wants(t + 0.05, moved, tr.pending)
    assert watch.wants(t + 0.05, thumb, tr.pending)      # the steady second look
    u = tr.update(t + 0.05, unit(1), cut=watch.is_cut(thumb), confirm=watch.confirms(thumb, tr.pending))
    assert u.changed
    watch.embedded(t + 0.05, thumb, u, tr.pending)
    assert not watch.is_cut(thumb)                       # the new picture is the reference now
