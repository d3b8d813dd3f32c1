//! Data sets in memory: the IDX format of MNIST and Fashion-MNIST (gzip or raw), CIFAR-10's
//! binary batches, batching with seeded shuffles, and the Fashion-MNIST files of Debian's
//! `dataset-fashion-mnist` package.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where Debian's `dataset-fashion-mnist` package installs the data set.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST's class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// An IDX file of unsigned bytes: its dimensions and data.
#[derive(Clone, Debug, PartialEq)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The bytes, row-major.
    pub data: Vec<u8>,
}

impl Idx {
    /// Parses IDX bytes (gzip-compressed when they start with the gzip magic). Only the unsigned
    /// byte type (0x08), which MNIST-format files use, is accepted. `what` names the source in
    /// errors. A compressed file is inflated only as far as its header declares, so a small
    /// file cannot expand into more memory than its stated size; data after that is an error.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Idx> {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut gz = flate2::bufread::GzDecoder::new(bytes);
            let idx = Idx::parse_from(&mut gz, what, "gzip: ")?;
            // Another gzip member or anything else after the compressed data.
            if !gz.into_inner().is_empty() {
                return Err(Error::BadFile { file: what.to_string(), reason: "data after the compressed IDX file".into() });
            }
            Ok(idx)
        } else {
            Idx::parse_from(bytes, what, "")
        }
    }

    /// Reads one IDX file from `r`: header, exactly the data it declares, then the end.
    fn parse_from(mut r: impl Read, what: &str, codec: &str) -> Result<Idx> {
        let bad = |why: String| Error::BadFile { file: what.to_string(), reason: why };
        let io = |e: std::io::Error| bad(format!("{codec}{e}"));
        let mut head = Vec::new();
        r.by_ref().take(4).read_to_end(&mut head).map_err(io)?;
        if head.len() < 4 || head[0] != 0 || head[1] != 0 {
            return Err(bad("not an IDX file (the magic number must start with two zero bytes)".into()));
        }
        if head[2] != 0x08 {
            return Err(bad(format!("element type {:#04x} is not unsigned bytes (0x08)", head[2])));
        }
        let rank = head[3] as usize;
        let header = 4 + 4 * rank;
        let mut sizes = Vec::new();
        r.by_ref().take(4 * rank as u64).read_to_end(&mut sizes).map_err(io)?;
        if rank == 0 || sizes.len() < 4 * rank {
            return Err(bad(format!("header of rank {rank} needs {header} bytes, the file has {}", 4 + sizes.len())));
        }
        let dims: Vec<usize> = sizes.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
        let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
        let mut data = Vec::new();
        r.by_ref().take(n as u64).read_to_end(&mut data).map_err(io)?;
        if data.len() != n {
            return Err(bad(format!("dimensions {dims:?} need {n} data bytes, the file has {}", data.len())));
        }
        let mut more = [0u8; 1];
        if r.read(&mut more).map_err(io)? > 0 {
            return Err(bad(format!("data after the {n} bytes its dimensions {dims:?} declare")));
        }
        Ok(Idx { dims, data })
    }

    /// The file's bytes (uncompressed): the inverse of [`Idx::parse`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0, 0, 0x08, self.dims.len() as u8];
        for &d in &self.dims {
            out.extend_from_slice(&(d as u32).to_be_bytes());
        }
        out.extend_from_slice(&self.data);
        out
    }

    /// The first `n` entries along the first axis (all of them when there are fewer).
    pub fn first(&self, n: usize) -> Idx {
        let mut dims = self.dims.clone();
        if let Some(d0) = dims.first_mut() {
            *d0 = (*d0).min(n);
        }
        let len = dims.iter().product();
        Idx { dims, data: self.data[..len].to_vec() }
    }

    /// Reads and parses an IDX file.
    pub fn read(path: &Path) -> Result<Idx> {
        let bytes = crate::io::read_file(path)?;
        Idx::parse(&bytes, &path.display().to_string())
    }
}

