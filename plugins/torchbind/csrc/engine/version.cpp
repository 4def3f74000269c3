// The torch version this library was compiled against. A library built against another torch
// loads without complaint but crashes at the first C++ exception (the headers' inline code no
// longer matches libtorch), so the Python side compares this with torch.__version__ first.

#include <torch/library.h>

#include <string>

#ifndef TORCHEXEC_TORCH_VERSION
#error "TORCHEXEC_TORCH_VERSION must be defined by setup.py"
#endif

TORCH_LIBRARY_FRAGMENT(torchexec, m) {
  m.def("built_with_torch() -> str", []() { return std::string(TORCHEXEC_TORCH_VERSION); });
}
