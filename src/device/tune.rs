//! What the kernel tuner chose on this device: the mode (`BITGRAD_TUNE`), the choice per shape
//! class, and the on-disk cache that keeps choices across processes, keyed by adapter, driver
//! and bitgrad version. The timing itself is the runtime's (`crate::runtime::tune`); this module
//! only stores and persists.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use super::select::AdapterSummary;
use crate::error::{Error, Result};

/// How kernel variants are chosen (`BITGRAD_TUNE=off|quick|full`; default quick).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TuneMode {
    /// Take each family's first candidate (its built-in preference for this kind of adapter);
    /// nothing is timed, read or written.
    Off,
    /// Time every candidate a few runs on first use of a shape class, and cache the winner.
    Quick,
    /// Like `Quick` with more runs per candidate, and ignoring choices cached by `Quick`.
    Full,
}

impl TuneMode {
    /// The mode `BITGRAD_TUNE` names (unset: `Quick`; the browser: always `Off`, as timing
    /// needs a blocking wait there is none of).
    pub fn from_env() -> Result<Self> {
        if cfg!(target_arch = "wasm32") {
            return Ok(TuneMode::Off);
        }
        match std::env::var("BITGRAD_TUNE") {
            Err(_) => Ok(TuneMode::Quick),
            Ok(v) => Self::parse(&v),
        }
    }

    /// `off`, `quick` or `full` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "off" | "0" => Ok(TuneMode::Off),
            "quick" | "" => Ok(TuneMode::Quick),
            "full" => Ok(TuneMode::Full),
            _ => Err(Error::invalid("BITGRAD_TUNE", "value", format!("`{s}`: expected off, quick or full"))),
        }
    }

    /// Timed runs per candidate.
    pub fn runs(self) -> usize {
        match self {
            TuneMode::Off => 0,
            TuneMode::Quick => 3,
            TuneMode::Full => 10,
        }
    }
}

/// One choice among variants: the shape class, the winner, and every candidate's time.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TuneRecord {
    /// The shape class, e.g. "gemm 64x512x784 nn batch 1".
    pub class: String,
    /// The chosen kernel ("shader::entry").
    pub chosen: String,
    /// Each timed candidate and its median milliseconds per run, in candidate order (empty when
    /// nothing was timed: mode off, a pinned variant, or a single candidate).
    pub timings: Vec<(String, f64)>,
    /// How the choice was made: "timed quick", "timed full", "cache", "pinned", "default".
    pub how: String,
}

/// The tuner's state on one device.
pub struct Tuning {
    mode: TuneMode,
    /// Section of the cache file for this adapter, driver and bitgrad version.
    key: String,
    path: Option<PathBuf>,
    chosen: Mutex<HashMap<String, TuneRecord>>,
    pinned: Mutex<Option<String>>,
}

/// The cache file: per device key, per shape class, the record.
type CacheFile = BTreeMap<String, BTreeMap<String, TuneRecord>>;

impl Tuning {
    pub(crate) fn new(mode: TuneMode, adapter: &AdapterSummary) -> Self {
        let key = format!("{} | {} | {:?} | bitgrad {}", adapter.name, adapter.driver, adapter.backend, env!("CARGO_PKG_VERSION"));
        let path = if mode == TuneMode::Off { None } else { cache_path() };
        let mut chosen = HashMap::new();
        if let (Some(path), TuneMode::Quick) = (&path, mode) {
            if let Some(mut section) = read_cache(path).remove(&key) {
                for (class, mut r) in std::mem::take(&mut section) {
                    r.how = "cache".into();
                    chosen.insert(class, r);
                }
            }
        }
        Tuning { mode, key, path, chosen: Mutex::new(chosen), pinned: Mutex::new(None) }
    }

    /// The mode choices are made in.
    pub fn mode(&self) -> TuneMode {
        self.mode
    }

    /// Where choices are cached (none with mode off, or without a cache directory).
    pub fn cache_path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// Makes every later choice take the first candidate whose entry point starts with `prefix`
    /// (where a choice has one; others choose as usual), or, with `None`, choose as usual again.
    /// For benchmarks and tests of one variant; plans already built keep their kernels.
    pub fn pin(&self, prefix: Option<&str>) {
        *self.pinned.lock().unwrap_or_else(|e| e.into_inner()) = prefix.map(str::to_string);
    }

    /// The pinned prefix, if any.
    pub fn pinned(&self) -> Option<String> {
        self.pinned.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The record for `class`, if one was made or cached.
    pub fn get(&self, class: &str) -> Option<TuneRecord> {
        self.chosen.lock().unwrap_or_else(|e| e.into_inner()).get(class).cloned()
    }

    /// Every choice made in this process or read from the cache, by class.
    pub fn records(&self) -> Vec<TuneRecord> {
        let mut v: Vec<TuneRecord> = self.chosen.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        v.sort_by(|a, b| a.class.cmp(&b.class));
        v
    }

    /// Keeps `record`; a timed one is also written to the cache file (a failure to write is
    /// logged: the choice still holds for this process).
    pub(crate) fn insert(&self, record: TuneRecord) {
        let timed = record.how.starts_with("timed");
        self.chosen.lock().unwrap_or_else(|e| e.into_inner()).insert(record.class.clone(), record.clone());
        if let (true, Some(path)) = (timed, &self.path) {
            let mut file = read_cache(path);
            file.entry(self.key.clone()).or_default().insert(record.class.clone(), record);
            if let Err(e) = write_cache(path, &file) {
                log::warn!("could not write the kernel tuning cache {}: {e}", path.display());
            }
        }
    }
}

/// `$BITGRAD_CACHE_DIR/tune.json`, else `$XDG_CACHE_HOME/bitgrad/tune.json`, else
/// `$HOME/.cache/bitgrad/tune.json`; none in the browser or without any of them.
pub fn cache_path() -> Option<PathBuf> {
    if cfg!(target_arch = "wasm32") {
        return None;
    }
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = var("BITGRAD_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("bitgrad")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("bitgrad")))?;
    Some(dir.join("tune.json"))
}

/// Deletes the cache file (every adapter's choices); returns the path if there was one.
pub fn clear_cache() -> Result<Option<PathBuf>> {
    let Some(path) = cache_path() else { return Ok(None) };
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(Some(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io { path: path.display().to_string(), source: e }),
    }
}

/// Every record in the cache file, by device key (empty when there is none).
pub fn cached_records() -> BTreeMap<String, Vec<TuneRecord>> {
    cache_path().map(|p| read_cache(&p)).unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_values().collect())).collect()
}

fn read_cache(path: &PathBuf) -> CacheFile {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            log::warn!("ignoring the unreadable kernel tuning cache {} ({e}); it will be rewritten", path.display());
            CacheFile::new()
        }),
        Err(_) => CacheFile::new(),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn write_cache(path: &PathBuf, file: &CacheFile) -> std::io::Result<()> {
    let dir = path.parent().expect("the cache path has a directory");
    std::fs::create_dir_all(dir)?;
    // Written beside the target and renamed over it, so a reader never sees half a file.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, file).map_err(std::io::Error::other)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn write_cache(_: &PathBuf, _: &CacheFile) -> std::io::Result<()> {
    Ok(())
}
