//! Which nodes a plan runs, and how long each value lives.

use std::collections::HashMap;

use crate::graph::{Graph, ValueId};

/// The nodes a plan of `graph` for `outputs` runs, in graph order: those the outputs need, plus
/// every assignment (a side effect) and what it needs. The rest (a gradient nobody reads) is
/// pruned.
pub fn live_nodes(graph: &Graph, outputs: &[ValueId]) -> Vec<usize> {
    let mut needed = vec![false; graph.values.len()];
    outputs.iter().for_each(|o| needed[o.index()] = true);
    let mut live = vec![false; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate().rev() {
        if node.output.is_none_or(|o| needed[o.index()]) {
            live[i] = true;
            node.inputs.iter().for_each(|x| needed[x.index()] = true);
        }
    }
    (0..graph.nodes.len()).filter(|&i| live[i]).collect()
}

/// For each node output, the last position in `order` that reads it (outputs live to the end).
pub(super) fn liveness(graph: &Graph, order: &[usize], outputs: &[ValueId]) -> HashMap<ValueId, usize> {
    let mut last = HashMap::new();
    for (pos, &n) in order.iter().enumerate() {
        let node = &graph.nodes[n];
        if let Some(o) = node.output {
            last.insert(o, pos);
        }
        for x in &node.inputs {
            if let Some(l) = last.get_mut(x) {
                *l = pos;
            }
        }
    }
    for o in outputs {
        if let Some(l) = last.get_mut(o) {
            *l = order.len();
        }
    }
    last
}
