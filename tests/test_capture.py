"""Frames come in: slideshows, stills, real video files, the bundled artworks, the errors a user sees."""
from __future__ import annotations

import logging
import re
import threading

import numpy as np
import pytest

from installation.image.capture import (
    IMAGE_EXTENSIONS, Frame, LiveSource, bundled_artworks, iter_images, open_source,
)
from installation.errors import UserError
from media import dominant, make_image, make_video

RED, GREEN, BLUE = (230, 20, 20), (20, 230, 20), (20, 20, 230)


def one_line_error(spec, *words, **kwargs) -> str:
    """open_source(spec) raises a one-line UserError containing every word; its message."""
    with pytest.raises(UserError) as info:
        open_source(spec, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert str(word) in message
    return message


# --- slideshows and stills --------------------------------------------------------------

@pytest.fixture
def folder(tmp_path):
    """Three images named so that sorting by name gives red, green, blue; plus a non-image."""
    make_image(tmp_path / "a_red.png", RED)
    make_image(tmp_path / "b_green.jpg", GREEN)
    make_image(tmp_path / "c_blue.bmp", BLUE)
    (tmp_path / "notes.txt").write_text("not a picture")
    return tmp_path


def test_slideshow_maps_time_to_image(folder):
    with open_source(str(folder), slide_seconds=2.0) as show:
        assert not show.live
        assert show.description == f"slideshow of 3 images in {folder.name}/ (2 s each)"
        expected = [(0.0, 0, "red"), (1.99, 0, "red"), (2.0, 1, "green"), (5.9, 2, "blue"),
                    (6.0, 0, "red"), (9.0, 1, "green"), (4.0, 2, "blue"), (0.5, 0, "red")]
        for t, index, colour in expected:
            frame = show.frame_at(t)
            assert isinstance(frame, Frame)
            assert (frame.index, dominant(frame.image)) == (index, colour), f"t={t}"
        frame = show.frame_at(2.5)
        assert frame.label == "b_green.jpg"
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8


def test_slideshow_skips_unreadable_images_and_names_them(folder, caplog):
    (folder / "broken.jpg").write_bytes(b"\x00garbage, not a jpeg" * 10)
    with caplog.at_level(logging.WARNING, logger="installation.image.capture"):
        show = open_source(str(folder), slide_seconds=1.0)
    assert "broken.jpg" in caplog.text
    assert show.description.startswith("slideshow of 3 images")
    assert [show.frame_at(t).label for t in (0, 1, 2)] == ["a_red.png", "b_green.jpg", "c_blue.bmp"]


def test_still_image_is_the_same_at_every_time(tmp_path):
    show = open_source(str(make_image(tmp_path / "still.png", GREEN)))
    assert show.description == "image still.png" and not show.live
    frames = [show.frame_at(t) for t in (0.0, 7.0, 1000.0)]
    assert {(f.index, f.label, dominant(f.image)) for f in frames} == {(0, "still.png", "green")}


# --- video files ------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_video_frame_at_scene_change_loop_and_backwards(tmp_path, suffix):
    clip = make_video(tmp_path / f"clip{suffix}", [(RED, 2.0), (BLUE, 2.0)], fps=10)
    with open_source(str(clip)) as video:
        assert not video.live
        assert video.description == f"video clip{suffix} (10.0 fps, 4.0 s, looping)"
        expected = [(0.5, 5, "red"), (1.95, 19, "red"), (2.05, 20, "blue"), (3.95, 39, "blue"),
                    (4.5, 5, "red"),        # looped
                    (6.5, 25, "blue"),
                    (1.0, 10, "red"),       # backwards
                    (0.0, 0, "red")]
        for t, index, colour in expected:
            frame = video.frame_at(t)
            assert (frame.index, dominant(frame.image)) == (index, colour), f"t={t}"
        assert frame.image.shape == (120, 160, 3)
        first = video.frame_at(2.5).image.copy()
        video.frame_at(3.7)
        video.frame_at(0.2)
        assert np.array_equal(video.frame_at(2.5).image, first)   # same t, same frame


def test_frames_are_read_only(tmp_path):
    clip = make_video(tmp_path / "clip.avi", [(RED, 0.5)], fps=10)
    with open_source(str(clip)) as video:
        with pytest.raises(ValueError):
            video.frame_at(0.0).image[0, 0, 0] = 1


# --- live sources: a real capture thread, fed by a video file ---------------------------

def capture_threads():
    return [t for t in threading.enumerate() if t.name.startswith("capture ")]


def test_live_source_starts_only_when_asked_and_stops_on_close(tmp_path):
    clip = make_video(tmp_path / "live.avi", [(BLUE, 1.0)], fps=10)
    before = capture_threads()
    live = LiveSource(str(clip))
    assert live.live and live.description == f"stream {clip}"
    assert capture_threads() == before          # constructing starts nothing
    try:
        frame = live.frame_at(0.0)              # first use starts the thread
        assert len(capture_threads()) == len(before) + 1
        assert dominant(frame.image) == "blue" and frame.label.startswith(f"stream {clip} @ ")
        _, version = live.slot.get()
        newer, newer_version = live.slot.wait_newer(version, timeout=30.0)
        assert newer_version > version and newer.index > frame.index
    finally:
        live.close()
    assert capture_threads() == before
    live.close()                                # twice is fine


# --- the bundled artworks ---------------------------------------------------------------

def test_bundled_artworks_all_load_and_have_provenance():
    folder = bundled_artworks()
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    assert 4 <= len(files) <= 8
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1_500_000
    show = open_source(str(folder), slide_seconds=1.0)
    assert len(show.paths) == len(files)
    means = []
    for i, path in enumerate(files):
        frame = show.frame_at(i + 0.5)
        assert frame.label == path.name and frame.index == i
        assert frame.image.ndim == 3 and max(frame.image.shape[:2]) <= 640
        means.append(frame.image.mean())
    assert max(means) - min(means) > 40          # bright and dark pictures both present
    provenance = (folder / "PROVENANCE.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^### `([^`]+)`$", provenance, flags=re.MULTILINE))
    assert sections == {p.name for p in files}   # every file has a section, no section is stale