/// Samples in host memory with, per sample, an integer class label or float targets (one-hot
/// or soft class scores, per-output probabilities, regression values), ready for batching.
///
/// The fields hold a model's (first) input and (first) output; a model of several inputs or
/// outputs (Keras' `fit([x1, x2], [y1, y2])`) takes the others from `more_inputs` and
/// `more_outputs`, made by [`Dataset::from_arrays`]. A set made by [`Dataset::unlabeled`] has
/// samples alone, for `predict`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Per-sample shape (e.g. `[28, 28, 1]`).
    pub sample_shape: Vec<usize>,
    /// Samples, row-major, `len() * sample_shape.product()` values.
    pub x: Vec<f32>,
    /// Class labels, one per sample (empty when `targets` holds the targets, or unlabeled).
    pub y: Vec<i32>,
    /// Float targets, when given instead of labels: `[samples, target_shape...]`, row-major.
    pub targets: Option<Targets>,
    /// The samples of the model's second and later inputs, in the order of its inputs.
    pub more_inputs: Vec<Samples>,
    /// The labels or targets of the model's second and later outputs, in their order.
    pub more_outputs: Vec<Labels>,
}

/// Float targets of a [`Dataset`].
#[derive(Clone, Debug, PartialEq)]
pub struct Targets {
    /// Per-sample shape (e.g. `[10]` for one-hot classes), the model's output shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

/// The samples of one model input: `[samples, shape...]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// Per-sample shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

impl Samples {
    /// Samples of per-sample shape `shape`.
    pub fn new(shape: &[usize], values: Vec<f32>) -> Samples {
        Samples { shape: shape.to_vec(), values }
    }
}

/// What one model output learns from: a class label per sample, or float targets.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    /// One class per sample (the sparse losses; one-hot for the others).
    Classes(Vec<i32>),
    /// Float targets of a per-sample shape.
    Targets(Targets),
}

impl Labels {
    /// Float targets of per-sample shape `shape`.
    pub fn targets(shape: &[usize], values: Vec<f32>) -> Labels {
        Labels::Targets(Targets { shape: shape.to_vec(), values })
    }

    /// Borrowed.
    pub fn as_ref(&self) -> LabelsRef<'_> {
        match self {
            Labels::Classes(c) => LabelsRef::Classes(c),
            Labels::Targets(t) => LabelsRef::Targets(t),
        }
    }

    /// How many samples they label, or `None` when the values are not whole samples.
    fn count(&self) -> Option<usize> {
        match self {
            Labels::Classes(c) => Some(c.len()),
            Labels::Targets(t) => whole_samples(&t.shape, t.values.len()),
        }
    }
}

/// One output's labels as a [`Dataset`] holds them, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum LabelsRef<'a> {
    /// One class per sample.
    Classes(&'a [i32]),
    /// Float targets.
    Targets(&'a Targets),
}

/// How many samples of per-sample `shape` `len` values make, if whole.
fn whole_samples(shape: &[usize], len: usize) -> Option<usize> {
    let per: usize = shape.iter().product();
    (per > 0 && len % per == 0).then(|| len / per)
}

/// The rows of `per` values at `indices` of `values`, concatenated.
fn rows(values: &[f32], per: usize, indices: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * per);
    for &i in indices {
        out.extend_from_slice(&values[i * per..(i + 1) * per]);
    }
    out
}

impl Dataset {
    /// A data set from samples and labels; the sizes must agree.
    pub fn new(sample_shape: &[usize], x: Vec<f32>, y: Vec<i32>) -> Result<Dataset> {
        let per: usize = sample_shape.iter().product();
        if per == 0 || x.len() != per * y.len() {
            return Err(Error::invalid(
                "Dataset",
                "x",
                format!("{} values are not {} samples of shape {sample_shape:?}", x.len(), y.len()),
            ));
        }
        Ok(Dataset { sample_shape: sample_shape.to_vec(), x, y, targets: None, more_inputs: Vec::new(), more_outputs: Vec::new() })
    }

