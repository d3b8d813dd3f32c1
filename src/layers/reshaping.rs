//! Keras' `Flatten`, `Reshape` and `ZeroPadding1D/2D/3D`.

use super::{BuildContext, Layer, MacCount};
use crate::error::{Error, Result};
use crate::graph::{DataFormat, Graph, ValueId};

/// Keras' `Flatten`: `[N, ...] -> [N, product]`. With channels-first data the channels are
/// moved last first, as Keras does, so that the order matches a channels-last model.
#[derive(Clone, Debug)]
pub struct Flatten {
    /// Layer name.
    pub name: String,
    /// Layout of the input.
    pub data_format: DataFormat,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl Default for Flatten {
    /// [`Flatten::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl Flatten {
    /// A channels-last flatten.
    pub fn new() -> Self {
        super::auto_named(Flatten { id: super::LayerId::new(), name: String::new(), data_format: DataFormat::ChannelsLast })
    }
}

impl Layer for Flatten {
    fn id(&self) -> Option<super::LayerId> {
        Some(self.id)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn class(&self) -> &str {
        "Flatten"
    }

    fn macs(&self) -> MacCount {
        MacCount::Zero
    }

    fn build(&self, g: &mut Graph, x: ValueId, _ctx: &mut BuildContext) -> Result<ValueId> {
        let d = g.value(x).shape.dims().to_vec();
        if d.is_empty() {
            return Err(Error::shapes("Flatten", &d, &[], format!("layer `{}` needs a batch axis", self.name)));
        }
        let x = if self.data_format == DataFormat::ChannelsFirst && d.len() > 2 {
            let perm: Vec<usize> = std::iter::once(0).chain(2..d.len()).chain([1]).collect();
            g.permute(x, &perm)?
        } else {
            x
        };
        g.reshape(x, [d[0], d[1..].iter().product()])
    }
}

/// Keras' `Reshape`: a new shape for each sample (the batch axis is kept); one entry may be
/// `None` (Keras' -1), inferred from the others.
#[derive(Clone, Debug)]
pub struct Reshape {
    /// Layer name.
    pub name: String,
    /// Target shape without the batch axis.
    pub target_shape: Vec<Option<usize>>,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl Reshape {
    /// A reshape to `target_shape` (no unknown axis).
    pub fn new(target_shape: &[usize]) -> Self {
        super::auto_named(Reshape {
            id: super::LayerId::new(),
            name: String::new(),
            target_shape: target_shape.iter().map(|&d| Some(d)).collect(),
        })
    }
}

impl Layer for Reshape {
    fn id(&self) -> Option<super::LayerId> {
        Some(self.id)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn class(&self) -> &str {
        "Reshape"
    }

    fn build(&self, g: &mut Graph, x: ValueId, _ctx: &mut BuildContext) -> Result<ValueId> {
        let d = g.value(x).shape.dims().to_vec();
        let per_sample: usize = d.iter().skip(1).product();
        let known = self.target_shape.iter().flatten().try_fold(1usize, |n, &t| n.checked_mul(t)).ok_or_else(|| {
            let shown: Vec<String> = self.target_shape.iter().map(|t| t.map_or("-1".to_string(), |t| t.to_string())).collect();
            Error::invalid("Reshape", "target_shape", format!("[{}] holds more than 2^64 values", shown.join(", ")))
        })?;
        let unknown = self.target_shape.iter().filter(|t| t.is_none()).count();
        let fits = match unknown {
            0 => known == per_sample,
            1 => known > 0 && per_sample % known == 0,
            _ => false,
        };
        if d.is_empty() || !fits {
            let want: Vec<usize> = self.target_shape.iter().map(|t| t.unwrap_or(0)).collect();
            return Err(Error::shapes(
                "Reshape",
                &d,
                &want,
                format!("layer `{}`: the target (0 = inferred, at most one) must hold the {per_sample} values of a sample", self.name),
            ));
        }
        let mut shape = vec![d[0]];
        shape.extend(self.target_shape.iter().map(|t| t.unwrap_or(per_sample / known.max(1))));
        g.reshape(x, shape)
    }
}

/// Keras' `ZeroPadding1D/2D/3D`: zeros before and after each spatial axis.
#[derive(Clone, Debug)]
pub struct ZeroPadding {
    /// Layer name.
    pub name: String,
    /// (before, after) per spatial axis; its length is the dimensionality.
    pub padding: Vec<(usize, usize)>,
    /// Layout of the input.
    pub data_format: DataFormat,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl ZeroPadding {
    /// Symmetric padding of `p[i]` on spatial axis `i`, channels last.
    pub fn new(p: &[usize]) -> Self {
        super::auto_named(ZeroPadding {
            id: super::LayerId::new(),
            name: String::new(),
            padding: p.iter().map(|&p| (p, p)).collect(),
            data_format: DataFormat::ChannelsLast,
        })
    }
}

impl Layer for ZeroPadding {
    fn id(&self) -> Option<super::LayerId> {
        Some(self.id)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn class(&self) -> &str {
        ["ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"].get(self.padding.len().wrapping_sub(1)).copied().unwrap_or("ZeroPadding")
    }

    fn build(&self, g: &mut Graph, x: ValueId, _ctx: &mut BuildContext) -> Result<ValueId> {
        let d = g.value(x).shape.dims().to_vec();
        let r = self.padding.len();
        if !(1..=3).contains(&r) || d.len() != r + 2 {
            return Err(Error::shapes(
                "ZeroPadding",
                &d,
                &[r],
                format!("layer `{}`: {r} padded axes need input of rank {}", self.name, r + 2),
            ));
        }
        let mut pads = vec![(0, 0)];
        match self.data_format {
            DataFormat::ChannelsLast => {
                pads.extend(&self.padding);
                pads.push((0, 0));
            }
            DataFormat::ChannelsFirst => {
                pads.push((0, 0));
                pads.extend(&self.padding);
            }
        }
        g.pad(x, &pads)
    }
}
