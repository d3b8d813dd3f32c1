//! Callbacks in `fit`: a program's own callback sees Keras' hooks in Keras' order with the
//! right numbers and logs, can stop training and can fail it; TensorBoard's event files are
//! read back record by record (framing, CRCs, protobuf) by a decoder of this file's own; the
//! progress line puts the loss first. All on the CPU device.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bitgrad::layers::{Activation, ActivationLayer, BatchNormalization, Flatten, QuantDense, QuantLayer};
use bitgrad::models::Sequential;
use bitgrad::quantizers::Quantizer;
use bitgrad::train::callbacks::shared;
use bitgrad::train::fit::format_metrics;
use bitgrad::train::optimizers::Adam;
use bitgrad::train::{Callback, Control, FitOptions, Logs, Loss, Metric, Schedule, TensorBoard, Trainer, UpdateFreq};
use bitgrad::{Device, Error, Result};

/// The learning rate: halved every step, so a value logged at the wrong step is another value.
fn schedule() -> Schedule {
    Schedule::ExponentialDecay { initial: 0.01, decay_steps: 1, decay_rate: 0.5, staircase: true }
}

/// A small binarized network whose first kernel logs its flip ratio, with Adam on [`schedule`].
fn trainer() -> Trainer {
    let ste = || Quantizer::from_name("ste_sign").unwrap();
    let model = Sequential::new()
        .named("small")
        .input_shape(&[4, 4, 1])
        .add(Flatten::new().named("flatten"))
        .add(QuantDense::new(16).named("dense").kernel_quantizer(ste()).use_bias(false).metrics(&["flip_ratio"]))
        .add(BatchNormalization { scale: false, ..BatchNormalization::new().named("bn") })
        .add(QuantDense::new(3).named("dense_1").input_quantizer(ste()).kernel_quantizer(ste()).use_bias(false))
        .add(ActivationLayer::new(Activation::Softmax).named("softmax"));
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    Trainer::compile(model, loss, Arc::new(Adam::new(schedule())), &[Metric::Accuracy], &Device::cpu()).unwrap()
}

/// 40 samples in batches of 16: two full steps and a partial one of 8 per epoch.
fn options(epochs: usize) -> FitOptions {
    FitOptions { epochs, batch_size: 16, shuffle_seed: Some(1), ..FitOptions::default() }
}

const FLIP: &str = "flip_ratio/dense/kernel";

/// Records every hook; asks for batch logs where `want` says (global batch from 1, batch);
/// stops or fails where told.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    epoch_logs: Vec<Logs>,
    /// (global batch from 1, logs) of every batch end.
    batch_logs: Vec<(usize, Logs)>,
    test_logs: Vec<Logs>,
    want: Option<fn(usize, usize) -> bool>,
    /// The event after which to answer `Control::Stop` (an `epoch_end` or `batch_end`).
    stop_at: Option<&'static str>,
    /// The event at which to fail.
    fail_at: Option<&'static str>,
    batches: usize,
}

impl Recorder {
    fn hook(&mut self, event: String) -> Result<Control> {
        let stop = self.stop_at == Some(event.as_str());
        if self.fail_at == Some(event.as_str()) {
            return Err(Error::invalid("Recorder", "fail_at", format!("told to fail at {event}")));
        }
        self.events.push(event);
        Ok(if stop { Control::Stop } else { Control::Continue })
    }
}

