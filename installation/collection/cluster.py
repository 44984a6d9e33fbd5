"""Ray: the actors that each hold a ``Renderer`` (its models loaded once), and the dispatch of batches to them.

The only module that imports Ray. Local by default (``ray.init`` with ``num_cpus = workers`` and a
small object store); with ``--ray-address`` the same job goes to an existing cluster, one actor per
worker, each asking for one CPU, placed by Ray wherever one is free. Each actor has one batch at a
time (batches are sized so the work divides evenly); the driver writes every result as it comes.
A lost actor is restarted by Ray and its batch retried once; if that fails too, its images are
reported as failed, not recorded as done, and the next run renders them.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from installation.collection.job import MAX_BATCH_BYTES, Item, Settings
from installation.collection.renderer import Outcome, Renderer
from installation.errors import UserError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
OBJECT_STORE_BYTES = 64 << 20       # a local Ray's shared memory: this, plus a batch's worth per worker


class RenderActor:
    """A Ray actor: one worker process with its own models (made remote in ``run_batches``)."""

    def __init__(self, settings: Settings):
        import ray
        ctx = ray.get_runtime_context()
        self.renderer = Renderer(settings, where={"node": ctx.get_node_id()})

    def render(self, items: list[Item]) -> list[Outcome]:
        return self.renderer.render(items)


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--workers above 1 and --ray-address need Ray: pip install -r requirements-collection.txt "
                        "(or use --workers 1)") from None
    return ray


def start(workers: int | None, address: str | None) -> int:
    """Start a local Ray, or join the cluster at ``address``; returns how many actors to make."""
    ray = import_ray()
    if address:
        _reachable(address)
        _authorised(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")      # nothing leaves the machine
    job = ray.job_config.JobConfig(code_search_path=[str(REPO)])
    common = dict(job_config=job, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        if address:
            ray.init(address=address, **common)
            cpus = int(ray.cluster_resources().get("CPU", 0))
            if cpus < 1:
                raise UserError(f"--ray-address {address}: the cluster has no CPU to run on")
            return workers or cpus
        ray.init(num_cpus=workers, object_store_memory=OBJECT_STORE_BYTES + workers * MAX_BATCH_BYTES, **common)
        reaper.start()
        return workers
    except ray.exceptions.AuthenticationError as exc:
        raise UserError(_token_advice(address, exc)) from None
    except (ConnectionError, RuntimeError, ValueError) as exc:
        if address:
            raise UserError(f"--ray-address {address}: a Ray cluster answers there but could not be joined "
                            f"({str(exc).splitlines()[0]}); is it the same Ray version ({ray.__version__})?") from None
        raise


def _authorised(address: str) -> None:
    """Ask the cluster's GCS once, quietly, whether it takes us: without Ray's token, ray.init would print 20
    raw InvalidAuthToken lines and give up after 21 s with the wrong advice."""
    if address.startswith("ray://"):
        return                                   # Ray Client: its own port and protocol
    import ray
    try:
        from ray._raylet import GcsClient
    except ImportError:                          # another Ray: ray.init says it, less kindly
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)            # Ray's C++ client logs each refusal to stderr
            try:
                GcsClient(address=address, cluster_id=None)
            finally:
                os.dup2(saved, 2)
    except ray.exceptions.AuthenticationError as exc:
        raise UserError(_token_advice(address, exc)) from None
    except Exception:                            # noqa: BLE001 - ray.init will say what else is wrong
        pass
    finally:
        os.close(saved)


def _token_advice(address: str | None, exc) -> str:
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return (f"--ray-address {address}: the cluster asks for Ray's auth token and none is given here: "
                "export RAY_AUTH_MODE=token, with the head node's token in RAY_AUTH_TOKEN or ~/.ray/auth_token")
    return (f"--ray-address {address}: the cluster refused this auth token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH "
            "or ~/.ray/auth_token): give the head node's own (its ~/.ray/auth_token)")


def _reachable(address: str, timeout_s: float = 10.0) -> None:
    """A quick TCP look at the head's port: Ray itself would retry an absent cluster for minutes."""
    import socket

    host, _, port = address.rpartition(":")
    host = host.removeprefix("ray://").strip("[]")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address {address}: give the head node's HOST:PORT (as `ray start --head` printed it)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UserError(f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
                        "start one with `ray start --head`, or check the address") from None


