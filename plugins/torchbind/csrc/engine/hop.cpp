// Running higher-order operator nodes: each subgraph is a child Engine, run on the operands the
// node reads. The semantics are torch's eager implementations (torch/_higher_order_ops), so the
// results are bit for bit those of the aten executor.

#include "engine.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <utility>

namespace torchexec {

using c10::IValue;

namespace {

std::vector<IValue> gather(const std::vector<int64_t>& items, const std::vector<IValue>& slots) {
  std::vector<IValue> out;
  out.reserve(items.size());
  for (int64_t s : items) {
    out.push_back(slots[static_cast<size_t>(s)]);
  }
  return out;
}

std::vector<IValue> joined(const std::vector<IValue>& a, const std::vector<IValue>& b) {
  std::vector<IValue> out(a);
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// A predicate: a bool, or a bool tensor of one element (as torch's while_loop demands).
bool truth(const IValue& v, const Node& node) {
  if (v.isBool()) {
    return v.toBool();
  }
  TORCH_CHECK(v.isTensor() && v.toTensor().dim() == 0 &&
                  v.toTensor().scalar_type() == at::kBool,
              "torchexec.Engine: node '", node.name, "' (", node.target,
              "): the predicate must be a bool or a boolean scalar tensor");
  return v.toTensor().item<bool>();
}

// The common leading size of the tensors iterated over.
int64_t leading(const std::vector<IValue>& xs, const Node& node) {
  const int64_t n = xs[0].toTensor().dim() > 0 ? xs[0].toTensor().size(0) : 0;
  for (const IValue& x : xs) {
    const at::Tensor& t = x.toTensor();
    TORCH_CHECK(n > 0 && t.dim() > 0 && t.size(0) == n, "torchexec.Engine: node '", node.name,
                "' (", node.target,
                "): the tensors iterated over must share a non-empty leading dimension");
  }
  return n;
}

std::vector<IValue> slices(const std::vector<IValue>& xs, int64_t i) {
  std::vector<IValue> out;
  out.reserve(xs.size());
  for (const IValue& x : xs) {
    out.emplace_back(x.toTensor().select(0, i));
  }
  return out;
}

// Each column of `rows` stacked along a new leading dimension, from column `first` on.
std::vector<IValue> stacked(const std::vector<std::vector<IValue>>& rows, size_t first) {
  std::vector<IValue> out;
  for (size_t j = first; j < rows[0].size(); ++j) {
    std::vector<at::Tensor> column;
    column.reserve(rows.size());
    for (const auto& row : rows) {
      column.push_back(row[j].toTensor());
    }
    out.emplace_back(at::stack(column));
  }
  return out;
}

std::vector<IValue> run_cond(const Node& node, const std::vector<IValue>& slots) {
  const bool pred = node.pred_slot >= 0
      ? truth(slots[static_cast<size_t>(node.pred_slot)], node)
      : node.pred_value;
  return node.subgraphs[pred ? 0 : 1]->run(gather(node.lists[0], slots));
}

std::vector<IValue> run_while(const Node& node, const std::vector<IValue>& slots) {
  std::vector<IValue> carried = gather(node.lists[0], slots);
  const std::vector<IValue> extra = gather(node.lists[1], slots);
  const Engine& cond = *node.subgraphs[0];
  const Engine& body = *node.subgraphs[1];
  bool go_on = truth(cond.run(joined(carried, extra))[0], node);
  if (!go_on) {  // torch returns copies when the body never runs
    for (IValue& v : carried) {
      if (v.isTensor()) {
        v = v.toTensor().clone();
      }
    }
    return carried;
  }
  int64_t count = 0;
  while (go_on) {
    TORCH_CHECK(node.max_iterations < 0 || count < node.max_iterations,
                "torchexec.Engine: node '", node.name, "' (", node.target, ") ran ",
                node.max_iterations,
                " iterations without ending (the max_loop_iterations option)");
    carried = body.run(joined(carried, extra));
    ++count;
    go_on = truth(cond.run(joined(carried, extra))[0], node);
  }
  return carried;
}

std::vector<IValue> run_map(const Node& node, const std::vector<IValue>& slots) {
  const std::vector<IValue> xs = gather(node.lists[0], slots);
  const std::vector<IValue> extra = gather(node.lists[1], slots);
  const int64_t n = leading(xs, node);
  std::vector<std::vector<IValue>> rows;
  rows.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    rows.push_back(node.subgraphs[0]->run(joined(slices(xs, i), extra)));
  }
  return rows[0].empty() ? std::vector<IValue>{} : stacked(rows, 0);
}

std::vector<IValue> run_scan(const Node& node, const std::vector<IValue>& slots) {
  std::vector<IValue> carry = gather(node.lists[0], slots);
  const std::vector<IValue> xs = gather(node.lists[1], slots);
  const std::vector<IValue> extra = gather(node.lists[2], slots);
  const size_t k = carry.size();
  const int64_t n = leading(xs, node);
  std::vector<std::vector<IValue>> rows;
  rows.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    std::vector<IValue> out = node.subgraphs[0]->run(joined(joined(carry, slices(xs, i)), extra));
    carry.assign(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k));
    rows.push_back(std::move(out));
  }
  std::vector<IValue> result = std::move(carry);
  if (rows[0].size() > k) {
    std::vector<IValue> ys = stacked(rows, k);
    result.insert(result.end(), ys.begin(), ys.end());
  }
  return result;
}

}  // namespace

void run_hop(const Node& node, const std::vector<IValue>& slots, torch::jit::Stack& stack) {
  std::vector<IValue> results;
  try {
    switch (node.hop) {
      case Hop::kCond:
        results = run_cond(node, slots);
        break;
      case Hop::kWhileLoop:
        results = run_while(node, slots);
        break;
      case Hop::kMap:
        results = run_map(node, slots);
        break;
      case Hop::kScan:
        results = run_scan(node, slots);
        break;
      case Hop::kInvokeSubgraph:
        results = node.subgraphs[0]->run(gather(node.lists[0], slots));
        break;
    }
  } catch (c10::Error& err) {
    err.add_context("while running node '" + node.name + "' (" + node.target +
                    ") in torchexec.Engine");
    throw;
  }
  for (IValue& v : results) {
    stack.push_back(std::move(v));
  }
}

}  // namespace torchexec
