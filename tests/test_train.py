"""The training module and its command line (``python -m effnet_tutorial.train``), offline.

The two-process test runs the real thing: ``torchrun --standalone --nproc_per_node=2`` on
the CPU (gloo), and checks what DistributedDataParallel promises: the processes see
disjoint shares of the data, yet end with identical weights.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error

import pytest
import torch
from torch import nn

from effnet_tutorial import EfficientNet, count_params
from effnet_tutorial.data import (ImageData, RandAugment, channel_stats, load_digits, mixup,
                                  normalize, parse_classes, preprocess)
from effnet_tutorial.progressive import progressive_schedule
from effnet_tutorial.train import (DEFAULT_MODEL, NonFiniteLossError, RunFileError, build_model,
                                   epoch_plan, evaluate, fit, freeze_backbone, freeze_stages,
                                   load_run, main, parse_model_spec, unfreeze)

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
@pytest.mark.parametrize("sync_bn", [False, True], ids=["per-process-bn", "sync-bn"])
def test_torchrun_two_processes_end_identical(tmp_path, sync_bn):
    out, dumps = tmp_path / "ddp", tmp_path / "dumps"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "effnet_tutorial.train", "--data", "digits", "--epochs", "2", "--output",
           str(out), "--rank-dumps", str(dumps), *QUICK, *(["--sync-bn"] if sync_bn else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert ("--sync-bn" in proc.stdout) == sync_bn

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["global_batch_size"] == 2 * 16
    assert metrics["lr"] == pytest.approx(0.4 * 32 / 256)
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    # Only rank 0 writes the run's folder; the dumps go to their own folder.
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt"]
    assert sorted(p.name for p in dumps.iterdir()) == ["rank0.pt", "rank1.pt"]

    r0 = torch.load(dumps / "rank0.pt", weights_only=True)
    r1 = torch.load(dumps / "rank1.pt", weights_only=True)
    # Every step's loss of each process: 100 images per process in batches of 16 -> 7 steps.
    assert r0["step_losses"].shape == r1["step_losses"].shape == (2 * 7,)
    assert torch.isfinite(r0["step_losses"]).all() and not torch.equal(r0["step_losses"],
                                                                       r1["step_losses"])
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
    # RandAugment and mixup on: their draws come from the seeded generators too.
    runs = []
    for name in ("a", "b"):
        main(["--epochs", "1", "--output", str(tmp_path / name), "--seed", "3", "--threads", "1",
              "--magnitude", "5", "--mixup", "0.2", *QUICK])
        runs.append(torch.load(tmp_path / name / "model.pt", weights_only=True))
    assert _same_state(*runs)                # seeded: bit-identical on the same machine
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()
    model, metrics = load_run(tmp_path / "a")
    _, val = load_digits(seed=3)             # the run's split: --seed 3
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
    (["--model", "efficientnet-b0:width=-1"], "width_coefficient must be a positive finite number"),
    (["--classes", "0-12"], "does not exist"),
    (["--classes", "0,3,12"], "class 12 in '0,3,12' does not exist"),
    (["--classes", "5-3"], "from the smaller label to the larger"),
    (["--model", "efficientnet-b0:width=inf"], "width must be a finite number, got 'inf'"),
    (["--model", "efficientnet-b0:depth=inf"], "depth must be a finite number"),
    (["--model", "efficientnet-b0:width=nan"], "width must be a finite number"),
    (["--model", "efficientnet-b0:width=0.25,depth=0.25,width=0.5"], "width is given twice"),
    (["--mixup", "inf"], "expected a number >= 0"),
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
    # 0.25 x 0.25: every stage keeps one block, channels shrink (tensorflow/tpu round_filters).
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


# --------------------------------------------------------------------------------------
# Bad input and interruptions: nothing silently wrong, nothing lost
# --------------------------------------------------------------------------------------
@contextlib.contextmanager
def within(seconds: int):
    """Fail (instead of hanging) when the block runs longer than ``seconds``."""
    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _strict_json(path):
    """The file as JSON; NaN and Infinity, which json.dumps writes by default, are refused."""
    def refuse(name):
        raise ValueError(f"{path.name} holds {name}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-epoch run: (folder, bytes of model.pt, bytes of metrics.json)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["--epochs", "1", "--output", str(out), *QUICK]) == 0
    finally:
        torch.set_num_threads(threads)
    return out, (out / "model.pt").read_bytes(), (out / "metrics.json").read_bytes()


def _copy_run(run, where):
    shutil.copytree(run, where)
    return where


def test_nan_loss_stops_the_run_and_writes_no_model(tmp_path, capsys):
    out = tmp_path / "diverged"
    with pytest.raises(SystemExit) as exc:
        main(["--epochs", "2", "--lr", "1e6", "--output", str(out), *QUICK])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "the training loss became nan at epoch 1" in err and "Try a lower --lr" in err, err
    assert "Traceback" not in err
    assert not (out / "model.pt").exists() and not (out / "metrics.json").exists()
    partial = _strict_json(out / "metrics.partial.json")    # valid JSON: no NaN in it
    assert partial["status"].startswith("stopped: the training loss became nan")
    with pytest.raises(FileNotFoundError, match="did not finish"):
        load_run(out)
    # fit() itself raises, naming where.
    train, val = load_digits(train_per_class=5)
    mean, std = channel_stats(train)
    with pytest.raises(NonFiniteLossError, match=r"became nan at epoch 1, step \d+.*lower the learning"):
        fit(build_model(TINY, 10, 1), train, val, epoch_plan(1, 16), batch_size=10, lr=1e5,
            mean=mean, std=std, progress=False, log=None)


def test_an_output_that_holds_a_run_is_refused_and_an_interrupted_rerun_loses_nothing(
        finished_run, tmp_path, capsys, monkeypatch):
    import effnet_tutorial.train as train_module

    run, model_a, metrics_a = finished_run
    out = _copy_run(run, tmp_path / "run")
    argv = ["--epochs", "2", "--seed", "1", "--output", str(out), *QUICK]
    # Without --overwrite: refused before anything is loaded, the run untouched.
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "already holds a run (model.pt, metrics.json)" in capsys.readouterr().err
    assert (out / "model.pt").read_bytes() == model_a

    # With --overwrite, interrupted (Ctrl-C) right after epoch 1 has written its metrics.
    real_fit = train_module.fit

    def interrupted_fit(*args, on_epoch, **kwargs):
        def stop(history):
            on_epoch(history)
            raise KeyboardInterrupt
        return real_fit(*args, on_epoch=stop, **kwargs)

    monkeypatch.setattr(train_module, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        main([*argv, "--overwrite"])
    # The earlier run is whole and labelled as itself; the interrupted one is beside it.
    assert (out / "model.pt").read_bytes() == model_a
    assert (out / "metrics.json").read_bytes() == metrics_a
    model, metrics = load_run(out)
    assert metrics["args"]["seed"] == 0
    partial = _strict_json(out / "metrics.partial.json")
    assert partial["status"] == "interrupted" and partial["args"]["seed"] == 1
    assert [e["epoch"] for e in partial["epochs"]] == [1]

    # A finished --overwrite run replaces it, and leaves only its own two files.
    monkeypatch.setattr(train_module, "fit", real_fit)
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt"]
    _, metrics = load_run(out)
    assert metrics["args"]["seed"] == 1 and len(metrics["epochs"]) == 2
    # A folder that mixes two runs (weights copied over by hand) is refused by load_run.
    (out / "model.pt").write_bytes(model_a)
    with pytest.raises(RunFileError, match="mixes two runs"):
        load_run(out)


def test_init_with_damaged_files_is_one_argparse_error(finished_run, tmp_path, capsys):
    run, model_bytes, metrics_bytes = finished_run
    truncated_model = _copy_run(run, tmp_path / "model")
    (truncated_model / "model.pt").write_bytes(model_bytes[:len(model_bytes) // 2])
    truncated_metrics = _copy_run(run, tmp_path / "metrics")
    (truncated_metrics / "metrics.json").write_bytes(metrics_bytes[:300])
    for src, name, reason in ((truncated_model, "model.pt", "cannot be read"),
                              (truncated_metrics, "metrics.json", "damaged or truncated")):
        with pytest.raises(SystemExit) as exc:
            main(["--epochs", "1", "--init", str(src), "--output", str(tmp_path / "out"), *QUICK])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"--init {src}: {src / name}" in err and reason in err, err
        assert "Traceback" not in err and "PytorchStreamReader" not in err
        assert err.count("error:") == 1


def test_output_inside_a_file_is_refused_before_loading(tmp_path, capsys, monkeypatch):
    import effnet_tutorial.train as train_module

    def loaded(*args, **kwargs):
        raise AssertionError("the data was loaded before --output was checked")

    monkeypatch.setattr(train_module, "load_dataset", loaded)
    (tmp_path / "somefile").write_text("")
    with pytest.raises(SystemExit) as exc:
        main(["--epochs", "1", "--output", str(tmp_path / "somefile" / "run"), *QUICK])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--output {tmp_path / 'somefile' / 'run'}: {tmp_path / 'somefile'} is a file" in err, err


def test_model_spec_refuses_infinite_coefficients_and_repeated_keys():
    for spec in ("efficientnet-b0:width=inf", "efficientnet-b0:depth=-inf",
                 "efficientnet-b0:dropout=nan"):
        with pytest.raises(ValueError, match="must be a finite number"):
            parse_model_spec(spec)
    with pytest.raises(ValueError, match="width is given twice"):
        parse_model_spec("efficientnet-b0:width=0.25,depth=0.25,width=0.5")


def test_classes_out_of_range_get_a_short_message():
    for text in ("0-100000", "0-999999999", "0-" + "9" * 5000, "3,100000"):
        with within(10), pytest.raises(ValueError) as exc:
            parse_classes(text)
        message = str(exc.value)
        assert "does not exist" in message and "labels run from 0 to 9" in message, message
        assert len(message) < 200, len(message)
    with pytest.raises(ValueError, match=r"classes 10, 11, 12, 13, 14 and 5 more do not exist"):
        parse_classes(list(range(20)))


class _EvalBatches:
    """Records the batch sizes the model sees in eval mode (validation)."""

    def __init__(self):
        self.sizes = []

    def attach(self, model):
        model.register_forward_pre_hook(
            lambda m, inputs: None if m.training else self.sizes.append(inputs[0].shape[0]))
        return model


def test_validation_batches_follow_the_batch_size(tmp_path, monkeypatch):
    import effnet_tutorial.train as train_module

    train, val = load_digits(train_per_class=4)
    mean, std = channel_stats(train)
    seen = _EvalBatches()
    fit(seen.attach(build_model(TINY, 10, 1)), train, val, epoch_plan(1, 16), batch_size=4,
        lr=0.1, mean=mean, std=std, progress=False, log=None)
    assert max(seen.sizes) == 8 and sum(seen.sizes) == len(val)     # twice the batch size
    # The command line: the same default, or --eval-batch-size.
    real_build = train_module.build_model
    for extra, largest in (([], 8), (["--eval-batch-size", "6"], 6)):
        seen = _EvalBatches()
        monkeypatch.setattr(train_module, "build_model",
                            lambda *a, **k: seen.attach(real_build(*a, **k)))
        argv = ["--epochs", "1", "--train-per-class", "4", "--batch-size", "4", "--image-size", "16",
                "--no-progress", "--model", TINY, "--output", str(tmp_path / str(largest)), *extra]
        assert main(argv) == 0
        assert max(seen.sizes) == largest and sum(seen.sizes) == len(val)


def test_mixup_refuses_nan_and_absurd_alpha(tmp_path, capsys):
    x, y = torch.rand(4, 1, 8, 8), torch.arange(4)
    for alpha in (float("nan"), 1e308, float("inf"), -0.5, 1001):
        with within(10), pytest.raises(ValueError, match=r"mixup alpha must be a number from 0"):
            mixup(x, y, alpha, torch.Generator().manual_seed(0))
    assert 0 < mixup(x, y, 1000, torch.Generator().manual_seed(0))[3] < 1     # the largest accepted
    with within(120), pytest.raises(SystemExit) as exc:
        main(["--epochs", "1", "--mixup", "1e308", "--output", str(tmp_path / "out"), *QUICK])
    assert exc.value.code == 2
    assert "--mixup must be in [0, 1000]" in capsys.readouterr().err


def test_a_constant_channel_is_named_and_a_nearly_constant_one_keeps_a_positive_std():
    g = torch.Generator().manual_seed(0)
    n = 1000
    varied = torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    constant = torch.full((n, 1, 8, 8), 128, dtype=torch.uint8)
    data = ImageData(torch.cat([varied, constant], 1), torch.zeros(n, dtype=torch.long), ("a",))
    with pytest.raises(ValueError, match="channel 1 of the training images is constant"):
        channel_stats(data)
    nearly = constant.clone()
    nearly[0, 0, 0, 0] = 129                     # one pixel of 64,000 differs
    data = ImageData(torch.cat([varied, nearly], 1), torch.zeros(n, dtype=torch.long), ("a",))
    mean, std = channel_stats(data)
    exact = float((nearly.double() / 255).std())
    assert 0 < exact < 5e-5                       # 0.0000 at 4 decimals
    assert std[1] == pytest.approx(exact, rel=1e-3)
    assert torch.isfinite(preprocess(data.images[:4], 8, mean, std)).all()
    with pytest.raises(ValueError, match="std of channel 0 must be a positive"):
        normalize(torch.rand(1, 1, 4, 4), (0.5,), (0.0,))


def test_load_run_refuses_a_pickled_object_without_torchs_advice(finished_run, tmp_path):
    run, model_bytes, _ = finished_run
    marker = tmp_path / "payload-ran"
    out = _copy_run(run, tmp_path / "pickled")
    torch.save({"weights": _Payload(str(marker))}, out / "model.pt")
    metrics = json.loads((out / "metrics.json").read_text())
    metrics.pop("model_sha256", None)             # as if written without a digest
    (out / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RunFileError) as exc:
        load_run(out)
    message = str(exc.value)
    assert str(out / "model.pt") in message and "other than tensors" in message
    assert "weights_only" not in message and "re-run" not in message
    assert exc.value.__cause__ is None and exc.value.__suppress_context__
    assert not marker.exists()                    # the payload did not run
    (out / "model.pt").write_bytes(model_bytes[:1000])
    with pytest.raises(RunFileError, match="cannot be read: it is truncated"):
        load_run(out)


class _Payload:
    """What a malicious model.pt may hold: unpickling it would create ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# --------------------------------------------------------------------------------------
