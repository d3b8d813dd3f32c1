//! Elementwise fusion: a GPU plan runs each tree of elementwise ops (unary functions, their
//! gradients, binary functions, optimizer updates) whose intermediate values have one reader as
//! one generated kernel, so the intermediates are never stored and a chain such as BatchNorm's
//! backward, or an optimizer step and the weight clip after it, is one dispatch instead of one
//! per op.
//!
//! The generated module calls the families' own functions (`shaders/elementwise_fns.wgsl`,
//! `shaders/update_fns.wgsl`: one home per function) with constant op codes, reads each leaf
//! operand through the division-and-remainder index of `binary_blocks` (an update's `[1]` scalars
//! included), and takes the ops' scalar parameters from its uniform (so that modules depend only
//! on the tree's shape and are shared between plans). It is
//! compiled (and so validated by naga) when the plan's pipelines are made. CPU plans run the ops
//! one by one: the CPU reference of every fused kernel is its unfused graph.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::graph::op::broadcast_strides;
use crate::graph::ops::elementwise::block;
use crate::graph::ops::gemm::signs_fit;
use crate::graph::PackMode;
use crate::graph::{Graph, Op, Source, ValueId};
use crate::tensor::DType;

/// Most leaf operands of one fused kernel (with the output, within WebGPU's minimum of 8
/// storage buffers per shader stage).
pub(super) const MAX_LEAVES: usize = 7;
/// Most ops in one fused kernel (two scalar parameters each in the uniform).
pub(super) const MAX_OPS: usize = 16;

/// The fused groups of a plan.
#[derive(Default)]
pub(super) struct Fusion {
    /// Values computed inside a fused kernel, never stored.
    pub(super) inlined: HashSet<ValueId>,
    /// The fused kernel of each group, by the position of its root node in the plan's order.
    pub(super) groups: HashMap<usize, Group>,
    /// Products whose B operand is the unpacked signs of packed bits (through reshapes only),
    /// by position: they read the bits instead (`ops::gemm::record_signs`).
    pub(super) signs: HashMap<usize, ValueId>,
}

/// One fused kernel: its root node's output is its output.
pub(super) struct Group {
    /// The generated module.
    pub(super) source: String,
    /// Values read by the kernel, in binding order (bindings 1..).
    pub(super) leaves: Vec<ValueId>,
    /// The uniform: n, padding, then per leaf (divisor, modulus), then per op (alpha, beta).
    pub(super) params: Vec<u32>,
    /// Output elements.
    pub(super) n: usize,
}

fn elementwise(op: &Op) -> bool {
    matches!(op, Op::Unary(_) | Op::UnaryGrad(_) | Op::Binary(_) | Op::Update { .. })
}

