//! What to quantize in one layer (TF-MOT's `QuantizeConfig`): its weights, its activation and
//! its output, each with a [`Quantizer`].

use std::fmt::Debug;
use std::sync::Arc;

use super::Quantizer;

/// How one layer is quantized. Implement it to make a custom layer quantizable, or use
/// [`LayerQuantizeConfig`] (any of the three parts) or [`NoOpQuantizeConfig`] (leave the layer
/// in float).
pub trait QuantizeConfig: Debug + Send + Sync {
    /// The quantizer of the layer's weight named `weight` (`kernel`, `depthwise_kernel`, ...),
    /// if that weight is quantized. It applies to the value the layer computes with (after a
    /// Larq quantizer, if the layer has one).
    fn weight_quantizer(&self, weight: &str) -> Option<Arc<dyn Quantizer>>;
    /// The quantizer of the layer's activation, i.e. its output after its activation function.
    fn activation_quantizer(&self) -> Option<Arc<dyn Quantizer>>;
    /// A quantizer of the layer's output, applied after the activation's (TF-MOT's output
    /// quantizers, for layers without an activation of their own).
    fn output_quantizer(&self) -> Option<Arc<dyn Quantizer>>;
}

/// A config listing its quantizers.
#[derive(Clone, Debug, Default)]
pub struct LayerQuantizeConfig {
    /// Quantizers by weight name.
    pub weights: Vec<(String, Arc<dyn Quantizer>)>,
    /// The activation's quantizer.
    pub activation: Option<Arc<dyn Quantizer>>,
    /// The output's quantizer.
    pub output: Option<Arc<dyn Quantizer>>,
}

impl QuantizeConfig for LayerQuantizeConfig {
    fn weight_quantizer(&self, weight: &str) -> Option<Arc<dyn Quantizer>> {
        self.weights.iter().find(|(w, _)| w == weight).map(|(_, q)| q.clone())
    }

    fn activation_quantizer(&self) -> Option<Arc<dyn Quantizer>> {
        self.activation.clone()
    }

    fn output_quantizer(&self) -> Option<Arc<dyn Quantizer>> {
        self.output.clone()
    }
}

/// Leaves a layer in float (TF-MOT's `NoOpQuantizeConfig`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoOpQuantizeConfig;

impl QuantizeConfig for NoOpQuantizeConfig {
    fn weight_quantizer(&self, _: &str) -> Option<Arc<dyn Quantizer>> {
        None
    }

    fn activation_quantizer(&self) -> Option<Arc<dyn Quantizer>> {
        None
    }

    fn output_quantizer(&self) -> Option<Arc<dyn Quantizer>> {
        None
    }
}
