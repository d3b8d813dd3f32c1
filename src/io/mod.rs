//! Files: Keras models, tensors in safetensors and .npy files, packed exports, and running a
//! model once with weights from a file ([`execute`]); read only from regular files, and written
//! so that a failure never leaves a partial file.

pub mod execute;
pub mod keras;
pub mod npy;
pub mod packed;
pub mod safetensors;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Reads the whole of a regular file. Anything else (a directory, a FIFO, a device such as
/// `/dev/zero`) is refused before it is opened: such sources can block or never end, and every
/// bitgrad file kind has a size known up front.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let io = |source| Error::Io { path: path.display().to_string(), source };
    let not_regular = || Error::BadFile { file: path.display().to_string(), reason: "is not a regular file".into() };
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(not_regular());
    }
    let mut file = std::fs::File::open(path).map_err(io)?;
    // Checked again on the open handle: the path may have been replaced in between.
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Reads a regular file as UTF-8 text (see [`read_file`]).
pub fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_file(path)?).map_err(|e| Error::BadFile {
        file: path.display().to_string(),
        reason: format!("is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
    })
}

/// The one policy for values read from files (weights, trainer states, packed exports, `.npy`
/// inputs and upstream gradients): every float must be finite. A NaN or infinity in a file is
/// refused with the file, the tensor and the element named, rather than carried into results.
pub fn check_finite(file: &str, tensor: &str, values: &[f32]) -> Result<()> {
    match first_non_finite(values) {
        None => Ok(()),
        Some((i, v)) => Err(Error::BadFile {
            file: file.to_string(),
            reason: format!("{tensor} has {v} at element {i}; bitgrad reads only finite values"),
        }),
    }
}

/// The position and value of the first NaN or infinity.
fn first_non_finite(values: &[f32]) -> Option<(usize, f32)> {
    values.iter().position(|v| !v.is_finite()).map(|i| (i, values[i]))
}

/// The writing side of [`check_finite`]: bitgrad writes no file it would refuse to read, so a
/// NaN or infinity (a run that diverged) is an error naming the tensor rather than a file that
/// cannot be loaded again.
pub fn check_finite_to_write(tensor: &str, values: &[f32]) -> Result<()> {
    match first_non_finite(values) {
        None => Ok(()),
        Some((i, v)) => Err(Error::invalid(
            "write",
            "tensor",
            format!("{tensor} has {v} at element {i}; bitgrad writes only finite values (has training diverged?)"),
        )),
    }
}

/// Checks that `path` can name a file to write: it has a file name, does not end in a path
/// separator, and is not an existing directory. `what` names the option in errors.
pub fn check_output_path(what: &'static str, path: &Path) -> Result<()> {
    let bad = |why: &str| Error::invalid("write", what, format!("`{}` {why}", path.display()));
    let text = path.as_os_str().to_string_lossy();
    if text.is_empty() || text.ends_with(std::path::MAIN_SEPARATOR) || text.ends_with('/') || path.file_name().is_none() {
        return Err(bad("names a directory, not a file"));
    }
    if path.is_dir() {
        return Err(bad("is an existing directory"));
    }
    Ok(())
}

