//! Elementwise fusion and the planner's other merges. A GPU plan runs each tree of elementwise
//! ops (unary functions, their gradients, binary functions, optimizer updates, broadcasts and
//! fills) whose intermediate values have one reader as one generated kernel, so the
//! intermediates are never stored and a chain such as BatchNorm's backward, or an optimizer's
//! moments, its step and the weight clip after it, is one dispatch instead of one per op. A
//! kernel also writes out values of its shape that later nodes read (`Group::exports`, with the
//! assignments of them deferred past it) and takes in sibling trees of its shape computed just
//! before it. Besides: products whose B operand is unpacked sign bits read the bits
//! (`sign_products`), a col2im of such a product (a binary convolution's input gradient)
//! computes the patches as it sums them where they cover the image densely (`col2im_signs`), and
//! the sign and clip-mask packs of the same values are one dispatch (`pack_pairs`).
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
use std::sync::Arc;

use crate::graph::op::broadcast_strides;
use crate::graph::ops::elementwise::block;
use crate::graph::ops::gemm::signs_fit;
use crate::graph::PackMode;
use crate::graph::{Graph, Op, Source, ValueId};
use crate::kernels::{grid_1d, BufferView, Choice, CustomShader, Dispatch, Kernel, ShaderRef};
use crate::tensor::DType;

/// Most leaf operands of one fused kernel: with its outputs (the root's and the exports), at most
/// 8 storage buffers, WebGPU's minimum per shader stage.
pub(super) const MAX_LEAVES: usize = 7;
/// Most ops in one fused kernel (two scalar parameters each in the uniform).
pub(super) const MAX_OPS: usize = 16;
/// How many positions before a group's root a sibling (a value of the same shape that the
/// group does not read) may come from and join the kernel; farther ones would keep their
/// operands live longer.
const SIBLING_WINDOW: usize = 12;

/// The fused groups of a plan.
#[derive(Default)]
pub(super) struct Fusion {
    /// Values computed inside a fused kernel, never stored.
    pub(super) inlined: HashSet<ValueId>,
    /// Values computed inside a fused kernel that also writes them out for readers later in
    /// the plan (`Group::exports`): their own nodes do not run.
    pub(super) exported: HashSet<ValueId>,
    /// The fused kernel of each group, by the position of its root node in the plan's order.
    pub(super) groups: HashMap<usize, Group>,
    /// Assignments of an exported value, by position, with the root after which they run
    /// instead (no node between reads the variable).
    pub(super) deferred: HashMap<usize, usize>,
    /// Products whose B operand is the unpacked signs of packed bits (through reshapes only),
    /// by position: they read the bits instead (`ops::gemm::record_signs`).
    pub(super) signs: HashMap<usize, ValueId>,
    /// Pairs of packs of the same values, one of sign bits and one of a clip mask, by the later
    /// one's position: one dispatch there writes both (`ops::bitpack::record_pack_both`).
    pub(super) pack_pairs: HashMap<usize, PackPair>,
    /// col2im of a product reading sign bits (the input gradient of a binary convolution), by
    /// the col2im's position: it computes the patches as it sums them
    /// (`ops::im2col::record_col2im_signs`), and the product is never stored.
    pub(super) col2im_signs: HashMap<usize, SignPatches>,
}

/// The operands of patches `dy @ sign bits` that a col2im computes instead of reading.
pub(super) struct SignPatches {
    /// The product's A, `[rows, k]`.
    pub(super) dy: ValueId,
    /// The sign bits of its B, `[k, taps * C]`.
    pub(super) bits: ValueId,
    /// The inner length.
    pub(super) k: usize,
}

/// A sign-bit pack and a clip-mask pack of the same values, run as one dispatch.
pub(super) struct PackPair {
    /// The earlier pack's position (its node does not run).
    pub(super) earlier: usize,
    /// The values packed.
    pub(super) x: ValueId,
    /// The sign bits.
    pub(super) signs: ValueId,
    /// The mask bits.
    pub(super) mask: ValueId,
    /// The mask's clip value.
    pub(super) clip: f32,
}