/// Finds the fused groups of `order` (positions into it), given the values the plan returns.
pub(super) fn plan(graph: &Graph, order: &[usize], outputs: &[ValueId]) -> Fusion {
    let f32_only = |n: usize| {
        let node = &graph.nodes[n];
        node.output.is_some_and(|o| graph.value(o).dtype == DType::F32) && node.inputs.iter().all(|i| graph.value(*i).dtype == DType::F32)
    };
    let fusable: Vec<bool> = order.iter().map(|&n| elementwise(&graph.nodes[n].op) && f32_only(n)).collect();
    // Readers of each value (a node reading one value twice counts twice), and the position of
    // its producer.
    let mut readers: HashMap<ValueId, Vec<usize>> = HashMap::new();
    let mut producer: HashMap<ValueId, usize> = HashMap::new();
    for (pos, &n) in order.iter().enumerate() {
        for x in &graph.nodes[n].inputs {
            readers.entry(*x).or_default().push(pos);
        }
        if let Some(o) = graph.nodes[n].output {
            producer.insert(o, pos);
        }
    }
    // A fusable node's output is inlined into its one reader when that reader is fusable and has
    // the same shape (so both index the output the same way).
    let mut inlined: HashSet<ValueId> = HashSet::new();
    for (pos, &n) in order.iter().enumerate() {
        let Some(out) = graph.nodes[n].output else { continue };
        if !fusable[pos] || outputs.contains(&out) {
            continue;
        }
        if let Some([r]) = readers.get(&out).map(Vec::as_slice) {
            let reader = &graph.nodes[order[*r]];
            if fusable[*r] && reader.output.is_some_and(|o| graph.value(o).shape == graph.value(out).shape) {
                inlined.insert(out);
            }
        }
    }
    let assigned: Vec<(usize, ValueId)> = order
        .iter()
        .enumerate()
        .filter(|(_, &n)| matches!(graph.nodes[n].op, Op::Assign))
        .map(|(p, &n)| (p, graph.nodes[n].inputs[0]))
        .collect();

    let mut fusion = Fusion::default();
    sign_products(graph, order, outputs, &readers, &producer, &mut fusion);
    for (pos, &n) in order.iter().enumerate() {
        let Some(out) = graph.nodes[n].output else { continue };
        if !fusable[pos] || inlined.contains(&out) || !graph.nodes[n].inputs.iter().any(|x| inlined.contains(x)) {
            continue;
        }
        let mut b = Builder {
            graph,
            order,
            producer: &producer,
            inlined: &inlined,
            leaves: Vec::new(),
            fused: Vec::new(),
            positions: Vec::new(),
            lets: String::new(),
            consts: Vec::new(),
            ops: 0,
        };
        let result = b.value(out, true);
        let first = b.positions.iter().copied().min().unwrap_or(pos);
        // A variable leaf must not be reassigned between the first fused op and the root, where
        // the kernel now reads it.
        let reassigned = b.leaves.iter().any(|l| {
            matches!(graph.value(*l).source, Source::Variable { .. }) && assigned.iter().any(|(p, v)| v == l && *p > first && *p < pos)
        });
        let shape = &graph.value(out).shape;
        let blocks: Option<Vec<(usize, usize)>> =
            b.leaves.iter().map(|l| block(shape.dims(), &broadcast_strides(&graph.value(*l).shape, shape))).collect();
        match (blocks, reassigned) {
            (Some(blocks), false) if b.leaves.len() <= MAX_LEAVES && b.ops <= MAX_OPS => {
                for v in &b.fused {
                    fusion.inlined.insert(*v);
                }
                fusion.groups.insert(pos, b.finish(&result, &blocks, shape.numel()));
            }
            // Left unfused: its nodes run one by one.
            _ => {}
        }
    }
    fusion
}

/// Finds the products `op(a) @ b` with `b` a reshape chain over `BitUnpack` of sign bits that
/// [`signs_fit`] accepts: they read the bits. The unpack (and its reshapes) is skipped when this
/// product is its only reader, as it is in the backward of binarized layers.
fn sign_products(
    graph: &Graph,
    order: &[usize],
    outputs: &[ValueId],
    readers: &HashMap<ValueId, Vec<usize>>,
    producer: &HashMap<ValueId, usize>,
    fusion: &mut Fusion,
) {
    for (pos, &n) in order.iter().enumerate() {
        let node = &graph.nodes[n];
        let Op::MatMul { trans_b, .. } = node.op else { continue };
        let b_shape = &graph.value(node.inputs[1]).shape;
        let (mut v, mut chain) = (node.inputs[1], Vec::new());
        while let Some(&p) = producer.get(&v) {
            let source = &graph.nodes[order[p]];
            chain.push(v);
            match source.op {
                Op::Reshape { .. } => v = source.inputs[0],
                Op::BitUnpack { k, mode: PackMode::Sign } if signs_fit(b_shape, trans_b, k) => {
                    let bits = source.inputs[0];
                    // The product reads the bits later than the unpack did: never a variable,
                    // which the step might reassign in between.
                    if !matches!(graph.value(bits).source, Source::Variable { .. }) {
                        fusion.signs.insert(pos, bits);
                        if chain.iter().all(|c| readers.get(c).is_some_and(|r| r.len() == 1) && !outputs.contains(c)) {
                            fusion.inlined.extend(chain.iter().copied());
                        }
                    }
                    break;
                }
                _ => break,
            }
        }
    }
}

/// Writes one group's expression, leaves first seen first.
struct Builder<'a> {
    graph: &'a Graph,
    order: &'a [usize],
    producer: &'a HashMap<ValueId, usize>,
    inlined: &'a HashSet<ValueId>,
    leaves: Vec<ValueId>,
    /// Inlined values of this group.
    fused: Vec<ValueId>,
    positions: Vec<usize>,
    lets: String,
    consts: Vec<f32>,
    ops: usize,
}

