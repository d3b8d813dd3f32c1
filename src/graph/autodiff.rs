//! Reverse-mode automatic differentiation as a graph-to-graph transformation.
//!
//! `backward` walks the recorded nodes in reverse and appends gradient nodes to the same graph,
//! so the forward pass, the backward pass and any update nodes plan and run as one step. The
//! rule for each op lives in one exhaustive `match`: an op without a rule does not compile.

use std::collections::HashMap;

use super::op::{BinaryOp, FakeQuantPart, Op, ReduceOp, UnaryOp};
use super::{Graph, Node, ValueId};
use crate::error::{Error, Result};
use crate::tensor::{DType, Shape};

impl Graph {
    /// Appends the gradient of `loss` (summed over its elements) with respect to each of `wrt`
    /// and returns the gradient values, in order. Values that `loss` does not depend on get a
    /// zero gradient.
    pub fn backward(&mut self, loss: ValueId, wrt: &[ValueId]) -> Result<Vec<ValueId>> {
        if self.check(loss)?.dtype != DType::F32 {
            return Err(Error::invalid(
                "backward",
                "loss",
                format!("{loss:?} is {:?}; only f32 values can be differentiated", self.value(loss).dtype),
            ));
        }
        for &w in wrt {
            if self.check(w)?.dtype != DType::F32 {
                return Err(Error::invalid("backward", "wrt", format!("{w:?} is not f32 and has no gradient")));
            }
        }
        // Values on a path from some `wrt` (forward reachability); only they need gradients.
        // The path is followed through integer and packed values too, so that an op without a
        // gradient on it (bit packing) is reported instead of silently yielding zero.
        let mut needs = vec![false; self.values.len()];
        wrt.iter().for_each(|w| needs[w.index()] = true);
        let forward_nodes = self.nodes.len();
        for node in &self.nodes {
            if let Some(out) = node.output {
                let overridden = self.overrides.get(&out).is_some_and(|o| o.wrt.iter().any(|i| needs[i.index()]));
                if overridden || node.inputs.iter().any(|i| needs[i.index()]) {
                    needs[out.index()] = true;
                }
            }
        }
        let mut grads: HashMap<ValueId, ValueId> = HashMap::new();
        if needs[loss.index()] {
            let seed = self.fill(self.value(loss).shape.clone(), 1.0)?;
            grads.insert(loss, seed);
        }
        // Gradient nodes carry the layer tag of the node they differentiate.
        let outer = self.layer.clone();
        for idx in (0..forward_nodes).rev() {
            let node = self.nodes[idx].clone();
            let Some(out) = node.output else { continue };
            let Some(&dy) = grads.get(&out) else { continue };
            if !needs[out.index()] {
                continue;
            }
            self.set_layer(node.layer.clone());
            // An overridden value sends its gradient where its rule says, not through its op.
            let (targets, dxs) = match self.overrides.get(&out).cloned() {
                Some(o) => {
                    let dxs = (o.rule)(self, dy)?;
                    if dxs.len() != o.wrt.len() {
                        return Err(Error::invalid(
                            "override_gradient",
                            "rule",
                            format!("returned {} gradients for {} values", dxs.len(), o.wrt.len()),
                        ));
                    }
                    for (w, dx) in o.wrt.iter().zip(&dxs) {
                        if let Some(dx) = dx {
                            if self.value(*dx).shape != self.value(*w).shape {
                                return Err(Error::shapes(
                                    "override_gradient",
                                    self.value(*dx).shape.dims(),
                                    self.value(*w).shape.dims(),
                                    format!("the rule's gradient for {w:?} has the wrong shape"),
                                ));
                            }
                        }
                    }
                    (o.wrt, dxs)
                }
                None => (node.inputs.clone(), self.node_backward(&node, out, dy)?),
            };
            for (&input, dx) in targets.iter().zip(dxs) {
                let Some(dx) = dx else { continue };
                if !needs[input.index()] {
                    continue;
                }
                let total = match grads.get(&input) {
                    Some(&prev) => self.add(prev, dx)?,
                    None => dx,
                };
                grads.insert(input, total);
            }
        }
        self.set_layer(outer);
        wrt.iter()
            .map(|w| match grads.get(w) {
                Some(&g) => Ok(g),
                None => self.fill(self.value(*w).shape.clone(), 0.0),
            })
            .collect()
    }