impl Fusion {
    /// Whether the node at `pos` runs inside a later dispatch: an assignment deferred past a
    /// fused kernel, or the first pack of a pair.
    pub(super) fn moved(&self, pos: usize) -> bool {
        self.deferred.contains_key(&pos) || self.pack_pairs.values().any(|p| p.earlier == pos)
    }
}

/// The entry points of every generated module, the tuner's candidates: (name, elements per
/// invocation, invocations per workgroup).
const ENTRIES: [(&str, usize, usize); 3] = [("fused", 1, 256), ("fused4", 4, 256), ("fused_wg64", 1, 64)];
/// Below this many elements a fused kernel takes one element per invocation untimed: the
/// choice would not repay its timing when the plan is built.
const TUNED_FROM: usize = 1 << 16;

/// One fused kernel: its root node's output is its output.
pub(super) struct Group {
    /// The generated module (entry points [`ENTRIES`]).
    pub(super) source: String,
    /// Its shape class for the tuner: elements, buffers and ops.
    pub(super) class: String,
    /// Values read by the kernel, in binding order (bindings 1..).
    pub(super) leaves: Vec<ValueId>,
    /// Values computed inside that later nodes also read: written after the output, in binding
    /// order (bindings after the output's).
    pub(super) exports: Vec<ValueId>,
    /// The uniform: n, padding, then per leaf (divisor, modulus), then per op (alpha, beta).
    pub(super) params: Vec<u32>,
    /// Output elements.
    pub(super) n: usize,
}

impl Group {
    /// Every value the kernel writes: the root's output, then the exports.
    pub(super) fn writes(&self, out: ValueId) -> impl Iterator<Item = ValueId> + '_ {
        std::iter::once(out).chain(self.exports.iter().copied())
    }

    /// The kernel's entry points in `shader` (its interned module) as the tuner's candidates,
    /// with `bindings` (leaves, then what it writes); a small kernel offers only the first.
    pub(super) fn choice(&self, shader: &Arc<CustomShader>, bindings: Vec<(u32, BufferView)>) -> Choice {
        let entries = if self.n >= TUNED_FROM { &ENTRIES[..] } else { &ENTRIES[..1] };
        let params: Vec<u8> = bytemuck::cast_slice(&self.params).to_vec();
        let candidates = entries
            .iter()
            .map(|&(entry, per, group_size)| Dispatch {
                kernel: Kernel { shader: ShaderRef::Custom(shader.clone()), entry },
                params: params.clone(),
                bindings: bindings.clone(),
                workgroups: grid_1d(self.n.div_ceil(per), group_size),
            })
            .collect();
        Choice { class: self.class.clone(), candidates }
    }
}

fn elementwise(op: &Op) -> bool {
    matches!(op, Op::Unary(_) | Op::UnaryGrad(_) | Op::Binary(_) | Op::Update { .. } | Op::Broadcast { .. } | Op::Fill { .. })
}

/// Ops that any number of readers can each recompute inside their own kernel: a broadcast (a
/// strided read of its input) and a fill (a constant).
fn shared(op: &Op) -> bool {
    matches!(op, Op::Broadcast { .. } | Op::Fill { .. })
}

/// What the planner knows about the plan's values, shared by the group builders.
struct Values<'a> {
    graph: &'a Graph,
    order: &'a [usize],
    outputs: &'a [ValueId],
    /// Whether the node at each position may be fused (elementwise, f32 only).
    fusable: Vec<bool>,
    /// Positions reading each value (a node reading one value twice counts twice).
    readers: HashMap<ValueId, Vec<usize>>,
    /// Position of each value's producer.
    producer: HashMap<ValueId, usize>,
}