impl Callback for Recorder {
    fn on_train_begin(&mut self) -> Result<()> {
        self.hook("train_begin".into()).map(drop)
    }
    fn on_train_end(&mut self, _logs: &Logs) -> Result<()> {
        self.hook("train_end".into()).map(drop)
    }
    fn on_epoch_begin(&mut self, epoch: usize) -> Result<()> {
        self.hook(format!("epoch_begin {epoch}")).map(drop)
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs) -> Result<Control> {
        self.epoch_logs.push(logs.clone());
        self.hook(format!("epoch_end {epoch}"))
    }
    fn on_train_batch_begin(&mut self, batch: usize) -> Result<()> {
        self.batches += 1;
        self.hook(format!("batch_begin {batch}")).map(drop)
    }
    fn wants_batch_logs(&self, batch: usize) -> bool {
        self.want.is_some_and(|w| w(self.batches, batch))
    }
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs) -> Result<Control> {
        self.batch_logs.push((self.batches, logs.clone()));
        self.hook(format!("batch_end {batch}"))
    }
    fn on_test_begin(&mut self) -> Result<()> {
        self.hook("test_begin".into()).map(drop)
    }
    fn on_test_end(&mut self, logs: &Logs) -> Result<()> {
        self.test_logs.push(logs.clone());
        self.hook("test_end".into()).map(drop)
    }
}

/// Keras' order for `epochs` of `batches` batches, from epoch `first`, with validation.
fn keras_order(first: usize, epochs: usize, batches: usize, validation: bool) -> Vec<String> {
    let mut want = vec!["train_begin".to_string()];
    for e in first..first + epochs {
        want.push(format!("epoch_begin {e}"));
        for b in 0..batches {
            want.extend([format!("batch_begin {b}"), format!("batch_end {b}")]);
        }
        if validation {
            want.extend(["test_begin".to_string(), "test_end".to_string()]);
        }
        want.push(format!("epoch_end {e}"));
    }
    want.push("train_end".into());
    want
}

fn keys(logs: &Logs) -> Vec<&str> {
    logs.keys().map(String::as_str).collect()
}

