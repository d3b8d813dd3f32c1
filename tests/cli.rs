//! The command line over the Keras fixtures of tests/fixtures/keras (from the real Larq):
//! `run`, `grad` and `summary` on the CPU and the GPU, and bad input: a one-line error naming the
//! file, a non-zero exit code, and no output file left behind.

mod common;

use common::{bitgrad, keras_fixture, scratch, FUNCTION_MODELS, KERAS_MODELS};

use std::path::{Path, PathBuf};

use bitgrad::io::{npy, safetensors::TensorFile};

fn devices() -> Vec<&'static str> {
    if common::gpu().is_some() {
        vec!["cpu", "gpu"]
    } else {
        vec!["cpu"]
    }
}

/// Runs `bitgrad run` on these files.
fn run(model: &Path, weights: &Path, input: &Path, output: &Path, device: &str) -> (bool, String, String) {
    bitgrad(&["run", s(model), "--weights", s(weights), "--input", s(input), "--output", s(output), "--device", device])
}

/// Runs `bitgrad grad` on these files.
fn grad(model: &Path, weights: &Path, input: &Path, upstream: &Path, output: &Path, device: &str) -> (bool, String, String) {
    bitgrad(&[
        "grad",
        s(model),
        "--weights",
        s(weights),
        "--input",
        s(input),
        "--upstream",
        s(upstream),
        "--output",
        s(output),
        "--device",
        device,
    ])
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
    for (i, (a, e)) in got.iter().zip(want).enumerate() {
        assert!((a - e).abs() <= 1e-4 * scale, "{what}[{i}]: {a} vs Larq's {e}");
    }
}

