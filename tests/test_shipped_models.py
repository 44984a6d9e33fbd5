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
    """A fresh interpreter in which `import torch` fails loads every model and makes music from a picture."""
    code = f"""
import sys
sys.modules['torch'] = None          # any import of torch now raises ImportError
import numpy as np
from installation import manifest
from installation.music import events
from installation.mood import emotion_map
from installation.mood.conductor import Conductor, Steering
from installation.music.decoder import open_decoder, Performer
from installation.image.emotion import ImageEmotion
from installation.image.encoder import ImageEncoder
m = manifest.load({str(MODELS)!r})
enc, feel, dec = ImageEncoder(m), ImageEmotion(m), open_decoder(m)
img = (np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8)
e, va = feel.read(enc, [img])
va = va[0]
d = Conductor(Steering(), emotion_map.for_models(m.folder), m.key_templates, seed=0).direct(0.0, va, new_scene=True)
p = Performer(dec, seed=1)
p.prime(dec.initial(d.controls[None]))
ev = [p.next(d.controls) for _ in range(200)]
assert all(0 <= x < events.VOCAB_SIZE for x in ev)
assert np.all(np.abs(va) <= 1)
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
    assert m.data["vocabulary"]["size"] == 390
    assert m.data["git_commit"] and m.data["git_commit"] != "unknown"


def test_the_shipped_gru_decoder_matches_torch_recomputed_on_real_pictures():
    """ONNX against torch, recomputed here (not read back from the manifest): a torch MusicModel is built from
    the weights inside decoder_init.onnx and decoder_step.onnx, and the export's parity check runs again, on
    the controls the conductor asks for the bundled artworks and another seed than the export's: teacher-forced
    logits within 1e-4 for 200 events, and the same events sampled."""
    torch = pytest.importorskip("torch", reason="training dependencies (requirements-train.txt) not installed")
    onnx = pytest.importorskip("onnx", reason="training dependencies (requirements-train.txt) not installed")
    from onnx import numpy_helper

    from installation.image.capture import bundled_artworks, read_image
    from installation.image.emotion import ImageEmotion
    from installation.image.encoder import ImageEncoder
    from installation.mood import emotion_map
    from installation.mood.conductor import Conductor, Steering
    from installation.training.export import parity
    from installation.training.model import ModelConfig, MusicModel

    m = M.load(MODELS)
    weights = {}
    for name in ("decoder_init", "decoder_step"):
        for init in onnx.load(str(m.path(name))).graph.initializer:
            weights[init.name.removeprefix("model.")] = torch.from_numpy(numpy_helper.to_array(init).copy())
    model = MusicModel(ModelConfig(**m.data["model_config"]))
    model.load_state_dict(weights)                                # strict: every weight is in the graphs
    frames = [read_image(p) for p in sorted(bundled_artworks().glob("*.jpg"))[:4]]
    _, va = ImageEmotion(m).read(ImageEncoder(m), frames)
    conductor = Conductor(Steering(), emotion_map.for_models(m.folder), m.key_templates, seed=0)
    controls = np.stack([conductor.direct(float(i), v, new_scene=True).controls for i, v in enumerate(va)])
    got = parity(model, Path(m.folder), controls, steps=200, seed=11)
    assert got["max_abs_logit_err"] <= 1e-4 and got["same_sampled_sequence"], got


def test_onnx_io_names_and_dynamic_batch():
    import onnxruntime as ort

    m = M.load(MODELS)
    for name in M.MODELS:
        sess = ort.InferenceSession(str(m.path(name)), providers=["CPUExecutionProvider"])
        assert [i.name for i in sess.get_inputs()] == list(m.io(name)["inputs"])
        assert [o.name for o in sess.get_outputs()] == list(m.io(name)["outputs"])
    from installation.mood import controls as C
    from installation.music.decoder import open_decoder
    dec = open_decoder(m)
    for batch in (1, 5):
        ctrl = np.tile(C.unset(), (batch, 1))
        h0 = dec.initial(ctrl)
        logits, h = dec.step(np.full(batch, 300, np.int64), h0, ctrl)
        assert logits.shape == (batch, 390) and h.shape == h0.shape


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


def test_an_encoder_exported_with_other_preprocessing_is_refused_where_it_opens(tmp_path):
    from installation.image.encoder import ImageEncoder

    d = _copy_models(tmp_path)
    man = json.loads((d / "manifest.json").read_text())
    ImageEncoder(M.load(d, verify=False))                       # as shipped it opens
    man["preprocessing"]["crop"] = 256
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(UserError, match="other preprocessing") as e:
        ImageEncoder(M.load(d, verify=False))
    assert "\n" not in str(e.value)


def _key_estimates(dec, templates, keys, seconds=30.0, seed=0):
    from installation.music import analysis
    from installation.mood import controls as C
    from installation.music import events as E
    from installation.music.render import RenderSettings, generate

    ctrl = np.stack([C.encode(C.Targets(key=k), templates) for k in keys])
    seqs = generate(dec, ctrl, [f"{k}#{i}" for i, k in enumerate(keys)], RenderSettings(seconds=seconds, seed=seed))
    return [analysis.estimate_key(E.events_to_notes(s)) for s in seqs]


def test_music_asked_for_major_and_for_minor_differ_in_mode():
    """The shipped decoder, seed 0: 12 pieces asked for a major key and 12 for a minor key (all tonics);
    a Krumhansl-Schmuckler key estimator hears the asked mode in most of each."""
    from installation.mood import controls as C
    from installation.music.decoder import open_decoder

    m = M.load(MODELS)
    dec = open_decoder(m, threads=2)
    major = _key_estimates(dec, m.key_templates, [C.Key(t, False) for t in range(12)])
    minor = _key_estimates(dec, m.key_templates, [C.Key(t, True) for t in range(12)])
    heard_major = sum(mode == "major" for _, mode, _ in major)
    heard_minor = sum(mode == "minor" for _, mode, _ in minor)
    assert heard_major >= 9 and heard_minor >= 9, (major, minor)


def test_an_asked_tonic_is_heard():
    from installation.mood import controls as C
    from installation.music.decoder import open_decoder

    m = M.load(MODELS)
    dec = open_decoder(m, threads=2)
    keys = [C.Key(t, t % 2 == 1) for t in range(12)]
    est = _key_estimates(dec, m.key_templates, keys, seed=1)
    assert sum(t == k.tonic for (t, _, _), k in zip(est, keys)) >= 7, est


def test_happy_and_sad_images_get_different_music(shared_data):
    """Held-out Q1 (happy/excited) vs Q3 (sad) Emotion6 images through the shipped runtime path (encoder,
    image emotion, conductor, decoder): the image side reads more positive valence and higher arousal in the
    happy images, and their music is louder (by at least half the asked difference) and more often in a major key."""
    from installation.music import analysis
    from installation.mood import emotion_map
    from installation.music import events as E
    from installation.mood.conductor import Steering
    from installation.music.decoder import open_decoder
    from installation.image.emotion import ImageEmotion
    from installation.image.encoder import ImageEncoder
    from installation.image.preprocess import load_rgb
    from installation.music.render import RenderSettings, directions, generate
    from installation.training.data import load_emotion6     # pure numpy: no torch

    imgs = load_emotion6(shared_data)
    m = M.load(MODELS)
    enc, feel, dec = ImageEncoder(m, threads=2), ImageEmotion(m, threads=2), open_decoder(m, threads=2)
    va, loud, major, asked = {}, {}, {}, {}
    for q in (0, 2):
        idx = np.flatnonzero(imgs.test & (imgs.quadrant == q))[:16]
        frames = [load_rgb(shared_data / imgs.rel[i]) for i in idx]
        v = feel.read(enc, frames)[1]
        va[q] = v.mean(0)
        keys = [imgs.rel[i] for i in idx]
        ds = directions(v, keys, Steering(), emotion_map.for_models(m.folder), m.key_templates, 0)
        asked[q] = float(np.mean([d.targets.velocity for d in ds]))
        seqs = generate(dec, np.stack([d.controls for d in ds]), keys, RenderSettings(seconds=20, seed=0))
        stats = [analysis.describe(E.events_to_notes(s), seconds=20) for s in seqs]
        loud[q] = float(np.mean([s.mean_velocity for s in stats]))
        major[q] = float(np.mean([s.major for s in stats]))
    assert va[0][0] > va[2][0] and va[0][1] > va[2][1], va
    # the happy images are asked louder music (through their arousal), and their music is louder by at least
    # half of what is asked (the asked gap is small: the image side reads little arousal)
    assert asked[0] > asked[2] + 1, asked
    assert loud[0] - loud[2] > 0.5 * (asked[0] - asked[2]), (loud, asked)
    assert major[0] > major[2], major


def test_shipped_encoder_keeps_the_imagenet_path_and_its_tuned_branch_is_listed():
    """The encoder on real pictures (the bundled artworks): its embedding and features_mid are those of the
    untuned ImageNet network in torch (scene tracking reads the embedding, with thresholds set on it), so the
    emotion-tuned branch only adds an output; the manifest says how that branch was trained and checked."""
    pytest.importorskip("torch", reason="training dependencies (requirements-train.txt) not installed")
    import torch

    from installation.image.capture import bundled_artworks, read_image
    from installation.image.encoder import ImageEncoder
    from installation.image.preprocess import prepare
    from installation.training.backbones import AllOutputs, efficientnet_lite0

    m = M.load(MODELS)
    entry = m.io("encoder")
    frames = [read_image(p) for p in sorted(bundled_artworks().glob("*.jpg"))[:3]]
    out = ImageEncoder(m).encode(frames)
    net, _ = efficientnet_lite0()
    with torch.no_grad():
        emb, mid = AllOutputs(net.eval())(torch.from_numpy(np.stack([prepare(f) for f in frames])))
    assert np.abs(out["embedding"] - emb.numpy()).max() < 1e-3
    assert np.abs(out["features_mid"] - mid.numpy()).max() < 1e-3
    if "tuned_va" in entry["outputs"]:
        assert out["tuned_va"].shape == (3, 2) and np.isfinite(out["tuned_va"]).all()
        assert entry["parity_max_abs_err"] <= 1e-3
        tb = entry["tuned_branch"]
        assert 11 <= tb["start"] <= 15 and "emotion_tune" in tb["command"] and tb["fit_images"] > 1000
