//! Training: data sets ([`data`]), losses, optimizers, schedules, metrics, and the Keras-style
//! `compile` / `fit` / `evaluate` / `predict` loop ([`Trainer`]).

pub mod callbacks;
pub mod checkpoint;
pub mod data;
pub mod fit;
pub mod losses;
pub mod metrics;
pub mod optimizers;
pub mod schedules;
pub mod tensorboard;

pub use callbacks::{Callback, Control, EarlyStopping, Logs, ModelCheckpoint, SharedCallback};
pub use data::{Dataset, Labels, Samples};
pub use fit::{Compile, EpochLog, FitOptions, History, Metric, Trainer};
pub use losses::Loss;
pub use schedules::{Every, HyperparameterScheduler, Schedule};
pub use tensorboard::{TensorBoard, UpdateFreq};
