//! Named tensors in the safetensors format (little-endian data after a JSON header), through the
//! `safetensors` crate. bitgrad's element types map to F32, I32 and U32; anything else in a file
//! is an error naming the tensor.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::runtime::ParamStore;
use crate::tensor::{DType, HostTensor, Shape, TensorData};

/// Shape and type of expected tensors, by name.
pub type Expected = BTreeMap<String, (Shape, DType)>;

/// The `format` metadata entry of a trainer state file (`train::checkpoint::FORMAT`).
pub const TRAINER_STATE_FORMAT: &str = "bitgrad-trainer-state";

/// The tensors of `file` that a model with weights `expected` reads: a trainer state narrowed to
/// them (so a checkpoint serves as the model's weights file), any other file as it is.
pub fn model_weights(mut file: TensorFile, expected: &Expected) -> TensorFile {
    if file.metadata.get("format").is_some_and(|f| f == TRAINER_STATE_FORMAT) {
        file.tensors.retain(|name, _| expected.contains_key(name));
    }
    file
}

/// Tensors by name, and the file's free-form string metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorFile {
    /// The tensors, by name.
    pub tensors: BTreeMap<String, HostTensor>,
    /// The header's `__metadata__` entries.
    pub metadata: BTreeMap<String, String>,
}

impl TensorFile {
    /// The bytes of a safetensors file holding these tensors and metadata.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let views = self
            .tensors
            .iter()
            .map(|(name, t)| {
                if let TensorData::F32(v) = t.data() {
                    super::check_finite_to_write(&format!("tensor `{name}`"), v)?;
                }
                let dtype = match t.dtype() {
                    DType::F32 => Dtype::F32,
                    DType::I32 => Dtype::I32,
                    DType::U32 => Dtype::U32,
                };
                TensorView::new(dtype, t.shape().dims().to_vec(), t.data().as_bytes())
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::invalid("safetensors", "tensor", format!("`{name}`: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        safetensors::serialize(views, (!metadata.is_empty()).then_some(metadata))
            .map_err(|e| Error::invalid("safetensors", "tensors", e.to_string()))
    }

    /// Parses a safetensors file's bytes; `file` names it in errors.
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::BadFile { file: file.to_string(), reason };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let data = view.data();
            let words = || data.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
            let data = match view.dtype() {
                Dtype::F32 => {
                    let values: Vec<f32> = words().map(f32::from_le_bytes).collect();
                    super::check_finite(file, &format!("tensor `{name}`"), &values)?;
                    TensorData::F32(values)
                }
                Dtype::I32 => TensorData::I32(words().map(i32::from_le_bytes).collect()),
                Dtype::U32 => TensorData::U32(words().map(u32::from_le_bytes).collect()),
                other => return Err(bad(format!("tensor `{name}` is {other:?}; bitgrad reads F32, I32 and U32"))),
            };
            let t = HostTensor::new(view.shape().to_vec(), data).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
            tensors.insert(name, t);
        }
        let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
        Ok(TensorFile { tensors, metadata })
    }

    /// Writes the file (atomically: see [`super::write_atomically`]).
    pub fn write(&self, path: &Path) -> Result<()> {
        super::write_atomically(path, &self.to_bytes()?)
    }

    /// Checks the tensors against what a model expects: every name in `required` present,
    /// nothing outside `required` and `optional`, shapes and types equal. Errors name `file`
    /// and the tensors.
    pub fn check(&self, file: &str, required: &Expected, optional: &Expected) -> Result<()> {
        let bad = |reason: String| Error::BadFile { file: file.to_string(), reason };
        let missing: Vec<&str> = required.keys().filter(|n| !self.tensors.contains_key(*n)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(bad(format!("missing tensors: {}", listed(&missing))));
        }
        let extra: Vec<&str> =
            self.tensors.keys().filter(|n| !required.contains_key(*n) && !optional.contains_key(*n)).map(String::as_str).collect();
        if !extra.is_empty() {
            return Err(bad(format!("tensors the model does not have: {}", listed(&extra))));
        }
        for (n, t) in &self.tensors {
            let (shape, dtype) = required.get(n).or_else(|| optional.get(n)).expect("checked above");
            if t.shape() != shape || t.dtype() != *dtype {
                return Err(bad(format!(
                    "tensor `{n}` is {:?} {:?}; the model expects {dtype:?} {:?}",
                    t.dtype(),
                    t.shape().dims(),
                    shape.dims()
                )));
            }
        }
        Ok(())
    }

    /// Checks that the file's metadata names `format` at `version` (bitgrad's own file kinds:
    /// trainer states, packed and integer exports); `what` names the kind in errors ("a packed
    /// export").
    pub fn check_format(&self, file: &str, what: &str, format: &str, version: &str) -> Result<()> {
        let bad = |reason: String| Error::BadFile { file: file.to_string(), reason };
        if self.metadata.get("format").map(String::as_str) != Some(format) {
            return Err(bad(format!("not {what} (its metadata has no `format` = `{format}`)")));
        }
        match self.metadata.get("version") {
            Some(v) if v == version => Ok(()),
            v => Err(bad(format!("{what} of version {v:?}; this bitgrad reads version {version}"))),
        }
    }

    /// Puts the tensors into `params` on `device`: tensors already there (which plans may hold)
    /// are overwritten in place, the others uploaded.
    pub fn store(&self, params: &mut ParamStore, device: &Device) -> Result<()> {
        for (n, t) in &self.tensors {
            match params.get(n) {
                Some(existing) => existing.write(t)?,
                None => {
                    let uploaded = device.upload(t)?;
                    params.insert(n.clone(), uploaded);
                }
            }
        }
        Ok(())
    }

    /// Reads and parses a file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = super::read_file(path)?;
        Self::from_bytes(&path.display().to_string(), &bytes)
    }
}

/// The first ten names, and how many more there are.
fn listed(names: &[&str]) -> String {
    match names.len() {
        0..=10 => names.join(", "),
        n => format!("{} and {} more", names[..10].join(", "), n - 10),
    }
}
