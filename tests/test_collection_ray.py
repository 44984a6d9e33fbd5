"""render on Ray, for real: a local Ray (--workers 2) and a 2-node cluster started with `ray start --head` and a
second `ray start --address` on this machine (--ray-address). A lost worker and a Ctrl-C lose no work: the
music is the same wherever and however often it is made, and the catalogue says which node made what. Each `ray start --block` is our own child: stopping it stops its node."""
import os
import secrets
import signal
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from collection_parts import artworks_folder, journal_lines, journal_records
from collection_parts import catalogue_rows as rows
from collection_parts import render as cli
from kiosk_parts import free_port

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements-collection.txt)")

STORE = str(80 * 1024 * 1024)        # each node's object store: small, the machine is shared


SETTINGS = ("--seconds", "10", "--seed", "11", "--batch", "1")     # six batches: time to lose a worker


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return artworks_folder(tmp_path_factory.mktemp("collection"), variants=3)     # 18: time to stop it half-way


@pytest.fixture(scope="module")
def in_process(images, tmp_path_factory):
    """The same folder rendered in this process, without Ray: the reference."""
    out = tmp_path_factory.mktemp("one")
    r = cli(images, "--out", out, *SETTINGS)
    assert r.returncode == 0, r.stderr
    return out


def same_music(a, b):
    for row in rows(a):
        assert (b / row["midi"]).read_bytes() == (a / row["midi"]).read_bytes(), row["midi"]