#[test]
fn a_callback_sees_keras_hooks_in_keras_order_with_logs() {
    let mut t = trainer();
    let (data, val) = (common::blobs(40, 1), common::blobs(20, 2));
    // Batch 1 of each epoch, and the last batch of the run.
    let rec = shared(Recorder { want: Some(|global, batch| batch == 1 || global == 6), ..Recorder::default() });
    let h = t.fit(&data, Some(&val), &FitOptions { callbacks: vec![rec.clone()], ..options(2) }).unwrap();
    let r = rec.lock().unwrap();
    assert_eq!(r.events, keras_order(0, 2, 3, true));

    // Epoch logs: the history's values and the learning rate of the epoch's last step.
    assert_eq!(r.epoch_logs.len(), 2);
    for (e, logs) in r.epoch_logs.iter().enumerate() {
        assert_eq!(keys(logs), ["accuracy", FLIP, "learning_rate", "loss", "val_accuracy", "val_loss"], "epoch {e}");
        let mut without_rate = logs.clone();
        assert_eq!(without_rate.remove("learning_rate"), Some(schedule().at(3 * e + 2) as f64), "epoch {e}");
        assert_eq!(without_rate, h.epochs[e].values, "epoch {e}");
        assert_eq!(r.test_logs[e]["loss"], logs["val_loss"]);
        assert_eq!(r.test_logs[e]["accuracy"], logs["val_accuracy"]);
        assert_eq!(keys(&r.test_logs[e]), ["accuracy", "loss"]);
    }
    // Batch logs where asked (and log_every, 50, never came): the running means, the flip
    // ratio and the rate this step used; the last batch's running means are the epoch's.
    let asked: Vec<usize> = r.batch_logs.iter().filter(|(_, l)| !l.is_empty()).map(|(g, _)| *g).collect();
    assert_eq!(asked, [2, 5, 6]);
    assert_eq!(r.batch_logs.iter().map(|(g, _)| *g).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    for (global, logs) in r.batch_logs.iter().filter(|(_, l)| !l.is_empty()) {
        assert_eq!(keys(logs), ["accuracy", FLIP, "learning_rate", "loss"], "batch {global}");
        assert_eq!(logs["learning_rate"], schedule().at(global - 1) as f64, "batch {global}");
    }
    let last = &r.batch_logs[5].1;
    for k in ["loss", "accuracy", FLIP] {
        assert_eq!(last[k], h.epochs[1].values[k], "{k}");
    }
    assert_ne!(r.batch_logs[4].1["loss"], last["loss"], "batch 1's running loss is not the epoch's");
    drop(r);

    // A second fit continues the epochs; without validation no test hooks run.
    rec.lock().unwrap().events.clear();
    t.fit(&data, None, &FitOptions { callbacks: vec![rec.clone()], ..options(1) }).unwrap();
    assert_eq!(rec.lock().unwrap().events, keras_order(2, 1, 3, false));
}

#[test]
fn a_callback_stops_training_after_an_epoch_or_a_batch() {
    let mut t = trainer();
    let data = common::blobs(40, 1);
    let rec = shared(Recorder { stop_at: Some("epoch_end 1"), ..Recorder::default() });
    let h = t.fit(&data, None, &FitOptions { callbacks: vec![rec.clone()], ..options(5) }).unwrap();
    assert!(h.stopped_early && h.epochs.len() == 2, "{h:?}");
    assert_eq!((t.steps(), t.epochs_done()), (6, 2));
    assert_eq!(rec.lock().unwrap().events, keras_order(0, 2, 3, false));

    // From a batch: the epoch still ends (metrics, validation, on_epoch_end), then training.
    let mut t = trainer();
    let rec = shared(Recorder { stop_at: Some("batch_end 1"), ..Recorder::default() });
    let val = common::blobs(20, 2);
    let h = t.fit(&data, Some(&val), &FitOptions { callbacks: vec![rec.clone()], ..options(3) }).unwrap();
    assert!(h.stopped_early && h.epochs.len() == 1, "{h:?}");
    assert_eq!(t.steps(), 2);
    let mut want = keras_order(0, 1, 2, true);
    assert_eq!(rec.lock().unwrap().events, want);
    // Two batches of 16 trained: the rate counts those samples, not the epoch's 40.
    let e = &h.epochs[0];
    assert!((e.images_per_second * e.seconds - 32.0).abs() < 1e-6, "{e:?}");

    // Each callback is asked; one stop is enough.
    let mut t = trainer();
    let (quiet, stopper) = (shared(Recorder::default()), shared(Recorder { stop_at: Some("epoch_end 0"), ..Recorder::default() }));
    let h = t.fit(&data, None, &FitOptions { callbacks: vec![quiet.clone(), stopper.clone()], ..options(4) }).unwrap();
    assert_eq!(h.epochs.len(), 1);
    want = keras_order(0, 1, 3, false);
    assert_eq!((&quiet.lock().unwrap().events, &stopper.lock().unwrap().events), (&want, &want));
}

#[test]
fn a_callback_error_ends_fit_with_that_error() {
    let data = common::blobs(40, 1);
    for (at, steps) in [("train_begin", 0), ("epoch_begin 1", 3), ("batch_begin 2", 2), ("batch_end 0", 1), ("epoch_end 0", 3)] {
        let mut t = trainer();
        let rec = shared(Recorder { fail_at: Some(at), ..Recorder::default() });
        let after = shared(Recorder::default());
        let e = t.fit(&data, None, &FitOptions { callbacks: vec![rec.clone(), after.clone()], ..options(3) }).unwrap_err().to_string();
        assert_eq!(e, format!("Recorder: invalid `fail_at`: told to fail at {at}"));
        assert_eq!(t.steps(), steps, "{at}");
        // Nothing runs after the failing hook, not even the next callback's same hook.
        let events = rec.lock().unwrap().events.clone();
        let seen = after.lock().unwrap().events.clone();
        assert_eq!(seen, events, "{at}");
        assert!(!events.iter().any(|e| e == "train_end"), "{at}: {events:?}");
    }
}

#[test]
fn fit_refuses_a_verbosity_keras_does_not_have() {
    let e = trainer().fit(&common::blobs(40, 1), None, &FitOptions { verbose: 3, ..options(1) }).unwrap_err().to_string();
    assert!(e.contains("`verbose`") && e.contains("3 is not 0"), "{e}");
}

#[test]
fn format_metrics_puts_the_loss_first() {
    let m: BTreeMap<String, f64> = [
        ("accuracy", 0.75),
        ("flip_ratio/dense/kernel", 0.00025),
        ("loss", 0.5),
        ("top_5", 1.0),
        ("val_accuracy", 0.625),
        ("val_loss", 0.875),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(
        format_metrics(&m, Some(1234.4)),
        "loss: 0.5000 - accuracy: 0.7500 - top_5: 1.0000 - val_loss: 0.8750 - val_accuracy: 0.6250 - \
         flip_ratio/dense/kernel: 2.5000e-4 - 1234 img/s"
    );
}

// --- TensorBoard ---

/// One decoded `tensorflow.Event`.
#[derive(Clone, Debug, Default, PartialEq)]
struct Event {
    wall_time: f64,
    step: i64,
    file_version: Option<String>,
    /// (tag, simple_value) of the summary.
    values: Vec<(String, f32)>,
}

/// CRC-32C bit by bit (not the library's table), masked as TFRecord masks it.
fn masked_crc(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82f6_3b78 & 0u32.wrapping_sub(crc & 1));
        }
    }
    let crc = !crc;
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The records of a TFRecord file, checking both CRCs of each and that nothing trails.
fn records(bytes: &[u8], file: &Path) -> Vec<Vec<u8>> {
    let (mut at, mut out) = (0, Vec::new());
    while at < bytes.len() {
        assert!(bytes.len() >= at + 12, "{}: a record header is cut at byte {at}", file.display());
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        assert_eq!(len_crc, masked_crc(len_bytes), "{}: length CRC of the record at byte {at}", file.display());
        let data = &bytes[at + 12..at + 12 + len];
        let data_crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
        assert_eq!(data_crc, masked_crc(data), "{}: data CRC of the record at byte {at}", file.display());
        out.push(data.to_vec());
        at += 16 + len;
    }
    assert_eq!(at, bytes.len());
    out
}

