//! Keras' `TensorBoard` callback: scalar summaries in the event files TensorBoard reads.
//!
//! An event file is a sequence of TFRecords (a little-endian u64 length, the masked CRC-32C of
//! those 8 bytes, the data, the masked CRC-32C of the data), each holding one `tensorflow.Event`
//! protobuf; the first announces `file_version: "brain.Event:2"`, the others carry a wall time,
//! a step and a `Summary` of `simple_value` scalars. The few protobuf fields needed are encoded
//! here by hand (field numbers from TensorFlow's `event.proto` and `summary.proto`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::callbacks::{Callback, Control, Logs};
use crate::error::{Error, Result};

/// When [`TensorBoard`] writes the batch-level scalars (Keras' `update_freq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateFreq {
    /// Only the epochs' values (Keras' `"epoch"`, the default).
    Epoch,
    /// Also the running values every this many batches (Keras' integer; `"batch"` is 1), counted
    /// over all the batches the callback has seen. Each such batch reads the metrics back.
    Batches(usize),
}

impl std::str::FromStr for UpdateFreq {
    type Err = Error;

    /// Keras' spellings: `epoch`, `batch`, or a positive batch count.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "epoch" => Ok(UpdateFreq::Epoch),
            "batch" => Ok(UpdateFreq::Batches(1)),
            n => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(UpdateFreq::Batches(n)),
                _ => Err(Error::invalid("TensorBoard", "update_freq", format!("`{s}` is not `epoch`, `batch` or a positive batch count"))),
            },
        }
    }
}

/// Keras' `TensorBoard` callback, scalars only: after each epoch, `epoch_<name>` for the loss,
/// metrics, flip ratios and hyperparameters (Keras' `epoch_learning_rate`) at step = the epoch
/// (from 0, continuing across fits) in `log_dir/train`, and the `val_*` values with the prefix
/// removed in `log_dir/validation`, as Keras writes them; with [`UpdateFreq::Batches`], also
/// `batch_<name>` (running means over the epoch so far) at step = the batch's number counted
/// from 1 over all the fits this callback has seen.
///
/// Each folder gets a new file `events.out.tfevents.<seconds>.<hostname>` (a `.1`, `.2`, ...
/// suffix when that name is taken: an existing file is never overwritten) when training first
/// begins, and keeps it for later fits; every write is flushed, so TensorBoard shows a run live.
///
/// ```no_run
/// # fn run(trainer: &mut bitgrad::train::Trainer, data: &bitgrad::train::Dataset) -> bitgrad::Result<()> {
/// use bitgrad::train::{callbacks::shared, FitOptions, TensorBoard, UpdateFreq};
/// let tensorboard = shared(TensorBoard::new("logs/run1").update_freq(UpdateFreq::Batches(100)));
/// trainer.fit(data, None, &FitOptions { epochs: 5, callbacks: vec![tensorboard.clone()], ..FitOptions::default() })?;
/// println!("wrote {:?}", tensorboard.lock().unwrap().files());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TensorBoard {
    log_dir: PathBuf,
    update_freq: UpdateFreq,
    train: Option<EventWriter>,
    validation: Option<EventWriter>,
    /// Batches begun over all fits: Keras' `_global_train_batch`.
    batches: usize,
}

impl TensorBoard {
    /// Writes under `log_dir` (made when training begins), per epoch.
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        TensorBoard { log_dir: log_dir.into(), update_freq: UpdateFreq::Epoch, train: None, validation: None, batches: 0 }
    }

    /// Sets how often batch values are written.
    pub fn update_freq(mut self, freq: UpdateFreq) -> Self {
        self.update_freq = freq;
        self
    }

    /// The folder given to [`TensorBoard::new`].
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The event files written so far: the training one, then the validation one.
    pub fn files(&self) -> Vec<PathBuf> {
        self.train.iter().chain(&self.validation).map(|w| w.path.clone()).collect()
    }

    fn batch_written(&self) -> bool {
        matches!(self.update_freq, UpdateFreq::Batches(n) if self.batches % n.max(1) == 0)
    }

    fn writer<'a>(slot: &'a mut Option<EventWriter>, log_dir: &Path, run: &str) -> Result<&'a mut EventWriter> {
        if slot.is_none() {
            *slot = Some(EventWriter::create(&log_dir.join(run))?);
        }
        Ok(slot.as_mut().expect("made above"))
    }
}

impl Callback for TensorBoard {
    fn name(&self) -> &str {
        "TensorBoard"
    }

    fn on_train_begin(&mut self) -> Result<()> {
        // Made now, so that a log_dir that cannot be made fails before the first step.
        Self::writer(&mut self.train, &self.log_dir, "train")?;
        Ok(())
    }

    fn on_train_batch_begin(&mut self, _batch: usize) -> Result<()> {
        self.batches += 1;
        Ok(())
    }

    fn wants_batch_logs(&self, _batch: usize) -> bool {
        self.batch_written()
    }

    fn on_train_batch_end(&mut self, _batch: usize, logs: &Logs) -> Result<Control> {
        if self.batch_written() && !logs.is_empty() {
            let values: Vec<(String, f64)> = logs.iter().map(|(k, v)| (format!("batch_{k}"), *v)).collect();
            let step = self.batches as i64;
            Self::writer(&mut self.train, &self.log_dir, "train")?.scalars(step, &values)?;
        }
        Ok(Control::Continue)
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs) -> Result<Control> {
        let (val, train): (Vec<_>, Vec<_>) = logs.iter().partition(|(k, _)| k.starts_with("val_"));
        let step = epoch as i64;
        if !train.is_empty() {
            let values: Vec<(String, f64)> = train.iter().map(|(k, v)| (format!("epoch_{k}"), **v)).collect();
            Self::writer(&mut self.train, &self.log_dir, "train")?.scalars(step, &values)?;
        }
        if !val.is_empty() {
            let values: Vec<(String, f64)> = val.iter().map(|(k, v)| (format!("epoch_{}", &k["val_".len()..]), **v)).collect();
            Self::writer(&mut self.validation, &self.log_dir, "validation")?.scalars(step, &values)?;
        }
        Ok(Control::Continue)
    }
}

