// Running an Engine: the per-node loop. Everything here was validated when the engine was
// built; the loop only moves IValues between slots and one reused stack.

#include "engine.h"

#include <ATen/ATen.h>
#include <ATen/ScalarOps.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>

namespace torchexec {

using c10::IValue;

namespace {

std::string kind_name(const IValue& v) {
  if (v.isInt()) {
    return "int";
  }
  if (v.isDouble()) {
    return "float";
  }
  if (v.isBool()) {
    return "bool";
  }
  if (v.isString()) {
    return "str";
  }
  if (v.isNone()) {
    return "None";
  }
  if (v.isTensor()) {
    return v.toTensor().defined() ? "Tensor" : "an undefined tensor";
  }
  return v.tagKind();
}

// The checks of one input of InputKind kTensor: defined, and of the dtype and device given.
void check_tensor_input(const InputSpec& spec, const IValue& x, size_t i) {
  TORCH_CHECK_VALUE(x.isTensor() && x.toTensor().defined(), "torchexec.Engine.run: input ", i,
                    " must be a tensor, got ", kind_name(x));
  const at::Tensor& t = x.toTensor();
  TORCH_CHECK_VALUE(!spec.dtype.has_value() || t.scalar_type() == *spec.dtype,
                    "torchexec.Engine.run: input ", i, " must have dtype ",
                    dtype_name(*spec.dtype), ", got ", dtype_name(t.scalar_type()));
  TORCH_CHECK_VALUE(
      !spec.device_type.has_value() ||
          (t.device().type() == *spec.device_type &&
           (spec.device_index < 0 || t.device().index() == spec.device_index)),
      "torchexec.Engine.run: input ", i, " must be on ",
      spec.device_type.has_value() ? c10::DeviceTypeName(*spec.device_type, true) : "",
      spec.device_index >= 0 ? ":" + std::to_string(spec.device_index) : "", ", got ",
      t.device().str());
}

// Pushes a node's arguments onto the stack, as its steps say.
void push_arguments(const Node& node, std::vector<IValue>& slots, torch::jit::Stack& stack) {
  for (const Step& step : node.steps) {
    const auto index = static_cast<size_t>(step.index);
    switch (step.kind) {
      case StepKind::kStatic:
        stack.push_back(node.statics[index]);
        break;
      case StepKind::kSlot:
        stack.push_back(slots[index]);
        break;
      case StepKind::kSlotMove:
        stack.push_back(std::move(slots[index]));
        break;
      case StepKind::kTensorList: {
        const auto& items = node.lists[index];
        c10::List<at::Tensor> list;
        list.reserve(items.size());
        for (int64_t s : items) {
          list.push_back(slots[static_cast<size_t>(s)].toTensor());
        }
        stack.emplace_back(std::move(list));
        break;
      }
      case StepKind::kOptTensorList: {
        const auto& items = node.lists[index];
        c10::List<std::optional<at::Tensor>> list;
        list.reserve(items.size());
        for (int64_t s : items) {
          if (s < 0) {
            list.push_back(std::nullopt);
          } else {
            list.push_back(slots[static_cast<size_t>(s)].toTensor());
          }
        }
        stack.emplace_back(std::move(list));
        break;
      }
      case StepKind::kNumberToTensor: {
        at::Tensor t = at::scalar_to_tensor(slots[index].toScalar());
        t.unsafeGetTensorImpl()->set_wrapped_number(true);
        stack.emplace_back(std::move(t));
        break;
      }
      case StepKind::kIntList: {
        const auto& items = node.mixed[index];
        c10::List<int64_t> list;
        list.reserve(items.size());
        for (const MixedItem& item : items) {
          list.push_back(item.from_slot ? slots[static_cast<size_t>(item.value)].toInt()
                                        : item.value);
        }
        stack.emplace_back(std::move(list));
        break;
      }
    }
  }
}

// Calls the node on its arguments; the stack then holds its results.
void call_node(const Node& node, torch::jit::Stack& stack) {
  try {
    switch (node.kind) {
      case NodeKind::kOp:
        node.op->callBoxed(stack);
        break;
      case NodeKind::kTorchBind:
        node.method->run(stack);
        break;
      case NodeKind::kPython: {
        IValue result = python_call(node.pyfn, stack.data());
        stack.clear();
        stack.push_back(std::move(result));
        break;
      }
      case NodeKind::kHop:  // run by run_hop()
        break;
    }
  } catch (c10::Error& err) {
    err.add_context("while running node '" + node.name + "' (" + node.target +
                    ") in torchexec.Engine");
    throw;
  }
}

// Moves the node's results from the stack into their slots (unpacking a returned list or
// tuple when the node spreads it over several outputs).
void store_results(const Node& node, std::vector<IValue>& slots, torch::jit::Stack& stack) {
  const size_t n_out = node.outputs.size();
  if (node.returns_list || node.unpack_tuple) {
    TORCH_CHECK(!stack.empty(), "torchexec.Engine: node '", node.name, "' returned nothing");
    IValue packed = std::move(stack[0]);
    const auto values = node.returns_list
        ? packed.toListRef()
        : c10::ArrayRef<IValue>(packed.toTupleRef().elements().asArrayRef());
    TORCH_CHECK(values.size() == n_out, "torchexec.Engine: node '", node.name, "' returned ",
                values.size(), " values, the program expects ", n_out);
    for (size_t j = 0; j < n_out; ++j) {
      if (node.outputs[j] >= 0) {
        slots[static_cast<size_t>(node.outputs[j])] = values[j];
      }
    }
  } else {
    TORCH_CHECK(stack.size() == n_out, "torchexec.Engine: node '", node.name, "' returned ",
                stack.size(), " values, the program expects ", n_out);
    for (size_t j = 0; j < n_out; ++j) {
      if (node.outputs[j] >= 0) {
        slots[static_cast<size_t>(node.outputs[j])] = std::move(stack[j]);
      }
    }
  }
}

}  // namespace

void Engine::check_inputs(const std::vector<IValue>& inputs) const {
  TORCH_CHECK_VALUE(inputs.size() == inputs_.size(),
                    "torchexec.Engine.run: expected ", inputs_.size(), " inputs, got ",
                    inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const IValue& x = inputs[i];
    switch (inputs_[i].kind) {
      case InputKind::kTensor:
        check_tensor_input(inputs_[i], x, i);
        break;
      case InputKind::kInt:
        TORCH_CHECK_VALUE(x.isInt(), "torchexec.Engine.run: input ", i,
                          " must be an int, got ", kind_name(x));
        break;
      case InputKind::kFloat:
        TORCH_CHECK_VALUE(x.isDouble(), "torchexec.Engine.run: input ", i,
                          " must be a float, got ", kind_name(x));
        break;
      case InputKind::kBool:
        TORCH_CHECK_VALUE(x.isBool(), "torchexec.Engine.run: input ", i,
                          " must be a bool, got ", kind_name(x));
        break;
      case InputKind::kStr:
        TORCH_CHECK_VALUE(x.isString(), "torchexec.Engine.run: input ", i,
                          " must be a str, got ", kind_name(x));
        break;
      case InputKind::kAny:
        break;
    }
  }
}

std::vector<IValue> Engine::initial_slots(const std::vector<IValue>& inputs) const {
  std::vector<IValue> slots(static_cast<size_t>(num_slots_));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs_[i].slot >= 0) {
      slots[static_cast<size_t>(inputs_[i].slot)] = inputs[i];
    }
  }
  for (const auto& entry : state_) {
    slots[static_cast<size_t>(entry.first)] = entry.second;
  }
  return slots;
}

