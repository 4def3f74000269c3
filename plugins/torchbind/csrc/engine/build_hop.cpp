// Building an Engine, part 3: higher-order operator nodes (kind "hop"). Their subgraphs arrive
// as child engines (argument rows tagged "engine" holding a torch.classes.torchexec.Engine),
// already built and validated from their own plans; here the node's operand groups are checked
// against the slots, and the subgraphs' input and output counts against the operator's rules.

#include "builder.h"

#include <c10/util/Exception.h>

#include <string>
#include <utility>

namespace torchexec {

using c10::IValue;
using c10::TypePtr;

namespace {

struct HopRule {
  Hop hop;
  size_t groups;     // operand groups (Tensor[] rows), after cond's predicate
  size_t subgraphs;  // child engines, last
};

HopRule hop_rule(const std::string& hop, const std::string& where) {
  if (hop == "cond") {
    return {Hop::kCond, 1, 2};
  }
  if (hop == "while_loop") {
    return {Hop::kWhileLoop, 2, 2};
  }
  if (hop == "map") {
    return {Hop::kMap, 2, 1};
  }
  if (hop == "scan") {
    return {Hop::kScan, 3, 1};
  }
  if (hop == "invoke_subgraph") {
    return {Hop::kInvokeSubgraph, 1, 1};
  }
  TORCH_CHECK(false, where, ": the engine does not run the higher-order operator '", hop,
              "' (it runs cond, while_loop, map, scan and invoke_subgraph)");
}

}  // namespace

std::vector<TypePtr> Builder::compile_hop(Node& node, const std::string& hop,
                                          const std::vector<ArgRow>& args) {
  const HopRule rule = hop_rule(hop, where_);
  node.hop = rule.hop;
  const size_t first = rule.hop == Hop::kCond ? 1 : 0;
  size_t rows = args.size();
  // while_loop may end with its bound: ("max_iterations", "int", [n]).
  if (rule.hop == Hop::kWhileLoop && rows > 0 && std::get<0>(args[rows - 1]) == "max_iterations") {
    const auto& [kw, tag, ints, floats, text, value] = args[rows - 1];
    TORCH_CHECK(tag == "int" && ints.size() == 1 && ints[0] > 0, where_,
                ": max_iterations must be a positive int");
    node.max_iterations = ints[0];
    --rows;
  }
  TORCH_CHECK(rows == first + rule.groups + rule.subgraphs, where_, ": ", hop, " takes ",
              first + rule.groups + rule.subgraphs, " argument rows, the plan gives ", rows);
  if (rule.hop == Hop::kCond) {
    const auto& [kw, tag, ints, floats, text, value] = args[0];
    if (tag == "slot" && ints.size() == 1) {
      node.pred_slot = ints[0];
      read(node.pred_slot, "the predicate");
    } else {
      TORCH_CHECK(tag == "bool" && ints.size() == 1, where_,
                  ": the predicate must be a slot or a static bool, got '", tag, "'");
      node.pred_value = ints[0] != 0;
    }
  }
  std::vector<size_t> sizes;
  for (size_t g = 0; g < rule.groups; ++g) {
    const auto& [kw, tag, ints, floats, text, value] = args[first + g];
    TORCH_CHECK(tag == "slots", where_, ": operand group ", g, " must be a list of slots, got '",
                tag, "'");
    for (int64_t s : ints) {
      read(s, "operand group " + std::to_string(g));
    }
    node.lists.push_back(ints);
    sizes.push_back(ints.size());
  }
  const auto engine_type = c10::getCustomClassType<c10::intrusive_ptr<Engine>>();
  for (size_t k = 0; k < rule.subgraphs; ++k) {
    const auto& [kw, tag, ints, floats, text, value] = args[first + rule.groups + k];
    TORCH_CHECK(tag == "engine" && value.isObject() && value.type()->isSubtypeOf(*engine_type),
                where_,
                ": subgraph ", k, " must be a torchexec.Engine (tag 'engine')");
    node.subgraphs.push_back(value.toCustomClass<Engine>());
  }
  const auto ins = [&](size_t k) { return static_cast<size_t>(node.subgraphs[k]->num_inputs()); };
  const auto outs = [&](size_t k) {
    return static_cast<size_t>(node.subgraphs[k]->num_outputs());
  };
  size_t results = 0;
  switch (rule.hop) {
    case Hop::kCond:
      TORCH_CHECK(ins(0) == sizes[0] && ins(1) == sizes[0], where_,
                  ": both branches must take the ", sizes[0], " operands");
      TORCH_CHECK(outs(0) == outs(1), where_, ": the branches return ", outs(0), " and ",
                  outs(1), " values");
      results = outs(0);
      break;
    case Hop::kWhileLoop:
      TORCH_CHECK(ins(0) == sizes[0] + sizes[1] && ins(1) == sizes[0] + sizes[1], where_,
                  ": the condition and the body must take the carried and additional inputs");
      TORCH_CHECK(outs(0) == 1 && outs(1) == sizes[0], where_,
                  ": the condition must return one value and the body the ", sizes[0],
                  " carried values");
      results = sizes[0];
      break;
    case Hop::kMap:
      TORCH_CHECK(sizes[0] > 0 && ins(0) == sizes[0] + sizes[1], where_,
                  ": the body must take one slice of each of the ", sizes[0],
                  " mapped tensors and the extra arguments");
      results = outs(0);
      break;
    case Hop::kScan:
      TORCH_CHECK(sizes[1] > 0 && ins(0) == sizes[0] + sizes[1] + sizes[2], where_,
                  ": the combine function must take the carry, one slice of each scanned "
                  "tensor and the additional inputs");
      TORCH_CHECK(outs(0) >= sizes[0], where_, ": the combine function returns ", outs(0),
                  " values, fewer than the ", sizes[0], " carried");
      results = outs(0);
      break;
    case Hop::kInvokeSubgraph:
      TORCH_CHECK(ins(0) == sizes[0], where_, ": the subgraph takes ", ins(0),
                  " inputs, the node passes ", sizes[0]);
      results = outs(0);
      break;
  }
  return std::vector<TypePtr>(results, c10::AnyType::get());
}

}  // namespace torchexec