def run_batches(settings: Settings, batches: Iterator[list[Item]], actors: int,
                take: Callable[[list[Outcome]], None]) -> None:
    """Render every batch on ``actors`` Ray actors, handing each result to ``take`` as it comes."""
    import ray

    remote = ray.remote(num_cpus=1, max_restarts=1, max_task_retries=1)(RenderActor)
    pool = [remote.remote(settings) for _ in range(actors)]
    running: dict = {}                              # ObjectRef -> (actor, batch)

    def submit(actor) -> bool:
        batch = next(batches, None)
        if batch is None:
            return False
        running[actor.render.remote(batch)] = (actor, batch)
        return True

    for a in pool:
        submit(a)
    reaper.watch()                                 # the actors' processes, now started
    while running:                                 # on Ctrl-C, stop() ends the actors with the job
        ready, _ = ray.wait(list(running), num_returns=1)
        actor, batch = running.pop(ready[0])
        try:
            outcomes = ray.get(ready[0])
        except ray.exceptions.RayActorError as exc:
            _check_start(exc)
            take(_lost(batch, f"worker lost: {last_line(exc)}"))
            continue                               # that actor is gone; the others carry on
        except ray.exceptions.RayError as exc:
            _check_start(exc)
            outcomes = _lost(batch, f"worker failed: {last_line(exc)}")
        take(outcomes)
        submit(actor)
        reaper.watch()                             # a restarted actor is a new process
    for batch in batches:                          # every actor is gone: the rest waits for the next run
        take(_lost(batch, "no worker left"))




def _lost(batch: list[Item], error: str) -> list[Outcome]:
    return [Outcome(it.index, it.name, error=error) for it in batch]


def _check_start(exc) -> None:
    """A worker that could not even load its models (e.g. other models on a node): one line, stop."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, UserError):
        raise cause
    text = str(exc)
    if "UserError" in text:
        raise UserError(next((l.split("UserError: ", 1)[1] for l in text.splitlines() if "UserError: " in l),
                             last_line(exc)))


def last_line(exc) -> str:
    """A Ray error's own message: the last non-empty line of its text (the traceback comes first)."""
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    return lines[-1] if lines else type(exc).__name__


def stop() -> None:
    import ray
    ray.shutdown()
    reaper.stop()


class Reaper:
    """A small process that stops a local Ray's helpers when the driver dies, even by SIGKILL: Ray's own
    agents outlive their raylet by a minute (they report its death to a GCS that is gone, 60 s timeout).
    The driver tells it the pids (and start times) of its descendants; when the pipe closes, the driver has
    ended one way or another, and the reaper kills those still running as the same processes."""

    CODE = ("import os, sys\n"
            "pids = dict(line.split() for line in sys.stdin)\n"
            "for pid, start in pids.items():\n"
            "    try:\n"
            "        if open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[19] == start:\n"
            "            os.kill(int(pid), 9)\n"
            "    except (OSError, IndexError):\n"
            "        pass\n")

    def __init__(self):
        self.proc = None
        self.told: set[str] = set()

    def start(self) -> None:
        import subprocess
        import sys
        if not Path("/proc/self/stat").exists():
            return
        self.proc = subprocess.Popen([sys.executable, "-c", self.CODE], stdin=subprocess.PIPE,
                                     start_new_session=True)       # a Ctrl-C to the terminal leaves it be
        self.watch()

    def watch(self) -> None:
        """Tell the reaper about descendants it does not know yet (cheap: one pass over /proc)."""
        if self.proc is None:
            return
        lines = [f"{pid} {start}" for pid, start in _descendants(os.getpid()) if pid != self.proc.pid]
        new = [l for l in lines if l not in self.told]
        if new:
            self.told.update(new)
            try:
                self.proc.stdin.write("".join(l + "\n" for l in new).encode())
                self.proc.stdin.flush()
            except OSError:
                pass

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()
            self.proc = None


def _descendants(root: int) -> list[tuple[int, str]]:
    """(pid, start time) of every process below ``root``, from /proc."""
    parent, start = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
                parent[int(d.name)], start[int(d.name)] = int(f[1]), f[19]
            except (OSError, IndexError, ValueError):
                pass
    out = []
    for pid in parent:
        q = parent.get(pid)
        while q and q != root:
            q = parent.get(q)
        if q == root:
            out.append((pid, start[pid]))
    return out


reaper = Reaper()
