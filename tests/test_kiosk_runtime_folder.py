"""A supervisor killed with SIGKILL cannot clean up its runtime folder; the next one removes it."""
import glob
import os
import signal
import tempfile
import time

from kiosk_parts import NO_CAMERA, Kiosk, playing


def folders(pid):
    return glob.glob(os.path.join(tempfile.gettempdir(), f"image-to-music-{pid}-*"))


def test_a_killed_supervisors_folder_is_removed_by_the_next(jack_server):
    k = Kiosk("--virtual-port", "folder-test", "--source", NO_CAMERA).start()
    try:
        k.wait_health(playing)
        pid = k.proc.pid
        assert len(folders(pid)) == 1
        os.kill(pid, signal.SIGKILL)
        k.proc.wait(10)
        time.sleep(1.0)                                   # its children follow it (PR_SET_PDEATHSIG)
        assert len(folders(pid)) == 1, "SIGKILL leaves it behind"
    finally:
        k.stop()
        k._out.close()
    with Kiosk("--virtual-port", "folder-test-2", "--source", NO_CAMERA, "--duration", "3") as k2:
        assert k2.proc.wait(60) == 0
    assert folders(pid) == []
