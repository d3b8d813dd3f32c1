//! The page's engine: one WebGPU device, the Larq user guide's MLP training on a Fashion-MNIST
//! subset batch by batch, classification of 28x28 drawings, and packed exports run for inference.

use std::cell::RefCell;
use std::sync::Arc;

use bitgrad::io::execute::infer_packed_async;
use bitgrad::io::packed::{export, PackedModel};
use bitgrad::io::safetensors::TensorFile;
use bitgrad::models::zoo::larq_guide_mlp;
use bitgrad::train::data::{Idx, FASHION_MNIST_CLASSES};
use bitgrad::train::optimizers::Adam;
use bitgrad::train::{Dataset, Loss, Metric, Trainer};
use bitgrad::{Device, GpuOptions, HostTensor};
use wasm_bindgen::prelude::*;

/// Pixels of one image (28 x 28).
const PIXELS: usize = 28 * 28;

/// Mutable state, taken out of the [`Demo`] for the length of an async call so that no borrow
/// is held across an await; a second call meanwhile is refused as busy.
struct State {
    device: Device,
    trainer: Trainer,
    train: Dataset,
    test: Dataset,
    batch: usize,
    /// This epoch's shuffled sample order and the next batch's start in it.
    order: Vec<usize>,
    cursor: usize,
    epoch: u64,
    packed: Option<PackedModel>,
}

/// The demo: a BNN that trains in the page on WebGPU.
#[wasm_bindgen]
pub struct Demo {
    state: RefCell<Option<State>>,
    adapter: String,
    train_len: usize,
    test_len: usize,
}

/// A JavaScript error carrying bitgrad's message.
fn js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// One `[-1, 1]` model input from ink values in `[0, 1]` (the scale of the training data:
/// `byte / 127.5 - 1`), checked to be one image.
fn image(pixels: &[f32]) -> Result<Dataset, JsError> {
    if pixels.len() != PIXELS {
        return Err(JsError::new(&format!("an image has {PIXELS} pixels (28 x 28), not {}", pixels.len())));
    }
    if let Some(i) = pixels.iter().position(|p| !(0.0..=1.0).contains(p)) {
        return Err(JsError::new(&format!("pixel {i} is {}; ink values lie in [0, 1]", pixels[i])));
    }
    Dataset::new(&[28, 28, 1], pixels.iter().map(|p| p * 2.0 - 1.0).collect(), vec![0]).map_err(js)
}

#[wasm_bindgen]
impl Demo {
    /// Opens the WebGPU device and compiles the guide's MLP (Adam 1e-3, sparse categorical
    /// cross-entropy, accuracy) for batches of `batch`. `files` are the four IDX files (gzip or
    /// raw) of the subset: train images, train labels, test images, test labels.
    pub async fn create(
        train_images: Vec<u8>,
        train_labels: Vec<u8>,
        test_images: Vec<u8>,
        test_labels: Vec<u8>,
        batch: usize,
    ) -> Result<Demo, JsError> {
        let set = |images: &[u8], labels: &[u8], what: &str| -> Result<Dataset, JsError> {
            let images = Idx::parse(images, &format!("{what} images")).map_err(js)?;
            let labels = Idx::parse(labels, &format!("{what} labels")).map_err(js)?;
            Dataset::from_idx(&images, &labels, what).map_err(js)
        };
        let train = set(&train_images, &train_labels, "training")?;
        let test = set(&test_images, &test_labels, "test")?;
        if batch == 0 || batch > train.len() {
            return Err(JsError::new(&format!("batch {batch} is not between 1 and the {} training images", train.len())));
        }
        if train.sample_shape != [28, 28, 1] || test.sample_shape != [28, 28, 1] {
            return Err(JsError::new("the demo's model takes 28 x 28 images"));
        }
        let device = Device::gpu_async(&GpuOptions::default()).await.map_err(js)?;
        let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
        let trainer = Trainer::compile(larq_guide_mlp(), loss, Arc::new(Adam::new(1e-3)), &[Metric::Accuracy], &device).map_err(js)?;
        let (train_len, test_len) = (train.len(), test.len());
        let state = State { device: device.clone(), trainer, train, test, batch, order: Vec::new(), cursor: 0, epoch: 0, packed: None };
        Ok(Demo { state: RefCell::new(Some(state)), adapter: device.describe(), train_len, test_len })
    }

    /// The adapter, as bitgrad describes it.
    pub fn adapter(&self) -> String {
        self.adapter.clone()
    }

    /// Training images.
    pub fn train_len(&self) -> usize {
        self.train_len
    }

    /// Test images.
    pub fn test_len(&self) -> usize {
        self.test_len
    }

    /// Fashion-MNIST's class names, in label order.
    pub fn classes() -> Vec<String> {
        FASHION_MNIST_CLASSES.iter().map(|c| c.to_string()).collect()
    }

    /// One optimizer step on the next batch (reshuffled every epoch); returns `[loss, accuracy,
    /// epoch, step]` of that batch.
    pub async fn train_batch(&self) -> Result<Vec<f64>, JsError> {
        let mut s = self.take()?;
        let result = s.train_batch().await;
        self.put(s);
        result
    }

    /// Accuracy on the test images.
    pub async fn test_accuracy(&self) -> Result<f64, JsError> {
        let mut s = self.take()?;
        let result = s.trainer.evaluate_async(&s.test, 256).await.map_err(js);
        self.put(s);
        Ok(result?.get("accuracy").copied().unwrap_or(f64::NAN))
    }

