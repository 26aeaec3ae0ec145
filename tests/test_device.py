"""``device="auto"``: CUDA when torch sees one, else CPU; what follows from it; never part of a run key.

The CUDA branches are checked with torch.cuda's availability monkeypatched: these machines have no GPU,
so the CUDA path itself (kernels, bf16 autocast on a GPU) is not exercised here.
"""
from __future__ import annotations

import pytest
import torch

from pyterrier_gradrel import _device
from pyterrier_gradrel.experiments import load_config, plan, run_key
from pyterrier_gradrel.experiments._config import ConfigError


@pytest.fixture
def cuda(monkeypatch):
    """Pretend torch sees CUDA devices (``bf16`` says whether device 0, the current one, multiplies bf16 natively;
    ``capabilities`` gives other devices' compute capability). ``is_bf16_supported`` answers ``True`` throughout,
    as torch does for GPUs that emulate bf16."""

    def set_cuda(available: bool = True, bf16: bool = True, capabilities: dict[int, tuple[int, int]] | None = None):
        caps = {0: (8, 0) if bf16 else (7, 5), **(capabilities or {})}

        def capability(device=None):
            index = torch.device(device).index if device is not None else None
            return caps[0 if index is None else index]  # no index: the current device (0)

        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)

    return set_cuda


def test_auto_is_cpu_without_cuda(cuda):
    cuda(False)
    assert _device.resolve_device("auto") == torch.device("cpu")
    assert _device.resolve_device(None) == torch.device("cpu")
    assert _device.encode_batch_size("cpu") == 32


def test_auto_is_cuda_when_available(cuda):
    cuda(True)
    assert _device.resolve_device("auto") == torch.device("cuda")
    assert _device.resolve_device("cuda:1") == torch.device("cuda", 1)
    assert _device.resolve_device("cpu") == torch.device("cpu")  # an explicit CPU stays CPU
    assert _device.encode_batch_size(torch.device("cuda")) == 128


def test_asking_for_cuda_without_one_says_so(cuda):
    cuda(False)
    with pytest.raises(ValueError, match="sees no CUDA device"):
        _device.resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda'"):
        _device.resolve_device("gpu")


def test_precision_auto_is_bf16_on_bf16_cuda_only(cuda):
    from pyterrier_gradrel.models._encoder import resolve_precision

    cuda(True, bf16=True)
    assert resolve_precision("auto", torch.device("cuda")) == "bfloat16"
    cuda(True, bf16=False)
    assert resolve_precision("auto", torch.device("cuda")) == "float32"
    cuda(False)
    assert not _device.bf16_capable("cuda")
    assert resolve_precision("float32", torch.device("cuda")) == "float32"


def test_precision_auto_needs_native_bf16_on_the_device_asked_about(cuda):
    """A T4 or V100 (compute capability 7.x) only emulates bf16: float32 there, though is_bf16_supported() says
    True; the capability read is that of the device passed, not of the current device."""
    from pyterrier_gradrel.models._encoder import resolve_precision

    cuda(True, bf16=True, capabilities={1: (7, 5), 2: (9, 0), 3: (7, 0)})
    assert resolve_precision("auto", torch.device("cuda", 1)) == "float32"  # T4 beside a current A100
    assert resolve_precision("auto", torch.device("cuda", 2)) == "bfloat16"
    assert not _device.bf16_capable("cuda:3") and _device.bf16_capable("cuda:0") and _device.bf16_capable("cuda")
    cuda(True, bf16=False, capabilities={1: (8, 6)})
    assert resolve_precision("auto", torch.device("cuda")) == "float32"  # current device: sm_75
    assert resolve_precision("auto", torch.device("cuda", 1)) == "bfloat16"


def test_encoder_and_trainer_default_to_auto(tiny_encoder_dir, cuda):
    from pyterrier_gradrel.models import load_encoder
    from pyterrier_gradrel.training import ContrastiveTrainer

    cuda(False)
    enc = load_encoder(str(tiny_encoder_dir), precision="float32")
    assert enc.device == torch.device("cpu") and enc.batch_size == 32
    assert load_encoder(str(tiny_encoder_dir), precision="float32", batch_size=7).batch_size == 7
    assert ContrastiveTrainer(str(tiny_encoder_dir)).device == "auto"
    assert ContrastiveTrainer(str(tiny_encoder_dir), device=None).device == "auto"


def _cfg(training):
    return load_config({
        "name": "dev",
        "scenarios": [{"type": "monolingual", "collection": "xquad-r", "languages": ["en"]}],
        "thresholds": [2], "graded_loss": False, "seeds": [0], "training": training,
    })


def test_config_device_never_enters_run_keys(mirror):
    """`device: auto` or `cuda` gives the very same run keys and TrainConfigs as a config without `device`."""
    from pyterrier_gradrel.experiments._data import DataCache
    from pyterrier_gradrel.experiments._store import key_material

    data = DataCache(limit_queries=4)
    plain, auto, gpu = _cfg({"max_steps": 2}), _cfg({"max_steps": 2, "device": "auto"}), \
        _cfg({"max_steps": 2, "device": "cuda"})
    assert plain.training.device == "auto" and gpu.training.device == "cuda"
    assert plain.hyperparameters == auto.hyperparameters == gpu.hyperparameters == {"max_steps": 2}

    def keys(cfg):
        return [run_key(key_material(c, cfg, data, lambda: "f" * 64)) for c in plan(cfg)]

    assert keys(plain) == keys(auto) == keys(gpu)
    ft = next(c for c in plan(gpu) if c.fine_tuned)
    assert ft.train_config == next(c for c in plan(plain) if c.fine_tuned).train_config  # TrainConfig has no device


def test_config_device_must_be_a_string():
    with pytest.raises(ConfigError, match=r"training\.device: expected 'auto', 'cpu', 'cuda' or a torch device .*got 0"):
        _cfg({"device": 0})
    with pytest.raises(ConfigError, match=r"training: unknown hyper-parameter\(s\) \['devcie'\]: expected some of .*'device'"):
        _cfg({"devcie": "cpu"})


def test_cli_offers_device_for_train_and_run():
    import argparse

    from pyterrier_gradrel.experiments._cli import add_parser as add_run
    from pyterrier_gradrel.training._cli import add_parser as add_train

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_run(sub)
    add_train(sub)
    args = parser.parse_args(["run", "x.yaml", "--device", "cuda:1", "--executor", "ray", "--address", "auto"])
    assert (args.device, args.executor, args.address) == ("cuda:1", "ray", "auto")
    assert parser.parse_args(["run", "x.yaml"]).executor == "local"
    assert parser.parse_args(["train", "--dataset", "gradrel/xquad-r/en/train"]).device == "auto"
