//! Reverse-mode automatic differentiation as a graph-to-graph transformation.
//!
//! `backward` walks the recorded nodes in reverse and appends gradient nodes to the same graph,
//! so the forward pass, the backward pass and any update nodes plan and run as one step. The
//! rule for each op lives in its family (`Op::backward` delegates): an op without a rule does
//! not compile.

use std::collections::HashMap;

use super::{Graph, ValueId};
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
                None => (node.inputs.clone(), node.op.backward(self, &node, out, dy)?),
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
