"""The training pipeline on a small slice of the real data (a few steps), and the ResNet-18 option.

CI checks the pipeline here; it does not retrain the shipped models.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training dependencies (requirements-train.txt) not installed")

REPO = Path(__file__).resolve().parents[1]


def test_pipeline_on_a_small_slice(shared_data, tmp_path):
    out, cache, run = tmp_path / "models", tmp_path / "cache", tmp_path / "run"
    common = ["--data", str(shared_data), "--out", str(out), "--cache", str(cache), "--run", str(run),
              "--limit-files", "6", "--limit-images", "48", "--hidden", "32", "--batch", "4", "--seq-len", "32",
              "--pretrain-steps", "3", "--finetune-steps", "3", "--eval-every", "3", "--threads", "1",
              "--report-pieces", "2"]
    r = subprocess.run([sys.executable, "-m", "installation.training", "all", *common], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    man = json.loads((out / "manifest.json").read_text())
    assert set(man["models"]) == {"encoder", "image_emotion", "decoder_init", "decoder_step"}
    assert man["decoders"]["gru"]["guidance"]["weight"] in (0.0, 1.0, 2.0, 3.0)
    assert len(man["controls"]["key_templates"]["major"]) == 12
    for split in ("val", "test"):
        r = man["metrics"]["nll_per_event_nats"].get(split)
        if r:                                           # NLL reported with the controls and without
            assert set(r) == {"all_controls", "all_but_chord", "musical_controls_no_emotion", "emotion_only",
                              "no_controls"}
    assert man["vocabulary"]["size"] == 390 and man["controls"]["dim"] == 37
    assert man["models"]["decoder_step"]["inputs"]["controls"] == ["batch", 37]
    assert man["models"]["decoder_step"]["outputs"]["logits"] == ["batch", 390]
    # ONNX against torch, recomputed here on real music's controls (test windows, another seed than the export's)
    from installation.training import data as D
    from installation.training.export import parity
    from installation.training.model import ModelConfig, MusicModel
    ck = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    model = MusicModel(ModelConfig(**ck["config"]))
    model.load_state_dict(ck["model"])
    corpus = D.load_corpus(next(cache.glob("music*.npz")))
    rows = corpus.select(split="test", stretch=1.0)
    rows = rows if len(rows) else corpus.select(split="train", stretch=1.0)
    _, _, _, ctrl = D.WindowSampler(corpus, rows, 32).fixed(3, seed=7)
    got = parity(model, out, ctrl, steps=200, seed=7)
    assert got["max_abs_logit_err"] <= 1e-4 and got["same_sampled_sequence"], got
    assert (out / "MODEL_CARD.md").read_text().count("|") > 20
    # the runtime accepts what the pipeline made
    from installation import manifest as M
    M.load(out)
    # resumable: a second `train` finds finished checkpoints and does not start over
    r2 = subprocess.run([sys.executable, "-m", "installation.training", "train", *common], cwd=REPO,
                        capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "resumed at step 3" in r2.stderr


@pytest.mark.parametrize("decoder", ["gru", "transformer"])
def test_the_shipped_commands_still_give_the_shipped_configs(decoder):
    """One pipeline for either decoder: each shipped model's recorded training command, parsed by today's
    command line, gives the configuration the manifest recorded for it (steps, learning rates, batch, the
    model's shape, the time budgets); vocabulary and control sizes, which grew since, aside."""
    from dataclasses import asdict

    from installation.training import train as T
    from installation.training.__main__ import parse
    from installation.training.pipeline import config

    man = json.loads((REPO / "exported_models" / "manifest.json").read_text())
    trn = man["training"] if decoder == "gru" else man["decoders"]["transformer"]["training"]
    command = trn["command"].split("(= ")[-1].split(" (")[0].rstrip(")")
    words = command.replace("$OUT", "/tmp/out").split()
    args = parse(words[words.index("installation.training") + 1:])
    assert args.decoder == decoder
    cfg = config(args)
    if args.budget_min:                    # on the GPU it ran on: a wall-time budget
        T.time_budget(cfg, args.budget_min, args.finetune_share)
    got, want = asdict(cfg), trn["config"]
    if "warm_start" not in want:           # recorded before the GRU's warm start existed
        assert got.pop("warm_start") is None
    for d in (got, want):
        d.pop("snapshot_dir")
        for k in ("vocab", "control_dim"):
            d["model"].pop(k)
    assert got == want
    assert type(T.build(cfg.model)).__name__ == ("MusicModel" if decoder == "gru" else "TransformerMusicModel")


def test_warm_start_is_for_the_gru_alone(tmp_path, capsys):
    from installation.training.__main__ import main

    assert main(["train", "--decoder", "transformer", "--warm-start", "exported_models", "--cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--warm-start" in err[0] and "--decoder transformer" in err[0]


def test_corpus_carries_the_pedal_and_the_chord_in_force(shared_data):
    """EMOPIA's pedal becomes pedal events, VGMIDI's arrangements get none (their loss hides the pedal); every event
    carries the recognised chord, and a window's note-ons fall mostly inside the chord it carries, transposed or not."""
    from installation.mood import controls as C
    from installation.music import events as E
    from installation.training import data as D

    emo = sorted((shared_data / "music" / "emopia" / "midis").glob("*.mid"))[::200][:4]
    vg = sorted((shared_data / "music" / "vgmidi" / "unlabelled").rglob("*.mid"))[:2]
    pieces = [D.Piece(str(p.relative_to(shared_data)), "emopia", "train", 0) for p in emo]
    pieces += [D.Piece(str(p.relative_to(shared_data)), "vgmidi_unlabelled", "train", -1) for p in vg]
    c = D.encode_corpus(shared_data, pieces)
    assert len(c.chords) == len(c.tokens) and (c.chords != 0).mean() > 0.9
    for start, n, piece, _ in c.index:
        pedal = int((c.tokens[start:start + n] >= E.PEDAL).sum())
        assert (pedal > 0) == c.pedal_known(piece), c.pieces[piece].rel
    rows = np.flatnonzero([c.pedal_known(p) for p in c.index[:, 2]])
    for transpose in (0, 3):
        x, _, _, _, chords, known = D.WindowSampler(c, rows, 128, transpose=transpose).sample_steps(
            np.random.default_rng(1), 16)
        assert known.all()
        on = x < E.NOTE_OFF
        inside = np.take_along_axis(chords[..., :12], (x % 12)[..., None], -1)[..., 0] > 0
        assert inside[on].mean() > 0.6           # the chord carried is the one sounding (chance: about 0.3)
        assert chords.shape == (16, 128, C.CHORD_FLAG - C.CHORD + 1)


def test_warm_start_reads_the_shipped_gru_back_from_onnx():
    """The shipped GRU's ONNX weights, read into torch, give ONNX Runtime's logits; extended to the pedal and the
    chord, the model (chord unset) still gives them on the old events."""
    import onnxruntime as ort

    from installation.mood import controls as C
    from installation.training.model import ModelConfig, MusicModel
    from installation.training.warm_start import warm_start

    models = REPO / "exported_models"
    m = MusicModel(ModelConfig())
    info = warm_start(m, models)
    assert info["onnx_parity_max_abs_logit_err"] < 1e-4
    old = info["old_config"]
    init = ort.InferenceSession(str(models / "decoder_init.onnx"), providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(models / "decoder_step.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    c = rng.normal(size=(2, C.CONTROL_DIM)).astype(np.float32)
    c[:, C.CHORD:] = C.chord_code(None)
    own = c[:, :old["control_dim"]]
    h = init.run(None, {"controls": own})[0]
    ev = np.array([60, E_TS], np.int64)
    m.eval()
    with torch.no_grad():
        ht = m.initial(torch.from_numpy(c))
        for _ in range(20):
            lo, h = step.run(None, {"event": ev, "hidden": h, "controls": own})
            lt, ht = m.step(torch.from_numpy(ev), ht, torch.from_numpy(c))
            assert np.abs(lt.numpy()[:, :old["vocab"]] - lo).max() < 1e-4
            ev = lo.argmax(1).astype(np.int64)


E_TS = 256 + 9          # a 100 ms time shift


def test_unreadable_midi_is_skipped_by_name(tmp_path):
    from installation.training.data import Piece, encode_corpus

    root = tmp_path
    (root / "ok.mid").write_bytes(_tiny_midi_bytes())
    (root / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06junk")
    pieces = [Piece("ok.mid", "x", "train", -1), Piece("broken.mid", "x", "train", -1)]
    c = encode_corpus(root, pieces)
    assert c.skipped == ["broken.mid"]
    assert len(c.tokens) > 0


def _tiny_midi_bytes() -> bytes:
    import io

    import mido
    mid = mido.MidiFile()
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr += [mido.Message("note_on", note=60, velocity=80, time=0), mido.Message("note_off", note=60, time=480)]
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def test_emotion6_holdout_rule(shared_data):
    from installation.training.data import load_emotion6, stable_percent

    imgs = load_emotion6(shared_data)
    assert len(imgs.rel) == 1650
    share = imgs.test.mean()
    assert 0.12 < share < 0.18                       # about 15%
    assert all(imgs.test[i] == (stable_percent(r) < 15) for i, r in enumerate(imgs.rel))
    assert imgs.arousal_split == pytest.approx(float(np.median(imgs.arousal)))
    q1 = (imgs.valence > 5) & (imgs.arousal > imgs.arousal_split)
    assert np.array_equal(imgs.quadrant == 0, q1)


def test_resnet18_export_graph_and_parity(tmp_path):
    """The paper's backbone: a torchvision-layout ResNet-18 weights file exports to ONNX that matches torch."""
    import onnxruntime as ort

    from installation.training.backbones import ResNet18, build
    from installation.training.export import export_encoder

    torch.manual_seed(0)
    net = ResNet18()
    state = net.state_dict()
    state["fc.weight"] = torch.zeros(1000, 512)           # a full torchvision file carries the classifier too
    state["fc.bias"] = torch.zeros(1000)
    for k, v in state.items():                              # non-trivial BN statistics
        if k.endswith("running_var"):
            v.uniform_(0.5, 2.0)
    wfile = tmp_path / "resnet18.pth"
    torch.save(state, wfile)
    model, info = build("resnet18", str(wfile))
    assert info["backbone"] == "resnet18" and info["weights_sha256"]
    res = export_encoder(model, tmp_path / "enc.onnx")
    assert res["outputs"]["embedding"] == ["batch", 512]
    sess = ort.InferenceSession(str(tmp_path / "enc.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert [o.name for o in sess.get_outputs()] == ["embedding", "features_mid"]
    assert res["outputs"]["features_mid"] == ["batch", 128 + 256]          # pooled layer2 and layer3
    x = (torch.rand(2, 3, 224, 224) * 255)
    with torch.no_grad():
        ref = model(x).numpy()
        ref_mid = model.forward_all(x)[1].numpy()
    got, got_mid = sess.run(None, {"image": x.numpy()})
    assert got.shape == (2, 512)
    assert np.abs(got - ref).max() < 1e-3
    assert np.abs(got_mid - ref_mid).max() < 1e-3


def test_resnet18_rejects_a_wrong_weights_file(tmp_path):
    from installation.training.backbones import build

    bad = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a torchvision resnet18 state_dict"):
        build("resnet18", str(bad))