def test_no_camera_falls_back_to_the_artworks(caplog):
    with caplog.at_level(logging.WARNING, logger="installation.image.capture"):
        source = open_source(None, slide_seconds=5.0)
    try:
        if source.description.startswith("camera"):   # a machine with a webcam
            assert source.live and source.description == "camera 0"
            return
        n = len(source.paths)
        assert source.description == f"slideshow of {n} images in artworks/ (5 s each)"
        assert f"no camera found: playing the bundled artworks ({n} images, 5 s each)" in caplog.text
        assert not source.live and source.frame_at(0.0).index == 0
    finally:
        source.close()


# --- what a user sees when something is wrong ------------------------------------------

def test_missing_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    one_line_error(str(missing), f"no such file or folder: {missing}", "camera index")


def test_corrupt_image(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"this is not a jpeg" * 20)
    one_line_error(str(bad), f"cannot read image {bad}", "not an image or corrupt")


def test_empty_file_named_like_an_image(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    one_line_error(str(empty), "cannot read image", "empty.png")


def test_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no pictures here")
    one_line_error(str(tmp_path), str(tmp_path), "no readable images")


def test_folder_of_only_broken_images(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    one_line_error(str(tmp_path), str(tmp_path), "no readable images")


def test_bad_camera_index():
    one_line_error("57", "camera 57 cannot be opened", "--source FILE|FOLDER")


def test_not_a_video(tmp_path):
    bad = tmp_path / "clip.avi"
    bad.write_bytes(b"garbage" * 100)
    one_line_error(str(bad), str(bad))


def test_bad_slide_seconds(folder):
    one_line_error(str(folder), "--slide-seconds", slide_seconds=0)


# --- iter_images (the offline render command) -------------------------------------------

def test_iter_images_expands_folders_in_order(folder, tmp_path_factory):
    extra = make_image(tmp_path_factory.mktemp("more") / "z.png", RED)
    assert [p.name for p in iter_images([extra, folder])] == ["z.png", "a_red.png", "b_green.jpg", "c_blue.bmp"]


def test_iter_images_missing_file(tmp_path):
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "gone.jpg"))):
        iter_images([tmp_path / "gone.jpg"])


def test_iter_images_folder_without_images(tmp_path):
    with pytest.raises(UserError, match=re.escape(str(tmp_path))):
        iter_images([tmp_path])
