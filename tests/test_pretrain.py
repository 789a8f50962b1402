"""Pretraining: frames, trainable encoders, probe, saved encoders, and the scripts end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import envs
from envs.car_racing import area_resize
from hebbian.encoders import make_encoder
from hebbian.encoders.cnn import PaperCNN
from hebbian.encoders.pretrained import (
    PretrainedEncoder,
    cnn_flat_params,
    encoder_checksum,
    load_pretrained_encoder,
    save_pretrained,
)
from hebbian.pretraining import (
    FrameDataset,
    ScriptedDriver,
    TrainSettings,
    build_trainable,
    collect_frames,
    discretize_steering,
    held_out_split,
    linear_probe,
    read_label_column,
    train_encoder,
)

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent
warnings.filterwarnings("ignore", category=envs.EnvironmentAliasWarning)


@pytest.fixture(scope="module")
def frames_dataset():
    """160 labelled CarRacing frames from the scripted driver, 4 short episodes."""
    return collect_frames("CarRacing-v2", 160, ScriptedDriver(), seed=1, episode_frames=40, skip_start=10)


def _save(encoder, path):
    return save_pretrained(path, encoder.net.state_dict(), encoder.kind, encoder.options, encoder.obs_shape,
                           encoder.num_features)


# -- frames -------------------------------------------------------------------------------------
def test_area_resize_gives_the_environments_frames():
    env84 = envs.make("CarRacing-v2", frame_size=84)
    env96 = envs.make("CarRacing-v2", frame_size=96)
    obs84, _ = env84.reset(seed=5)
    obs96, _ = env96.reset(seed=5)
    for _ in range(60):
        action = np.array([0.2, 0.5, 0.0], dtype=np.float32)
        obs84, *_ = env84.step(action)
        obs96, *_ = env96.step(action)
    as_bytes = np.rint(obs96 * 255).astype(np.uint8)
    np.testing.assert_allclose(area_resize(as_bytes[None], 84)[0], obs84, atol=1e-6)
    np.testing.assert_allclose(area_resize(as_bytes[None], 96)[0], obs96, atol=1e-6)


def test_collection_is_seeded_labelled_and_round_trips(frames_dataset, tmp_path):
    ds = frames_dataset
    assert ds.frames.shape == (160, 3, 96, 96) and ds.frames.dtype == np.uint8
    assert ds.labels is not None and set(np.unique(ds.labels)) <= {0, 1, 2}
    assert len(np.unique(ds.episodes)) >= 4 and ds.label_names == ["left", "straight", "right"]
    again = collect_frames("CarRacing-v2", 40, ScriptedDriver(), seed=1, episode_frames=40, skip_start=10)
    np.testing.assert_array_equal(again.frames, ds.frames[:40])
    path = tmp_path / "frames.npz"
    ds.save(path)
    loaded = FrameDataset.load(path)
    np.testing.assert_array_equal(loaded.frames, ds.frames)
    np.testing.assert_array_equal(loaded.labels, ds.labels)
    assert loaded.meta == ds.meta
    with np.load(path, allow_pickle=False) as npz:  # nothing in the file needs pickle
        assert set(npz.files) == {"frames", "episodes", "actions", "labels", "meta"}


def test_dataset_errors_and_user_labels(frames_dataset, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        FrameDataset.load(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot be read"):
        FrameDataset.load(tmp_path / "bad.npz")
    csv = tmp_path / "labels.csv"
    csv.write_text("label\n" + "\n".join(str(i % 4) for i in range(160)) + "\n")
    relabelled = frames_dataset.with_labels(read_label_column(csv))
    assert relabelled.labels.tolist() == [i % 4 for i in range(160)] and relabelled.label_names == ["0", "1", "2", "3"]
    with pytest.raises(ValueError, match="one per frame"):
        frames_dataset.with_labels(np.zeros(3, dtype=int))


def test_held_out_split_keeps_episodes_whole():
    episodes = np.repeat(np.arange(8), 10)
    train, test = held_out_split(episodes, 0.25)
    assert set(episodes[train]).isdisjoint(episodes[test]) and len(train) + len(test) == 80
    assert set(episodes[test]) == {6, 7}
    train, test = held_out_split(np.zeros(20, dtype=int), 0.25)
    assert train.tolist() == list(range(15)) and test.tolist() == list(range(15, 20))


def test_discretize_steering():
    assert [discretize_steering(s) for s in (-1, -0.31, -0.3, 0, 0.3, 0.31, 1)] == [0, 0, 1, 1, 1, 2, 2]


# -- trainable and frozen encoders --------------------------------------------------------------
def test_torch_cnn_equals_the_numba_cnn():
    trainable = build_trainable("cnn", seed=3)
    frames = np.random.default_rng(0).integers(0, 256, (4, 3, 96, 96), dtype=np.uint8)
    expected = trainable.features(frames)
    cnn = PaperCNN()
    flat = cnn_flat_params(trainable.net.state_dict())
    cnn.set_params(flat)
    for i, obs in enumerate(area_resize(frames, 84)):
        np.testing.assert_allclose(cnn.encode(obs), expected[i], atol=1e-5)


@pytest.mark.parametrize("kind,options", [("cnn", {}), ("slots", {"image_size": 32, "num_slots": 2, "dim": 8}),
                                          ("vit-linear", {"image_size": 32, "dim": 16, "depth": 1, "heads": 2})])
def test_saved_encoder_loads_frozen_and_computes_the_same_features(kind, options, tmp_path):
    trainable = build_trainable(kind, seed=2, **options)
    with torch.no_grad():  # move away from the seed's init, so loading must really read the file
        for p in trainable.net.parameters():
            p.add_(0.01)
    path = tmp_path / "enc.pt"
    desc = _save(trainable, path)
    frames = np.random.default_rng(1).integers(0, 256, (3, 3, 96, 96), dtype=np.uint8)
    expected = trainable.features(frames)
    encoder = make_encoder(f"pretrained:{path}")
    assert isinstance(encoder, PretrainedEncoder) and encoder.num_params == 0
    assert encoder.obs_shape == trainable.obs_shape and encoder.num_features == trainable.num_features
    encoder.set_params(np.zeros(0, dtype=np.float32))
    for i, obs in enumerate(area_resize(frames, trainable.obs_shape[-1])):
        np.testing.assert_allclose(encoder.encode(obs), expected[i], atol=1e-5)
    state = torch.load(path, weights_only=True)
    assert set(state) == set(trainable.net.state_dict())
    assert encoder_checksum(path) == desc["sha256"] == encoder_checksum(path.with_suffix(".json"))


def test_pretrained_encoder_errors(tmp_path):
    path = tmp_path / "enc.pt"
    desc = _save(build_trainable("cnn"), path)
    encoder = load_pretrained_encoder(str(path), sha256=desc["sha256"])
    with pytest.raises(ValueError, match="frozen"):
        encoder.set_params(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="has changed since this run started"):
        load_pretrained_encoder(str(path), sha256="0" * 64)
    with pytest.raises(ValueError, match="accepts only sha256"):
        load_pretrained_encoder(str(path), evolve=True)
    with pytest.raises(ValueError, match="do not exist.*scripts/pretrain.py"):
        load_pretrained_encoder(str(tmp_path / "missing.pt"))
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256 mismatch"):
        load_pretrained_encoder(str(path))
    path.with_suffix(".json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_pretrained_encoder(str(path))


# -- training and probe -------------------------------------------------------------------------
def test_linear_probe_on_separable_and_on_random_labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = rng.normal(size=(300, 10))
    x[:, 0] += 4 * y  # class is linear in feature 0
    result = linear_probe(x[:200], y[:200], x[200:], y[200:])
    assert result["accuracy"] > 0.95 and result["num_classes"] == 3
    noise = linear_probe(x[:200, 1:], y[:200], x[200:, 1:], y[200:])
    assert noise["accuracy"] < 0.55


@pytest.mark.parametrize("objective", ["supcon", "simclr", "byol"])
def test_training_lowers_the_loss_and_changes_the_encoder(objective, frames_dataset):
    encoder = build_trainable("cnn", seed=0)
    before = encoder.net.conv1.weight.detach().clone()
    settings = TrainSettings(objective=objective, steps=12, batch_size=16, lr=3e-3, seed=0)
    losses = train_encoder(encoder, frames_dataset.frames, frames_dataset.labels, settings)
    assert len(losses) == 12 and np.all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < losses[0]
    assert not torch.equal(before, encoder.net.conv1.weight)


def test_supcon_needs_labels(frames_dataset):
    with pytest.raises(ValueError, match="supcon needs labelled frames"):
        train_encoder(build_trainable("cnn"), frames_dataset.frames, None, TrainSettings(objective="supcon", steps=1))


# -- the scripts end to end ---------------------------------------------------------------------
def _run(args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_pretrain_script_then_evolution_with_the_frozen_encoder(tmp_path):
    out = tmp_path / "enc" / "cnn-supcon.pt"
    done = _run([str(REPO / "scripts" / "pretrain.py"), "CarRacing-v2", "--out", str(out), "--frames", "240",
                 "--episode-frames", "60", "--steps", "6", "--batch-size", "16", "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "linear probe (pretrained encoder): held-out accuracy" in done.stdout
    desc = json.loads(out.with_suffix(".json").read_text())
    assert desc["kind"] == "cnn" and desc["objective"] == "supcon" and desc["probe"]["pretrained"]["num_test"] > 0
    assert FrameDataset.load(out.with_suffix(".frames.npz")).frames.shape[0] == 240
    state = torch.load(out, weights_only=True)
    assert set(state) == {"conv1.weight", "conv2.weight"}

    run_dir = tmp_path / "run"
    done = _run([str(REPO / "scripts" / "evolve.py"), "CarRacing-v2", "--encoder", f"pretrained:{out}",
                 "--backend", "serial", "--popsize", "2", "--generations", "1", "--episodes", "1", "--hidden", "8",
                 "--eval-every", "0", "--eval-episodes", "1", "--run-dir", str(run_dir), "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    # Only the plastic layers evolve: 648-8-3 ABCD_lr = (648*8 + 8*3) * 5 coefficients.
    centre = np.load(run_dir / "best.npz", allow_pickle=False)["params"]
    assert centre.shape == ((648 * 8 + 8 * 3) * 5,)
    assert encoder_checksum(out) in (run_dir / "config.json").read_text()  # the run records which weights it used


def test_pretrain_script_usage_errors(tmp_path):
    done = _run([str(REPO / "scripts" / "pretrain.py"), "CarRacing-v2", "--out", str(tmp_path / "x.pt"),
                 "--driver", "random", "--frames", "20", "--episode-frames", "10", "--quiet"], tmp_path)
    assert done.returncode == 2 and "supcon needs labelled frames" in done.stderr
    done = _run([str(REPO / "scripts" / "pretrain.py"), "CarRacing-v2", "--out", str(tmp_path / "x.bin")], tmp_path)
    assert done.returncode == 2 and "--out must end in .pt" in done.stderr