    /// A data set from samples and float targets of per-sample shape `target_shape` (Keras'
    /// `fit(x, y)` with a float `y`: one-hot or soft labels for `categorical_crossentropy`,
    /// probabilities for `binary_crossentropy`, values for `mean_squared_error`); the sizes must
    /// agree.
    pub fn with_targets(sample_shape: &[usize], x: Vec<f32>, target_shape: &[usize], targets: Vec<f32>) -> Result<Dataset> {
        let (per, per_target): (usize, usize) = (sample_shape.iter().product(), target_shape.iter().product());
        if per == 0 || per_target == 0 || x.len() % per != 0 || targets.len() != x.len() / per * per_target {
            return Err(Error::invalid(
                "Dataset",
                "targets",
                format!(
                    "{} sample values of shape {sample_shape:?} and {} target values of shape {target_shape:?} are not the same number of samples",
                    x.len(),
                    targets.len()
                ),
            ));
        }
        let targets = Some(Targets { shape: target_shape.to_vec(), values: targets });
        Ok(Dataset { sample_shape: sample_shape.to_vec(), x, y: Vec::new(), targets, more_inputs: Vec::new(), more_outputs: Vec::new() })
    }

    /// A data set for a model of several inputs or outputs, as Keras' `fit([x1, x2], [y1, y2])`:
    /// `inputs` in the order of the model's inputs, `outputs` (labels or targets) in the order
    /// of its outputs; every array must hold the same number of samples. Without outputs the
    /// set is unlabeled (for `predict`).
    pub fn from_arrays(inputs: Vec<Samples>, outputs: Vec<Labels>) -> Result<Dataset> {
        let bad = |what: &'static str, why: String| Error::invalid("Dataset::from_arrays", what, why);
        let mut inputs = inputs.into_iter();
        let first = inputs.next().ok_or_else(|| bad("inputs", "needs at least one input's samples".into()))?;
        let n = whole_samples(&first.shape, first.values.len()).ok_or_else(|| {
            bad("inputs", format!("input 0: {} values are not whole samples of shape {:?}", first.values.len(), first.shape))
        })?;
        let more_inputs: Vec<Samples> = inputs.collect();
        for (k, s) in more_inputs.iter().enumerate() {
            if whole_samples(&s.shape, s.values.len()) != Some(n) {
                let why = format!("input {}: {} values of shape {:?} are not the {n} samples of input 0", k + 1, s.values.len(), s.shape);
                return Err(bad("inputs", why));
            }
        }
        for (k, l) in outputs.iter().enumerate() {
            if l.count() != Some(n) {
                let what = match l {
                    Labels::Classes(c) => format!("{} labels", c.len()),
                    Labels::Targets(t) => format!("{} target values of shape {:?}", t.values.len(), t.shape),
                };
                return Err(bad("outputs", format!("output {k}: {what} are not the {n} samples of the inputs")));
            }
        }
        Ok(Dataset::assemble(first, more_inputs, outputs))
    }

    /// The set of these arrays, checked by the caller: the first input's and the first
    /// output's in the fields that hold them, the rest in `more_inputs` and `more_outputs`.
    fn assemble(first: Samples, more_inputs: Vec<Samples>, outputs: impl IntoIterator<Item = Labels>) -> Dataset {
        let mut outputs = outputs.into_iter();
        let (y, targets) = match outputs.next() {
            Some(Labels::Classes(c)) => (c, None),
            Some(Labels::Targets(t)) => (Vec::new(), Some(t)),
            None => (Vec::new(), None),
        };
        Dataset { sample_shape: first.shape, x: first.values, y, targets, more_inputs, more_outputs: outputs.collect() }
    }

    /// Samples without labels, for `predict` (Keras' `model.predict(x)`).
    pub fn unlabeled(sample_shape: &[usize], x: Vec<f32>) -> Result<Dataset> {
        Dataset::from_arrays(vec![Samples::new(sample_shape, x)], Vec::new())
    }