impl Values<'_> {
    fn shape(&self, v: ValueId) -> &crate::Shape {
        &self.graph.value(v).shape
    }

    /// Follows `v` back through reshapes: the values passed (`v`, each reshape's input, up to
    /// the output of the first producer that is no reshape) and that producer's position
    /// (`None` when the chain starts at a value no node makes, an input or a variable).
    fn through_reshapes(&self, mut v: ValueId) -> (Vec<ValueId>, Option<usize>) {
        let mut chain = Vec::new();
        while let Some(&p) = self.producer.get(&v) {
            chain.push(v);
            let node = &self.graph.nodes[self.order[p]];
            match node.op {
                Op::Reshape { .. } => v = node.inputs[0],
                _ => return (chain, Some(p)),
            }
        }
        (chain, None)
    }

    /// Whether `v` has one reader and is not a plan output: a fused kernel may compute it
    /// without storing it.
    fn single_use(&self, v: &ValueId) -> bool {
        self.readers.get(v).is_some_and(|r| r.len() == 1) && !self.outputs.contains(v)
    }

    /// A value computed in a fusable node and read only by fusable nodes of its shape (and not
    /// returned) is inlined into them: into its one reader, or into any number when it is
    /// [`shared`]; a fill, the same at every index, into readers of any shape.
    fn inlinable(&self, v: ValueId) -> bool {
        let (Some(&p), Some(readers)) = (self.producer.get(&v), self.readers.get(&v)) else { return false };
        if !self.fusable[p] || self.outputs.contains(&v) {
            return false;
        }
        let op = &self.graph.nodes[self.order[p]].op;
        (readers.len() == 1 || shared(op))
            && readers.iter().all(|&r| {
                let reader = &self.graph.nodes[self.order[r]];
                self.fusable[r] && reader.output.is_some_and(|o| matches!(op, Op::Fill { .. }) || self.shape(o) == self.shape(v))
            })
    }
}

