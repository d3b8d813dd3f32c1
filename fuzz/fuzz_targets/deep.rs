//! Any bytes as a Keras model JSON, taken as far as it goes: build, random weights, CPU
//! inference, packed export, reload of the export's bytes, inference again. Each step gives an
//! error or a result, never a panic; a model that runs must give outputs of one shape both ways.
#![no_main]

use bitgrad::io::execute::{infer_outputs, infer_packed_outputs};
use bitgrad::io::packed::PackedModel;
use bitgrad::io::safetensors::TensorFile;
use bitgrad::layers::Mode;
use bitgrad::models::Model;
use bitgrad::{DType, Device, HostTensor, TensorData};
use libfuzzer_sys::fuzz_target;

/// Keeps each execution fast: models with more weights or inputs than this only build.
const MAX_ELEMENTS: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(model) = bitgrad::io::keras::model_from_json("fuzz.json", text) else { return };
    let Ok(built) = model.build(1, Mode::Inference) else { return };
    let expected = built.all_weights();
    let inputs = model.inputs();
    let [(_, shape)] = inputs.as_slice() else { return };
    let input_len: usize = shape.iter().product();
    if input_len > MAX_ELEMENTS || expected.values().map(|(s, _)| s.numel()).sum::<usize>() > MAX_ELEMENTS {
        return;
    }
    // Seeded weights in [-1, 1); variances in [0.5, 1.5) so BatchNormalization stays finite.
    let mut weights = TensorFile::default();
    for (i, (name, (s, dtype))) in expected.iter().enumerate() {
        let n = s.numel();
        let value = |k: usize| ((k * 7919 + i * 104_729) % 2000) as f32 / 1000.0 - 1.0;
        let t = match dtype {
            DType::F32 if name.contains("variance") => TensorData::F32((0..n).map(|k| value(k) * 0.5 + 1.0).collect()),
            DType::F32 => TensorData::F32((0..n).map(value).collect()),
            DType::I32 => TensorData::I32(vec![0; n]),
            DType::U32 => TensorData::U32(vec![0; n]),
        };
        weights.tensors.insert(name.clone(), HostTensor::new(s.dims().to_vec(), t).expect("shape from the model"));
    }
    let mut dims = vec![2];
    dims.extend(shape);
    let x = HostTensor::f32(dims, (0..2 * input_len).map(|k| ((k % 17) as f32 - 8.0) / 8.0).collect()).expect("valid input");
    let cpu = Device::cpu();
    let Ok(float) = infer_outputs(&model, &cpu, &weights, "fuzz weights", &x) else { return };
    let Ok((file, _)) = bitgrad::io::packed::export(&model, &weights, "fuzz weights") else { return };
    let bytes = file.to_bytes().expect("an export serializes");
    let reread = TensorFile::from_bytes("fuzz packed", &bytes).expect("an export reads back");
    let packed = PackedModel::from_file("fuzz packed", reread).expect("an export loads");
    let out = infer_packed_outputs(&packed, &cpu, &x).expect("an export of a model that ran runs");
    assert_eq!(out.len(), float.len());
    for ((_, a), (_, b)) in out.iter().zip(&float) {
        assert_eq!(a.shape(), b.shape());
    }
});
