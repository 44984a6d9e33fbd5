"""The shipped models: they load on onnxruntime without torch, match their manifest, and behave."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from installation import manifest as M
from installation.errors import UserError

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "exported_models"


def test_runtime_loads_and_runs_without_torch():
    """A fresh interpreter in which `import torch` fails loads all three models and makes music."""
    code = f"""
import sys
sys.modules['torch'] = None          # any import of torch now raises ImportError
import numpy as np
from installation import manifest, events
from installation.encoder import ImageEncoder
from installation.decoder import MusicDecoder, Performer
m = manifest.load({str(MODELS)!r})
enc, dec = ImageEncoder(m), MusicDecoder(m)
img = (np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8)
e = enc.embed([img])
c = dec.condition(e)
p = Performer(dec, seed=1)
p.prime(c.h0[:, 0])
ev = [p.next(c.cond[0]) for _ in range(200)]
assert all(0 <= x < events.VOCAB_SIZE for x in ev)
print(e.shape[1], len(events.events_to_notes(ev)), 'torch' in sys.modules and sys.modules['torch'] is not None)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    dim, n_notes, torch_loaded = out.stdout.split()
    manifest = json.loads((MODELS / "manifest.json").read_text())
    assert int(dim) == manifest["models"]["encoder"]["outputs"]["embedding"][1]
    assert int(n_notes) > 0                      # 200 sampled events contain notes
    assert torch_loaded == "False"


def test_manifest_matches_files_and_runtime():
    m = M.load(MODELS)                           # verifies sha256 of every file
    for name in M.MODELS:
        entry = m.io(name)
        assert entry["sha256"] == M.file_sha256(m.path(name))
        assert entry["opset"] >= 13
    assert m.data["vocabulary"]["size"] == 388
    assert m.data["git_commit"] and m.data["git_commit"] != "unknown"
    parity = m.data["metrics"]["onnx_torch_parity"]
    assert parity["steps"] >= 200 and parity["max_abs_logit_err"] <= 1e-4 and parity["same_sampled_sequence"]


def test_onnx_io_names_and_dynamic_batch():
    import onnxruntime as ort

    m = M.load(MODELS)
    for name in M.MODELS:
        sess = ort.InferenceSession(str(m.path(name)), providers=["CPUExecutionProvider"])
        assert [i.name for i in sess.get_inputs()] == list(m.io(name)["inputs"])
        assert [o.name for o in sess.get_outputs()] == list(m.io(name)["outputs"])
    from installation.decoder import MusicDecoder
    dec = MusicDecoder(m)
    for batch in (1, 5):
        c = dec.condition(np.zeros((batch, m.io("encoder")["outputs"]["embedding"][1]), np.float32))
        logits, h = dec.step(np.full(batch, 300, np.int64), c.h0, c.cond)
        assert logits.shape == (batch, 388) and h.shape == c.h0.shape


def _copy_models(tmp_path) -> Path:
    dst = tmp_path / "models"
    shutil.copytree(MODELS, dst)
    return dst


def test_altered_model_is_refused_with_one_line(tmp_path):
    d = _copy_models(tmp_path)
    f = d / "decoder_step.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"decoder_step.onnx: sha256 does not match") as e:
        M.load(d)
    assert "\n" not in str(e.value)


def test_missing_model_and_manifest(tmp_path):
    d = _copy_models(tmp_path)
    (d / "encoder.onnx").unlink()
    with pytest.raises(UserError, match="model file missing: .*encoder.onnx"):
        M.load(d)
    with pytest.raises(UserError, match="models missing: .*manifest.json not found"):
        M.load(tmp_path / "nowhere")


def test_vocabulary_mismatch_is_refused(tmp_path):
    d = _copy_models(tmp_path)
    man = json.loads((d / "manifest.json").read_text())
    man["vocabulary"]["size"] = 413
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(UserError, match="vocabulary differs"):
        M.load(d)


def test_happy_and_sad_images_get_different_music(shared_data):
    """Held-out Q1 (happy/excited) vs Q3 (sad) Emotion6 images through the shipped runtime path:
    the conditioner hears more positive valence in the happy images, and their music is louder
    (the model card's significant Q1 - Q3 difference; note density differs only within its noise,
    see MODEL_CARD.md and EVALUATION.md)."""
    from installation import analysis
    from installation import events as E
    from installation.decoder import MusicDecoder
    from installation.encoder import ImageEncoder
    from installation.preprocess import load_rgb
    from installation.render import RenderSettings, generate
    from installation.training.data import load_emotion6     # pure numpy: no torch

    imgs = load_emotion6(shared_data)
    m = M.load(MODELS)
    enc, dec = ImageEncoder(m, threads=2), MusicDecoder(m, threads=2)
    positive, loudness = {}, {}
    for q in (0, 2):
        idx = np.flatnonzero(imgs.test & (imgs.quadrant == q))[:16]
        emb = enc.embed([load_rgb(shared_data / imgs.rel[i]) for i in idx])
        p = dec.condition(emb).quadrant_probs
        positive[q] = float((p[:, 0] + p[:, 3]).mean())
        seqs = generate(dec, emb, [imgs.rel[i] for i in idx], RenderSettings(seconds=20, seed=0))
        loudness[q] = float(np.mean([analysis.describe(E.events_to_notes(s), seconds=20).mean_velocity for s in seqs]))
    assert positive[0] > positive[2], positive
    assert loudness[0] > loudness[2] + 3, loudness
