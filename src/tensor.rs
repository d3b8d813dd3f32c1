//! Shapes, element types and host-side tensor data.
//!
//! Every element type bitgrad stores is four bytes wide (`f32`, `i32`, and `u32` words holding 32
//! packed sign bits), so one buffer layout and one copy kernel serve all of them. Device-resident
//! tensors are [`crate::Tensor`]; this module holds what lives in host memory.

use crate::error::{Error, Result};

/// The most dimensions a tensor may have; kernels carry shapes in fixed-size uniforms.
pub const MAX_RANK: usize = 8;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 32-bit signed integer (labels, indices).
    I32,
    /// 32-bit words of packed sign bits (bit 1 = -1, least significant bit first).
    U32,
}

impl DType {
    /// Size of one element in bytes (always 4).
    pub const fn size(self) -> usize {
        4
    }
}

/// Size arithmetic that must not wrap: `value` is a checked sum or product (`None` when it
/// overflowed), which becomes an error naming `op` and `arg`. Shapes derived from files pass
/// through this, so an absurd size is refused instead of wrapping to a small one.
pub fn checked_size(op: &'static str, arg: &'static str, value: Option<usize>) -> Result<usize> {
    value.ok_or_else(|| Error::invalid(op, arg, "the size it implies overflows (more than 2^64 elements)"))
}

/// A tensor shape: a list of dimension sizes, row-major (last dimension contiguous).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl Shape {
    /// A shape from its dimensions. A rank-0 shape (`[]`) is a scalar.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut s = vec![1; self.rank()];
        for i in (0..self.rank().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.0[i + 1];
        }
        s
    }

    /// Checks the shape is usable by kernels: rank at most [`MAX_RANK`], no zero dimension,
    /// element count addressable with u32 indices.
    pub fn validate(&self, op: &'static str) -> Result<()> {
        if self.rank() > MAX_RANK {
            return Err(Error::invalid(op, "shape", format!("{self:?} has rank {} > {MAX_RANK}", self.rank())));
        }
        if self.0.contains(&0) {
            return Err(Error::invalid(op, "shape", format!("{self:?} has a zero dimension")));
        }
        let n = self.0.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        match n {
            Some(n) if n <= u32::MAX as u64 => Ok(()),
            _ => Err(Error::invalid(op, "shape", format!("{self:?} has more than 2^32-1 elements"))),
        }
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}
impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}

/// Element storage of a host tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// Packed bit words.
    U32(Vec<u32>),
}

impl TensorData {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::I32(_) => DType::I32,
            TensorData::U32(_) => DType::U32,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::U32(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw little-endian bytes, as they are laid out in a GPU buffer.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            TensorData::F32(v) => bytemuck::cast_slice(v),
            TensorData::I32(v) => bytemuck::cast_slice(v),
            TensorData::U32(v) => bytemuck::cast_slice(v),
        }
    }

    /// Rebuilds data of type `dtype` from raw bytes (length must be a multiple of 4).
    pub fn from_bytes(dtype: DType, bytes: &[u8]) -> Self {
        match dtype {
            DType::F32 => TensorData::F32(bytemuck::pod_collect_to_vec(bytes)),
            DType::I32 => TensorData::I32(bytemuck::pod_collect_to_vec(bytes)),
            DType::U32 => TensorData::U32(bytemuck::pod_collect_to_vec(bytes)),
        }
    }

    /// `n` zero elements of type `dtype`.
    pub fn zeros(dtype: DType, n: usize) -> Self {
        match dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
            DType::U32 => TensorData::U32(vec![0; n]),
        }
    }
}

/// A tensor in host memory: what you upload, download, feed and fetch.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    shape: Shape,
    data: TensorData,
}

impl HostTensor {
    /// A host tensor from a shape and data; the element count must match.
    pub fn new(shape: impl Into<Shape>, data: TensorData) -> Result<Self> {
        let shape = shape.into();
        if shape.numel() != data.len() {
            return Err(Error::invalid(
                "HostTensor::new",
                "data",
                format!("shape {shape:?} holds {} elements but {} were given", shape.numel(), data.len()),
            ));
        }
        Ok(HostTensor { shape, data })
    }

    /// An `f32` tensor.
    pub fn f32(shape: impl Into<Shape>, data: Vec<f32>) -> Result<Self> {
        Self::new(shape, TensorData::F32(data))
    }

    /// An `i32` tensor.
    pub fn i32(shape: impl Into<Shape>, data: Vec<i32>) -> Result<Self> {
        Self::new(shape, TensorData::I32(data))
    }

    /// A tensor of packed bit words.
    pub fn u32(shape: impl Into<Shape>, data: Vec<u32>) -> Result<Self> {
        Self::new(shape, TensorData::U32(data))
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The elements.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// Consumes the tensor, returning its elements.
    pub fn into_data(self) -> TensorData {
        self.data
    }

    /// The `f32` elements, or a dtype error.
    pub fn as_f32(&self) -> Result<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Ok(v),
            d => Err(Error::DTypeMismatch { op: "HostTensor::as_f32", operand: "self", expected: DType::F32, got: d.dtype() }),
        }
    }

    /// The `i32` elements, or a dtype error.
    pub fn as_i32(&self) -> Result<&[i32]> {
        match &self.data {
            TensorData::I32(v) => Ok(v),
            d => Err(Error::DTypeMismatch { op: "HostTensor::as_i32", operand: "self", expected: DType::I32, got: d.dtype() }),
        }
    }

    /// The packed words, or a dtype error.
    pub fn as_u32(&self) -> Result<&[u32]> {
        match &self.data {
            TensorData::U32(v) => Ok(v),
            d => Err(Error::DTypeMismatch { op: "HostTensor::as_u32", operand: "self", expected: DType::U32, got: d.dtype() }),
        }
    }

    /// The `f32` elements converted to IEEE half precision, for compact storage on disk or in
    /// buffers where 16 bits suffice.
    pub fn to_f16(&self) -> Result<Vec<half::f16>> {
        Ok(self.as_f32()?.iter().map(|&x| half::f16::from_f32(x)).collect())
    }

    /// An `f32` tensor from half-precision values.
    pub fn from_f16(shape: impl Into<Shape>, data: &[half::f16]) -> Result<Self> {
        Self::f32(shape, data.iter().map(|x| x.to_f32()).collect())
    }
}