class RayNodes:
    """A head node and a second node, as `ray start --block` children with a private token and temp dir."""

    def __init__(self):
        self.temp = tempfile.mkdtemp(prefix="ray-t-")
        self.env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
                        RAY_USAGE_STATS_ENABLED="0")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs = []
        self.logs = []

    def _start(self, *args):
        log = tempfile.TemporaryFile()
        self.logs.append(log)
        cmd = [shutil.which("ray") or "ray", "start", "--block", "--num-cpus", "1", "--object-store-memory", STORE,
               "--node-ip-address", "127.0.0.1", "--disable-usage-stats", *args]
        self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def start(self, nodes=2):
        self._start("--head", "--port", str(self.port), "--include-dashboard", "false", "--temp-dir", self.temp,
                    "--dashboard-agent-listen-port", str(free_port()))
        self._wait(1)
        if nodes < 2:
            return
        self._start("--address", self.address, "--dashboard-agent-listen-port", str(free_port()))
        self._wait(2)

    def node_ids(self):
        code = ("import json, ray; ray.init(address=%r, log_to_driver=False); "
                "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))" % self.address)
        r = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=120)
        return __import__("json").loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else []

    def _wait(self, n, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                break
            if len(self.node_ids()) >= n:
                return
            time.sleep(1)
        self.stop()
        text = b"".join((l.seek(0), l.read())[1] for l in self.logs).decode(errors="replace")
        raise AssertionError(f"the Ray cluster did not reach {n} node(s):\n{text[-3000:]}")

    def stop(self):
        for p in reversed(self.procs):              # `ray start --block` stops its own node on SIGTERM
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait()
        for log in self.logs:
            log.close()
        shutil.rmtree(self.temp, ignore_errors=True)


def test_a_two_node_cluster_renders_a_folder_and_says_which_node_did_what(images, in_process, tmp_path):
    nodes = RayNodes()
    nodes.start()
    try:
        ids = set(nodes.node_ids())
        assert len(ids) == 2
        job = (images, "--out", tmp_path, *SETTINGS, "--ray-address", nodes.address)
        first = cli(*job, env=nodes.env, wait=False)              # Ctrl-C once the first image is in
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and first.poll() is None and journal_lines(tmp_path) < 1:
            time.sleep(0.05)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
        done = journal_lines(tmp_path)
        n = len(list(images.glob("*.jpg")))
        assert first.returncode == 130 and "Traceback" not in err and 1 <= done < n, err
        r = cli(*job, env=nodes.env)
        assert r.returncode == 0 and f"{done} done before" in r.stderr, r.stderr
        got = rows(tmp_path)
        assert [g["status"] for g in got] == ["ok"] * n
        assert {g["node"] for g in journal_records(tmp_path)} == ids   # both nodes worked (the journal says, not the catalogue)
        same_music(in_process, tmp_path)
    finally:
        nodes.stop()


def test_a_cluster_that_is_not_there_is_one_line(images, tmp_path):
    r = cli(images, "--out", tmp_path, "--ray-address", f"127.0.0.1:{free_port()}", timeout=180)
    assert r.returncode == 2, r.stderr
    err = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(err) == 1 and "--ray-address" in err[0] and "Traceback" not in r.stderr, r.stderr


def ray_workers_of(pid):
    """Pids of the RenderActor processes descended from process ``pid``."""
    parent, found = {}, []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    for p in parent:
        q = parent.get(p)
        while q and q != pid:
            q = parent.get(q)
        if q == pid:
            try:
                if b"RenderActor" in (Path("/proc") / str(p) / "cmdline").read_bytes():
                    found.append(p)
            except OSError:
                pass
    return found


def test_two_local_workers_lose_one_and_still_make_the_same_music(images, in_process, tmp_path):
    out = tmp_path / "out"
    proc = cli(images, "--out", out, *SETTINGS, "--workers", "2", wait=False)
    killed = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and killed is None:
        if journal_lines(out) >= 1:
            workers = ray_workers_of(proc.pid)
            if workers:
                killed = workers[0]
                os.kill(killed, 9)                    # a worker lost in the middle of the job
        time.sleep(0.05)
    _, err = proc.communicate(timeout=240)
    assert killed, err
    # one worker lost once: Ray restarts the actor and retries its batch (max_restarts=1, max_task_retries=1),
    # so this same run finishes every image; a second run must not be needed
    assert proc.returncode == 0, err
    got = rows(out)
    assert [g["status"] for g in got] == ["ok"] * len(list(images.glob("*.jpg")))
    made = [r for r in journal_records(out) if r["status"] == "ok"]
    assert len({r["pid"] for r in made}) >= 2                    # more than one worker process did the work
    assert all(len(r["node"]) == 56 for r in made)               # a Ray node id, not "local"
    same_music(in_process, out)                                  # wherever and however often it ran


def test_a_cluster_asking_for_a_token_says_so_in_one_line(images, tmp_path):
    nodes = RayNodes()
    nodes.start(nodes=1)
    try:
        home = tmp_path / "home"                                 # no ~/.ray/auth_token to fall back on
        home.mkdir()
        bare = {k: v for k, v in nodes.env.items() if not k.startswith("RAY_AUTH")}
        for env, needle in ((dict(bare, HOME=str(home)), "export RAY_AUTH_MODE=token"),
                            (dict(bare, HOME=str(home), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 64),
                             "refused this auth token")):
            r = cli(images, "--out", tmp_path / "out", "--ray-address", nodes.address, env=env, timeout=120)
            assert r.returncode == 2, r.stderr
            err = [l for l in r.stderr.splitlines() if l.startswith("error:")]
            assert len(err) == 1 and needle in err[0] and "ray start --head" not in err[0], r.stderr
            assert "InvalidAuthToken" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    finally:
        nodes.stop()


def test_a_killed_driver_takes_its_local_ray_with_it(images, tmp_path):
    out = tmp_path / "out"
    proc = cli(images, "--out", out, *SETTINGS, "--workers", "2", wait=False)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not ray_workers_of(proc.pid):
        time.sleep(0.1)
    while time.monotonic() < deadline and proc.poll() is None and journal_lines(out) < 1:
        time.sleep(0.1)
    helpers = descendants(proc.pid)
    assert proc.poll() is None and len(helpers) >= 4, helpers    # GCS, raylet, agents, workers
    os.kill(proc.pid, signal.SIGKILL)                            # no signal handler runs
    proc.wait()
    deadline = time.monotonic() + 10                             # Ray's agents alone would wait 60 s
    while time.monotonic() < deadline and alive(helpers):
        time.sleep(0.2)
    assert not alive(helpers), alive(helpers)


def descendants(pid):
    """{pid: start time} of every process below ``pid``."""
    parent, start = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
                parent[int(d.name)], start[int(d.name)] = int(f[1]), f[19]
            except (OSError, IndexError, ValueError):
                pass
    found = {}
    for p in parent:
        q = parent.get(p)
        while q and q != pid:
            q = parent.get(q)
        if q == pid:
            found[p] = start[p]
    return found


def alive(helpers):
    """Those of ``helpers`` still running as the same process (not a zombie, not a reused pid)."""
    left = {}
    for p, start in helpers.items():
        try:
            f = (Path("/proc") / str(p) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if f[19] == start and f[0] != "Z":
            left[p] = (Path("/proc") / str(p) / "cmdline").read_bytes()[:60]
    return left