/// Protobuf fields of a message: (field number, wire type, varint value or the bytes).
fn fields(mut b: &[u8]) -> Vec<(u64, u64, u64, Vec<u8>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[0];
            *b = &b[1..];
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let (field, wire) = (key >> 3, key & 7);
        let (value, data) = match wire {
            0 => (varint(&mut b), Vec::new()),
            1 => (0, b[..8].to_vec()),
            2 => {
                let n = varint(&mut b) as usize;
                (0, b[..n].to_vec())
            }
            5 => (0, b[..4].to_vec()),
            w => panic!("wire type {w}"),
        };
        b = &b[data.len()..];
        out.push((field, wire, value, data));
    }
    out
}

fn decode_event(data: &[u8]) -> Event {
    let mut e = Event::default();
    for (field, wire, v, bytes) in fields(data) {
        match (field, wire) {
            (1, 1) => e.wall_time = f64::from_le_bytes(bytes.try_into().unwrap()),
            (2, 0) => e.step = v as i64,
            (3, 2) => e.file_version = Some(String::from_utf8(bytes).unwrap()),
            (5, 2) => {
                for (f, w, _, value) in fields(&bytes) {
                    assert_eq!((f, w), (1, 2), "Summary.value");
                    let (mut tag, mut simple) = (None, None);
                    for (f, w, _, b) in fields(&value) {
                        match (f, w) {
                            (1, 2) => tag = Some(String::from_utf8(b).unwrap()),
                            (2, 5) => simple = Some(f32::from_le_bytes(b.try_into().unwrap())),
                            other => panic!("Value field {other:?}"),
                        }
                    }
                    e.values.push((tag.unwrap(), simple.unwrap()));
                }
            }
            other => panic!("Event field {other:?}"),
        }
    }
    e
}

