"""The training module and its command line (``python -m effnet_tutorial.train``), offline.

The two-process test runs the real thing: ``torchrun --standalone --nproc_per_node=2`` on
the CPU (gloo), and checks what DistributedDataParallel promises: the processes see
disjoint shares of the data, yet end with identical weights.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error

import pytest
import torch

from effnet_tutorial import EfficientNet, count_params
from effnet_tutorial.data import (RandAugment, channel_stats, load_digits, mixup, parse_classes,
                                  preprocess)
from effnet_tutorial.progressive import progressive_schedule
from effnet_tutorial.train import (DEFAULT_MODEL, build_model, epoch_plan, evaluate, fit,
                                   freeze_backbone, freeze_stages, load_run, main,
                                   parse_model_spec, unfreeze)

TINY = "efficientnet-b0:width=0.25,depth=0.25,bn_momentum=0.1"
# A few steps: 20 images of each digit, 16-pixel images.
QUICK = ["--train-per-class", "20", "--image-size", "16", "--batch-size", "16", "--no-progress",
         "--model", TINY]


@pytest.fixture(autouse=True)
def one_thread():
    # One thread per test process: the small model gains nothing from more, the results do
    # not depend on the core count, and the torchrun test's two processes get a core each.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------
# Several processes: torchrun + DDP on the CPU
# --------------------------------------------------------------------------------------
def test_torchrun_two_processes_end_identical(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "effnet_tutorial.train", "--data", "digits", "--epochs", "2", "--output",
           str(out), "--debug-rank-dumps", *QUICK]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["global_batch_size"] == 2 * 16
    assert metrics["lr"] == pytest.approx(0.4 * 32 / 256)
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    # Only rank 0 writes: one metrics file, one model, and the two debug dumps.
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt", "rank0.pt",
                                                     "rank1.pt"]

    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    # The DistributedSampler split epoch 1 between the ranks: no image seen twice, none left.
    seen0, seen1 = set(r0["epoch1_indices"].tolist()), set(r1["epoch1_indices"].tolist())
    n_train = 10 * 20
    assert not seen0 & seen1
    assert seen0 | seen1 == set(range(n_train))
    # ... and yet gradient averaging kept the two copies identical, parameters and buffers.
    assert _same_state(r0["state_dict"], r1["state_dict"])
    saved = torch.load(out / "model.pt", weights_only=True)
    assert _same_state(saved, r0["state_dict"])
    # It trained: the weights moved away from the common initialisation (seed 0).
    torch.manual_seed(0)
    init = build_model(TINY, 10, 1).state_dict()
    assert not torch.equal(init["classifier.weight"], saved["classifier.weight"])


# --------------------------------------------------------------------------------------
# One process, through main() as the command line calls it
# --------------------------------------------------------------------------------------
def test_cli_writes_model_and_metrics(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--data", "digits", "--epochs", "2", "--output", str(out), *QUICK]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 1
    assert len(metrics["epochs"]) == 2
    for record in metrics["epochs"]:
        assert {"epoch", "train_loss", "val_accuracy", "seconds"} <= record.keys()
        assert 0.0 <= record["val_accuracy"] <= 1.0 and record["seconds"] > 0
        assert record["train_loss"] > 0
    state = torch.load(out / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    model = build_model(TINY, 10, 1)
    model.load_state_dict(state)           # strict: every key fits a freshly built model
    assert "wrote" in capsys.readouterr().out


def test_same_seed_same_run_and_load_run(tmp_path):
    runs = []
    for name in ("a", "b"):
        main(["--epochs", "1", "--output", str(tmp_path / name), *QUICK])
        runs.append(torch.load(tmp_path / name / "model.pt", weights_only=True))
    assert _same_state(*runs)                # seeded: bit-identical on the same machine
    model, metrics = load_run(tmp_path / "a")
    _, val = load_digits()
    acc = evaluate(model, val, 16, metrics["mean"], metrics["std"])
    assert acc == pytest.approx(metrics["epochs"][-1]["val_accuracy"])


def test_training_beats_chance_clearly():
    torch.manual_seed(0)
    train, val = load_digits()
    mean, std = channel_stats(train)
    model = build_model(DEFAULT_MODEL, 10, 1)
    history = fit(model, train, val, epoch_plan(3, 16), batch_size=64, lr=0.1, mean=mean,
                  std=std, progress=False, log=None)
    assert history[-1]["val_accuracy"] > 0.5         # chance is 0.1
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_progressive_run_follows_the_schedule(tmp_path):
    out = tmp_path / "prog"
    main(["--epochs", "4", "--progressive", "2", "--min-image-size", "8", "--magnitude", "4",
          "--dropout", "0.3", "--output", str(out), *QUICK])
    epochs = json.loads((out / "metrics.json").read_text())["epochs"]
    assert [e["image_size"] for e in epochs] == [8, 8, 16, 16]
    assert [e["randaug_magnitude"] for e in epochs] == [0.0, 0.0, 4.0, 4.0]
    assert [e["dropout"] for e in epochs] == pytest.approx([0.15, 0.15, 0.3, 0.3])


def test_init_transfers_the_backbone_and_replaces_the_head(tmp_path):
    src = tmp_path / "src"
    main(["--epochs", "1", "--classes", "0-4", "--output", str(src), *QUICK])
    dst = tmp_path / "dst"
    main(["--epochs", "1", "--classes", "5-9", "--init", str(src), "--output", str(dst),
          "--lr", "1e-9", *QUICK])
    before = torch.load(src / "model.pt", weights_only=True)
    after = torch.load(dst / "model.pt", weights_only=True)
    # With a vanishing learning rate the transferred convolution weights barely move.
    assert torch.allclose(before["stem.conv.weight"], after["stem.conv.weight"], atol=1e-6)
    assert after["classifier.weight"].shape == before["classifier.weight"].shape == (5, 320)
    assert not torch.allclose(before["classifier.weight"], after["classifier.weight"])
    assert json.loads((dst / "metrics.json").read_text())["classes"] == list("56789")


# --------------------------------------------------------------------------------------
# Bad arguments: a clear message, exit status 2, no traceback
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "expected a positive integer"),
    (["--batch-size", "1"], "at least 2"),
    (["--model", "efficientnet-b9"], "Did you mean"),
    (["--model", "efficientnet-b0:width=wide"], "width must be a number"),
    (["--model", "efficientnet-b0:colour=1"], "key one of width, depth"),
    (["--model", "efficientnet-b0:width=-1"], "width_coefficient must be a positive number"),
    (["--classes", "0-12"], "do not exist"),
    (["--classes", "3"], "at least two"),
    (["--classes", "a-b"], "cannot read classes"),
    (["--progressive", "5"], "from 2 to --epochs (2)"),
    (["--progressive", "1"], "from 2 to --epochs"),
    (["--min-image-size", "8"], "needs --progressive"),
    (["--progressive", "2", "--min-image-size", "64"], "larger than --image-size"),
    (["--lr", "0"], "--lr must be > 0"),
    (["--magnitude", "11"], "--magnitude must be in [0, 10]"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["--data", "imagenet"], "invalid choice"),
    (["--init", "/nonexistent/run"], "no model.pt there"),
    (["--train-per-class", "1", "--batch-size", "16"], "batch size 16 is larger"),
    (["--threads", "0"], "expected a positive integer"),
    (["--seed", "-1"], "--seed must be an int from 0"),
])
def test_bad_arguments(tmp_path, capsys, args, message):
    argv = ["--epochs", "2", "--batch-size", "16", "--output", str(tmp_path / "out"),
            "--no-progress", "--image-size", "16", *args]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err


def test_threads_are_set_for_the_run_and_restored(tmp_path, monkeypatch):
    seen = []
    import effnet_tutorial.train as train_module

    real_fit = train_module.fit

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train_module, "fit", spy)
    torch.set_num_threads(2)
    main(["--epochs", "1", "--output", str(tmp_path), "--threads", "1", *QUICK])
    assert seen == [1]
    assert torch.get_num_threads() == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_amp_without_cuda(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--epochs", "1", "--batch-size", "16", "--output", str(tmp_path), "--amp"])
    assert "needs a CUDA device" in capsys.readouterr().err


def test_channels_last_path_runs_and_restores_the_layout():
    # The GPU layout, exercised on the CPU: same code path, weights contiguous afterwards.
    torch.manual_seed(0)
    train, val = load_digits(train_per_class=10)
    mean, std = channel_stats(train)
    model = build_model(TINY, 10, 1)
    history = fit(model, train, val, epoch_plan(1, 16), batch_size=25, lr=0.1, mean=mean,
                  std=std, channels_last=True, progress=False, log=None)
    assert 0 <= history[0]["val_accuracy"] <= 1
    assert all(p.is_contiguous() for p in model.parameters())


def test_load_run_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json does not exist"):
        load_run(tmp_path)


def test_output_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(SystemExit):
        main(["--epochs", "1", "--batch-size", "16", "--output", str(f)])
    assert "is not a directory" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_requested_without_cuda(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--epochs", "1", "--batch-size", "16", "--output", str(tmp_path), "--device", "cuda"])
    assert "no CUDA device" in capsys.readouterr().err


def test_cifar10_offline_says_what_to_do(tmp_path, capsys, monkeypatch):
    import torchvision.datasets

    class Offline:   # what torchvision's download raises without a network
        def __init__(self, *args, **kwargs):
            raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Offline)
    with pytest.raises(SystemExit) as exc:
        main(["--data", "cifar10", "--data-dir", str(tmp_path / "c"), "--epochs", "1",
              "--batch-size", "16", "--output", str(tmp_path / "out")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "could not load CIFAR-10" in err and "--data digits" in err


# --------------------------------------------------------------------------------------
# The pieces
# --------------------------------------------------------------------------------------
def test_model_spec():
    cfg = parse_model_spec("efficientnet-b0:width=0.5,depth=0.25,dropout=0.1")
    assert (cfg.width_coefficient, cfg.depth_coefficient, cfg.dropout_rate) == (0.5, 0.25, 0.1)
    assert parse_model_spec("efficientnetv2-s") == EfficientNet.from_name("efficientnetv2-s").config
    model = build_model("efficientnet-b0:width=0.25,depth=0.25", 7, 1)
    assert model.classifier.out_features == 7 and model.stem.conv.in_channels == 1
    # 0.25 x 0.25: every stage keeps one block, channels shrink (EfficientNet §3.3 rounding).
    assert len(model.blocks()) == 7
    assert count_params(model) < count_params(build_model("efficientnet-b0", 7, 1)) / 20


def test_epoch_plan_progressive_matches_algorithm_1():
    plan = epoch_plan(6, 32, magnitude=6, mixup_alpha=0.2, dropout=0.3, progressive=3,
                      min_image_size=16)
    assert [row["stage"] for row in plan] == [0, 0, 1, 1, 2, 2]
    first, last = plan[0], plan[-1]
    assert (first["image_size"], first["randaug_magnitude"], first["mixup_alpha"]) == (16, 0, 0)
    assert (last["image_size"], last["randaug_magnitude"], last["mixup_alpha"]) == (32, 6, 0.2)
    assert first["dropout"] == pytest.approx(0.15) and last["dropout"] == pytest.approx(0.3)
    assert plan[2]["image_size"] == 24           # linear in between (Algorithm 1)
    fixed = epoch_plan(3, 32, dropout=0.2)
    assert {row["image_size"] for row in fixed} == {32} and len(fixed) == 3
    with pytest.raises(ValueError, match="from 2 to 3"):
        epoch_plan(3, 32, progressive=4)
    assert len({row["stage"] for row in epoch_plan(7, 32, progressive=3)}) == 3
    assert len(progressive_schedule("efficientnetv2-s")) == 4


def test_freeze_stages_keeps_frozen_weights_and_statistics():
    torch.manual_seed(0)
    train, val = load_digits(train_per_class=10)
    mean, std = channel_stats(train)
    model = build_model(TINY, 10, 1)
    stages = list(model.stages.named_children())
    frozen = freeze_stages(model, 2)
    assert frozen == ["stem"] + [f"stages.{name}" for name, _ in stages[:2]]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, train, val, epoch_plan(1, 16), batch_size=25, lr=0.1, mean=mean, std=std,
        progress=False, log=None)
    after = model.state_dict()
    frozen_prefixes = ("stem.",) + tuple(f"stages.{name}." for name, _ in stages[:2])
    for key, value in after.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.startswith(frozen_prefixes):
            assert torch.equal(value, before[key]), key       # weights and BN statistics
    assert not torch.equal(after["head.conv.weight"], before["head.conv.weight"])
    last = f"stages.{stages[-1][0]}.0.project.bn.running_mean"
    assert not torch.equal(after[last], before[last])


def test_freeze_backbone_and_unfreeze():
    model = build_model(TINY, 10, 1)
    freeze_backbone(model)
    assert count_params(model, trainable_only=True) == count_params(model.classifier)
    unfreeze(model)
    assert count_params(model, trainable_only=True) == count_params(model)
    with pytest.raises(ValueError, match="from 0 to 7"):
        freeze_stages(model, 8)
    freeze_backbone(model)
    _, val = load_digits(train_per_class=2)
    with pytest.raises(ValueError, match="at least 2 training images|nothing to train"):
        for p in model.classifier.parameters():
            p.requires_grad_(False)
        fit(model, val, val, epoch_plan(1, 16), batch_size=8, lr=0.1, mean=(0.3,), std=(0.4,),
            progress=False, log=None)


def test_digits_split_and_classes():
    from sklearn.datasets import load_digits as sk_digits

    train, val = load_digits()
    assert (len(train), len(val)) == (1437, 360)          # 80/20 of 1,797
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    total = [a + b for a, b in zip(train.class_counts(), val.class_counts())]
    raw = sk_digits()
    assert total == torch.bincount(torch.tensor(raw.target)).tolist()
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0
    tr, va = load_digits("5-9", train_per_class=10)
    assert tr.classes == ("5", "6", "7", "8", "9") and tr.class_counts() == [10] * 5
    assert set(va.labels.tolist()) == set(range(5))
    # Relabelled images are the original digits 5-9.
    mean, _ = channel_stats(tr)
    assert 0 < mean[0] < 1
    assert parse_classes("5,7,9") == (5, 7, 9)


def test_preprocess_shapes_and_normalisation():
    train, _ = load_digits()
    mean, std = channel_stats(train)
    x = preprocess(train.images[:4], 32, mean, std)
    assert x.shape == (4, 1, 32, 32) and x.dtype == torch.float32
    full = preprocess(train.images, 8, mean, std)                  # no resize: exact statistics
    assert float(full.mean()) == pytest.approx(0, abs=1e-3)
    assert float(full.std()) == pytest.approx(1, abs=1e-3)


def _digit_batch(channels: int, n: int = 16) -> torch.Tensor:
    """n copies of one digit at 32 px in [0, 1], repeated over ``channels``."""
    train, _ = load_digits()
    x = preprocess(train.images[:1], 32, (0.0,), (1.0,))            # (1, 1, 32, 32) in [0, 1]
    return x.expand(n, channels, 32, 32).contiguous()


@pytest.mark.parametrize("level", [0, 1, 2.4, 5, 10])
def test_randaugment_uses_the_official_level_scale(level):
    # tensorflow/tpu autoaugment.py (_MAX_LEVEL = 10): rotate level / 10 * 30 degrees, shear
    # level / 10 * 0.3. torchvision's table at the adapter's bin must give the same numbers
    # (to its bin width, a third of a level).
    from torchvision.transforms.v2 import RandAugment as TorchvisionRandAugment
    aug = RandAugment(2, level)
    assert isinstance(aug.transform, TorchvisionRandAugment)
    space = TorchvisionRandAugment._AUGMENTATION_SPACE
    bins, index = aug.transform.num_magnitude_bins, aug.transform.magnitude
    rotate = float(space["Rotate"][0](bins, 32, 32)[index])
    shear = float(space["ShearX"][0](bins, 32, 32)[index])
    assert rotate == pytest.approx(30 * level / 10, abs=0.5)      # half a bin: 0.5 degrees
    assert shear == pytest.approx(0.3 * level / 10, abs=0.005)


@pytest.mark.parametrize("channels", [1, 3])
def test_randaugment_keeps_shape_dtype_range_and_zero_is_identity(channels):
    x = _digit_batch(channels)
    assert torch.equal(RandAugment(2, 0)(x), x)                    # magnitude 0: unchanged
    assert torch.equal(RandAugment(0, 9)(x), x)                    # no operations: unchanged
    y = RandAugment(2, 9)(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert not torch.equal(y, x)


def test_randaugment_is_per_image_and_reproducible():
    x = _digit_batch(1)                                             # 16 identical images
    state = torch.get_rng_state()
    y = RandAugment(2, 9)(x, torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)               # the global RNG untouched
    distinct = {tuple(img.flatten().tolist()) for img in y}
    assert len(distinct) >= 8                                       # each image its own ops
    torch.manual_seed(123)                                          # global state is irrelevant
    assert torch.equal(RandAugment(2, 9)(x, torch.Generator().manual_seed(3)), y)
    assert not torch.equal(RandAugment(2, 9)(x, torch.Generator().manual_seed(4)), y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_randaugment_same_on_cuda_as_on_cpu():
    x = _digit_batch(3)
    cpu = RandAugment(2, 9)(x, torch.Generator().manual_seed(5))
    gpu = RandAugment(2, 9)(x.cuda(), torch.Generator().manual_seed(5))
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)


@pytest.mark.parametrize("args, message", [
    ((2, 11), r"magnitude must be a number in \[0, 10\]"),
    ((2, -1), "magnitude must be"), ((2, True), "magnitude must be"), ((2, "5"), "magnitude"),
    ((-1, 5), "num_ops must be an int >= 0"), ((1.5, 5), "num_ops must be"),
])
def test_randaugment_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        RandAugment(*args)


@pytest.mark.parametrize("x, message", [
    (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "float batch"),
    (torch.zeros(2, 2, 8, 8), "C = 1 or 3"),
    (torch.zeros(1, 8, 8), "got torch.float32 \\[1, 8, 8\\]"),
    ([[0.5]], "got list"),
    (torch.full((2, 1, 8, 8), -0.4), "pixels in \\[0, 1\\]"),   # normalised too early
])
def test_randaugment_bad_input(x, message):
    with pytest.raises(ValueError, match=message):
        RandAugment(2, 5)(x)


def test_mixup_blends_with_a_permutation():
    x = torch.eye(6).view(6, 6, 1, 1)                               # image i = unit vector i
    y = torch.arange(6) * 10
    mixed, y_a, y_b, lam = mixup(x, y, 0.4, torch.Generator().manual_seed(0))
    assert 0 < lam < 1 and torch.equal(y_a, y)
    flat = mixed.view(6, 6)
    perm = [int(i) for i in (flat - lam * torch.eye(6)).argmax(1)]
    assert torch.equal(y_b, y[perm])
    assert mixup(x, y, 0.0)[3] == 1.0
