"""What ships to SageMaker: code/ml/sourcedir.tar.gz runs train.py and serve.py on its own, without the project."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from flightdelay.aws.deploy import _sourcedir_tarball
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.engine  # imports the unpacked tarball in a subprocess


def _tarball() -> bytes:
    return _sourcedir_tarball(SimpleNamespace(project_root=PROJECT_ROOT))


def test_the_tarball_holds_every_ml_module_and_is_the_same_bytes_every_time():
    tarball = _tarball()
    assert tarball == _tarball()
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        names = archive.getnames()
        assert archive.extractfile("ml/train.py").read() == (PROJECT_ROOT / "ml" / "train.py").read_bytes()
        assert {member.mtime for member in archive.getmembers()} == {0}
    modules = {f"ml/{path.name}" for path in (PROJECT_ROOT / "ml").glob("*.py")}
    # nothing else: the feature ranges the server checks come with the model (feature_spec.json), not the code
    assert set(names) == modules | {"train.py", "serve.py", "ml/hyperparameters.json"}
    assert names == sorted(names)


def test_train_and_serve_import_from_the_unpacked_tarball_alone(tmp_path: Path):
    with tarfile.open(fileobj=io.BytesIO(_tarball())) as archive:
        archive.extractall(tmp_path, filter="data")
    # -I: no PYTHONPATH, no user site; the folder is put first, as the container runs its programs from it. The
    # project is installed in the venv too, so every module checks that it came from the folder.
    script = """
import sys
sys.path.insert(0, sys.argv[1])
import ml, ml.train, ml.feature_ranges, serve
for module in (ml, ml.train, ml.feature_ranges, serve):
    assert module.__file__.startswith(sys.argv[1]), module.__file__
assert callable(serve.model_fn) and callable(serve.input_fn) and callable(serve.predict_fn)
assert callable(serve.output_fn) and ml.train.parse_args([]).max_depth > 0
print("ok")
"""
    completed = subprocess.run([sys.executable, "-I", "-c", script, str(tmp_path)], cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip() == "ok"


def test_hidden_files_and_dangling_links_in_ml_are_neither_shipped_nor_counted(tmp_path: Path):
    """An editor's lock file (`.#serve.py`, a link to nowhere) or a hidden scratch file in ml/ must not break the
    deploy nor change the code's digest, which the model id and the training inputs hash."""
    from ml.model_identity import code_digest

    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "ml", root / "ml", ignore=shutil.ignore_patterns("__pycache__"))
    clean = (_sourcedir_tarball(SimpleNamespace(project_root=root)), code_digest(root / "ml"))
    (root / "ml" / ".#serve.py").symlink_to("nobody@host.1234:1700000000")
    (root / "ml" / ".scratch.py").write_text("raise SystemExit('not meant to ship')\n")
    assert (_sourcedir_tarball(SimpleNamespace(project_root=root)), code_digest(root / "ml")) == clean
    assert code_digest(root / "ml") == code_digest(PROJECT_ROOT / "ml")
