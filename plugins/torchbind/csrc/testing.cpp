// Small TorchBind classes and one custom operator used to test executors on programs that hold
// TorchBind objects. They live in their own namespace (torchexec_testing) and their own shared
// library, loaded only on request by torchexec_torchbind.testing.load().
//
//   Scale        pure: holds a tensor; apply(x) = x * weight.
//   Accumulator  stateful: add(x) adds x to a running total, counts the calls, returns the total.
//   scale_add    operator taking a Scale: scale_add(scale, x, alpha=1) = x + alpha * weight.

#include <torch/custom_class.h>
#include <torch/library.h>

#include <ATen/ATen.h>

#include <string>
#include <tuple>

namespace torchexec_testing {

struct Scale : torch::CustomClassHolder {
  at::Tensor weight;

  explicit Scale(at::Tensor w) : weight(std::move(w)) {}

  at::Tensor apply(const at::Tensor& x) const {
    return x * weight;
  }
};

struct Accumulator : torch::CustomClassHolder {
  at::Tensor total;
  int64_t count = 0;

  Accumulator(at::Tensor initial, int64_t calls) : total(std::move(initial)), count(calls) {}

  at::Tensor add(const at::Tensor& x) {
    // Out of place, so a tensor returned earlier never changes afterwards.
    total = total + x;
    count += 1;
    return total;
  }
};

at::Tensor scale_add(
    const c10::intrusive_ptr<Scale>& scale,
    const at::Tensor& x,
    const at::Scalar& alpha) {
  return at::add(x, scale->weight, alpha);
}

}  // namespace torchexec_testing

TORCH_LIBRARY(torchexec_testing, m) {
  using torchexec_testing::Accumulator;
  using torchexec_testing::Scale;

  m.class_<Scale>("Scale")
      .def(torch::init<at::Tensor>())
      .def("apply", &Scale::apply)
      .def("get_weight", [](const c10::intrusive_ptr<Scale>& self) { return self->weight; })
      .def(
          "__obj_flatten__",
          [](const c10::intrusive_ptr<Scale>& self) {
            return std::make_tuple(std::make_tuple(std::string("weight"), self->weight));
          })
      .def_pickle(
          [](const c10::intrusive_ptr<Scale>& self) { return self->weight; },
          [](at::Tensor state) { return c10::make_intrusive<Scale>(std::move(state)); });

  m.class_<Accumulator>("Accumulator")
      .def(torch::init<at::Tensor, int64_t>())
      .def("add", &Accumulator::add)
      .def("get_total", [](const c10::intrusive_ptr<Accumulator>& self) { return self->total; })
      .def("get_count", [](const c10::intrusive_ptr<Accumulator>& self) { return self->count; })
      .def(
          "__obj_flatten__",
          [](const c10::intrusive_ptr<Accumulator>& self) {
            return std::make_tuple(
                std::make_tuple(std::string("total"), self->total),
                std::make_tuple(std::string("count"), self->count));
          })
      .def_pickle(
          [](const c10::intrusive_ptr<Accumulator>& self) {
            return std::make_tuple(self->total, self->count);
          },
          [](std::tuple<at::Tensor, int64_t> state) {
            return c10::make_intrusive<Accumulator>(
                std::move(std::get<0>(state)), std::get<1>(state));
          });

  // Declared here, implemented below for CompositeExplicitAutograd, so that Python can give it a
  // fake (meta) implementation for torch.export.
  m.def(
      "scale_add(__torch__.torch.classes.torchexec_testing.Scale scale, Tensor x, "
      "Scalar alpha=1) -> Tensor");
}

TORCH_LIBRARY_IMPL(torchexec_testing, CompositeExplicitAutograd, m) {
  m.impl("scale_add", &torchexec_testing::scale_add);
}
