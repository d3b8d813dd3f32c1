//! Label ranks for the accuracy metrics: `Op::LabelRank`; WGSL: `shaders/ranking.wgsl`.

use super::{Gpu, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::kernels::{ranking, Step};
use crate::tensor::{DType, Shape, TensorData};

/// Scores `[N, C]` f32 and a target of integer labels `[N]` or one-hot rows `[N, C]` f32.
pub(crate) fn infer(a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "scores", DType::F32)?;
    let (s, t) = (a.shape(0), a.shape(1));
    let fits = s.rank() == 2
        && match a.inputs[1].1 {
            DType::I32 => t.dims() == [s.dims()[0]],
            DType::F32 => t == s,
            _ => false,
        };
    if !fits {
        return Err(Error::shapes(a.name, s.dims(), t.dims(), "needs scores [N, C] f32 and labels [N] i32 or one-hot targets [N, C] f32"));
    }
    Ok((Shape::new([s.dims()[0]]), DType::F32))
}

pub(crate) fn backward() -> Result<Grads> {
    Err(Error::NotDifferentiable { op: "label_rank", reason: "a rank is a count".into() })
}

/// The first index of the largest entry (argmax's pick).
fn first_max(row: &[f32]) -> usize {
    (1..row.len()).fold(0, |best, c| if row[c] > row[best] { c } else { best })
}

pub(crate) fn eval(first_ties: bool, h: &Host) -> Result<TensorData> {
    let scores = h.f32(0)?;
    let cols = h.shape(0).dims()[1];
    let labels: Vec<i64> = match h.inputs[1].1 {
        TensorData::I32(l) => l.iter().map(|&l| i64::from(l)).collect(),
        _ => h.f32(1)?.chunks(cols.max(1)).map(|row| first_max(row) as i64).collect(),
    };
    let rank = |(row, &label): (&[f32], &i64)| -> f32 {
        let Some(l) = usize::try_from(label).ok().filter(|&l| l < cols) else { return cols as f32 };
        let at = row[l];
        row.iter().enumerate().filter(|&(c, &s)| s > at || (first_ties && s == at && c < l)).count() as f32
    };
    Ok(TensorData::F32(scores.chunks(cols.max(1)).zip(&labels).map(rank).collect()))
}

pub(crate) fn record(first_ties: bool, d: &Gpu) -> Result<Step> {
    let dims = d.shape(0).dims();
    let onehot = d.dtypes[1] == DType::F32;
    Ok(Step::Dispatch(ranking::label_rank(dims[0], dims[1], first_ties, onehot, d.x(0), d.x(1), d.out()?)))
}
