"""The display's autostart (deploy/): a valid desktop entry, and a script that waits for the kiosk's status
server, then opens /display in a real browser. Before, the waiting loop sat in the desktop entry's Exec line,
which `desktop-file-validate` refuses (quotes and reserved characters)."""
import configparser
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from browser import chromium_path
from installation.kiosk.status import StatusServer
from installation.kiosk.supervisor import Status
from kiosk_parts import free_port
from realtime_parts import MissingTool

REPO = Path(__file__).resolve().parents[1]
DESKTOP = REPO / "deploy" / "image-to-music-display.desktop"
SCRIPT = REPO / "deploy" / "image-to-music-display.sh"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing")
        pytest.skip(f"{tool} is missing")
    return path


def test_the_desktop_entry_is_valid_and_runs_the_script():
    r = subprocess.run([need("desktop-file-validate"), str(DESKTOP)], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr
    entry = configparser.ConfigParser(interpolation=None)
    entry.read_string(DESKTOP.read_text())
    exec_line = entry["Desktop Entry"]["Exec"]
    assert exec_line.endswith("/" + SCRIPT.relative_to(REPO).as_posix()), exec_line
    assert os.access(SCRIPT, os.X_OK)


def test_the_script_waits_for_the_kiosk_then_opens_the_display():
    need("curl")
    try:
        browser = chromium_path()
    except MissingTool as exc:
        pytest.skip(str(exc))
    port = free_port()
    env = dict(os.environ, IMAGE_TO_MUSIC_TOKEN="disp-token-41",
               IMAGE_TO_MUSIC_BROWSER=f"{browser} --headless --no-sandbox --disable-gpu --dump-dom")
    proc = subprocess.Popen([str(SCRIPT), f"http://127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    st = Status()
    st.data = {"state": "playing"}
    srv = StatusServer(st, "127.0.0.1", port, token="disp-token-41")
    try:
        time.sleep(3.0)                                  # the kiosk starts later than the display's session
        assert proc.poll() is None, proc.communicate()
        srv.start()
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        srv.stop()
    assert proc.returncode == 0, err
    assert "waiting for" in err and 'id="va"' in out and 'id="roll"' in out, (out[-2000:], err)
