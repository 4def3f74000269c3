"""Build the two shared libraries of torchexec-torchbind against the installed torch.

- ``torchexec_torchbind._lib_engine``: the ``torch.classes.torchexec.Engine`` TorchBind class.
- ``torchexec_torchbind._lib_testing``: TorchBind test classes (namespace ``torchexec_testing``),
  loaded only by ``torchexec_torchbind.testing.load()``.

Neither is a Python module: both only register operators and classes with ``TORCH_LIBRARY``
and are loaded with ``torch.ops.load_library``.
"""

import sys
from pathlib import Path

import torch
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

HERE = Path(__file__).parent
CSRC = Path("csrc")
# -Wno-array-bounds: GCC misreads the inline storage of c10::ivalue::TupleElements.
FLAGS = {"cxx": ["-O3", "-g0", "-Wall", "-Wno-unused-function", "-Wno-array-bounds"]}
# Link the C++ runtime that torch itself uses, by its soname, never a static copy. On the GPU
# machine (Ubuntu's g++ 13 against a torch 2.11 wheel) g++'s implicit -lstdc++ embedded a private
# libstdc++ in the libraries (no libstdc++.so.6 among their NEEDED entries) whose stream locale is
# never initialised: the first error message that formatted a number (most TORCH_CHECKs) crashed
# the process with SIGSEGV instead of raising.
LINK = ["-l:libstdc++.so.6"] if sys.platform.startswith("linux") else []

engine_sources = sorted(str(p) for p in (CSRC / "engine").glob("*.cpp"))

setup(
    ext_modules=[
        CppExtension(
            "torchexec_torchbind._lib_engine",
            engine_sources,
            include_dirs=[str((HERE / CSRC / "engine").resolve())],
            define_macros=[("TORCHEXEC_TORCH_VERSION", f'"{torch.__version__}"')],
            extra_compile_args=FLAGS,
            extra_link_args=LINK,
        ),
        CppExtension(
            "torchexec_torchbind._lib_testing",
            [str(CSRC / "testing.cpp")],
            extra_compile_args=FLAGS,
            extra_link_args=LINK,
        ),
    ],
    cmdclass={"build_ext": BuildExtension},
)