/// Finds the fused groups of `order` (positions into it), given the values the plan returns.
///
/// Roots are taken from the last position back, so that a group can also compute a value of
/// the group's shape that has readers beyond it (a moment that the optimizer step reads and the
/// step then assigns, an activation that the backward reads again) and write it out
/// (`Group::exports`), provided every such reader comes after the group's root; the value's own
/// node then does not run.
pub(super) fn plan(graph: &Graph, order: &[usize], outputs: &[ValueId]) -> Fusion {
    let f32_only = |n: usize| {
        let node = &graph.nodes[n];
        node.output.is_some_and(|o| graph.value(o).dtype == DType::F32) && node.inputs.iter().all(|i| graph.value(*i).dtype == DType::F32)
    };
    let mut values = Values {
        graph,
        order,
        outputs,
        fusable: order.iter().map(|&n| elementwise(&graph.nodes[n].op) && f32_only(n)).collect(),
        readers: HashMap::new(),
        producer: HashMap::new(),
    };
    for (pos, &n) in order.iter().enumerate() {
        for x in &graph.nodes[n].inputs {
            values.readers.entry(*x).or_default().push(pos);
        }
        if let Some(o) = graph.nodes[n].output {
            values.producer.insert(o, pos);
        }
    }
    let inlined: HashSet<ValueId> = values.producer.keys().copied().filter(|v| values.inlinable(*v)).collect();
    let assigned: Vec<(usize, ValueId)> = order
        .iter()
        .enumerate()
        .filter(|(_, &n)| matches!(graph.nodes[n].op, Op::Assign))
        .map(|(p, &n)| (p, graph.nodes[n].inputs[0]))
        .collect();

    let mut fusion = Fusion::default();
    sign_products(&values, &mut fusion);
    col2im_signs(&values, &mut fusion);
    pack_pairs(&values, &mut fusion);
    // Shared values inlined into groups, with the positions of the groups' nodes: one stays
    // stored unless every reader is inside a group.
    let mut shared_values: Vec<ValueId> = Vec::new();
    let mut grouped: HashSet<usize> = HashSet::new();
    for pos in (0..order.len()).rev() {
        let Some(out) = graph.nodes[order[pos]].output else { continue };
        let taken = |v: &ValueId| fusion.inlined.contains(v) || fusion.exported.contains(v);
        if !values.fusable[pos] || inlined.contains(&out) || taken(&out) {
            continue;
        }
        // With exports (and siblings) first; without, when they would break a rule.
        for exports in [true, false] {
            let mut b = Builder::new(&values, &inlined, &fusion, pos, exports);
            let result = b.value(out, true);
            let Some(mut valid) = check(&b, &assigned) else { continue };
            if exports {
                // Siblings: values of the same shape computed shortly before, each kept when
                // the group stays valid with it.
                for q in (pos.saturating_sub(SIBLING_WINDOW)..pos).rev() {
                    let Some(v) = graph.nodes[order[q]].output else { continue };
                    let op = &graph.nodes[order[q]].op;
                    if !values.fusable[q] || shared(op) || inlined.contains(&v) || taken(&v) || values.shape(v) != values.shape(out) {
                        continue;
                    }
                    if b.computed.contains_key(&v) || b.leaves.contains(&v) {
                        continue;
                    }
                    let before = b.clone();
                    b.exports.push(v);
                    b.compute(v);
                    match check(&b, &assigned) {
                        Some(ok) => valid = ok,
                        None => b = before,
                    }
                }
            }
            if b.fused.is_empty() && b.exports.is_empty() {
                break; // a lone op: its own kernel
            }
            let Valid { deferred, blocks } = valid;
            // A value computed here and read nowhere else is not stored at all.
            let inside: HashSet<usize> = b.positions.iter().copied().collect();
            let (exported, unread): (Vec<ValueId>, Vec<ValueId>) = std::mem::take(&mut b.exports)
                .into_iter()
                .partition(|v| outputs.contains(v) || values.readers.get(v).is_some_and(|rs| rs.iter().any(|r| !inside.contains(r))));
            b.exports = exported;
            b.fused.extend(unread);
            let (fused, positions) = (std::mem::take(&mut b.fused), std::mem::take(&mut b.positions));
            let group = b.finish(&result, &blocks, values.shape(out).numel());
            for v in fused {
                if shared(&graph.nodes[order[values.producer[&v]]].op) {
                    shared_values.push(v);
                } else {
                    fusion.inlined.insert(v);
                }
            }
            fusion.exported.extend(group.exports.iter().copied());
            fusion.deferred.extend(deferred.iter().map(|&a| (a, pos)));
            grouped.extend(positions);
            fusion.groups.insert(pos, group);
            break;
        }
    }
    for v in shared_values {
        if values.readers[&v].iter().all(|r| grouped.contains(r)) {
            fusion.inlined.insert(v);
        }
    }
    fusion
}

/// Whether `b`'s group may be made: the assignments it defers and its leaves' blocks, or
/// `None`. A value it computes and writes out must have its other readers after the root, but
/// for an assignment of it that can wait until after the root; no variable leaf may be
/// reassigned between the first fused op and the root (where the kernel now reads it), but by
/// a deferred assignment; each leaf must be a block of the output; and the kernel must fit its
/// buffer and op limits.
fn check(b: &Builder, assigned: &[(usize, ValueId)]) -> Option<Valid> {
    let (values, pos) = (b.values, b.root);
    let graph = values.graph;
    let inside: HashSet<usize> = b.positions.iter().copied().collect();
    let mut deferred: Vec<usize> = Vec::new();
    for v in &b.exports {
        for &r in values.readers.get(v).into_iter().flatten().filter(|&&r| r < pos && !inside.contains(&r)) {
            match assigned.iter().find(|(p, _)| *p == r) {
                Some(&(a, var)) if graph.nodes[values.order[a]].inputs[1] == *v && !read_between(values, assigned, var, a, pos) => {
                    deferred.push(a)
                }
                _ => return None,
            }
        }
    }
    let first = b.positions.iter().copied().min().unwrap_or(pos);
    let reassigned = b.leaves.iter().any(|l| {
        matches!(graph.value(*l).source, Source::Variable { .. })
            && assigned.iter().any(|(p, v)| v == l && *p > first && *p < pos && !deferred.contains(p))
    });
    let out = graph.nodes[values.order[pos]].output?;
    let shape = values.shape(out);
    let blocks: Option<Vec<(usize, usize)>> =
        b.leaves.iter().map(|l| block(shape.dims(), &broadcast_strides(values.shape(*l), shape))).collect();
    let buffers = b.leaves.len() + 1 + b.exports.len();
    (!reassigned && !b.conflict && buffers <= MAX_LEAVES + 1 && b.ops <= MAX_OPS).then_some(())?;
    Some(Valid { deferred, blocks: blocks? })
}

