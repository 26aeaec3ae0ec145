import subprocess
import sys

import pytest


def test_import_is_cheap():
    code = ("import sys, pyterrier_gradrel; "
            "print('torch' in sys.modules, 'faiss' in sys.modules, 'ir_datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


@pytest.mark.parametrize("order", ["package first", "ir_datasets first", "a submodule first", "pyterrier only"])
def test_datasets_are_registered_whatever_is_imported_first(order):
    """The datasets register the moment ir_datasets is imported, whichever import comes first."""
    first = {
        "package first": "import pyterrier_gradrel, ir_datasets",
        "ir_datasets first": "import ir_datasets, pyterrier_gradrel",
        "a submodule first": "import pyterrier_gradrel.datasets._local, ir_datasets",
        "pyterrier only": "import ir_datasets, pyterrier as pt; pt.gradrel",  # the pyterrier.modules entry point
    }[order]
    code = f"{first}; import ir_datasets; print(ir_datasets.load('gradrel/xquad-r/de/test').docs_cls().__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "XQuadDoc"


def test_tiny_encoder_fixture(tiny_encoder_dir):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    model = AutoModel.from_pretrained(tiny_encoder_dir)
    enc = tok(["สุนัขจิ้งจอก", "hello world"], padding=True, return_tensors="pt")
    assert model(**enc).last_hidden_state.shape[-1] == 32
