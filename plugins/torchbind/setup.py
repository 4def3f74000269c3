"""Build the two shared libraries of torchexec-torchbind against the installed torch.

- ``torchexec_torchbind._lib_engine``: the ``torch.classes.torchexec.Engine`` TorchBind class.
- ``torchexec_torchbind._lib_testing``: TorchBind test classes (namespace ``torchexec_testing``),
  loaded only by ``torchexec_torchbind.testing.load()``.

Neither is a Python module: both only register operators and classes with ``TORCH_LIBRARY``
and are loaded with ``torch.ops.load_library``.
"""

from pathlib import Path

import torch
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

HERE = Path(__file__).parent
CSRC = Path("csrc")
# -Wno-array-bounds: GCC misreads the inline storage of c10::ivalue::TupleElements.
FLAGS = {"cxx": ["-O3", "-g0", "-Wall", "-Wno-unused-function", "-Wno-array-bounds"]}

engine_sources = sorted(str(p) for p in (CSRC / "engine").glob("*.cpp"))

setup(
    ext_modules=[
        CppExtension(
            "torchexec_torchbind._lib_engine",
            engine_sources,
            include_dirs=[str((HERE / CSRC / "engine").resolve())],
            define_macros=[("TORCHEXEC_TORCH_VERSION", f'"{torch.__version__}"')],
            extra_compile_args=FLAGS,
        ),
        CppExtension(
            "torchexec_torchbind._lib_testing",
            [str(CSRC / "testing.cpp")],
            extra_compile_args=FLAGS,
        ),
    ],
    cmdclass={"build_ext": BuildExtension},
)