/// The one event file in `dir`, decoded; its first event is the file version.
fn events_in(dir: &Path) -> (PathBuf, Vec<Event>) {
    let files = event_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    let events: Vec<Event> = records(&bytes, &files[0]).iter().map(|r| decode_event(r)).collect();
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    assert!(events[0].values.is_empty());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    for w in events.windows(2) {
        assert!(w[0].wall_time <= w[1].wall_time && w[1].wall_time <= now + 1.0, "{:?}", (w[0].wall_time, w[1].wall_time));
    }
    assert!(now - events[0].wall_time < 600.0, "wall time {} is seconds since 1970", events[0].wall_time);
    // Wall times are checked above; the rest is compared whole.
    (files[0].clone(), events[1..].iter().map(|e| Event { wall_time: 0.0, ..e.clone() }).collect())
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// An event of `(tag, value)` at `step`, values as f32.
fn scalars(step: i64, values: &[(String, f64)]) -> Event {
    Event { wall_time: 0.0, step, file_version: None, values: values.iter().map(|(k, v)| (k.clone(), *v as f32)).collect() }
}

/// `prefix` + each name of `logs` whose name `keep` takes (renamed by it).
fn tagged(prefix: &str, logs: &Logs, keep: impl Fn(&str) -> Option<String>) -> Vec<(String, f64)> {
    logs.iter().filter_map(|(k, v)| keep(k).map(|k| (format!("{prefix}{k}"), *v))).collect()
}

/// Trains 2 epochs of 3 batches with validation, a TensorBoard writing every 2 batches to
/// `log_dir`, and a recorder that asks for the logs at the same batches; returns the recorder.
fn fit_with_tensorboard(log_dir: &Path) -> (Trainer, Arc<std::sync::Mutex<TensorBoard>>, Recorder) {
    let mut t = trainer();
    let tb = shared(TensorBoard::new(log_dir).update_freq(UpdateFreq::Batches(2)));
    let rec = shared(Recorder { want: Some(|global, _| global % 2 == 0), ..Recorder::default() });
    t.fit(&common::blobs(40, 1), Some(&common::blobs(20, 2)), &FitOptions { callbacks: vec![tb.clone(), rec.clone()], ..options(2) })
        .unwrap();
    let rec = std::mem::take(&mut *rec.lock().unwrap());
    (t, tb, rec)
}

/// The events TensorBoard should have written for the recorder's logs: per run (train,
/// validation), in order.
fn expected_events(rec: &Recorder) -> (Vec<Event>, Vec<Event>) {
    let mut train = Vec::new();
    let mut batches = rec.batch_logs.iter().filter(|(g, _)| g % 2 == 0).peekable();
    for (epoch, logs) in rec.epoch_logs.iter().enumerate() {
        while let Some((global, logs)) = batches.next_if(|(g, _)| *g <= 3 * (epoch + 1)) {
            train.push(scalars(*global as i64, &tagged("batch_", logs, |k| Some(k.to_string()))));
        }
        train.push(scalars(epoch as i64, &tagged("epoch_", logs, |k| (!k.starts_with("val_")).then(|| k.to_string()))));
    }
    let validation = rec
        .epoch_logs
        .iter()
        .enumerate()
        .map(|(e, logs)| scalars(e as i64, &tagged("epoch_", logs, |k| k.strip_prefix("val_").map(str::to_string))))
        .collect();
    (train, validation)
}

#[test]
fn tensorboard_writes_event_files_tensorboard_reads() {
    let dir = common::scratch("tensorboard");
    let log_dir = dir.join("logs");
    let (mut t, tb, rec) = fit_with_tensorboard(&log_dir);
    let (train_file, train) = events_in(&log_dir.join("train"));
    let (val_file, validation) = events_in(&log_dir.join("validation"));
    assert_eq!(tb.lock().unwrap().files(), [train_file.clone(), val_file.clone()]);
    let name = train_file.file_name().unwrap().to_string_lossy().to_string();
    let rest = name.strip_prefix("events.out.tfevents.").unwrap_or_else(|| panic!("{name}"));
    let (secs, host) = rest.split_once('.').unwrap();
    assert!(secs.parse::<u64>().is_ok() && !host.is_empty(), "{name}");

    let (want_train, want_validation) = expected_events(&rec);
    // Batches 2 and 4 and 6, the epochs at 0 and 1: tags as Keras writes them.
    let steps: Vec<i64> = train.iter().map(|e| e.step).collect();
    assert_eq!(steps, [2, 0, 4, 6, 1]);
    let tags: Vec<&str> = train[1].values.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tags, ["epoch_accuracy", "epoch_flip_ratio/dense/kernel", "epoch_learning_rate", "epoch_loss"]);
    let tags: Vec<&str> = train[0].values.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tags, ["batch_accuracy", "batch_flip_ratio/dense/kernel", "batch_learning_rate", "batch_loss"]);
    let tags: Vec<&str> = validation[0].values.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tags, ["epoch_accuracy", "epoch_loss"]);
    assert_eq!(train, want_train);
    assert_eq!(validation, want_validation);
    assert_eq!(validation[1].values[1].1, rec.epoch_logs[1]["val_loss"] as f32);

    // The same callback in a later fit: the same files, epochs and batches continue.
    let before = std::fs::read(&train_file).unwrap();
    t.fit(&common::blobs(40, 1), None, &FitOptions { callbacks: vec![tb.clone()], ..options(1) }).unwrap();
    let (_, train) = events_in(&log_dir.join("train"));
    assert_eq!(train.iter().map(|e| e.step).collect::<Vec<_>>(), [2, 0, 4, 6, 1, 8, 2]);
    assert!(std::fs::read(&train_file).unwrap().starts_with(&before));

    // Another callback in the same folder writes files of its own and leaves these alone.
    let val_before = std::fs::read(&val_file).unwrap();
    let before = std::fs::read(&train_file).unwrap();
    let (_, other, _) = fit_with_tensorboard(&log_dir);
    let other = other.lock().unwrap().files();
    assert_eq!(event_files(&log_dir.join("train")).len(), 2);
    assert_eq!(event_files(&log_dir.join("validation")).len(), 2);
    assert!(!other.contains(&train_file) && !other.contains(&val_file), "{other:?}");
    assert_eq!((std::fs::read(&train_file).unwrap(), std::fs::read(&val_file).unwrap()), (before, val_before));
}

