"""package.xml and setup.py's install_requires match what the code imports (of the install under
test): every third-party import is declared where rosdep or pip will install it, and nothing is
declared that no code imports, so `rosdep install` gives a robot exactly what the node needs.
"""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import requires
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory

import evf_sam_ros

# Python modules with a rosdep key (package.xml) rather than a ROS package of the same name.
ROSDEP_PYTHON = {
    'numpy': 'python3-numpy',
    'PIL': 'python3-pil',
    'yaml': 'python3-yaml',
    'pytest': 'python3-pytest',
}
# Python modules from pip (setup.py install_requires), by distribution name.
PIP = {
    'torch': 'torch',
    'torchvision': 'torchvision',
    'segment_anything': 'segment-anything',
    'sam2': 'sam2',
    'safetensors': 'safetensors',
    'sentencepiece': 'sentencepiece',
    'huggingface_hub': 'huggingface_hub',
    'rosbags': 'rosbags',
    'imageio': 'imageio',
    'imageio_ffmpeg': 'imageio-ffmpeg',
    'tqdm': 'tqdm',
    'numpy': 'numpy',
    'onnx': 'onnx',  # the onnx extra (setup.py): graph backends and their tests
    'onnxruntime': 'onnxruntime',
    'backports': 'backports.zstd',  # truncated zstd chunks (replay salvage)
    'lz4': 'lz4',  # truncated lz4 chunks (replay salvage)
    'PIL': 'pillow',
    'yaml': 'pyyaml',
}
OPTIONAL = {'apsw'}  # imported under contextlib.suppress(ImportError): rosbags' sqlite back end
# imported only by `evf-sam-replay --ray` (setup.py extra "ray"; without it a one-line error)
OPTIONAL |= {'ray'}
# imported only by the graph backends and evf-sam-export (setup.py extra "onnx"; without them
# backend onnxruntime / tensorrt is refused with the install line, BackendUnavailableError)
OPTIONAL |= {'onnx', 'onnxruntime', 'onnxscript', 'tensorrt'}
OWN = {'evf_sam_ros', 'ros_harness', 'tracking_reference', 'test_tracker', 'graph_exports'}


def _imports(files: list[Path]) -> set[str]:
    """Top-level names of the absolute imports in ``files``, standard library left out."""
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split('.')[0])
    return names - set(sys.stdlib_module_names) - OWN - {'__future__'}


def _rosdep_key(module: str) -> str:
    return ROSDEP_PYTHON.get(module, module)


@pytest.fixture(scope='module')
def declared() -> dict[str, set[str]]:
    """package.xml's dependencies by tag (of the installed package.xml)."""
    share = Path(get_package_share_directory('evf_sam_ros'))
    root = ET.parse(share / 'package.xml').getroot()
    tags = ('exec_depend', 'test_depend')
    return {tag: {e.text.strip() for e in root.iter(tag)} for tag in tags}


@pytest.fixture(scope='module')
def code_imports() -> set[str]:
    """Imports of the package's modules and of its installed launch file."""
    files = list(Path(evf_sam_ros.__file__).parent.rglob('*.py'))
    files += list((Path(get_package_share_directory('evf_sam_ros')) / 'launch').glob('*.py'))
    return _imports(files) - OPTIONAL


def test_every_import_is_declared_for_rosdep_or_pip(declared, code_imports):
    pip = {
        r.split(';')[0].split('>')[0].split('=')[0].split('<')[0].strip().lower()
        for r in requires('evf_sam_ros') or []
        if 'extra ==' not in r
    }
    for module in sorted(code_imports):
        key = _rosdep_key(module)
        if module in PIP and module not in ROSDEP_PYTHON:
            assert PIP[module].lower() in pip, f'{module}: add {PIP[module]} to install_requires'
        else:
            assert key in declared['exec_depend'], f'{module}: add <exec_depend>{key}</...>'


def test_nothing_is_declared_that_no_code_imports(declared, code_imports):
    imported = {_rosdep_key(m) for m in code_imports}
    assert declared['exec_depend'] - imported == set()


def test_test_imports_are_declared(declared, code_imports):
    tests = _imports(list(Path(__file__).parent.glob('*.py')))
    keys = {_rosdep_key(m) for m in tests - code_imports if m not in PIP or m in ROSDEP_PYTHON}
    assert keys - declared['exec_depend'] - declared['test_depend'] == set()
    assert declared['test_depend'] - keys == set(), 'a test_depend no test imports'