/// What [`check`] finds for a group that may be made.
#[derive(Clone)]
struct Valid {
    /// Positions of the assignments that run after the root instead.
    deferred: Vec<usize>,
    /// `(divisor, modulus)` of each leaf (see `block`).
    blocks: Vec<(usize, usize)>,
}

/// Pairs each clip-mask pack with a sign-bit pack of the same values (a binarized layer saves
/// both for its backward), when nothing reads the earlier one's bits before the later one runs.
fn pack_pairs(values: &Values, fusion: &mut Fusion) {
    let (graph, order) = (values.graph, values.order);
    let pack = |pos: usize| match graph.nodes[order[pos]].op {
        Op::BitPack { mode } => Some((mode, graph.nodes[order[pos]].inputs[0])),
        _ => None,
    };
    let mut taken: HashSet<usize> = HashSet::new();
    for later in 0..order.len() {
        let Some((mode, x)) = pack(later) else { continue };
        let bits = |p: usize| graph.nodes[order[p]].output.expect("a pack has an output");
        let partner = values.readers[&x].iter().copied().filter(|&p| p < later && !taken.contains(&p)).find_map(|earlier| {
            let (other, _) = pack(earlier)?;
            let early_read = values.readers.get(&bits(earlier)).is_some_and(|rs| rs.iter().any(|&r| r <= later));
            // (signs, mask, clip) when one pack is of each kind.
            let pair = match (mode, other) {
                (PackMode::Sign, PackMode::ClipMask(clip)) => (bits(later), bits(earlier), clip),
                (PackMode::ClipMask(clip), PackMode::Sign) => (bits(earlier), bits(later), clip),
                _ => return None,
            };
            (!early_read).then_some((earlier, pair))
        });
        if let Some((earlier, (signs, mask, clip))) = partner {
            taken.extend([earlier, later]);
            fusion.pack_pairs.insert(later, PackPair { earlier, x, signs, mask, clip });
        }
    }
}

/// Whether a node after position `a` up to `root` reads or assigns variable `var`: then an
/// assignment of it at `a` cannot wait until after `root`.
fn read_between(values: &Values, assigned: &[(usize, ValueId)], var: ValueId, a: usize, root: usize) -> bool {
    let read = values.readers.get(&var).is_some_and(|rs| rs.iter().any(|&r| r > a && r <= root && !assigned.iter().any(|(p, _)| *p == r)));
    read || assigned.iter().any(|(p, v)| *v == var && *p > a && *p <= root)
}

/// Finds the products `op(a) @ b` with `b` a reshape chain over `BitUnpack` of sign bits that
/// [`signs_fit`] accepts: they read the bits. The unpack (and its reshapes) is skipped when this
/// product is its only reader, as it is in the backward of binarized layers.
fn sign_products(values: &Values, fusion: &mut Fusion) {
    let graph = values.graph;
    for (pos, &n) in values.order.iter().enumerate() {
        let node = &graph.nodes[n];
        let Op::MatMul { trans_b, .. } = node.op else { continue };
        let b_shape = &graph.value(node.inputs[1]).shape;
        let (chain, Some(p)) = values.through_reshapes(node.inputs[1]) else { continue };
        let source = &graph.nodes[values.order[p]];
        let Op::BitUnpack { k, mode: PackMode::Sign } = source.op else { continue };
        let bits = source.inputs[0];
        // The product reads the bits later than the unpack did: never a variable, which the
        // step might reassign in between.
        if signs_fit(b_shape, trans_b, k) && !matches!(graph.value(bits).source, Source::Variable { .. }) {
            fusion.signs.insert(pos, bits);
            if chain.iter().all(|c| values.single_use(c)) {
                fusion.inlined.extend(chain.iter().copied());
            }
        }
    }
}