#[test]
fn summary_prints_larqs_tables() {
    for name in KERAS_MODELS.into_iter().chain(FUNCTION_MODELS) {
        let (ok, out, err) = bitgrad(&["summary", s(&keras_fixture(&format!("{name}.json")))]);
        assert!(ok, "{name}: {err}");
        // Larq's own summary fails on 3-D convolutions with binary input (no fixture for them).
        if let Ok(want) = std::fs::read_to_string(keras_fixture(&format!("{name}.summary.txt"))) {
            assert_eq!(out, want, "{name}");
        }
    }
    let (ok, out, _) = bitgrad(&["summary", s(&keras_fixture("guide_mlp.json")), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(ok && v["total_params"] == 660, "{out}");
}

#[test]
fn run_and_grad_compute_what_larq_computes() {
    let dir = scratch("ok");
    for name in KERAS_MODELS.into_iter().chain(FUNCTION_MODELS) {
        let data = TensorFile::read(&keras_fixture(&format!("{name}.data.safetensors"))).unwrap();
        let (model, weights) = (keras_fixture(&format!("{name}.json")), keras_fixture(&format!("{name}.safetensors")));
        let (input, upstream) = (keras_fixture(&format!("{name}.input.npy")), keras_fixture(&format!("{name}.upstream.npy")));
        for device in devices() {
            let y = dir.join(format!("{name}-{device}.npy"));
            let (ok, _, err) = run(&model, &weights, &input, &y, device);
            assert!(ok, "{name} run on {device}: {err}");
            let got = npy::read(&y).unwrap();
            assert_eq!(got.shape(), data.tensors["output"].shape());
            close(&format!("{name} run on {device}"), got.as_f32().unwrap(), data.tensors["output"].as_f32().unwrap());

            let g = dir.join(format!("{name}-{device}.safetensors"));
            let (ok, _, err) = grad(&model, &weights, &input, &upstream, &g, device);
            assert!(ok, "{name} grad on {device}: {err}");
            let grads = TensorFile::read(&g).unwrap();
            let want: Vec<&String> = data.tensors.keys().filter(|k| k.starts_with("grad/")).collect();
            assert_eq!(grads.tensors.len(), want.len(), "{name}: {:?}", grads.tensors.keys().collect::<Vec<_>>());
            for key in want {
                let short = key.strip_prefix("grad/").unwrap();
                let got = grads.tensors.get(short).unwrap_or_else(|| panic!("{name}: no `{short}`"));
                close(&format!("{name} grad {short} on {device}"), got.as_f32().unwrap(), data.tensors[key].as_f32().unwrap());
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_one_line_naming_the_file_with_no_output_left() {
    let dir = scratch("bad");
    let (model, weights, input) =
        (keras_fixture("guide_mlp.json"), keras_fixture("guide_mlp.safetensors"), keras_fixture("guide_mlp.input.npy"));
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let json = std::fs::read(&model).unwrap();
    let npy_bytes = std::fs::read(&input).unwrap();
    let broken_json = write("broken.json", &json[..json.len() / 2]);
    let truncated_npy = write("truncated.npy", &npy_bytes[..npy_bytes.len() - 8]);
    let not_npy = write("text.npy", b"hello");
    let x = npy::read(&input).unwrap();
    let wrong_shape = dir.join("wrong_shape.npy");
    npy::write(&wrong_shape, &bitgrad::HostTensor::f32([3, 36], x.as_f32().unwrap().to_vec()).unwrap()).unwrap();
    // bitgrad writes no NaN, so the file is patched: element 5 of the data at the end.
    let mut nan = npy::to_bytes(&x).unwrap();
    let at = nan.len() - 4 * (x.shape().numel() - 5);
    nan[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let with_nan = write("nan.npy", &nan);
    let mut f64_bytes = npy_bytes.clone();
    let at = f64_bytes.windows(3).position(|w| w == b"<f4").unwrap();
    f64_bytes[at + 2] = b'8';
    let doubles = write("doubles.npy", &f64_bytes);
    let mut partial = TensorFile::read(&weights).unwrap();
    partial.tensors.remove("quant_dense_1/kernel");
    let missing_weights = dir.join("missing.safetensors");
    partial.write(&missing_weights).unwrap();
    let truncated_weights = write("truncated.safetensors", &std::fs::read(&weights).unwrap()[..100]);
    let cases: Vec<(PathBuf, PathBuf, PathBuf, &str)> = vec![
        (broken_json.clone(), weights.clone(), input.clone(), "not JSON"),
        (dir.join("absent.json"), weights.clone(), input.clone(), "absent.json"),
        (model.clone(), weights.clone(), truncated_npy, "needs 432 bytes of data"),
        (model.clone(), weights.clone(), not_npy, "not a .npy file"),
        (model.clone(), weights.clone(), wrong_shape.clone(), "has shape [3, 36]; the model's input `input` takes [batch, 6, 6, 1]"),
        (model.clone(), weights.clone(), with_nan, "has NaN at element 5"),
        (model.clone(), weights.clone(), doubles, "is not little-endian float32"),
        (model.clone(), missing_weights, input.clone(), "missing tensors: quant_dense_1/kernel"),
        (model.clone(), truncated_weights, input.clone(), "not a safetensors file"),
    ];
    let out = dir.join("y.npy");
    for (m, w, x, want) in cases {
        let (ok, stdout, err) = run(&m, &w, &x, &out, "cpu");
        assert!(!ok && stdout.is_empty(), "{want}: succeeded");
        assert!(err.starts_with("error: ") && err.trim_end().lines().count() == 1 && err.contains(want), "want `{want}`: {err}");
        assert!(!out.exists(), "{want}: an output file was left");
    }
    // A gradient request with an upstream of the wrong shape names it, too.
    let g = dir.join("g.safetensors");
    let (ok, _, err) = grad(&model, &weights, &input, &wrong_shape, &g, "cpu");
    assert!(!ok && err.contains("upstream") && err.contains("[3, 36]") && !g.exists(), "{err}");
    let leftovers: Vec<_> =
        std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".tmp")).collect();
    assert!(leftovers.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn export_writes_a_packed_model_that_run_runs() {
    let dir = scratch("export");
    for name in KERAS_MODELS {
        let data = TensorFile::read(&keras_fixture(&format!("{name}.data.safetensors"))).unwrap();
        let (model, weights) = (keras_fixture(&format!("{name}.json")), keras_fixture(&format!("{name}.safetensors")));
        let packed = dir.join(format!("{name}.packed.safetensors"));
        let (ok, out, err) = bitgrad(&["export", s(&model), "--weights", s(&weights), "--output", s(&packed)]);
        assert!(ok && out.starts_with("packed ") && out.contains("files: "), "{name} export: {err}{out}");
        for device in devices() {
            let y = dir.join(format!("{name}-{device}.npy"));
            let input = keras_fixture(&format!("{name}.input.npy"));
            let (ok, _, err) = bitgrad(&["run", s(&packed), "--input", s(&input), "--output", s(&y), "--device", device]);
            assert!(ok, "{name} run packed on {device}: {err}");
            let got = npy::read(&y).unwrap();
            assert_eq!(got.shape(), data.tensors["output"].shape());
            // Folded BatchNormalization reorders a few f32 operations: 2e-4 of the scale.
            let (got, want) = (got.as_f32().unwrap(), data.tensors["output"].as_f32().unwrap());
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
            for (i, (a, e)) in got.iter().zip(want).enumerate() {
                assert!((a - e).abs() <= 2e-4 * scale, "{name} packed on {device}[{i}]: {a} vs Larq's {e}");
            }
        }
    }
    // Bad input: one line naming the problem, no output file.
    let (model, weights, input) =
        (keras_fixture("tutorial_cnn.json"), keras_fixture("tutorial_cnn.safetensors"), keras_fixture("tutorial_cnn.input.npy"));
    let packed = dir.join("tutorial_cnn.packed.safetensors");
    let other_weights = keras_fixture("guide_mlp.safetensors");
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &std::fs::read(&packed).unwrap()[..200]).unwrap();
    let y = dir.join("y.npy");
    let out = dir.join("out.safetensors");
    let cases: Vec<(Vec<&str>, &str, &Path)> = vec![
        (vec!["export", s(&model), "--weights", s(&other_weights), "--output", s(&out)], "missing tensors", &out),
        (vec!["run", s(&packed), "--weights", s(&weights), "--input", s(&input), "--output", s(&y)], "drop --weights", &y),
        (vec!["run", s(&weights), "--input", s(&input), "--output", s(&y)], "not a packed export", &y),
        (vec!["run", s(&truncated), "--input", s(&input), "--output", s(&y)], "not a safetensors file", &y),
        (vec!["run", s(&model), "--input", s(&input), "--output", s(&y)], "give its weights with --weights", &y),
        (
            vec!["grad", s(&packed), "--input", s(&input), "--upstream", s(&input), "--output", s(&out)],
            "a packed export runs inference only",
            &out,
        ),
    ];
    for (args, want, output) in cases {
        let (ok, stdout, err) = bitgrad(&args);
        assert!(!ok && stdout.is_empty(), "{want}: succeeded");
        assert!(err.starts_with("error: ") && err.trim_end().lines().count() == 1 && err.contains(want), "want `{want}`: {err}");
        assert!(!output.exists(), "{want}: an output file was left");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The kernel tuner times the GEMM variants of a step once, caches the choices on disk (one
/// section per adapter, driver and version), reuses them, can be listed, cleared and turned off,
/// rewrites a damaged cache, and names a bad `BITGRAD_TUNE`.
#[test]
fn kernel_choices_are_timed_once_cached_listed_and_cleared() {
    if common::gpu().is_none() {
        return;
    }
    let dir = common::scratch("tune");
    let cache = dir.join("tune.json");
    let d = dir.to_str().unwrap();
    let bench = |env: &[(&str, &str)]| {
        let json = dir.join("bench.json");
        let _ = std::fs::remove_file(&json);
        let args = ["bench", "--train", "--model", "mlp", "--steps", "1", "--batch-size", "8", "--json", json.to_str().unwrap()];
        let (ok, out, err) = common::bitgrad_with(&args, &[&[("BITGRAD_CACHE_DIR", d)], env].concat());
        assert!(ok, "{out}\n{err}");
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        report["tuning"].as_array().unwrap().iter().map(|r| r["how"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let hows = bench(&[]);
    assert!(!hows.is_empty() && hows.iter().all(|h| h == "timed quick"), "{hows:?}");
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(text.contains("gemm signs 8x512x784 nn batch 1") && text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    // A second process reads the choices instead of timing again.
    assert!(bench(&[]).iter().all(|h| h == "cache"));
    let (ok, listed, _) = common::bitgrad_with(&["tune"], &[("BITGRAD_CACHE_DIR", d)]);
    assert!(ok && listed.contains("gemm signs 8x512x784 nn batch 1") && listed.contains("gemm::"), "{listed}");
    // Full mode times again; off times nothing and writes nothing.
    assert!(bench(&[("BITGRAD_TUNE", "full")]).iter().all(|h| h == "timed full"));
    let (ok, cleared, _) = common::bitgrad_with(&["tune", "--clear"], &[("BITGRAD_CACHE_DIR", d)]);
    assert!(ok && cleared.contains("removed") && !cache.exists(), "{cleared}");
    assert!(bench(&[("BITGRAD_TUNE", "off")]).iter().all(|h| h == "default"));
    assert!(!cache.exists(), "mode off writes no cache");
    // A damaged cache is reported and replaced by a valid one.
    std::fs::write(&cache, "{ not json").unwrap();
    assert!(bench(&[]).iter().all(|h| h == "timed quick"));
    serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&cache).unwrap()).expect("rewritten cache is valid JSON");
    let (ok, _, err) =
        common::bitgrad_with(&["bench", "--train", "--steps", "1"], &[("BITGRAD_CACHE_DIR", d), ("BITGRAD_TUNE", "fastest")]);
    assert!(!ok && err.contains("BITGRAD_TUNE") && err.contains("fastest"), "{err}");
}

/// Every Larq Zoo architecture imports through the command line (Lambda layers, TFOpLambda,
/// custom functions and the BinaryDenseNet class included) and prints Larq's summary.
#[test]
fn larq_zoo_models_summarize_from_the_command_line() {
    let zoo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zoo");
    for name in common::ZOO {
        let (ok, out, err) = bitgrad(&["summary", s(&zoo.join(format!("{name}.json")))]);
        assert!(ok, "{name}: {err}");
        assert_eq!(out, std::fs::read_to_string(zoo.join(format!("{name}.summary.txt"))).unwrap(), "{name}");
    }
}