    /// Samples and labels from `.npy` files, as NumPy users keep them (`np.save`): samples
    /// float32 `[n, ...]` (the sample shape is the rest), labels one class per sample as float32
    /// whole numbers (`y.astype(np.float32)`), `[n]` or `[n, 1]` (the `.npy` reader reads float32
    /// only). Errors name the file.
    pub fn from_npy(samples: &Path, labels: &Path) -> Result<Dataset> {
        let x = crate::io::npy::read(samples)?;
        let y = crate::io::npy::read(labels)?;
        let bad = |file: &Path, why: String| Error::BadFile { file: file.display().to_string(), reason: why };
        let dims = x.shape().dims().to_vec();
        if dims.len() < 2 {
            return Err(bad(samples, format!("samples must be [n, ...], not {dims:?}")));
        }
        let n = dims[0];
        let classes: Vec<i32> = match y.data() {
            crate::tensor::TensorData::F32(v) if v.iter().all(|c| c.fract() == 0.0 && c.abs() < 2e9) => {
                v.iter().map(|&c| c as i32).collect()
            }
            crate::tensor::TensorData::F32(_) => return Err(bad(labels, "float labels must be whole class numbers".into())),
            d => return Err(bad(labels, format!("labels must be integers, not {:?}", d.dtype()))),
        };
        let ydims = y.shape().dims();
        if !(ydims == [n] || ydims == [n, 1]) {
            return Err(bad(labels, format!("labels must be [{n}] or [{n}, 1] for {n} samples, not {ydims:?}")));
        }
        Dataset::new(&dims[1..], x.as_f32()?.to_vec(), classes)
    }

    /// Images and labels from IDX files: images `[n, rows, cols]` become `[rows, cols, 1]`
    /// samples scaled from bytes to [-1, 1] (`x / 127.5 - 1`).
    pub fn from_idx(images: &Idx, labels: &Idx, what: &str) -> Result<Dataset> {
        let bad = |why: String| Error::BadFile { file: what.to_string(), reason: why };
        if images.dims.len() != 3 {
            return Err(bad(format!("images must have 3 dimensions (n, rows, cols), not {:?}", images.dims)));
        }
        if labels.dims.len() != 1 || labels.dims[0] != images.dims[0] {
            return Err(bad(format!("labels {:?} do not match {} images", labels.dims, images.dims[0])));
        }
        let x = images.data.iter().map(|&b| b as f32 / 127.5 - 1.0).collect();
        let y = labels.data.iter().map(|&b| b as i32).collect();
        Dataset::new(&[images.dims[1], images.dims[2], 1], x, y)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.len() / self.sample_len().max(1)
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// The samples at `indices`, as one batch (x, y) of the first input and output.
    pub fn gather(&self, indices: &[usize]) -> (Vec<f32>, Vec<i32>) {
        let y = if self.targets.is_some() || self.y.is_empty() { Vec::new() } else { indices.iter().map(|&i| self.y[i]).collect() };
        (self.gather_input(0, indices), y)
    }

    /// How many model inputs the set feeds.
    pub fn input_count(&self) -> usize {
        1 + self.more_inputs.len()
    }

    /// The per-sample shape of input `k`.
    pub fn input_shape(&self, k: usize) -> Option<&[usize]> {
        match k {
            0 => Some(&self.sample_shape),
            _ => self.more_inputs.get(k - 1).map(|s| s.shape.as_slice()),
        }
    }

    /// How many model outputs the set labels (0 for samples without labels).
    pub fn output_count(&self) -> usize {
        if self.y.is_empty() && self.targets.is_none() && !self.is_empty() {
            return 0;
        }
        1 + self.more_outputs.len()
    }

    /// The labels or targets of output `k`.
    pub fn labels(&self, k: usize) -> Option<LabelsRef<'_>> {
        if k >= self.output_count() {
            return None;
        }
        Some(match (k, &self.targets) {
            (0, Some(t)) => LabelsRef::Targets(t),
            (0, None) => LabelsRef::Classes(&self.y),
            _ => self.more_outputs[k - 1].as_ref(),
        })
    }

    /// The samples of input `k` at `indices`, as one batch.
    pub fn gather_input(&self, k: usize, indices: &[usize]) -> Vec<f32> {
        match k {
            0 => rows(&self.x, self.sample_len(), indices),
            _ => rows(&self.more_inputs[k - 1].values, self.more_inputs[k - 1].shape.iter().product(), indices),
        }
    }