std::vector<IValue> Engine::program_outputs(const std::vector<IValue>& slots) const {
  std::vector<IValue> result;
  result.reserve(outputs_.size());
  for (const Output& out : outputs_) {
    if (out.kind == OutputKind::kSlot) {
      result.push_back(slots[static_cast<size_t>(out.slot)]);
    } else {
      result.push_back(out.value);
    }
  }
  return result;
}

void Engine::apply_mutations(const std::vector<IValue>& slots,
                             const std::vector<IValue>& inputs) const {
  if (mutations_.empty()) {
    return;
  }
  at::NoGradGuard no_grad;
  for (const Mutation& m : mutations_) {
    const at::Tensor& value = slots[static_cast<size_t>(m.slot)].toTensor();
    if (m.to_buffer) {
      m.buffer.copy_(value);
    } else {
      inputs[static_cast<size_t>(m.input_index)].toTensor().copy_(value);
    }
  }
}

std::vector<IValue> Engine::run(std::vector<IValue> inputs) const {
  check_inputs(inputs);
  std::vector<IValue> slots = initial_slots(inputs);
  torch::jit::Stack stack;
  stack.reserve(max_stack_);
  for (const Node& node : nodes_) {
    if (node.kind == NodeKind::kHop) {
      run_hop(node, slots, stack);
    } else {
      push_arguments(node, slots, stack);
      call_node(node, stack);
    }
    for (int64_t s : node.frees) {
      slots[static_cast<size_t>(s)] = IValue();
    }
    store_results(node, slots, stack);
    stack.clear();
  }
  std::vector<IValue> result = program_outputs(slots);
  apply_mutations(slots, inputs);
  return result;
}

std::vector<std::string> Engine::operators() const {
  std::vector<std::string> names;
  names.reserve(nodes_.size());
  for (const Node& node : nodes_) {
    names.push_back(node.target);
  }
  return names;
}

}  // namespace torchexec
