//! Where a GPU plan's transient values live: reshapes alias their input, and every other node
//! output takes a pooled buffer by liveness.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::graph::{Graph, Op, Source, ValueId};

/// The placement of a plan's node outputs.
pub(super) struct Placement {
    /// Reshapes that share another value's buffer, by the value whose buffer they share.
    pub(super) alias: HashMap<ValueId, ValueId>,
    /// The pool slot of every other node output.
    pub(super) slots: Vec<(ValueId, usize)>,
    /// Bytes of each pooled buffer.
    pub(super) sizes: Vec<u64>,
    /// Bytes the same values would take with one buffer each.
    pub(super) unpooled_bytes: u64,
}

/// Places the outputs of `order`'s nodes but those in `unstored` (computed inside fused kernels),
/// `last_use` giving the position of each value's last reader and `bytes` its size; `check` sees
/// each pooled value's size first (the binding limit).
pub(super) fn place(
    graph: &Graph,
    order: &[usize],
    last_use: &HashMap<ValueId, usize>,
    unstored: &HashSet<ValueId>,
    bytes: impl Fn(ValueId) -> u64,
    mut check: impl FnMut(ValueId, u64) -> Result<()>,
) -> Result<Placement> {
    // A reshape of anything but a variable shares its input's buffer: values are immutable
    // once written, and only variables are rewritten (by assign). The shared buffer stays busy
    // until the last reader of any of its names.
    let mut alias: HashMap<ValueId, ValueId> = HashMap::new();
    for &n in order {
        let node = &graph.nodes[n];
        if let (Op::Reshape { .. }, Some(out)) = (&node.op, node.output) {
            if unstored.contains(&out) {
                continue;
            }
            let src = node.inputs[0];
            if !matches!(graph.value(src).source, Source::Variable { .. }) {
                alias.insert(out, *alias.get(&src).unwrap_or(&src));
            }
        }
    }
    let mut busy_until = last_use.clone();
    for (a, root) in &alias {
        if let (Some(&la), Some(lr)) = (last_use.get(a), busy_until.get_mut(root)) {
            *lr = (*lr).max(la);
        }
    }

    // Pool transient values: a value takes a free buffer (best fit, growing the largest free
    // one if none fits) and releases it after its last reader. Two values that are live at
    // the same time never share a buffer, so a dispatch never binds one buffer both as input
    // and as output, which WebGPU forbids.
    let mut unpooled_bytes = 0;
    let mut pool: Vec<(u64, Option<usize>)> = Vec::new(); // (size, busy until position)
    let mut placement: Vec<(ValueId, usize)> = Vec::new();
    for (pos, &n) in order.iter().enumerate() {
        let Some(out) = graph.nodes[n].output else { continue };
        if alias.contains_key(&out) || unstored.contains(&out) {
            continue;
        }
        let need = bytes(out);
        check(out, need)?;
        unpooled_bytes += need;
        let free = |(_, (_, busy)): &(usize, &(u64, Option<usize>))| busy.is_none_or(|b| b < pos);
        let best_fit = pool.iter().enumerate().filter(free).filter(|(_, (s, _))| *s >= need).min_by_key(|(_, (s, _))| *s).map(|(i, _)| i);
        let largest_free = || pool.iter().enumerate().filter(free).max_by_key(|(_, (s, _))| *s).map(|(i, _)| i);
        let slot = match best_fit.or_else(largest_free) {
            Some(i) => i,
            None => {
                pool.push((0, None));
                pool.len() - 1
            }
        };
        pool[slot].0 = pool[slot].0.max(need);
        pool[slot].1 = Some(busy_until[&out]);
        placement.push((out, slot));
    }
    Ok(Placement { alias, slots: placement, sizes: pool.iter().map(|(size, _)| *size).collect(), unpooled_bytes })
}