/// Finds the col2im nodes whose patches are a product reading sign bits (`sign_products`),
/// reached through reshapes only, with no other reader of the product or the reshapes, and
/// an unbatched product whose rows and columns are the patch rows and (tap, channel) columns:
/// the col2im computes the product itself, which then does not run.
fn col2im_signs(values: &Values, fusion: &mut Fusion) {
    let graph = values.graph;
    for (pos, &n) in values.order.iter().enumerate() {
        let Op::Col2Im { geom } = &graph.nodes[n].op else { continue };
        let (chain, Some(p)) = values.through_reshapes(graph.nodes[n].inputs[0]) else { continue };
        let source = &graph.nodes[values.order[p]];
        let (Op::MatMul { trans_a: false, .. }, Some(&bits)) = (&source.op, fusion.signs.get(&p)) else { continue };
        let (dy, b) = (graph.value(source.inputs[0]), graph.value(source.inputs[1]));
        let k = b.shape.dims()[b.shape.rank() - 2];
        let rows = dy.shape.numel() / k.max(1);
        let fits = crate::graph::ops::im2col::col2im_signs_fit(geom, k)
            && rows == geom.batch * geom.out_pixels()
            && b.shape.numel() == k * geom.taps() * geom.channels
            && dy.shape.dims().last() == Some(&k)
            && !matches!(dy.source, Source::Variable { .. });
        if fits && chain.iter().all(|c| values.single_use(c)) {
            fusion.inlined.extend(chain.iter().copied());
            fusion.col2im_signs.insert(pos, SignPatches { dy: source.inputs[0], bits, k });
        }
    }
}

/// Writes one group's expression, leaves first seen first.
#[derive(Clone)]
struct Builder<'a> {
    values: &'a Values<'a>,
    inlined: &'a HashSet<ValueId>,
    fusion: &'a Fusion,
    /// The root's position.
    root: usize,
    /// Whether values with readers outside the group may be computed here and written out.
    exporting: bool,
    leaves: Vec<ValueId>,
    /// Inlined values of this group.
    fused: Vec<ValueId>,
    /// Values computed here that readers outside the group may need.
    exports: Vec<ValueId>,
    /// The temporary holding each value computed so far.
    computed: HashMap<ValueId, String>,
    /// Set when the group would read a value another group computes: it is not made.
    conflict: bool,
    positions: Vec<usize>,
    lets: String,
    consts: Vec<f32>,
    ops: usize,
}

impl<'a> Builder<'a> {
    fn new(values: &'a Values<'a>, inlined: &'a HashSet<ValueId>, fusion: &'a Fusion, root: usize, exporting: bool) -> Self {
        Builder {
            values,
            inlined,
            fusion,
            root,
            exporting,
            leaves: Vec::new(),
            fused: Vec::new(),
            exports: Vec::new(),
            computed: HashMap::new(),
            conflict: false,
            positions: Vec::new(),
            lets: String::new(),
            consts: Vec::new(),
            ops: 0,
        }
    }

    /// Whether `v` (not inlined) can be computed in this group and written out: made by a
    /// fusable node before the root, with the group's shape, and not yet claimed by a group.
    fn exportable(&self, v: ValueId) -> bool {
        let root_out = self.values.graph.nodes[self.values.order[self.root]].output;
        self.exporting
            && self.values.producer.get(&v).is_some_and(|&p| p < self.root && self.values.fusable[p])
            && root_out.is_some_and(|o| self.values.shape(o) == self.values.shape(v))
            && !self.fusion.inlined.contains(&v)
            && !self.fusion.exported.contains(&v)
    }

