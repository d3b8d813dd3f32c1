//! The one error type of bitgrad.
//!
//! Variants are structured so that a caller can tell "bad arguments" (shape, dtype, argument
//! errors, which name the op and the offending values) apart from "this adapter can't"
//! (limits, missing adapters) and from failures reported by wgpu itself.

use crate::tensor::DType;

/// The message, as `Display` writes it: `main` returning `Err` prints an error's `Debug`, and a
/// program's users should read the message there; match on the variants for the fields.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Error {
    /// [`Error::Unknown`]: `name` is not a known `kind`; `known` lists those that are.
    pub fn unknown(kind: &'static str, name: &str, known: impl IntoIterator<Item = impl Into<String>>) -> Error {
        Error::Unknown { kind, name: name.to_string(), known: known.into_iter().map(Into::into).collect() }
    }
}

/// After an unknown name: the closest known name when one is close (a typo), then the list.
fn choices(name: &str, known: &[String]) -> String {
    if known.is_empty() {
        return String::new();
    }
    let closest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&name.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, k)| *d <= (k.chars().count() / 3).max(2))
        .min_by_key(|(d, _)| *d);
    let hint = closest.map(|(_, k)| format!(": did you mean `{k}`?")).unwrap_or_default();
    format!("{hint} (known: {})", known.join(", "))
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in bitgrad. Its `Debug` is its message (see the impl), so that a
/// `fn main() -> bitgrad::Result<()>` that fails prints what went wrong, not a tree of fields.
#[derive(thiserror::Error)]
pub enum Error {
    /// Two shapes that must agree do not.
    #[error("{op}: incompatible shapes {lhs:?} and {rhs:?}: {reason}")]
    ShapeMismatch {
        /// The op or layer that found the mismatch.
        op: &'static str,
        /// First shape involved.
        lhs: Vec<usize>,
        /// Second shape involved.
        rhs: Vec<usize>,
        /// What rule was broken.
        reason: String,
    },
    /// Building a layer of a model failed; `source` says why.
    #[error("layer `{layer}` ({class}): {source}")]
    Layer {
        /// The layer's name.
        layer: String,
        /// Its class.
        class: String,
        /// The error.
        source: Box<Error>,
    },
    /// An operand has the wrong element type.
    #[error("{op}: operand `{operand}` must be {expected:?}, got {got:?}")]
    DTypeMismatch {
        /// The op that checked the type.
        op: &'static str,
        /// Which operand.
        operand: &'static str,
        /// The type the op needs.
        expected: DType,
        /// The type it was given.
        got: DType,
    },
    /// An argument value is out of its valid range.
    #[error("{}invalid `{arg}`: {reason}", if op.is_empty() { String::new() } else { format!("{op}: ") })]
    InvalidArgument {
        /// The op, layer or function that rejected the argument (empty when an enclosing error
        /// names it, as a layer's does).
        op: &'static str,
        /// The argument's name.
        arg: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A name (quantizer, layer argument, input, value...) that is not one of the known ones:
    /// the message quotes the name, suggests the closest known name and lists them all.
    #[error("unknown {kind} `{name}`{}", choices(name, known))]
    Unknown {
        /// What kind of thing was looked up.
        kind: &'static str,
        /// The name or id that was not found.
        name: String,
        /// The names that exist (may be empty).
        known: Vec<String>,
    },
    /// A gradient was requested through an op that has none.
    #[error("{op} is not differentiable: {reason}")]
    NotDifferentiable {
        /// The op on the path from the loss to a requested variable.
        op: &'static str,
        /// Why there is no gradient.
        reason: String,
    },
    /// No usable GPU adapter was found.
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// The chosen adapter cannot satisfy a request.
    #[error("{what} needs {needed} but adapter `{adapter}` allows at most {limit} ({limit_name}){advice}")]
    LimitExceeded {
        /// The buffer, value or dispatch that is too large.
        what: String,
        /// The amount requested.
        needed: u64,
        /// The adapter's limit.
        limit: u64,
        /// Which wgpu limit it is.
        limit_name: &'static str,
        /// The adapter's name.
        adapter: String,
        /// What to change, when something can (empty, or text starting "; ").
        advice: &'static str,
    },
    /// The adapter lacks an optional feature that the request needs.
    #[error("adapter `{adapter}` does not support {feature}")]
    Unsupported {
        /// The missing feature.
        feature: &'static str,
        /// The adapter's name.
        adapter: String,
    },
    /// A blocking call was made where it cannot block: in the browser, GPU work completes only
    /// when control returns to the event loop.
    #[error("`{call}` would block the browser's event loop waiting for the GPU; use {instead}")]
    WouldBlock {
        /// The blocking call.
        call: &'static str,
        /// What to use in its place.
        instead: &'static str,
    },
    /// Creating the logical device failed.
    #[error("requesting a device from adapter `{adapter}` failed: {source}")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's error.
        source: wgpu::RequestDeviceError,
    },
    /// wgpu reported an error (validation, out of memory, internal) while doing `context`.
    #[error("wgpu error while {context}: {message}")]
    Wgpu {
        /// What bitgrad was doing.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// A WGSL shader failed to parse or validate.
    #[error("shader `{name}` is invalid:\n{message}")]
    Shader {
        /// The shader file or user snippet.
        name: String,
        /// naga's diagnostic with a source snippet.
        message: String,
    },
    /// A tensor from one device was used with another.
    #[error("{what}: tensor lives on {tensor_device} but the plan runs on {plan_device}")]
    WrongDevice {
        /// The input or variable concerned.
        what: String,
        /// Where the tensor lives.
        tensor_device: String,
        /// Where the plan runs.
        plan_device: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is missing, malformed or truncated.
    #[error("{file}: {reason}")]
    BadFile {
        /// The file (or files) concerned.
        file: String,
        /// What is wrong, naming the item.
        reason: String,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(op: &'static str, arg: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { op, arg, reason: reason.into() }
    }

    /// Shorthand for [`Error::ShapeMismatch`].
    pub fn shapes(op: &'static str, lhs: &[usize], rhs: &[usize], reason: impl Into<String>) -> Self {
        Error::ShapeMismatch { op, lhs: lhs.to_vec(), rhs: rhs.to_vec(), reason: reason.into() }
    }
}