/// Checks before any work that a command's outputs can be written where asked: the folder of
/// each exists and is writable, no output is (after resolving links and `..`, or as the same
/// file under another name) one of the command's inputs, and no two outputs are the same file.
/// `inputs` and `outputs` are (option, path) pairs; errors name both options.
pub fn check_outputs(inputs: &[(&'static str, &Path)], outputs: &[(&'static str, &Path)]) -> Result<()> {
    use std::collections::{HashMap, HashSet};
    let mut seen: HashMap<FileId, (&'static str, &str)> = HashMap::new();
    for &(what, p) in inputs {
        seen.entry(FileId::of(p)).or_insert((what, "input"));
    }
    let mut probed: HashSet<PathBuf> = HashSet::new();
    for &(what, path) in outputs {
        check_output_path(what, path)?;
        let dir = folder(path);
        if !probed.contains(&dir) {
            if !dir.is_dir() {
                return Err(Error::invalid(
                    "write",
                    what,
                    format!("the folder `{}` of `{}` does not exist", dir.display(), path.display()),
                ));
            }
            probe_writable(&dir)
                .map_err(|e| Error::invalid("write", what, format!("cannot write in the folder `{}`: {e}", dir.display())))?;
            probed.insert(dir);
        }
        if let Some((other, role)) = seen.insert(FileId::of(path), (what, "output")) {
            return Err(Error::invalid(
                "write",
                what,
                format!("`{}` is also the {role} {other}; writing it would overwrite that file", path.display()),
            ));
        }
    }
    Ok(())
}

/// What makes two paths the same file: an existing file's device and inode (so hard links and
/// other spellings agree), else the resolved path of a file not written yet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    Path(PathBuf),
}

impl FileId {
    fn of(path: &Path) -> FileId {
        #[cfg(unix)]
        if let Ok(m) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            return FileId::Inode(m.dev(), m.ino());
        }
        FileId::Path(resolved(path))
    }
}

/// The folder a path's file lives in (`.` for a bare name).
fn folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `path` with links and `..` resolved as far as it exists: the file itself when it exists,
/// else its resolved folder joined with its name (a file not written yet).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (std::fs::canonicalize(folder(path)), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the whole new one, never a
/// partial write, and nothing is written through a planted link: the bytes go to a temporary
/// file created exclusively under an unpredictable name in the target's folder, are flushed to
/// disk, and the file is renamed into place, after which the folder is flushed too. The
/// temporary file is removed on every error path; one left by a killed process is removed by
/// the next write of the same target.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    check_output_path("path", path)?;
    let io = |source| Error::Io { path: path.display().to_string(), source };
    write_through_temporary(path, bytes).map_err(io)
}

#[cfg(not(target_arch = "wasm32"))]
fn write_through_temporary(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = folder(path);
    let name = path.file_name().expect("checked by check_output_path").to_string_lossy().to_string();
    let prefix = format!(".{name}.");
    remove_stale_temporaries(&dir, &prefix);
    let ours = format!("{prefix}{}.", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&ours).suffix(".tmp").rand_bytes(12);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // What a plain create gives (the umask applies), not tempfile's private 0600.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Dropping the file on any error below removes it.
    let mut tmp = builder.tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_folder(&dir)
}

#[cfg(target_arch = "wasm32")]
fn write_through_temporary(_path: &Path, _bytes: &[u8]) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "the browser has no file system; use the bytes instead"))
}

/// Creates and removes a temporary file in `dir`: the one sure test that a write there works.
#[cfg(not(target_arch = "wasm32"))]
fn probe_writable(dir: &Path) -> std::io::Result<()> {
    tempfile::Builder::new().prefix(".bitgrad-probe.").tempfile_in(dir).map(drop)
}

#[cfg(target_arch = "wasm32")]
fn probe_writable(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Flushes a folder's entries (the rename) to disk, where the platform can.
#[cfg(all(unix, not(target_arch = "wasm32")))]
fn sync_folder(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(all(not(unix), not(target_arch = "wasm32")))]
fn sync_folder(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Removes temporary files `<prefix><pid>.<random>.tmp` in `dir` left by processes that no
/// longer run (killed during a save). Only where the process table can be read (`/proc`), and
/// best effort: a file that cannot be removed is left alone.
#[cfg(not(target_arch = "wasm32"))]
fn remove_stale_temporaries(dir: &Path, prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        // Exactly `<pid>.<12 random characters>.tmp`: `.a.` must not match `.a.5.<pid>...` (a.5's).
        let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_suffix(".tmp")) else { continue };
        let Some((pid, random)) = rest.split_once('.') else { continue };
        if random.len() != 12 || !random.chars().all(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        let Ok(pid) = pid.parse::<u32>() else { continue };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