    /// The labels or targets of output `k` at `indices`, as one batch.
    pub fn gather_labels(&self, k: usize, indices: &[usize]) -> Option<Labels> {
        Some(match self.labels(k)? {
            LabelsRef::Classes(c) => Labels::Classes(indices.iter().map(|&i| c[i]).collect()),
            LabelsRef::Targets(t) => Labels::targets(&t.shape, rows(&t.values, t.shape.iter().product(), indices)),
        })
    }

    /// The samples in `range`, copied.
    fn range(&self, r: std::ops::Range<usize>) -> Dataset {
        let all: Vec<usize> = r.collect();
        let outputs = (0..self.output_count()).map(|k| self.gather_labels(k, &all).expect("an output of the set"));
        let more_inputs =
            self.more_inputs.iter().enumerate().map(|(k, s)| Samples::new(&s.shape, self.gather_input(k + 1, &all))).collect();
        Dataset::assemble(Samples::new(&self.sample_shape, self.gather_input(0, &all)), more_inputs, outputs)
    }

    /// The first `n` samples (or all, if fewer).
    pub fn take(&self, n: usize) -> Dataset {
        self.range(0..n.min(self.len()))
    }

    /// Splits off the last `fraction` of the samples (Keras' `validation_split`, taken before
    /// shuffling): (training part, validation part).
    pub fn split(&self, fraction: f32) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&fraction) {
            return Err(Error::invalid("Dataset::split", "fraction", format!("{fraction} must lie in [0, 1)")));
        }
        let keep = self.len() - (self.len() as f64 * fraction as f64) as usize;
        Ok((self.range(0..keep), self.range(keep..self.len())))
    }
}

/// The files of an MNIST-format directory, each also accepted gzipped (`.gz`): training images
/// and labels, test images and labels.
pub const MNIST_FORMAT_FILES: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/// The train and test sets of an MNIST-format directory ([`MNIST_FORMAT_FILES`]).
pub fn load_mnist_format(dir: &Path) -> Result<(Dataset, Dataset)> {
    let find = |stem: &str| -> Result<PathBuf> {
        [dir.join(format!("{stem}.gz")), dir.join(stem)].into_iter().find(|p| p.exists()).ok_or_else(|| Error::BadFile {
            file: dir.join(stem).display().to_string(),
            reason: if dir == Path::new(FASHION_MNIST_DIR) {
                "missing: install the data set with `sudo apt-get install dataset-fashion-mnist`, or pass --data DIR".into()
            } else {
                "missing (neither it nor its .gz exists)".into()
            },
        })
    };
    let set = |images: &str, labels: &str| -> Result<Dataset> {
        let (pi, pl) = (find(images)?, find(labels)?);
        Dataset::from_idx(&Idx::read(&pi)?, &Idx::read(&pl)?, &format!("{} and {}", pi.display(), pl.display()))
    };
    let [train_images, train_labels, test_images, test_labels] = MNIST_FORMAT_FILES;
    Ok((set(train_images, train_labels)?, set(test_images, test_labels)?))
}

/// CIFAR-10's class names, in label order.
pub const CIFAR10_CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The files of CIFAR-10's binary version (`cifar-10-binary.tar.gz`, which extracts to
/// `cifar-10-batches-bin/`): the five training batches, then the test batch.
pub const CIFAR10_FILES: [&str; 6] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"];

/// Bytes of one CIFAR-10 record: the label, then 32x32 red, green and blue planes, row-major.
const CIFAR10_RECORD: usize = 1 + 3 * 32 * 32;

