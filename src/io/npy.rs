//! NumPy `.npy` files of float32 arrays in C order (format versions 1 to 3), the CLI's input and
//! output format. Anything else (another dtype, Fortran order, a truncated or malformed header)
//! is an error naming the file.

use std::path::Path;

use crate::error::{Error, Result};
use crate::tensor::HostTensor;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Parses an `.npy` file's bytes; `file` names it in errors.
pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<HostTensor> {
    let bad = |reason: String| Error::BadFile { file: file.to_string(), reason };
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("not a .npy file (no \\x93NUMPY magic)".into()));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(format!("unsupported .npy format version {v}"))),
    };
    let end = start.checked_add(header_len).filter(|&e| e <= bytes.len()).ok_or_else(|| bad("truncated header".into()))?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("the header is not text".into()))?;
    let field = |key: &str| -> Result<&str> {
        let at = header.find(&format!("'{key}'")).ok_or_else(|| bad(format!("the header has no '{key}'")))?;
        let rest = header[at + key.len() + 2..].trim_start();
        rest.strip_prefix(':').map(str::trim_start).ok_or_else(|| bad(format!("malformed header near '{key}'")))
    };
    let descr = field("descr")?;
    if !(descr.starts_with("'<f4'") || descr.starts_with("'|f4'")) {
        let shown: String = descr.chars().take_while(|&c| c != ',').collect();
        return Err(bad(format!("dtype {shown} is not little-endian float32 ('<f4'); convert with x.astype(np.float32)")));
    }
    if !field("fortran_order")?.starts_with("False") {
        return Err(bad("Fortran-ordered arrays are not supported; save np.ascontiguousarray(x)".into()));
    }
    let shape_text = field("shape")?;
    let close = shape_text.find(')').filter(|_| shape_text.starts_with('(')).ok_or_else(|| bad("malformed shape".into()))?;
    let dims = shape_text[1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(format!("malformed shape {}", &shape_text[..=close]))))
        .collect::<Result<Vec<usize>>>()?;
    let size = dims.iter().try_fold(4usize, |n, &d| n.checked_mul(d)).ok_or_else(|| bad(format!("shape {dims:?} is too large")))?;
    let data = &bytes[end..];
    if data.len() != size {
        return Err(bad(format!("shape {dims:?} needs {size} bytes of data, the file has {}", data.len())));
    }
    let values: Vec<f32> = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    super::check_finite(file, "the array", &values)?;
    HostTensor::f32(dims, values).map_err(|e| bad(e.to_string()))
}

/// The bytes of a version 1.0 `.npy` file holding `t` (float32).
pub fn to_bytes(t: &HostTensor) -> Result<Vec<u8>> {
    let values = t.as_f32()?;
    super::check_finite_to_write("the array", values)?;
    let dims: Vec<String> = t.shape().dims().iter().map(usize::to_string).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad with spaces so the data starts on a 64-byte boundary, ending the header with '\n'.
    let total = (MAGIC.len() + 4 + header.len() + 1).next_multiple_of(64);
    header.push_str(&" ".repeat(total - (MAGIC.len() + 4 + header.len() + 1)));
    header.push('\n');
    let mut out = Vec::with_capacity(total + values.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    Ok(out)
}

/// Reads a float32 `.npy` file.
pub fn read(path: &Path) -> Result<HostTensor> {
    let bytes = super::read_file(path)?;
    from_bytes(&path.display().to_string(), &bytes)
}

/// Writes `t` as a `.npy` file (atomically: see [`super::write_atomically`]).
pub fn write(path: &Path, t: &HostTensor) -> Result<()> {
    super::write_atomically(path, &to_bytes(t)?)
}
