"""Opening an ONNX Runtime session: provider choice with a clear, logged fallback.

CUDA or TensorRT are used when onnxruntime offers them and a session really
starts on them; otherwise the CPU provider is used and the log says why.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_said: set[str] = set()          # what was logged already: a start says it once, not once per model


def _once(key: str, msg: str, *args) -> None:
    """Log ``msg`` at INFO the first time ``key`` comes up in this process, at DEBUG after that."""
    log.log(logging.DEBUG if key in _said else logging.INFO, msg, *args)
    _said.add(key)


def open_session(path: Path, *, threads: int | None = None, providers: list[str] | None = None, what: str = "model"):
    """-> (onnxruntime.InferenceSession, provider name actually used)."""
    import onnxruntime as ort

    if hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()               # nothing leaves the machine (docs/KIOSK.md, security)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3                      # provider load failures are reported by us, once
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    ort.set_default_logger_severity(3)               # no C++ noise when a GPU provider fails to load
    available = ort.get_available_providers()
    wanted = [p for p in (providers or PREFERENCE) if p in available]
    gpu = [p for p in wanted if p != "CPUExecutionProvider"]
    if gpu and sys.platform.startswith("linux") and not os.path.exists("/dev/nvidia0"):
        _once("no-gpu", "models: onnxruntime offers %s but no NVIDIA GPU is present (/dev/nvidia0 absent); "
                        "they run on the CPU", ", ".join(gpu))
        wanted = ["CPUExecutionProvider"]
    for p in wanted:
        if p == "CPUExecutionProvider":
            break
        try:
            sess = ort.InferenceSession(str(path), opts, providers=[p, "CPUExecutionProvider"])
        except Exception as exc:                     # missing CUDA/TensorRT libraries, no device
            _once(p, "%s: %s not usable (%s); trying the next provider", what, p, str(exc).splitlines()[0][:120])
            continue
        if sess.get_providers()[0] == p:
            log.info("%s: running on %s", what, p)
            return sess, p
        _once(p, "%s: %s offered but not usable here (no GPU or libraries); trying the next provider", what, p)
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    log.debug("%s: running on CPUExecutionProvider (%s threads)", what, threads or "default")
    return sess, "CPUExecutionProvider"