    /// Class probabilities of the trained model for one image of ink values in `[0, 1]`.
    pub async fn classify(&self, pixels: Vec<f32>) -> Result<Vec<f32>, JsError> {
        let x = image(&pixels)?;
        let mut s = self.take()?;
        let result = s.trainer.predict_async(&x, 1).await.and_then(|t| t.as_f32().map(<[f32]>::to_vec)).map_err(js);
        self.put(s);
        result
    }

    /// Test image `i` as 784 ink bytes, for drawing onto the canvas.
    pub fn test_image(&self, i: usize) -> Result<Vec<u8>, JsError> {
        let s = self.borrow()?;
        let n = s.test.len();
        if i >= n {
            return Err(JsError::new(&format!("test image {i} is not below {n}")));
        }
        Ok(s.test.x[i * PIXELS..(i + 1) * PIXELS].iter().map(|v| ((v + 1.0) * 127.5).round() as u8).collect())
    }

    /// Test image `i`'s label.
    pub fn test_label(&self, i: usize) -> Result<i32, JsError> {
        let s = self.borrow()?;
        s.test.y.get(i).copied().ok_or_else(|| JsError::new(&format!("test image {i} is not below {}", s.test.len())))
    }

    /// Loads a packed model written by `bitgrad export` (a `.safetensors` file named `name`);
    /// returns a one-line description. It must take 28 x 28 x 1 images and give 10 classes.
    pub fn load_packed(&self, name: &str, bytes: Vec<u8>) -> Result<String, JsError> {
        let packed = PackedModel::from_file(name, TensorFile::from_bytes(name, &bytes).map_err(js)?).map_err(js)?;
        let inputs = bitgrad::models::Model::inputs(&packed.model);
        if inputs.len() != 1 || inputs[0].1 != [28, 28, 1] {
            let shapes: Vec<String> = inputs.iter().map(|(n, s)| format!("{n} {s:?}")).collect();
            return Err(JsError::new(&format!("{name}: the demo feeds one 28 x 28 x 1 image; the model takes {}", shapes.join(", "))));
        }
        let tensors = packed.file.tensors.len();
        let line = format!("{name}: {tensors} tensors, {} bytes", bytes.len());
        let mut state = self.borrow_mut()?;
        let s = state.as_mut().ok_or_else(busy)?;
        s.packed = Some(packed);
        Ok(line)
    }

    /// The model as trained so far, exported as `bitgrad export` does: binarized kernels as
    /// packed bits in a `.safetensors` file that [`Demo::load_packed`] (and `bitgrad run`) read.
    pub async fn export_packed(&self) -> Result<Vec<u8>, JsError> {
        let s = self.take()?;
        let result = s.export_packed().await;
        self.put(s);
        result
    }

    /// Class scores of the loaded packed model for one image of ink values in `[0, 1]`.
    pub async fn classify_packed(&self, pixels: Vec<f32>) -> Result<Vec<f32>, JsError> {
        let x = image(&pixels)?;
        let x = HostTensor::f32([1, 28, 28, 1], x.x).map_err(js)?;
        let s = self.take()?;
        let result = match &s.packed {
            Some(p) => infer_packed_async(p, &s.device, &x).await.map_err(js).and_then(|y| y.as_f32().map(<[f32]>::to_vec).map_err(js)),
            None => Err(JsError::new("no packed model is loaded")),
        };
        self.put(s);
        result
    }
}

impl Demo {
    fn take(&self) -> Result<State, JsError> {
        self.borrow_mut()?.take().ok_or_else(busy)
    }

    fn put(&self, s: State) {
        *self.state.borrow_mut() = Some(s);
    }

    fn borrow(&self) -> Result<std::cell::Ref<'_, State>, JsError> {
        let r = self.state.try_borrow().map_err(|_| busy())?;
        std::cell::Ref::filter_map(r, Option::as_ref).map_err(|_| busy())
    }

    fn borrow_mut(&self) -> Result<std::cell::RefMut<'_, Option<State>>, JsError> {
        self.state.try_borrow_mut().map_err(|_| busy())
    }
}

/// The error for a call made while another is still running (the state is out for it).
fn busy() -> JsError {
    JsError::new("the demo is busy with another call; await it first")
}

impl State {
    async fn export_packed(&self) -> Result<Vec<u8>, JsError> {
        let model = larq_guide_mlp();
        let built = bitgrad::models::build(&model, 1, bitgrad::layers::Mode::Inference).map_err(js)?;
        let mut weights = TensorFile::default();
        for name in built.all_weights().keys() {
            let t = self.trainer.params.get(name).ok_or_else(|| JsError::new("the model has no weights yet: train a batch first"))?;
            weights.tensors.insert(name.clone(), t.download_async().await.map_err(js)?);
        }
        let (file, _) = export(&model, &weights, "the model trained in the browser").map_err(js)?;
        file.to_bytes().map_err(js)
    }

    async fn train_batch(&mut self) -> Result<Vec<f64>, JsError> {
        if self.cursor >= self.order.len() {
            self.order = bitgrad::train::data::shuffled(self.train.len(), 42 + self.epoch);
            self.cursor = 0;
            self.epoch += 1;
        }
        let end = (self.cursor + self.batch).min(self.order.len());
        let indices = self.order[self.cursor..end].to_vec();
        self.cursor = end;
        let m = self.trainer.train_on_batch_async(&self.train, &indices).await.map_err(js)?;
        let get = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
        Ok(vec![get("loss"), get("accuracy"), self.epoch as f64, self.trainer.steps() as f64])
    }
}
