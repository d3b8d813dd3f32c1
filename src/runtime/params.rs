//! The parameter store, and binding a plan's variables to its tensors.

use std::collections::BTreeMap;

use super::Plan;
use crate::device::{Device, Tensor};
use crate::error::{Error, Result};
use crate::graph::{Graph, Init, ValueId};
use crate::tensor::DType;

/// Named persistent tensors (latent weights, statistics, optimizer slots) shared by the plans
/// of one model. A plan creates the variables it needs but does not find here, from their
/// [`Init`], on its own device.
#[derive(Clone, Debug, Default)]
pub struct ParamStore {
    tensors: BTreeMap<String, Tensor>,
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Adds or replaces a tensor.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) {
        self.tensors.insert(name.into(), tensor);
    }

    /// All tensors by name, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.tensors.iter()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

/// Finds or creates the tensor behind a variable and checks it fits the graph.
pub(super) fn bind_variable(
    device: &Device,
    graph: &Graph,
    id: ValueId,
    name: &str,
    init: &Init,
    params: &mut ParamStore,
) -> Result<Tensor> {
    let v = graph.value(id);
    if let Some(t) = params.get(name) {
        if t.shape() != &v.shape || t.dtype() != v.dtype {
            return Err(Error::ShapeMismatch {
                op: "variable",
                lhs: v.shape.dims().to_vec(),
                rhs: t.shape().dims().to_vec(),
                reason: format!(
                    "variable `{name}` is declared {:?} but the parameter store holds {:?} {:?}",
                    v.dtype,
                    t.dtype(),
                    t.shape()
                ),
            });
        }
        if !t.device().same(device) {
            return Err(Error::WrongDevice {
                what: format!("variable `{name}`"),
                tensor_device: t.device().describe(),
                plan_device: device.describe(),
            });
        }
        return Ok(t.clone());
    }
    if v.dtype != DType::F32 {
        return Err(Error::invalid(
            "variable",
            "value",
            format!("packed variable `{name}` has no initializer; load it (a packed export's kernel) before planning"),
        ));
    }
    let Some(op) = init.op(&v.shape) else {
        let Init::Values(values) = init else { unreachable!("only given values have no op") };
        let t = device.upload(&crate::HostTensor::f32(v.shape.clone(), values.to_vec())?)?;
        params.insert(name, t.clone());
        return Ok(t);
    };
    // Initialisation is itself a one-node graph, so both backends draw the same numbers.
    let mut g = Graph::new();
    let out = g.push1(op, &[])?;
    let mut p = Plan::new(device, &g, &[out], &mut ParamStore::new())?;
    p.run()?;
    let t = p.output_tensor(out)?;
    params.insert(name, t.clone());
    Ok(t)
}
