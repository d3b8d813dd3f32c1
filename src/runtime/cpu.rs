//! Running a plan on the CPU reference: node by node, dropping each value after its last reader.

use std::collections::HashMap;

use crate::device::{lock, Storage, Tensor};
use crate::error::Result;
use crate::graph::{Graph, ValueId};
use crate::tensor::TensorData;

pub(super) struct CpuExec {
    pub(super) feeds: HashMap<ValueId, TensorData>,
    /// Position in `order` after which a node output is dead.
    pub(super) last_use: HashMap<ValueId, usize>,
    pub(super) results: HashMap<ValueId, TensorData>,
}

impl CpuExec {
    pub(super) fn run(&mut self, graph: &Graph, order: &[usize], outputs: &[ValueId], variables: &[(ValueId, Tensor)]) -> Result<()> {
        // Variables are moved into the working set for the step and always moved back, even
        // when an op fails, so a failed step never loses weights.
        let mut vals: HashMap<ValueId, TensorData> = HashMap::new();
        for (id, t) in variables {
            if let Storage::Cpu(d) = &t.storage {
                vals.insert(*id, std::mem::replace(&mut *lock(d), TensorData::F32(Vec::new())));
            }
        }
        let result = self.steps(graph, order, &mut vals);
        for (id, t) in variables {
            if let (Storage::Cpu(d), Some(data)) = (&t.storage, vals.remove(id)) {
                *lock(d) = data;
            }
        }
        result?;
        self.results = outputs.iter().filter_map(|o| vals.remove(o).map(|d| (*o, d))).collect();
        Ok(())
    }

    /// A planned value: computed this step, a variable's working copy, or a feed.
    pub(super) fn value<'a>(&'a self, vals: &'a HashMap<ValueId, TensorData>, id: &ValueId) -> &'a TensorData {
        vals.get(id).or_else(|| self.feeds.get(id)).expect("planned values exist")
    }

    pub(super) fn steps(&self, graph: &Graph, order: &[usize], vals: &mut HashMap<ValueId, TensorData>) -> Result<()> {
        for (pos, &n) in order.iter().enumerate() {
            let node = &graph.nodes[n];
            match node.output {
                None => {
                    // Assign: the variable's working copy becomes the value.
                    let value = self.value(vals, &node.inputs[1]).clone();
                    vals.insert(node.inputs[0], value);
                }
                Some(out) => {
                    let ins: Vec<(&crate::Shape, &TensorData)> =
                        node.inputs.iter().map(|i| (&graph.value(*i).shape, self.value(vals, i))).collect();
                    let y = node.op.eval(&ins, &graph.value(out).shape)?;
                    vals.insert(out, y);
                }
            }
            for i in &node.inputs {
                if self.last_use.get(i) == Some(&pos) {
                    vals.remove(i);
                }
            }
        }
        Ok(())
    }
}