/// One event file, open for appending records.
#[derive(Debug)]
struct EventWriter {
    path: PathBuf,
    file: File,
}

impl EventWriter {
    /// Makes `dir` and a new event file in it, and writes the file-version event.
    fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::invalid("TensorBoard", "log_dir", format!("cannot create the folder `{}`: {e}", dir.display())))?;
        let wall = wall_time();
        let base = format!("events.out.tfevents.{}.{}", wall as u64, hostname());
        for n in 0.. {
            let path = if n == 0 { dir.join(&base) } else { dir.join(format!("{base}.{n}")) };
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let mut w = EventWriter { path, file };
                    w.record(&event(wall, 0, &EventWhat::FileVersion("brain.Event:2")))?;
                    return Ok(w);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(Error::Io { path: path.display().to_string(), source }),
            }
        }
        unreachable!("the suffixes are endless")
    }

    /// One event of `values` (tag, value) at `step`.
    fn scalars(&mut self, step: i64, values: &[(String, f64)]) -> Result<()> {
        self.record(&event(wall_time(), step, &EventWhat::Summary(values)))
    }

    /// Appends one record with its framing, in one write, and flushes it to the OS.
    fn record(&mut self, data: &[u8]) -> Result<()> {
        let mut framed = Vec::with_capacity(data.len() + 16);
        let len = (data.len() as u64).to_le_bytes();
        framed.extend_from_slice(&len);
        framed.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        framed.extend_from_slice(data);
        framed.extend_from_slice(&masked_crc32c(data).to_le_bytes());
        self.file
            .write_all(&framed)
            .and_then(|()| self.file.flush())
            .map_err(|source| Error::Io { path: self.path.display().to_string(), source })
    }
}

/// Seconds since the Unix epoch, as event files keep them.
fn wall_time() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The machine's name for the file name, as TensorFlow's writer puts it there (`localhost`
/// when the system does not say); characters other than letters, digits, `.`, `-` and `_`
/// become `_`.
fn hostname() -> String {
    let name = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into());
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

/// The `what` oneof of an `Event`.
enum EventWhat<'a> {
    /// `file_version = 3`.
    FileVersion(&'a str),
    /// `summary = 5`: (tag, simple_value) pairs.
    Summary(&'a [(String, f64)]),
}

/// `Event { wall_time = 1 (double), step = 2 (int64), file_version = 3 | summary = 5 }`, with
/// `Summary { repeated Value value = 1 }` and `Value { tag = 1 (string), simple_value = 2
/// (float) }`.
fn event(wall_time: f64, step: i64, what: &EventWhat) -> Vec<u8> {
    let mut out = Vec::new();
    key(&mut out, 1, WIRE_FIXED64);
    out.extend_from_slice(&wall_time.to_le_bytes());
    key(&mut out, 2, WIRE_VARINT);
    varint(&mut out, step as u64);
    match what {
        EventWhat::FileVersion(v) => bytes_field(&mut out, 3, v.as_bytes()),
        EventWhat::Summary(values) => {
            let mut summary = Vec::new();
            for (tag, v) in values.iter() {
                let mut value = Vec::new();
                bytes_field(&mut value, 1, tag.as_bytes());
                key(&mut value, 2, WIRE_FIXED32);
                value.extend_from_slice(&(*v as f32).to_le_bytes());
                bytes_field(&mut summary, 1, &value);
            }
            bytes_field(&mut out, 5, &summary);
        }
    }
    out
}

const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_BYTES: u64 = 2;
const WIRE_FIXED32: u64 = 5;

fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, field << 3 | wire);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    key(out, field, WIRE_BYTES);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// TFRecord's masked CRC-32C: rotated right by 15 bits plus a constant, so that a CRC stored
/// in data does not checksum to a fixed value.
fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), a byte at a time through a table.
fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0x82f6_3b78 } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !data.iter().fold(!0u32, |crc, &b| TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_values() {
        // The catalogue's check value, and RFC 3720's 32 zero bytes.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[]), 0);
    }

    #[test]
    fn the_file_version_event_is_the_protobuf_tensorflow_writes() {
        // wall_time 1.5, step 0 written, file_version "brain.Event:2".
        let mut want = vec![0x09];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0x00, 0x1a, 13]);
        want.extend_from_slice(b"brain.Event:2");
        assert_eq!(event(1.5, 0, &EventWhat::FileVersion("brain.Event:2")), want);
    }

    #[test]
    fn update_freq_takes_keras_spellings() {
        assert_eq!("epoch".parse::<UpdateFreq>().unwrap(), UpdateFreq::Epoch);
        assert_eq!("batch".parse::<UpdateFreq>().unwrap(), UpdateFreq::Batches(1));
        assert_eq!("25".parse::<UpdateFreq>().unwrap(), UpdateFreq::Batches(25));
        for bad in ["0", "-3", "epochs"] {
            let e = bad.parse::<UpdateFreq>().unwrap_err().to_string();
            assert!(e.contains("update_freq") && e.contains(bad), "{e}");
        }
    }
}
