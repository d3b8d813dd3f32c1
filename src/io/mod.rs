//! Files: Keras models, tensors in safetensors and .npy files, packed exports; written so that a
//! failure never leaves a partial file.

pub mod keras;
pub mod npy;
pub mod packed;
pub mod safetensors;

use crate::error::{Error, Result};
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder renamed into place, so
/// readers see the old file or the whole new one, never a partial write.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io { path: path.display().to_string(), source };
    let name = path.file_name().ok_or_else(|| Error::invalid("write", "path", format!("`{}` names no file", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        // Best effort: the temporary file is ours, and the error below is what matters.
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}