impl Builder<'_> {
    /// The WGSL expression naming `v`: a leaf read, or the temporary its op computed.
    fn value(&mut self, v: ValueId, root: bool) -> String {
        if !root && !self.inlined.contains(&v) {
            let i = self.leaves.iter().position(|l| *l == v).unwrap_or_else(|| {
                self.leaves.push(v);
                self.leaves.len() - 1
            });
            return format!("x{i}[block_index(i, p.blocks[{}][{}], p.blocks[{}][{}], p.n)]", i / 2, 2 * (i % 2), i / 2, 2 * (i % 2) + 1);
        }
        if !root {
            self.fused.push(v);
        }
        let pos = self.producer[&v];
        self.positions.push(pos);
        let node = &self.graph.nodes[self.order[pos]];
        let args: Vec<String> = node.inputs.iter().map(|x| self.value(*x, false)).collect();
        let k = self.ops;
        self.ops += 1;
        let (c0, c1) = (format!("p.consts[{}][{}]", k / 2, 2 * (k % 2)), format!("p.consts[{}][{}]", k / 2, 2 * (k % 2) + 1));
        let expr = match node.op {
            Op::Unary(u) => {
                let (alpha, beta) = u.params();
                self.consts.extend([alpha, beta]);
                format!("unary_f({}u, {}, {c0}, {c1}, p.n)", u.code(), args[0])
            }
            Op::UnaryGrad(u) => {
                let (alpha, beta) = u.params();
                self.consts.extend([alpha, beta]);
                format!("unary_grad_f({}u, {}, {}, {c0}, {c1}, p.n)", u.code(), args[0], args[1])
            }
            Op::Binary(op) => {
                self.consts.extend([0.0, 0.0]);
                format!("binary_f({}u, {}, {}, p.n)", op.code(), args[0], args[1])
            }
            Op::Update { f } => {
                self.consts.extend(f.constants());
                // Arrays x, y, z then scalars s, t; the ones a function does not have are 0.
                let (arrays, scalars) = f.operands();
                let arg = |i: usize, n: usize, from: usize| if i < n { args[from + i].clone() } else { "0.0".to_string() };
                let (x, y, z) = (arg(0, arrays, 0), arg(1, arrays, 0), arg(2, arrays, 0));
                let (s, t) = (arg(0, scalars, arrays), arg(1, scalars, arrays));
                format!("update_f({}u, {x}, {y}, {z}, {s}, {t}, {c0}, {c1})", f.code())
            }
            _ => unreachable!("only elementwise ops are fused"),
        };
        let _ = writeln!(self.lets, "    let t{k} = {expr};");
        format!("t{k}")
    }

    fn finish(self, result: &str, blocks: &[(usize, usize)], n: usize) -> Group {
        let mut source = String::from("// requires: common, elementwise_fns, update_fns\n");
        source += "// Generated by src/runtime/fuse.rs: one fused tree of elementwise ops.\n";
        source += "struct Params {\n    n: u32,\n    _pad0: u32,\n    _pad1: u32,\n    _pad2: u32,\n";
        let _ = writeln!(source, "    blocks: array<vec4<u32>, {}>,", MAX_LEAVES.div_ceil(2));
        let _ = writeln!(source, "    consts: array<vec4<f32>, {}>,\n}}\n", MAX_OPS.div_ceil(2));
        source += "@group(0) @binding(0) var<uniform> p: Params;\n";
        for i in 0..self.leaves.len() {
            let _ = writeln!(source, "@group(0) @binding({}) var<storage, read> x{i}: array<f32>;", i + 1);
        }
        let _ = writeln!(source, "@group(0) @binding({}) var<storage, read_write> out: array<f32>;\n", self.leaves.len() + 1);
        source += "@compute @workgroup_size(WG)\nfn fused(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n";
        source += "    let i = flat_index(gid, nwg);\n    if (i >= p.n) { return; }\n";
        source += &self.lets;
        let _ = writeln!(source, "    out[i] = {result};\n}}");
        let mut params = vec![n as u32, 0, 0, 0];
        let mut b: Vec<u32> = blocks.iter().flat_map(|&(d, m)| [d as u32, m as u32]).collect();
        b.resize(4 * MAX_LEAVES.div_ceil(2), 0);
        params.extend(b);
        let mut c: Vec<u32> = self.consts.iter().map(|v| v.to_bits()).collect();
        c.resize(4 * MAX_OPS.div_ceil(2), 0);
        params.extend(c);
        Group { source: crate::kernels::assemble(&source), leaves: self.leaves, params, n }
    }
}