#[test]
fn a_log_dir_that_cannot_be_made_fails_before_training() {
    let dir = common::scratch("tensorboard-bad");
    let file = dir.join("a_file");
    std::fs::write(&file, b"not a folder").unwrap();
    let mut t = trainer();
    let tb = shared(TensorBoard::new(file.join("logs")));
    let e = t.fit(&common::blobs(40, 1), None, &FitOptions { callbacks: vec![tb], ..options(1) }).unwrap_err().to_string();
    let train = file.join("logs").join("train");
    assert!(e.contains("TensorBoard") && e.contains("log_dir") && e.contains(&format!("`{}`", train.display())), "{e}");
    assert_eq!(t.steps(), 0);
}

/// For scripts/test.sh: writes the event files of [`fit_with_tensorboard`] under
/// `$BITGRAD_TENSORBOARD_DIR/logs`, and `expected.json` beside them: per run, each tag's
/// (step, value) pairs, which TensorBoard's own reader must load.
#[test]
#[ignore = "run by scripts/test.sh, which checks the files with TensorBoard"]
fn write_event_files_for_tensorboard() {
    let dir = PathBuf::from(std::env::var("BITGRAD_TENSORBOARD_DIR").expect("BITGRAD_TENSORBOARD_DIR names a folder to write to"));
    let (_, _, rec) = fit_with_tensorboard(&dir.join("logs"));
    let (train, validation) = expected_events(&rec);
    let by_tag = |events: &[Event]| {
        let mut tags: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
        for e in events {
            for (tag, v) in &e.values {
                tags.entry(tag.clone()).or_default().push((e.step, *v));
            }
        }
        tags
    };
    let expected = serde_json::json!({ "train": by_tag(&train), "validation": by_tag(&validation) });
    std::fs::write(dir.join("expected.json"), serde_json::to_string_pretty(&expected).unwrap()).unwrap();
}
