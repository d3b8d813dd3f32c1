//! User-defined quantizers: a WGSL forward and gradient, spliced into bitgrad's elementwise
//! quantizer kernel, plus a Rust pair for the CPU reference.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::graph::CustomFn;
use crate::kernels::{custom_quantize, CustomShader};

pub use crate::graph::ops::custom_quantize::{ForwardFn, GradientFn};

/// A user-defined quantizer. The WGSL must define `fn forward(x: f32) -> f32` and
/// `fn gradient(x: f32, dy: f32) -> f32` (helper functions may follow); the Rust closures compute
/// the same on the CPU backend.
///
/// The identity-gradient sign from the Larq guide (`tf.sign` forward, `dy` backward):
///
/// ```
/// use bitgrad::quantizers::{CustomQuantizer, Quantizer};
/// let identity_sign = CustomQuantizer::new(
///     "IdentitySign",
///     1,
///     "fn forward(x: f32) -> f32 { return sign(x); }
///      fn gradient(x: f32, dy: f32) -> f32 { return dy; }",
///     |x| if x > 0.0 { 1.0 } else if x < 0.0 { -1.0 } else { 0.0 },
///     |_x, dy| dy,
/// )
/// .unwrap();
/// let q = Quantizer::Custom(identity_sign);
/// assert_eq!(q.precision(), 1);
/// assert_eq!(Quantizer::from_keras(&q.to_keras()).unwrap(), q);
/// ```
pub struct CustomQuantizer {
    name: String,
    precision: u32,

    function: Arc<CustomFn>,
}

impl std::fmt::Debug for CustomQuantizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomQuantizer({}, precision {})", self.name, self.precision)
    }
}

impl PartialEq for CustomQuantizer {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.function, &other.function)
    }
}

/// Definitions by name, for reading Keras JSON that names them (as Keras' custom objects): a
/// graph never looks a quantizer up here, its ops hold the function and module.
static REGISTRY: Mutex<Vec<Arc<CustomQuantizer>>> = Mutex::new(Vec::new());

impl CustomQuantizer {
    /// Checks the WGSL (errors quote the offending lines of `wgsl`), splices it into the
    /// quantizer kernel, and registers the quantizer under `name` so that Keras JSON naming that
    /// class resolves to it. A name already taken, by a built-in quantizer (its class or its
    /// alias) or by an earlier registration, is an error: a lookup by name must not change
    /// meaning behind the back of code that registered the first (use [`by_name`] to reuse one).
    pub fn new(
        name: &str,
        precision: u32,
        wgsl: &str,
        cpu_forward: impl Fn(f32) -> f32 + Send + Sync + 'static,
        cpu_gradient: impl Fn(f32, f32) -> f32 + Send + Sync + 'static,
    ) -> Result<Arc<Self>> {
        let shader_name = format!("custom quantizer {name}");
        if precision == 0 {
            return Err(Error::invalid("CustomQuantizer", "precision", "must be at least 1"));
        }
        // First on its own, so that diagnostics point into the user's text.
        let module =
            naga::front::wgsl::parse_str(wgsl).map_err(|e| Error::Shader { name: shader_name.clone(), message: e.emit_to_string(wgsl) })?;
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default())
            .validate(&module)
            .map_err(|e| Error::Shader { name: shader_name.clone(), message: e.emit_to_string(wgsl) })?;
        let f32_ty = |h: naga::Handle<naga::Type>| matches!(module.types[h].inner, naga::TypeInner::Scalar(naga::Scalar::F32));
        for (fname, arity) in [("forward", 1), ("gradient", 2)] {
            let ok = module.functions.iter().any(|(_, f)| {
                f.name.as_deref() == Some(fname)
                    && f.arguments.len() == arity
                    && f.arguments.iter().all(|a| f32_ty(a.ty))
                    && f.result.as_ref().is_some_and(|r| f32_ty(r.ty))
            });
            if !ok {
                return Err(Error::Shader {
                    name: shader_name,
                    message: "must define `fn forward(x: f32) -> f32` and `fn gradient(x: f32, dy: f32) -> f32`".into(),
                });
            }
        }
        let taken = || {
            Error::invalid(
                "CustomQuantizer",
                "name",
                format!("`{name}` is already the name of a quantizer; register this one under another name (or reuse it with by_name)"),
            )
        };
        if super::builtin_names().any(|n| n == name) {
            return Err(taken());
        }
        let source = custom_quantize::splice(wgsl);
        let spliced = naga::front::wgsl::parse_str(&source)
            .map_err(|e| Error::Shader { name: shader_name.clone(), message: e.emit_to_string(&source) })?;
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default())
            .validate(&spliced)
            .map_err(|e| Error::Shader { name: shader_name.clone(), message: e.emit_to_string(&source) })?;
        let module = Arc::new(CustomShader { name: shader_name, module: source });
        let q = Arc::new(CustomQuantizer {
            name: name.to_string(),
            precision,
            function: CustomFn::new(name, module, Box::new(cpu_forward), Box::new(cpu_gradient)),
        });
        // Checked under the lock that registers it, so two threads cannot both take a name.
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        if registry.iter().any(|r| r.name == name) {
            return Err(taken());
        }
        registry.push(q.clone());
        Ok(q)
    }

    /// The Keras class name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bits per value.
    pub fn precision(&self) -> u32 {
        self.precision
    }

    /// The function the quantizer's op holds (`Op::CustomQuantize`).
    pub fn function(&self) -> Arc<CustomFn> {
        self.function.clone()
    }
}

/// The registered quantizer with this class name.
pub fn by_name(name: &str) -> Option<Arc<CustomQuantizer>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|q| q.name == name).cloned()
}

/// The names of the registered quantizers, in registration order.
pub fn names() -> Vec<String> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|q| q.name.clone()).collect()
}