    /// Gradients of one node's inputs given the gradient `dy` of its output `y`.
    /// `None` means "no gradient flows to this input" (integer operands, comparisons).
    fn node_backward(&mut self, node: &Node, y: ValueId, dy: ValueId) -> Result<Vec<Option<ValueId>>> {
        let x = |i: usize| node.inputs[i];
        let shape = |g: &Graph, i: usize| g.value(node.inputs[i]).shape.clone();
        Ok(match &node.op {
            Op::Unary(op) => vec![Some(self.push1(Op::UnaryGrad(*op), &[x(0), dy])?)],
            Op::UnaryGrad(_) | Op::SoftmaxCrossEntropyGrad => {
                return Err(Error::NotDifferentiable { op: node.op.name(), reason: "second derivatives are not supported".into() })
            }
            Op::Binary(op) => {
                let (sa, sb) = (shape(self, 0), shape(self, 1));
                let (da, db) = match op {
                    BinaryOp::Add => (dy, dy),
                    BinaryOp::Sub => (dy, self.unary(UnaryOp::Neg, dy)?),
                    BinaryOp::Mul => (self.mul(dy, x(1))?, self.mul(dy, x(0))?),
                    BinaryOp::Div => {
                        // d(a/b)/db = -a/b^2 = -(1/b) * y
                        let da = self.div(dy, x(1))?;
                        let t = self.mul(da, y)?;
                        (da, self.unary(UnaryOp::Neg, t)?)
                    }
                    BinaryOp::Max | BinaryOp::Min => {
                        // Ties send the gradient to `a`, as TensorFlow's maximum/minimum do.
                        let mask = match op {
                            BinaryOp::Max => self.binary(BinaryOp::Ge, x(0), x(1))?,
                            _ => self.binary(BinaryOp::Ge, x(1), x(0))?,
                        };
                        let da = self.mul(dy, mask)?;
                        (da, self.sub(dy, da)?)
                    }
                    BinaryOp::Ge | BinaryOp::Gt | BinaryOp::Eq => return Ok(vec![None, None]),
                };
                vec![Some(self.sum_to(da, &sa)?), Some(self.sum_to(db, &sb)?)]
            }
            Op::Reduce { op, axes, keep_dims } => {
                let sx = shape(self, 0);
                let kept = super::op::reduced_shape("reduce", &sx, axes, true)?;
                let dy_k = if *keep_dims { dy } else { self.reshape(dy, kept.clone())? };
                let dx = match op {
                    ReduceOp::Sum => self.broadcast_to(dy_k, sx)?,
                    ReduceOp::Mean => {
                        let count = axes.iter().map(|&a| sx.dims()[a]).product::<usize>();
                        let s = self.scale(dy_k, 1.0 / count as f32)?;
                        self.broadcast_to(s, sx)?
                    }
                    ReduceOp::Max => {
                        // Ties share the gradient equally, as TensorFlow's reduce_max does.
                        let y_k = if *keep_dims { y } else { self.reshape(y, kept)? };
                        let is_max = self.binary(BinaryOp::Eq, x(0), y_k)?;
                        let count = self.sum(is_max, axes, true)?;
                        let share = self.div(dy_k, count)?;
                        self.mul(is_max, share)?
                    }
                };
                vec![Some(dx)]
            }
            Op::MatMul { trans_a, trans_b } => {
                let (a, b) = (x(0), x(1));
                let (da, db) = match (trans_a, trans_b) {
                    (false, false) => (self.matmul_t(dy, b, false, true)?, self.matmul_t(a, dy, true, false)?),
                    (false, true) => (self.matmul_t(dy, b, false, false)?, self.matmul_t(dy, a, true, false)?),
                    (true, false) => (self.matmul_t(b, dy, false, true)?, self.matmul_t(a, dy, false, false)?),
                    (true, true) => (self.matmul_t(b, dy, true, true)?, self.matmul_t(dy, a, true, true)?),
                };
                let (sa, sb) = (shape(self, 0), shape(self, 1));
                vec![Some(self.sum_to(da, &sa)?), Some(self.sum_to(db, &sb)?)]
            }
            Op::Permute { perm } => {
                let mut inv = vec![0; perm.len()];
                perm.iter().enumerate().for_each(|(i, &p)| inv[p] = i);
                vec![Some(self.permute(dy, &inv)?)]
            }
            Op::Broadcast { .. } => {
                let sx = shape(self, 0);
                vec![Some(self.sum_to(dy, &sx)?)]
            }
            Op::Window { offset, .. } => {
                let back: Vec<isize> = offset.iter().map(|o| -o).collect();
                let sx = shape(self, 0);
                vec![Some(self.push1(Op::Window { offset: back, shape: sx }, &[dy])?)]
            }
            Op::Reshape { .. } => {
                let sx = shape(self, 0);
                vec![Some(self.reshape(dy, sx)?)]
            }
            Op::Gather => {
                let rows = shape(self, 0).dims()[0];
                vec![Some(self.push1(Op::GatherGrad { rows }, &[x(1), dy])?), None]
            }
            Op::Take { .. } => {
                // Injective by construction (Graph::take), so the adjoint takes the inverse map.
                let sx = shape(self, 0);
                let idx = self.constant_data(x(1)).and_then(|t| t.as_i32().ok()).ok_or_else(|| {
                    Error::invalid("gradients", "take", "the gradient of take needs its indices as a constant (use Graph::take)")
                })?;
                let mut inverse = vec![-1i32; sx.numel()];
                for (i, &j) in idx.iter().enumerate() {
                    if let Some(slot) = usize::try_from(j).ok().and_then(|j| inverse.get_mut(j)) {
                        *slot = i as i32;
                    }
                }
                vec![Some(self.take(dy, &inverse, sx)?), None]
            }
            // GatherGrad is linear in its upstream gradient: its adjoint is a gather.
            Op::GatherGrad { .. } => vec![None, Some(self.gather(dy, x(0))?)],
            Op::Softmax => {
                // dx = y * (dy - sum(dy * y, last axis))
                let last = self.value(y).shape.rank() - 1;
                let dyy = self.mul(dy, y)?;
                let s = self.sum(dyy, &[last], true)?;
                let d = self.sub(dy, s)?;
                vec![Some(self.mul(y, d)?)]
            }
            Op::SoftmaxCrossEntropy => vec![Some(self.push1(Op::SoftmaxCrossEntropyGrad, &[x(0), x(1), dy])?), None],
            Op::BitPack { .. } | Op::BitUnpack { .. } | Op::XnorGemm { .. } => {
                return Err(Error::NotDifferentiable {
                    op: node.op.name(),
                    reason: "packed bits carry no gradient; a quantizer defines the pseudo-gradient of binarized values".into(),
                })
            }
            // Linear in dy: the adjoint masks the upstream gradient the same way.
            Op::ApplyMask => vec![None, Some(self.apply_mask(x(0), dy)?)],
            // The statistic is a constant for the gradient (Larq stops gradients through it).
            Op::Quantize { f } => {
                let mut ins = node.inputs.clone();
                ins.push(dy);
                let dx = self.push1(Op::QuantizeGrad { f: *f }, &ins)?;
                let mut grads = vec![Some(dx)];
                if f.needs_stat() {
                    grads.push(None);
                }
                grads
            }
            // Straight through inside the nudged range; the range's gradients sum what falls
            // below and above it (TensorFlow's FakeQuantWithMinMaxVars[PerChannel]Gradient).
            Op::FakeQuant { spec, part: FakeQuantPart::Value } => {
                let mut mask = |part| self.push1(Op::FakeQuant { spec: *spec, part }, &node.inputs);
                let (inside, below, above) =
                    (mask(FakeQuantPart::InRange)?, mask(FakeQuantPart::BelowMin)?, mask(FakeQuantPart::AboveMax)?);
                let dx = self.mul(dy, inside)?;
                let mut range = |m: ValueId, of: ValueId| -> Result<ValueId> {
                    let g = self.mul(dy, m)?;
                    let target = self.value(of).shape.clone();
                    self.sum_to(g, &target)
                };
                let (dmin, dmax) = (range(below, x(1))?, range(above, x(2))?);
                vec![Some(dx), Some(dmin), Some(dmax)]
            }
            // The masks are piecewise constant.
            Op::FakeQuant { .. } => vec![None, None, None],
            Op::QuantizeGrad { .. } => {
                return Err(Error::NotDifferentiable { op: "quantize_grad", reason: "second derivatives are not supported".into() })
            }
            Op::Im2Col { geom, .. } => {
                if self.value(x(0)).dtype != DType::F32 {
                    return Err(Error::NotDifferentiable { op: "im2col", reason: "packed images carry no gradient".into() });
                }
                vec![Some(self.col2im(dy, geom)?)]
            }
            // Padded positions of im2col only ever received constants, so zero padding is right.
            Op::Col2Im { geom } => vec![Some(self.im2col(dy, geom, 0.0)?)],
            Op::Random { streamed, .. } => vec![None; usize::from(*streamed)],
            Op::Fill { .. } => vec![],
            Op::Assign => vec![None, None],
        })
    }

    /// Sums a broadcast gradient back down to `target` (the inverse of broadcasting); useful in
    /// gradient rules (see [`Graph::override_gradient`]).
    pub fn sum_to(&mut self, g: ValueId, target: &Shape) -> Result<ValueId> {
        let gs = self.value(g).shape.clone();
        if &gs == target {
            return Ok(g);
        }
        let lead = gs.rank() - target.rank();
        let axes: Vec<usize> = (0..gs.rank()).filter(|&i| i < lead || (target.dims()[i - lead] == 1 && gs.dims()[i] != 1)).collect();
        let s = if axes.is_empty() { g } else { self.sum(g, &axes, false)? };
        if &self.value(s).shape == target {
            Ok(s)
        } else {
            self.reshape(s, target.clone())
        }
    }
}