# --sync-bn: BatchNorm over the global batch, on CPUs too
# --------------------------------------------------------------------------------------
def _cross_process_bn_worker(rank, port, x, grad_out, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        from effnet_tutorial.train import convert_sync_batchnorm
        bn = convert_sync_batchnorm(nn.Sequential(nn.BatchNorm2d(3, momentum=0.5)))[0]
        with torch.no_grad():
            bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        part = x[rank * 3:(rank + 1) * 3].clone().requires_grad_(True)   # half the batch each
        y = bn(part)
        y.backward(grad_out[rank * 3:(rank + 1) * 3])
        results[rank] = (y.detach(), part.grad, bn.weight.grad, bn.running_mean.clone(),
                         bn.running_var.clone())
    finally:
        torch.distributed.destroy_process_group()


def test_cross_process_batchnorm_equals_batchnorm_on_the_global_batch():
    import socket

    import torch.multiprocessing as mp
    torch.manual_seed(0)
    x = torch.randn(6, 3, 4, 4) * 3 + 1
    grad_out = torch.randn(6, 3, 4, 4)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    manager = mp.get_context("spawn").Manager()
    results = manager.dict()
    mp.start_processes(_cross_process_bn_worker, args=(port, x, grad_out, results), nprocs=2,
                       start_method="spawn")
    # The reference: one BatchNorm on all six images.
    ref = nn.BatchNorm2d(3, momentum=0.5)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    xr = x.clone().requires_grad_(True)
    y = ref(xr)
    y.backward(grad_out)
    y0, g0, w0, rm0, rv0 = results[0]
    y1, g1, w1, rm1, rv1 = results[1]
    torch.testing.assert_close(torch.cat([y0, y1]), y.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([g0, g1]), xr.grad, atol=1e-5, rtol=1e-5)
    # Each process has its half of dL/dweight; DDP's all-reduce would add them up.
    torch.testing.assert_close(w0 + w1, ref.weight.grad, atol=1e-5, rtol=1e-5)
    for rm, rv in ((rm0, rv0), (rm1, rv1)):
        torch.testing.assert_close(rm, ref.running_mean)
        torch.testing.assert_close(rv, ref.running_var)


def test_cross_process_batchnorm_is_plain_batchnorm_in_one_process():
    from effnet_tutorial.train import CrossProcessBatchNorm2d, convert_sync_batchnorm
    torch.manual_seed(0)
    model = build_model(TINY, 10, 1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 1, 16, 16)
    torch.manual_seed(1)                                # the same dropout draws
    expected = model.train()(x)                         # training mode: batch statistics
    convert_sync_batchnorm(model)
    assert any(isinstance(m, CrossProcessBatchNorm2d) for m in model.modules())
    assert not any(type(m) is nn.BatchNorm2d for m in model.modules())
    model.load_state_dict(state)                       # the same keys and shapes
    torch.manual_seed(1)
    torch.testing.assert_close(model(x), expected)


def test_sync_bn_needs_several_processes(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--epochs", "1", "--sync-bn", "--output", str(tmp_path / "r"), *QUICK])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--sync-bn needs several processes" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_rank_dumps_must_not_be_the_output(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--epochs", "1", "--output", str(tmp_path), "--rank-dumps", str(tmp_path), *QUICK])
    assert "--rank-dumps must be another folder than --output" in capsys.readouterr().err


def test_rank_dumps_in_one_process(tmp_path):
    main(["--epochs", "1", "--output", str(tmp_path / "run"), "--rank-dumps",
          str(tmp_path / "dumps"), *QUICK])
    dump = torch.load(tmp_path / "dumps" / "rank0.pt", weights_only=True)
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert _same_state(dump["state_dict"], saved)
    assert sorted(dump["epoch1_indices"].tolist()) == list(range(200))   # one process: all
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # The epoch's train_loss is the mean of its step losses.
    assert metrics["epochs"][0]["train_loss"] == pytest.approx(dump["step_losses"].mean().item())


def test_swish_default_is_silu_and_batch_size_has_a_default(tmp_path):
    from effnet_tutorial.layers import MemoryEfficientSwish
    from effnet_tutorial.train import DEFAULT_BATCH_SIZE, build_parser
    args = build_parser().parse_args(["--epochs", "1", "--output", str(tmp_path)])
    assert args.swish == "silu" and args.batch_size == DEFAULT_BATCH_SIZE == 128
    silu = build_model(TINY, 10, 1, swish="silu")
    eff = build_model(TINY, 10, 1, swish="efficient")
    assert any(isinstance(m, nn.SiLU) for m in silu.modules())
    assert not any(isinstance(m, MemoryEfficientSwish) for m in silu.modules())
    eff.load_state_dict(silu.state_dict())      # the Swish has no weights: the same model
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(silu.eval()(x), eff.eval()(x))
    with pytest.raises(ValueError, match="swish must be one of silu, efficient, naive"):
        build_model(TINY, 10, 1, swish="relu")


def test_swish_choice_error_names_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--epochs", "1", "--swish", "relu", "--output", str(tmp_path), *QUICK])
    assert "invalid choice: 'relu' (choose from silu, efficient, naive)" in \
        capsys.readouterr().err.replace("'silu', 'efficient', 'naive'", "silu, efficient, naive")


def test_rank_dumps_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "dumps"
    f.write_text("not a folder")
    with pytest.raises(SystemExit) as exc:
        main(["--epochs", "1", "--output", str(tmp_path / "run"), "--rank-dumps", str(f), *QUICK])
    assert exc.value.code == 2
    assert f"--rank-dumps {f} exists and is not a directory" in capsys.readouterr().err
