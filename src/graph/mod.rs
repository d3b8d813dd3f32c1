//! The command graph: define a computation once, differentiate it, then plan and run it on a
//! device.
//!
//! A [`Graph`] is plain data: values (inputs, variables, node outputs) and nodes, appended in
//! execution order. Building never touches a device; [`crate::Plan`] turns a graph into buffers,
//! pipelines and bind groups once, and each [`crate::Plan::run`] replays it with one submission.

mod autodiff;
mod binary;
pub mod conv;
mod lowbit;
pub mod op;
pub mod ops;
pub mod resize;

/// Elements per output above which [`Graph::reduce`] records two stages.
pub const LONG_REDUCE: usize = 65536;

pub use conv::{ConvGeometry, ConvOptions, DataFormat, Padding};
pub use lowbit::{LowBit, Quantized};
pub use op::{
    BinaryOp, Distribution, Encoding, Epilogue, FakeQuantPart, FakeQuantSpec, MatMulDims, Op, PackMode, QuantFn, ReduceOp, UnaryOp,
    UpdateFn, XnorDims,
};
pub use ops::custom_quantize::CustomFn;

use crate::error::{Error, Result};
use crate::tensor::{checked_size, DType, HostTensor, Shape};

/// Handle to a value in a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub(crate) u32);

impl ValueId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// How a variable is initialised the first time a plan needs it.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// One constant.
    Constant(f32),
    /// Seeded random draw.
    Random {
        /// Distribution.
        dist: Distribution,
        /// Seed.
        seed: u64,
    },
    /// Given values, row-major (an initializer that computes them, such as Larq Zoo's
    /// `blurpool_initializer`).
    Values(std::sync::Arc<[f32]>),
}

impl Init {
    /// The op that produces the initial value; `None` for given values.
    pub(crate) fn op(&self, shape: &Shape) -> Option<Op> {
        match *self {
            Init::Zeros => Some(Op::Fill { value: 0.0, shape: shape.clone() }),
            Init::Constant(value) => Some(Op::Fill { value, shape: shape.clone() }),
            Init::Random { dist, seed } => Some(Op::Random { dist, seed, shape: shape.clone(), streamed: false }),
            Init::Values(_) => None,
        }
    }
}

/// Where a value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Fed by the caller before each run.
    Input {
        /// Feed name.
        name: String,
    },
    /// Persistent state (a latent weight, a statistic, an optimizer slot), kept in a
    /// [`ParamStore`](crate::ParamStore) across runs and plans.
    Variable {
        /// Variable name, unique in the graph.
        name: String,
        /// Initial value.
        init: Init,
    },
    /// Fixed data given when the graph is built (index maps), uploaded once when planned.
    Constant {
        /// The data.
        data: std::sync::Arc<HostTensor>,
    },
    /// Output of the node with this index.
    Node(usize),
}

/// Metadata of one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// Shape.
    pub shape: Shape,
    /// Element type.
    pub dtype: DType,
    /// Origin.
    pub source: Source,
}

/// One recorded operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// Its operands.
    pub inputs: Vec<ValueId>,
    /// Its result, if it has one ([`Op::Assign`] has none).
    pub output: Option<ValueId>,
    /// The model layer that recorded it (for errors that must name something a user wrote).
    pub layer: Option<std::sync::Arc<str>>,
}

/// How the gradient of one value reaches chosen inputs, replacing the rules of the ops that
/// compute it. See [`Graph::override_gradient`].
#[derive(Clone)]
pub struct GradientOverride {
    /// The values that receive gradients.
    pub wrt: Vec<ValueId>,
    /// Given the gradient of the overridden value, appends nodes computing one gradient (or
    /// `None`) per `wrt` entry. It reads only the values it captured: that is the saved state.
    pub rule: std::sync::Arc<GradientRule>,
}

/// The signature of a gradient rule.
pub type GradientRule = dyn Fn(&mut Graph, ValueId) -> Result<Vec<Option<ValueId>>> + Send + Sync;

