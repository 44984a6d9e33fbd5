"""Notice at once when the JACK server goes away: a tiny libjack client whose shutdown callback sets an Event.

rtmidi gives no sign when the JACK server dies: its clients keep answering from stale
shared memory (the old port list, sends that "succeed"), and after the server returns
they stay dead. So each JACK output keeps one of these beside it:

    watch = JackServerWatch.open("image-to-music-watch")   # None if libjack or the server is not there
    ...
    if watch.lost.is_set(): ...                             # the server shut down (or was killed)
    watch.close()

libjack calls the shutdown callback on its own thread within milliseconds of the
server's socket closing; the callback only sets the Event. Uses ctypes, so no extra
package: libjack is already loaded by rtmidi's JACK backend.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time

log = logging.getLogger(__name__)

JACK_NO_START_SERVER = 0x01
CLOSE_SPACING_S = 0.025     # JACK clients of one process are closed at least this far apart (see close_spaced)
_close_lock = threading.Lock()
_last_close = 0.0
_SHUTDOWN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_lib = None


def _libjack():
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("jack") or "libjack.so.0"
        lib = ctypes.CDLL(name)
        lib.jack_client_open.restype = ctypes.c_void_p
        lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.jack_on_shutdown.restype = None
        lib.jack_on_shutdown.argtypes = [ctypes.c_void_p, _SHUTDOWN, ctypes.c_void_p]
        lib.jack_client_close.restype = ctypes.c_int
        lib.jack_client_close.argtypes = [ctypes.c_void_p]
        _lib = lib
    return _lib


class JackServerWatch:
    """One libjack client that only listens for the server's shutdown. ``lost`` is set when it comes."""

    def __init__(self, lib, client: int):
        self._lib, self._client = lib, client
        self.lost = threading.Event()
        self._callback = _SHUTDOWN(self._on_shutdown)       # kept referenced: libjack holds the pointer

    @classmethod
    def open(cls, name: str) -> "JackServerWatch | None":
        """A watch on the server JACK_DEFAULT_SERVER names; None if libjack is missing or no server answers."""
        try:
            lib = _libjack()
        except OSError:
            return None
        status = ctypes.c_int(0)
        client = lib.jack_client_open(name.encode()[:60], JACK_NO_START_SERVER, ctypes.byref(status))
        if not client:
            return None
        watch = cls(lib, client)
        lib.jack_on_shutdown(client, watch._callback, None)     # called without activation too: no graph change
        return watch

    def _on_shutdown(self, _arg) -> None:
        self.lost.set()

    def close(self) -> None:
        """Close the client, also after the server died: libjack must forget it before any new client is made
        (else the next jack_client_open "cleans up" this one while rtmidi holds the GIL, and waits forever on
        this client's thread). ctypes releases the GIL during the call, so that thread can end."""
        client, self._client = self._client, None
        if client:
            try:
                close_spaced(lambda: self._lib.jack_client_close(client))
            except Exception as exc:       # noqa: BLE001
                log.debug("closing the JACK watch client: %s", exc)


def close_spaced(close) -> None:
    """Call ``close()`` (which closes one MIDI client: rtmidi's close_port and delete) at least CLOSE_SPACING_S
    after the previous one in this process, one at a time.

    JACK clients closed back to back crash python-rtmidi: a loop that opened four JACK inputs and closed them
    at once died with a segmentation fault within 136 and 292 closes (two runs), and once in the test suite
    (tests/test_midi_io.py); with 20 or 50 ms between closes, 650 to 1,180 closes went through. Closing
    happens at shutdown and when a port is lost, never on the hot path, so the wait costs nothing that sounds."""
    global _last_close
    with _close_lock:
        wait = _last_close + CLOSE_SPACING_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            close()
        finally:
            _last_close = time.monotonic()
