import subprocess
import sys


def test_import_is_cheap():
    code = "import sys, pyterrier_gradrel; print('torch' in sys.modules, 'faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_tiny_encoder_fixture(tiny_encoder_dir):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    model = AutoModel.from_pretrained(tiny_encoder_dir)
    enc = tok(["สุนัขจิ้งจอก", "hello world"], padding=True, return_tensors="pt")
    assert model(**enc).last_hidden_state.shape[-1] == 32