impl std::fmt::Debug for GradientOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GradientOverride(wrt {:?})", self.wrt)
    }
}

/// A recorded computation. See the module docs.
///
/// ```
/// use bitgrad::{Graph, Init, Distribution, DType};
/// # fn main() -> bitgrad::Result<()> {
/// let mut g = Graph::new();
/// let x = g.input("x", [4, 3], DType::F32)?;
/// let w = g.variable("w", [3, 2], Init::Random { dist: Distribution::Normal { mean: 0.0, std: 0.1 }, seed: 7 })?;
/// let y = g.matmul(x, w)?;
/// let loss = g.mean(y, &[0, 1], false)?;
/// let grads = g.backward(loss, &[w])?;
/// assert_eq!(g.value(grads[0]).shape.dims(), &[3, 2]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub(crate) values: Vec<Value>,
    pub(crate) nodes: Vec<Node>,
    overrides: std::collections::HashMap<ValueId, GradientOverride>,
    /// Values declared discrete by the code that computed them ([`Graph::declare_quantized`]).
    quantized: std::collections::HashMap<ValueId, Quantized>,
    /// The layer new nodes are recorded for (see [`Node::layer`]).
    layer: Option<std::sync::Arc<str>>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// The layer new nodes are tagged with (see [`Graph::set_layer`]).
    pub fn layer(&self) -> Option<&std::sync::Arc<str>> {
        self.layer.as_ref()
    }

    /// Tags the nodes recorded from now on as recorded by `layer` (`None`: by no layer), and
    /// returns the previous tag for the caller to restore.
    pub fn set_layer(&mut self, layer: Option<std::sync::Arc<str>>) -> Option<std::sync::Arc<str>> {
        std::mem::replace(&mut self.layer, layer)
    }

    /// All values.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// All nodes in execution order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Metadata of a value.
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }

    pub(crate) fn check(&self, id: ValueId) -> Result<&Value> {
        self.values.get(id.index()).ok_or_else(|| Error::unknown("value", &format!("{id:?}"), Vec::<String>::new()))
    }

    fn add_value(&mut self, shape: Shape, dtype: DType, source: Source) -> ValueId {
        self.values.push(Value { shape, dtype, source });
        ValueId(self.values.len() as u32 - 1)
    }

    /// The input named `name`, if any.
    pub fn find_input(&self, name: &str) -> Option<ValueId> {
        self.find(|s| matches!(s, Source::Input { name: n } if n == name))
    }

    /// The variable named `name`, if any.
    pub fn find_variable(&self, name: &str) -> Option<ValueId> {
        self.find(|s| matches!(s, Source::Variable { name: n, .. } if n == name))
    }

    fn find(&self, pred: impl Fn(&Source) -> bool) -> Option<ValueId> {
        self.values.iter().position(|v| pred(&v.source)).map(|i| ValueId(i as u32))
    }

    /// Declares an input fed before each run.
    pub fn input(&mut self, name: &str, shape: impl Into<Shape>, dtype: DType) -> Result<ValueId> {
        let shape = shape.into();
        shape.validate("input")?;
        if self.find_input(name).is_some() {
            return Err(Error::invalid("input", "name", format!("an input named `{name}` already exists")));
        }
        Ok(self.add_value(shape, dtype, Source::Input { name: name.to_string() }))
    }

    /// Declares an `f32` variable (persistent state) initialised by `init`.
    pub fn variable(&mut self, name: &str, shape: impl Into<Shape>, init: Init) -> Result<ValueId> {
        let shape = shape.into();
        shape.validate("variable")?;
        match Init::op(&init, &shape) {
            Some(op) => {
                op.infer(&[])?;
            }
            None => {
                if let Init::Values(v) = &init {
                    if v.len() != shape.numel() {
                        return Err(Error::shapes(
                            "variable",
                            shape.dims(),
                            &[v.len()],
                            format!("variable `{name}`: {} initial values for {} elements", v.len(), shape.numel()),
                        ));
                    }
                }
            }
        }
        if self.find_variable(name).is_some() {
            return Err(Error::invalid("variable", "name", format!("a variable named `{name}` already exists")));
        }
        Ok(self.add_value(shape, DType::F32, Source::Variable { name: name.to_string(), init }))
    }

    /// Declares a `u32` variable holding packed bits (a packed export's binary kernel). It has
    /// no initializer: a plan needs its value in the parameter store.
    pub fn packed_variable(&mut self, name: &str, shape: impl Into<Shape>) -> Result<ValueId> {
        let shape = shape.into();
        shape.validate("packed_variable")?;
        if self.find_variable(name).is_some() {
            return Err(Error::invalid("variable", "name", format!("a variable named `{name}` already exists")));
        }
        Ok(self.add_value(shape, DType::U32, Source::Variable { name: name.to_string(), init: Init::Zeros }))
    }

    /// Declares a constant: data fixed at build time, uploaded once by each plan that reads it.
    pub fn constant(&mut self, data: HostTensor) -> Result<ValueId> {
        data.shape().validate("constant")?;
        Ok(self.add_value(data.shape().clone(), data.dtype(), Source::Constant { data: std::sync::Arc::new(data) }))
    }

    /// The data of `id` if it is a constant.
    pub fn constant_data(&self, id: ValueId) -> Option<&HostTensor> {
        match &self.value(id).source {
            Source::Constant { data } => Some(data),
            _ => None,
        }
    }

    /// Appends a node after checking its operands; returns its output (None for [`Op::Assign`]).
    pub fn push(&mut self, op: Op, inputs: &[ValueId]) -> Result<Option<ValueId>> {
        let metas = inputs.iter().map(|&i| self.check(i).map(|v| (&v.shape, v.dtype))).collect::<Result<Vec<_>>>()?;
        let out = op.infer(&metas)?;
        if op == Op::Assign && !matches!(self.value(inputs[0]).source, Source::Variable { .. }) {
            return Err(Error::invalid("assign", "variable", "the target must be a variable"));
        }
        let node = self.nodes.len();
        let output = out.map(|(shape, dtype)| self.add_value(shape, dtype, Source::Node(node)));
        self.nodes.push(Node { op, inputs: inputs.to_vec(), output, layer: self.layer.clone() });
        Ok(output)
    }

    pub(crate) fn push1(&mut self, op: Op, inputs: &[ValueId]) -> Result<ValueId> {
        Ok(self.push(op, inputs)?.expect("ops other than assign have an output"))
    }

    /// Elementwise unary function.
    pub fn unary(&mut self, op: UnaryOp, x: ValueId) -> Result<ValueId> {
        self.push1(Op::Unary(op), &[x])
    }

    /// Elementwise binary function with broadcasting.
    pub fn binary(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.push1(Op::Binary(op), &[a, b])
    }

    /// `a + b` with broadcasting.
    pub fn add(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(BinaryOp::Add, a, b)
    }

    /// `a - b` with broadcasting.
    pub fn sub(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(BinaryOp::Sub, a, b)
    }

    /// `a * b` with broadcasting.
    pub fn mul(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(BinaryOp::Mul, a, b)
    }

    /// `a / b` with broadcasting.
    pub fn div(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(BinaryOp::Div, a, b)
    }

    /// `x * s`.
    pub fn scale(&mut self, x: ValueId, s: f32) -> Result<ValueId> {
        self.unary(UnaryOp::Scale(s), x)
    }

    /// Reduction over `axes` (sorted, distinct).
    ///
    /// A reduction of more than [`LONG_REDUCE`] elements per output over adjacent axes is
    /// recorded in two stages (chunks, then the chunks' results), by shape alone so both backends
    /// compute the same stages: a GPU then spreads it over many workgroups instead of one per
    /// output, and each f32 running sum is short (a 4096x4096 kernel's mean |w| in one running sum
    /// per thread lost whole percents).
    pub fn reduce(&mut self, op: ReduceOp, x: ValueId, axes: &[usize], keep_dims: bool) -> Result<ValueId> {
        if let Some(y) = self.reduce_in_stages(op, x, axes, keep_dims)? {
            return Ok(y);
        }
        self.push1(Op::Reduce { op, axes: axes.to_vec(), keep_dims }, &[x])
    }

    /// [`Graph::reduce`]'s stages, where they apply: `x` viewed as `[before, n, after]` with the
    /// reduced axes in the middle; the first `n - n % chunk` of `n` reduced by chunks, then the
    /// chunks' results (by this same rule when they are many), then the remainder added.
    fn reduce_in_stages(&mut self, op: ReduceOp, x: ValueId, axes: &[usize], keep_dims: bool) -> Result<Option<ValueId>> {
        let dims = self.check(x)?.shape.dims().to_vec();
        let mut sorted = axes.to_vec();
        sorted.sort_unstable();
        let adjacent = sorted.windows(2).all(|w| w[1] == w[0] + 1);
        let (Some(&first), Some(&last)) = (sorted.first(), sorted.last()) else { return Ok(None) };
        if !adjacent || last >= dims.len() {
            return Ok(None); // left to the op (which names a bad axis)
        }
        let n: usize = dims[first..=last].iter().product();
        if n <= LONG_REDUCE {
            return Ok(None);
        }
        // A chunk that divides n when one near 1024 does (no remainder to slice off).
        let chunk = (256..=4096).rev().find(|c| n % c == 0).unwrap_or(1024);
        let (before, after) = (dims[..first].iter().product::<usize>(), dims[last + 1..].iter().product::<usize>());
        let main = n - n % chunk;
        let staged = self.reshape(x, [before, n, after])?;
        let sum_op = if op == ReduceOp::Max { ReduceOp::Max } else { ReduceOp::Sum };
        let head = if main == n { staged } else { self.slice(staged, &[0, 0, 0], [before, main, after])? };
        let head = self.reshape(head, [before, main / chunk, chunk, after])?;
        let partial = self.push1(Op::Reduce { op: sum_op, axes: vec![2], keep_dims: false }, &[head])?;
        let mut total = self.reduce(sum_op, partial, &[1], false)?;
        if main < n {
            let tail = self.slice(staged, &[0, main, 0], [before, n - main, after])?;
            let rest = self.push1(Op::Reduce { op: sum_op, axes: vec![1], keep_dims: false }, &[tail])?;
            total = self.binary(if op == ReduceOp::Max { BinaryOp::Max } else { BinaryOp::Add }, total, rest)?;
        }
        if op == ReduceOp::Mean {
            total = self.scale(total, (1.0 / n as f64) as f32)?;
        }
        let out: Vec<usize> = (0..dims.len())
            .filter_map(|d| match sorted.contains(&d) {
                false => Some(dims[d]),
                true => keep_dims.then_some(1),
            })
            .collect();
        Ok(Some(self.reshape(total, out)?))
    }

    /// Sum over `axes`.
    pub fn sum(&mut self, x: ValueId, axes: &[usize], keep_dims: bool) -> Result<ValueId> {
        self.reduce(ReduceOp::Sum, x, axes, keep_dims)
    }

    /// Mean over `axes`.
    pub fn mean(&mut self, x: ValueId, axes: &[usize], keep_dims: bool) -> Result<ValueId> {
        self.reduce(ReduceOp::Mean, x, axes, keep_dims)
    }

    /// Maximum over `axes`.
    pub fn max(&mut self, x: ValueId, axes: &[usize], keep_dims: bool) -> Result<ValueId> {
        self.reduce(ReduceOp::Max, x, axes, keep_dims)
    }

    /// `a @ b` over the last two axes, batch axes broadcast.
    pub fn matmul(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.matmul_t(a, b, false, false)
    }

    /// `op(a) @ op(b)` with optional transposes of the last two axes.
    ///
    /// A long product into a small output (`a^T @ b` with both stored K-major, as weight
    /// gradients are: K runs over every pixel of the batch) would give a GPU a handful of output
    /// tiles to work on, each looping over all of K. Such a product is recorded split along K
    /// instead: the reshapes are free (they share buffers), the chunks multiply as one batched
    /// product, and a reduce sums the partial products. The split depends on the shapes alone,
    /// so both backends compute the same sums.
    pub fn matmul_t(&mut self, a: ValueId, b: ValueId, trans_a: bool, trans_b: bool) -> Result<ValueId> {
        let (sa, sb) = (self.check(a)?.shape.clone(), self.check(b)?.shape.clone());
        let d = op::MatMulDims::new(&sa, &sb, trans_a, trans_b)?;
        let splits = if trans_a && !trans_b { ops::gemm::k_splits(&d) } else { 1 };
        if splits == 1 {
            return self.push1(Op::MatMul { trans_a, trans_b }, &[a, b]);
        }
        let chunked = |s: &Shape| {
            let r = s.rank();
            let mut dims = s.dims()[..r - 2].to_vec();
            dims.extend([splits, d.k / splits, s.dims()[r - 1]]);
            dims
        };
        let a = self.reshape(a, chunked(&sa))?;
        let b = self.reshape(b, chunked(&sb))?;
        let partial = self.push1(Op::MatMul { trans_a, trans_b }, &[a, b])?;
        let rank = self.value(partial).shape.rank();
        self.sum(partial, &[rank - 3], false)
    }

    /// Axis permutation. The identity records nothing, and a permutation that only moves
    /// size-1 axes keeps the element order, so it is recorded as a reshape.
    pub fn permute(&mut self, x: ValueId, perm: &[usize]) -> Result<ValueId> {
        let shape = self.check(x)?.shape.clone();
        let out = op::permuted_shape("permute", &shape, perm)?;
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(x);
        }
        let moved: Vec<usize> = perm.iter().copied().filter(|&p| shape.dims()[p] != 1).collect();
        if moved.windows(2).all(|w| w[0] < w[1]) {
            return self.reshape(x, out);
        }
        self.push1(Op::Permute { perm: perm.to_vec() }, &[x])
    }

    /// Swaps the last two axes.
    pub fn transpose(&mut self, x: ValueId) -> Result<ValueId> {
        let r = self.check(x)?.shape.rank();
        if r < 2 {
            return Err(Error::invalid("transpose", "x", format!("needs rank >= 2, got {r}")));
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.permute(x, &perm)
    }

    /// New shape, same elements.
    pub fn reshape(&mut self, x: ValueId, shape: impl Into<Shape>) -> Result<ValueId> {
        self.push1(Op::Reshape { shape: shape.into() }, &[x])
    }

    /// The window of `x` of `shape` whose origin lies at `offset` in `x`; positions outside `x`
    /// are 0. See [`Op::Window`].
    pub fn window(&mut self, x: ValueId, offset: &[isize], shape: impl Into<Shape>) -> Result<ValueId> {
        self.push1(Op::Window { offset: offset.to_vec(), shape: shape.into() }, &[x])
    }

    /// Zero padding: `pads[d] = (before, after)` elements on axis `d`.
    pub fn pad(&mut self, x: ValueId, pads: &[(usize, usize)]) -> Result<ValueId> {
        let xs = self.check(x)?.shape.clone();
        if pads.len() != xs.rank() {
            return Err(Error::shapes("pad", xs.dims(), &[pads.len()], "needs one (before, after) pair per axis"));
        }
        let shape = xs
            .dims()
            .iter()
            .zip(pads)
            .map(|(d, (b, a))| checked_size("pad", "pads", d.checked_add(*b).and_then(|n| n.checked_add(*a))))
            .collect::<Result<Vec<usize>>>()?;
        let offset = pads
            .iter()
            .map(|&(b, _)| isize::try_from(b).map(|b| -b).map_err(|_| Error::invalid("pad", "pads", format!("{b} is too large"))))
            .collect::<Result<Vec<isize>>>()?;
        self.window(x, &offset, shape)
    }

    /// `x[start .. start + shape]`; the slice must lie inside `x`.
    pub fn slice(&mut self, x: ValueId, start: &[usize], shape: impl Into<Shape>) -> Result<ValueId> {
        let (xs, shape) = (self.check(x)?.shape.clone(), shape.into());
        let fits = start.len() == xs.rank()
            && shape.rank() == xs.rank()
            && (0..xs.rank()).all(|d| start[d].checked_add(shape.dims()[d]).is_some_and(|end| end <= xs.dims()[d]));
        if !fits {
            return Err(Error::shapes("slice", xs.dims(), shape.dims(), format!("a slice at {start:?} must lie inside x")));
        }
        let offset: Vec<isize> = start.iter().map(|&s| s as isize).collect();
        self.window(x, &offset, shape)
    }

    /// Joins tensors along `axis`; all other axes must agree. Each part is padded to the full
    /// size and the parts summed, so the backward pass is a slice per part.
    pub fn concat(&mut self, parts: &[ValueId], axis: usize) -> Result<ValueId> {
        let first = self.check(*parts.first().ok_or_else(|| Error::invalid("concat", "parts", "needs at least one tensor"))?)?;
        let base = first.shape.clone();
        if axis >= base.rank() {
            return Err(Error::invalid("concat", "axis", format!("{axis} is out of range for rank {}", base.rank())));
        }
        let mut sizes = Vec::with_capacity(parts.len());
        for &p in parts {
            let s = self.check(p)?.shape.clone();
            let agree = s.rank() == base.rank() && (0..s.rank()).all(|d| d == axis || s.dims()[d] == base.dims()[d]);
            if !agree {
                return Err(Error::shapes("concat", base.dims(), s.dims(), format!("all axes but {axis} must agree")));
            }
            sizes.push(s.dims()[axis]);
        }
        let total: usize = sizes.iter().sum();
        let mut out: Option<ValueId> = None;
        let mut at = 0;
        for (&p, &size) in parts.iter().zip(&sizes) {
            let mut pads = vec![(0, 0); base.rank()];
            pads[axis] = (at, total - at - size);
            at += size;
            let padded = if parts.len() == 1 { p } else { self.pad(p, &pads)? };
            out = Some(match out {
                None => padded,
                Some(acc) => self.add(acc, padded)?,
            });
        }
        Ok(out.expect("at least one part"))
    }

    /// Broadcast to `shape`.
    pub fn broadcast_to(&mut self, x: ValueId, shape: impl Into<Shape>) -> Result<ValueId> {
        self.push1(Op::Broadcast { shape: shape.into() }, &[x])
    }

    /// Rows of `table` selected by `idx` (i32).
    pub fn gather(&mut self, table: ValueId, idx: ValueId) -> Result<ValueId> {
        self.push1(Op::Gather, &[table, idx])
    }

    /// Elements of `x` (read flat) picked by `idx`, laid out as `shape`: `y[i] = x[idx[i]]`, and
    /// 0 where `idx[i]` is -1. The indices become a constant; each must be -1 or a valid position
    /// in `x`, and no position may be picked twice, so the gradient is the same map inverted.
    pub fn take(&mut self, x: ValueId, idx: &[i32], shape: impl Into<Shape>) -> Result<ValueId> {
        let n = self.check(x)?.shape.numel();
        let mut seen = vec![false; n];
        for (i, &j) in idx.iter().enumerate() {
            let ok = j == -1 || usize::try_from(j).is_ok_and(|j| j < n && !std::mem::replace(&mut seen[j], true));
            if !ok {
                return Err(Error::invalid("take", "idx", format!("entry {i} is {j}: each must be -1 or a distinct position below {n}")));
            }
        }
        let idx = self.constant(HostTensor::i32([idx.len()], idx.to_vec())?)?;
        self.push1(Op::Take { shape: shape.into() }, &[x, idx])
    }

    /// Softmax over the last axis.
    pub fn softmax(&mut self, x: ValueId) -> Result<ValueId> {
        self.push1(Op::Softmax, &[x])
    }

    /// Where each row's label ranks among its `scores [N, C]` (see [`Op::LabelRank`]): `target`
    /// is labels `[N]` i32 or one-hot rows `[N, C]` f32.
    pub fn label_rank(&mut self, scores: ValueId, target: ValueId, first_ties: bool) -> Result<ValueId> {
        self.push1(Op::LabelRank { first_ties }, &[scores, target])
    }

    /// Per-row softmax cross-entropy of `logits [N, C]` against integer `labels [N]`.
    pub fn softmax_cross_entropy(&mut self, logits: ValueId, labels: ValueId) -> Result<ValueId> {
        self.push1(Op::SoftmaxCrossEntropy, &[logits, labels])
    }

    /// Applies a quantizer function; `stat` is required exactly when `f.needs_stat()`.
    pub fn quantize(&mut self, f: QuantFn, x: ValueId, stat: Option<ValueId>) -> Result<ValueId> {
        let inputs: Vec<ValueId> = std::iter::once(x).chain(stat).collect();
        self.push1(Op::Quantize { f }, &inputs)
    }

    /// A user-defined quantizer function of `x` (see [`crate::quantizers::CustomQuantizer`]).
    pub fn custom_quantize(&mut self, f: std::sync::Arc<ops::custom_quantize::CustomFn>, x: ValueId) -> Result<ValueId> {
        self.push1(Op::CustomQuantize { f }, &[x])
    }

    /// Packs the last axis of `x` into u32 words of sign bits or clip-mask bits.
    pub fn bit_pack(&mut self, x: ValueId, mode: PackMode) -> Result<ValueId> {
        self.push1(Op::BitPack { mode }, &[x])
    }

    /// TensorFlow's fake quantization of `x` to the range `[min, max]` (`[1]` each, or `[C]` for the
    /// last axis with `spec.per_channel`), nudged so that 0 is a level; straight-through inside
    /// the range, with gradients for `min` and `max` from what falls outside it.
    pub fn fake_quant(&mut self, x: ValueId, min: ValueId, max: ValueId, spec: FakeQuantSpec) -> Result<ValueId> {
        self.push1(Op::FakeQuant { spec, part: FakeQuantPart::Value }, &[x, min, max])
    }

    /// Expands packed bits back to f32 (±1 for signs, 1/0 for masks).
    pub fn bit_unpack(&mut self, bits: ValueId, k: usize, mode: PackMode) -> Result<ValueId> {
        self.push1(Op::BitUnpack { k, mode }, &[bits])
    }

    /// `dy` where the packed `mask` bit is set, else 0.
    pub fn apply_mask(&mut self, mask: ValueId, dy: ValueId) -> Result<ValueId> {
        self.push1(Op::ApplyMask, &[mask, dy])
    }

    /// The exact dot products of rows of two low-bit encodings held as weighted bit planes
    /// (`a` u32 `[Pa, M, W]`, `b` u32 `[Pb, N, W]`, or both with a batch axis in front): f32
    /// `[M, N]` (`[B, M, N]`; see [`ops::planes`] for the encodings: ±1, {0, 1}, ternary, k-bit
    /// levels).
    pub fn plane_gemm(&mut self, a: ValueId, b: ValueId, a_weights: &[i32], b_weights: &[i32]) -> Result<ValueId> {
        self.push1(Op::PlaneGemm { a_weights: a_weights.to_vec(), b_weights: b_weights.to_vec() }, &[a, b])
    }

    /// Packs `q [.., M, K]` into the bit planes of `encoding`, `u32 [.., P, M, words(K)]`: each
    /// value the integer `round(q * scale)` (a signed one `sign(q)`).
    pub fn plane_pack(&mut self, q: ValueId, encoding: Encoding, scale: f32) -> Result<ValueId> {
        self.push1(Op::PlanePack { encoding, scale }, &[q])
    }

    /// Expands planes `[.., P, M, W]` of `encoding` back to `f32 [.., M, k]` (integer / scale).
    pub fn plane_unpack(&mut self, planes: ValueId, encoding: Encoding, k: usize, scale: f32) -> Result<ValueId> {
        self.push1(Op::PlaneUnpack { encoding, k, scale }, &[planes])
    }

    /// XNOR-popcount product of packed rows of `a` and `b` over `k` bits, as f32.
    pub fn xnor_gemm(&mut self, a: ValueId, b: ValueId, k: usize) -> Result<ValueId> {
        self.push1(Op::XnorGemm { k, epilogue: Epilogue::Plain }, &[a, b])
    }

    /// XNOR-popcount product followed by a per-column `scale` and `bias`, either as f32
    /// ([`Epilogue::Affine`]) or re-binarized to packed sign bits ([`Epilogue::Binarize`]).
    pub fn xnor_gemm_scaled(
        &mut self,
        a: ValueId,
        b: ValueId,
        k: usize,
        scale: ValueId,
        bias: ValueId,
        epilogue: Epilogue,
    ) -> Result<ValueId> {
        self.push1(Op::XnorGemm { k, epilogue }, &[a, b, scale, bias])
    }

    /// A seeded random tensor.
    pub fn random(&mut self, shape: impl Into<Shape>, dist: Distribution, seed: u64) -> Result<ValueId> {
        self.push1(Op::Random { dist, seed, shape: shape.into(), streamed: false }, &[])
    }

    /// A seeded random tensor that changes with `stream` (an f32 `[1]` counter, e.g. the step).
    pub fn random_streamed(&mut self, shape: impl Into<Shape>, dist: Distribution, seed: u64, stream: ValueId) -> Result<ValueId> {
        self.push1(Op::Random { dist, seed, shape: shape.into(), streamed: true }, &[stream])
    }

    /// A tensor filled with `value`.
    pub fn fill(&mut self, shape: impl Into<Shape>, value: f32) -> Result<ValueId> {
        self.push1(Op::Fill { value, shape: shape.into() }, &[])
    }

    /// Makes the gradient of `y` flow to `wrt` through `rule` instead of through the ops that
    /// compute `y`. This is how a binarized product runs forward on packed bits yet has a
    /// straight-through gradient that reads only the packed signs and masks it saved (see
    /// [`Graph::binary_matmul`]), and how a custom layer supplies its own backward.
    pub fn override_gradient(
        &mut self,
        y: ValueId,
        wrt: &[ValueId],
        rule: impl Fn(&mut Graph, ValueId) -> Result<Vec<Option<ValueId>>> + Send + Sync + 'static,
    ) -> Result<()> {
        if self.check(y)?.dtype != DType::F32 || !matches!(self.value(y).source, Source::Node(_)) {
            return Err(Error::invalid("override_gradient", "y", format!("{y:?} must be an f32 node output")));
        }
        for &w in wrt {
            self.check(w)?;
        }
        self.overrides.insert(y, GradientOverride { wrt: wrt.to_vec(), rule: std::sync::Arc::new(rule) });
        Ok(())
    }

    /// An optimizer's fused update `f` of `inputs[0]` (a variable or slot) from the other operands
    /// (see [`UpdateFn`]); the result is the new value, to [`Graph::assign`].
    pub fn update(&mut self, f: UpdateFn, inputs: &[ValueId]) -> Result<ValueId> {
        self.push1(Op::Update { f }, inputs)
    }

    /// The gradient `dx` of `y = max(x, axis 1)` for `x [rows, taps, c]` given `dy`, with
    /// TensorFlow's rule for ties: only each window's first maximal tap (`first`, max pooling in
    /// 1-D and 2-D) or every maximal tap (3-D) receives `dy`.
    pub fn max_grad(&mut self, x: ValueId, y: ValueId, dy: ValueId, first: bool) -> Result<ValueId> {
        self.push1(Op::MaxGrad { first }, &[x, y, dy])
    }

    /// Writes `value` into `variable` when the step reaches this point.
    pub fn assign(&mut self, variable: ValueId, value: ValueId) -> Result<()> {
        self.push(Op::Assign, &[variable, value]).map(|_| ())
    }
}