/// Parses one CIFAR-10 binary batch (any number of whole records) into `[32, 32, 3]` samples
/// (channels last, as Keras and the zoo models take them) scaled from bytes to [-1, 1]
/// (`x / 127.5 - 1`, as MNIST-format images are) with their labels. `what` names the source in
/// errors.
pub fn parse_cifar10(bytes: &[u8], what: &str) -> Result<Dataset> {
    let bad = |why: String| Error::BadFile { file: what.to_string(), reason: why };
    if bytes.is_empty() || bytes.len() % CIFAR10_RECORD != 0 {
        // CIFAR-100's binary records carry two label bytes.
        let hint = if bytes.len() % (CIFAR10_RECORD + 1) == 0 && !bytes.is_empty() { " (CIFAR-100's 3074-byte records?)" } else { "" };
        return Err(bad(format!("{} bytes are not a whole number of {CIFAR10_RECORD}-byte CIFAR-10 records{hint}", bytes.len())));
    }
    let n = bytes.len() / CIFAR10_RECORD;
    let mut x = Vec::with_capacity(n * 3072);
    let mut y = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(CIFAR10_RECORD).enumerate() {
        if record[0] > 9 {
            return Err(bad(format!("record {i} has label {}; CIFAR-10's labels are 0 to 9", record[0])));
        }
        y.push(record[0] as i32);
        let planes = &record[1..];
        for p in 0..1024 {
            x.extend((0..3).map(|c| planes[c * 1024 + p] as f32 / 127.5 - 1.0));
        }
    }
    Dataset::new(&[32, 32, 3], x, y)
}

/// The train and test sets of CIFAR-10's binary version: `dir` holds [`CIFAR10_FILES`], or is
/// the directory `cifar-10-batches-bin/` was extracted into.
pub fn load_cifar10(dir: &Path) -> Result<(Dataset, Dataset)> {
    let dir = cifar10_dir(dir).unwrap_or_else(|| dir.to_path_buf());
    let mut sets = Vec::new();
    for name in CIFAR10_FILES {
        let path = dir.join(name);
        if !path.exists() {
            return Err(Error::BadFile {
                file: path.display().to_string(),
                reason: "missing: CIFAR-10's binary version has data_batch_1.bin to data_batch_5.bin and test_batch.bin".into(),
            });
        }
        sets.push(parse_cifar10(&crate::io::read_file(&path)?, &path.display().to_string())?);
    }
    let test = sets.pop().expect("six files");
    let mut train = sets.remove(0);
    for more in sets {
        train.x.extend(more.x);
        train.y.extend(more.y);
    }
    Ok((train, test))
}

/// The two places CIFAR-10's batches may be under `dir`: itself and `cifar-10-batches-bin/`.
fn cifar10_dirs(dir: &Path) -> [PathBuf; 2] {
    [dir.to_path_buf(), dir.join("cifar-10-batches-bin")]
}

/// Where CIFAR-10's batches are under `dir`, if they are.
fn cifar10_dir(dir: &Path) -> Option<PathBuf> {
    cifar10_dirs(dir).into_iter().find(|d| d.join(CIFAR10_FILES[0]).exists())
}

/// The MNIST-format files (plain or `.gz`) present in `dir`.
fn mnist_format_files(dir: &Path) -> Vec<PathBuf> {
    MNIST_FORMAT_FILES.iter().flat_map(|f| [dir.join(f), dir.join(format!("{f}.gz"))]).filter(|p| p.exists()).collect()
}

/// The files present in `dir` that [`load_dir`] may read (so that nothing written over them).
pub fn data_files(dir: &Path) -> Vec<PathBuf> {
    let cifar = cifar10_dirs(dir).into_iter().flat_map(|d| CIFAR10_FILES.map(|f| d.join(f))).filter(|p| p.exists());
    mnist_format_files(dir).into_iter().chain(cifar).collect()
}

/// The train and test sets of a data directory: CIFAR-10's binary batches ([`load_cifar10`])
/// when it has them, else MNIST-format files ([`load_mnist_format`]).
pub fn load_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    match cifar10_dir(dir) {
        Some(d) => load_cifar10(&d),
        None if dir != Path::new(FASHION_MNIST_DIR) && mnist_format_files(dir).is_empty() => Err(Error::BadFile {
            file: dir.display().to_string(),
            reason: "has neither MNIST-format files (train-images-idx3-ubyte and the others, or their .gz) nor CIFAR-10's \
                         binary batches (data_batch_1.bin to data_batch_5.bin, test_batch.bin)"
                .into(),
        }),
        None => load_mnist_format(dir),
    }
}

/// A seeded permutation of `0..n`: the same seed gives the same order on every platform.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    p
}
