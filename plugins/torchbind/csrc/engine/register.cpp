// Registers torch.classes.torchexec.Engine.
//
//   Engine(plan)                build and validate (RuntimeError naming the node on a bad plan);
//                               `plan` is the typed tuple PlanState (engine.h)
//   run(Any[] inputs) -> Any[]  flat user inputs -> flat user outputs
//   num_nodes(), num_slots(), num_inputs(), operators(), allowed_namespaces(), plan()
//
// The engine pickles through def_pickle: its state is the encoded plan (with the program's
// tensors and TorchBind objects inside), so torch.jit.save / torch.jit.load of a module that
// holds an engine rebuilds and revalidates it from the plan.

#include "engine.h"

#include <torch/custom_class.h>
#include <torch/library.h>

namespace {

using torchexec::Engine;
using EnginePtr = c10::intrusive_ptr<Engine>;

}  // namespace

TORCH_LIBRARY(torchexec, m) {
  m.class_<Engine>("Engine")
      .def(torch::init<torchexec::PlanState>())
      .def("run",
           [](const EnginePtr& self, c10::impl::GenericList inputs) {
             std::vector<c10::IValue> args(inputs.begin(), inputs.end());
             c10::impl::GenericList out(c10::AnyType::get());
             auto results = self->run(std::move(args));
             out.reserve(results.size());
             for (auto& v : results) {
               out.push_back(std::move(v));
             }
             return out;
           })
      .def("num_nodes", [](const EnginePtr& self) { return self->num_nodes(); })
      .def("num_slots", [](const EnginePtr& self) { return self->num_slots(); })
      .def("num_inputs", [](const EnginePtr& self) { return self->num_inputs(); })
      .def("operators", [](const EnginePtr& self) { return self->operators(); })
      .def("allowed_namespaces",
           [](const EnginePtr& self) { return self->allowed_namespaces(); })
      .def("plan", [](const EnginePtr& self) { return self->plan(); })
      .def_pickle(
          [](const EnginePtr& self) -> torchexec::PlanState { return self->plan(); },
          [](torchexec::PlanState state) -> EnginePtr {
            return c10::make_intrusive<Engine>(std::move(state));
          });
}