    /// The WGSL expression naming `v`: a leaf read, or the temporary its op computed.
    fn value(&mut self, v: ValueId, root: bool) -> String {
        if let Some(t) = self.computed.get(&v) {
            return t.clone();
        }
        // Groups are made from the last root back: a value another group computes is written
        // no earlier than that group's root, after this one. The rules for inlining and exports
        // keep groups apart; this guards them.
        self.conflict |= !root && (self.fusion.inlined.contains(&v) || self.fusion.exported.contains(&v));
        if !root && !self.inlined.contains(&v) && !self.exportable(v) {
            let i = self.leaves.iter().position(|l| *l == v).unwrap_or_else(|| {
                self.leaves.push(v);
                self.leaves.len() - 1
            });
            return format!("x{i}[block_index(i, p.blocks[{}][{}], p.blocks[{}][{}], p.n)]", i / 2, 2 * (i % 2), i / 2, 2 * (i % 2) + 1);
        }
        if !root {
            if self.inlined.contains(&v) {
                self.fused.push(v);
            } else {
                self.exports.push(v);
            }
        }
        self.compute(v)
    }

    /// Writes the op computing `v` (its operands first) and returns its temporary.
    fn compute(&mut self, v: ValueId) -> String {
        let pos = self.values.producer[&v];
        self.positions.push(pos);
        let node = &self.values.graph.nodes[self.values.order[pos]];
        let args: Vec<String> = node.inputs.iter().map(|x| self.value(*x, false)).collect();
        if let Op::Broadcast { .. } = node.op {
            // A strided read of its input, which the leaf's block index does.
            self.computed.insert(v, args[0].clone());
            return args[0].clone();
        }
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
            Op::Fill { value, .. } => {
                self.consts.extend([value, 0.0]);
                c0
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
        self.computed.insert(v, format!("t{k}"));
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
        let _ = writeln!(source, "@group(0) @binding({}) var<storage, read_write> out: array<f32>;", self.leaves.len() + 1);
        for j in 0..self.exports.len() {
            let _ = writeln!(source, "@group(0) @binding({}) var<storage, read_write> e{j}: array<f32>;", self.leaves.len() + 2 + j);
        }
        source += "\n";
        // One element per invocation (`fused`, and `fused_wg64` in workgroups of 64), or four a
        // quarter of the range apart (`fused4`: neighbouring invocations still touch neighbouring
        // elements); the tuner picks (see ENTRIES).
        source += "fn element(i: u32) {\n";
        source += &self.lets;
        for (j, v) in self.exports.iter().enumerate() {
            let _ = writeln!(source, "    e{j}[i] = {};", self.computed[v]);
        }
        let _ = writeln!(source, "    out[i] = {result};\n}}\n");
        source += "@compute @workgroup_size(WG)\nfn fused(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n";
        source += "    let i = flat_index(gid, nwg);\n    if (i < p.n) { element(i); }\n}\n\n";
        source += "@compute @workgroup_size(WG)\nfn fused4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n";
        source += "    let t = flat_index(gid, nwg);\n    let q = (p.n + 3u) / 4u;\n    if (t >= q) { return; }\n";
        source += "    for (var e = 0u; e < 4u; e++) {\n        if (t + e * q < p.n) { element(t + e * q); }\n    }\n}\n\n";
        source += "@compute @workgroup_size(64)\nfn fused_wg64(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n";
        source += "    let i = grid_index(gid, nwg, 64u);\n    if (i < p.n) { element(i); }\n}\n";
        let class = format!("fused {n} elements, {} leaves, {} outputs, {} ops", self.leaves.len(), 1 + self.exports.len(), self.ops);
        let mut params = vec![n as u32, 0, 0, 0];
        let mut b: Vec<u32> = blocks.iter().flat_map(|&(d, m)| [d as u32, m as u32]).collect();
        b.resize(4 * MAX_LEAVES.div_ceil(2), 0);
        params.extend(b);
        let mut c: Vec<u32> = self.consts.iter().map(|v| v.to_bits()).collect();
        c.resize(4 * MAX_OPS.div_ceil(2), 0);
        params.extend(c);
        Group { source: crate::kernels::assemble(&source), class, leaves: self.leaves, exports: self.exports, params, n }
    }
}
