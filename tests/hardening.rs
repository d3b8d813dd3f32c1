//! Bad input of every kind gives a named error: never a panic, never a silently wrong result,
//! never a lost or overwritten file. Each test here reproduces a case found by probing the
//! readers and the command line (issue 17), and the last ones mutate the committed fixtures with
//! a seeded generator so that every reader keeps answering `Ok` or `Err`.

mod common;

use common::{bitgrad, keras_fixture, scratch};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bitgrad::io::keras::model_from_json;
use bitgrad::io::safetensors::TensorFile;
use bitgrad::io::{npy, packed::PackedModel};
use bitgrad::layers::Mode;
use bitgrad::models::Model;
use bitgrad::train::data::Idx;
use bitgrad::HostTensor;
use serde_json::{json, Value};

/// A failed command: one `error:` line containing every one of `want`, and no panic.
fn refused(args: &[&str], want: &[&str]) -> String {
    let (ok, _, err) = bitgrad(args);
    assert!(!ok, "{args:?} succeeded; stderr: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let line = err.lines().rev().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{args:?}: no error line in {err}"));
    for w in want {
        assert!(line.contains(w), "{args:?}: `{w}` not in: {line}");
    }
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(keras_fixture(&format!("{name}.json"))).unwrap()).unwrap()
}

/// The config of the layer called `layer` in a model's JSON.
fn config_of<'a>(model: &'a mut Value, layer: &str) -> &'a mut Value {
    let layers = model["config"]["layers"].as_array_mut().unwrap();
    let l = layers.iter_mut().find(|l| l["config"]["name"] == layer).unwrap_or_else(|| panic!("no layer {layer}"));
    &mut l["config"]
}

/// Parses and builds a model JSON: the error text, or `None` when it built.
fn build_error(v: &Value) -> Option<String> {
    match model_from_json("m.json", &v.to_string()) {
        Err(e) => Some(e.to_string()),
        Ok(m) => m.build(2, Mode::Inference).err().map(|e| e.to_string()),
    }
}

/// A small MNIST-format data set (8 training and 4 test images of 28x28) in `dir`, with the
/// given test labels.
fn tiny_mnist(dir: &Path, test_labels: &[u8]) {
    let images = |n: usize| Idx { dims: vec![n, 28, 28], data: (0..n * 784).map(|i| (i * 7 % 256) as u8).collect() };
    let labels = |v: Vec<u8>| Idx { dims: vec![v.len()], data: v };
    std::fs::write(dir.join("train-images-idx3-ubyte"), images(8).to_bytes()).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels((0..8).collect()).to_bytes()).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), images(test_labels.len()).to_bytes()).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels(test_labels.to_vec()).to_bytes()).unwrap();
}

fn train_args<'a>(data: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["train", "--device", "cpu", "--model", "mlp", "--epochs", "1", "--batch-size", "4", "--data", s(data)];
    a.extend_from_slice(extra);
    a
}

/// The files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    v.sort();
    v
}

// 1. Panics reachable from a file or an argument.

#[test]
fn a_layer_name_of_65536_characters_is_summarized() {
    let mut m = fixture_json("guide_mlp");
    let long = "w".repeat(70_000);
    config_of(&mut m, "quant_dense")["name"] = json!(long);
    let model = model_from_json("long.json", &m.to_string()).unwrap();
    let table = model.build(1, Mode::Inference).unwrap().summary().table();
    assert!(table.contains(&long));
    let dir = scratch("long");
    let path = dir.join("long.json");
    std::fs::write(&path, m.to_string()).unwrap();
    let (ok, out, err) = bitgrad(&["summary", s(&path)]);
    assert!(ok && out.contains(&long), "{err}");
}

#[test]
fn a_functional_model_without_outputs_or_inputs_is_refused_at_import() {
    for field in ["output_layers", "input_layers"] {
        let mut m = fixture_json("shortcut_functional");
        m["config"][field] = json!([]);
        let e = model_from_json("m.json", &m.to_string()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(field) && e.contains("empty"), "{field}: {e}");
    }
    // A model defined in Rust that returns nothing is refused when built.
    let f = bitgrad::models::Functional::new("none", &[("x", &[3usize][..])], |_, _| Ok(vec![]));
    let e = f.build(1, Mode::Inference).err().unwrap().to_string();
    assert!(e.contains("no outputs"), "{e}");
}

#[test]
fn absurd_command_line_numbers_are_named_errors() {
    let dir = scratch("args");
    tiny_mnist(&dir, &[0, 1, 2, 3]);
    let mut a = train_args(&dir, &[]);
    a[8] = "0";
    refused(&a, &["--batch-size"]);
    let mut a = train_args(&dir, &[]);
    a[6] = "0";
    refused(&a, &["--epochs"]);
    refused(&["bench", "--device", "cpu", "--min-time", "1e300"], &["--min-time"]);
    refused(&["bench", "--device", "cpu", "--min-time=-1"], &["--min-time"]);
}

#[test]
fn overflowing_sizes_in_files_are_named_errors() {
    // .npy: the element count fits a usize, its byte count does not.
    let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }".to_string();
    header.push_str(&" ".repeat(117 - header.len()));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    let e = npy::from_bytes("big.npy", &bytes).unwrap_err().to_string();
    assert!(e.contains("too large"), "{e}");

    // Reshape: a target whose product overflows.
    let mut m = fixture_json("upsampling");
    config_of(&mut m, "reshape")["target_shape"] = json!([4294967295u64, 4294967295u64, 4294967295u64]);
    let e = build_error(&m).unwrap();
    assert!(e.contains("reshape") && e.contains("target_shape"), "{e}");

    // ZeroPadding, ConvTranspose strides, dilation: beyond u32, refused at import, naming the
    // layer and the field.
    let cases: [(&str, &str, &str, Value); 5] = [
        ("upsampling", "zero_padding2d", "padding", json!([[9223372036854775808u64, 0], [0, 1]])),
        ("upsampling", "zero_padding2d", "padding", json!([[4294967296u64, 0], [0, 1]])),
        ("upsampling", "quant_conv2d_transpose", "strides", json!([4611686018427387904u64, 1])),
        ("tutorial_cnn", "quant_conv2d", "dilation_rate", json!([9223372036854775808u64, 1])),
        ("upsampling", "quant_locally_connected2d", "implementation", json!(1099511627777u64)),
    ];
    for (model, layer, field, value) in cases {
        let mut m = fixture_json(model);
        config_of(&mut m, layer)[field] = value.clone();
        let e = build_error(&m).unwrap_or_else(|| panic!("{layer}.{field} = {value} built"));
        assert!(e.contains(&format!("`{layer}`")) && e.contains(&format!("`{field}`")), "{field}: {e}");
    }

    // Within u32 but still absurd: checked arithmetic and the element limit refuse it.
    let mut m = fixture_json("tutorial_cnn");
    config_of(&mut m, "quant_conv2d")["dilation_rate"] = json!([4294967295u64, 4294967295u64]);
    let e = build_error(&m).unwrap();
    assert!(e.contains("quant_conv2d"), "{e}");
    let mut m = fixture_json("upsampling");
    config_of(&mut m, "quant_conv2d_transpose")["strides"] = json!([4294967295u64, 4294967295u64]);
    let e = build_error(&m).unwrap();
    assert!(e.contains("quant_conv2d_transpose"), "{e}");
}

#[test]
fn writing_to_a_closed_pipe_ends_quietly() {
    let mut m = fixture_json("guide_mlp");
    config_of(&mut m, "quant_dense")["name"] = json!("n".repeat(200_000));
    let dir = scratch("pipe");
    let path = dir.join("wide.json");
    std::fs::write(&path, m.to_string()).unwrap();
    for args in [vec!["summary", s(&path), "--json"], vec!["summary", s(&path)]] {
        let mut child =
            Command::new(env!("CARGO_BIN_EXE_bitgrad")).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

// 2. Silent wrong results.

#[test]
fn a_dilation_beyond_u32_does_not_wrap_into_a_model_that_runs() {
    let mut m = fixture_json("tutorial_cnn");
    config_of(&mut m, "quant_conv2d")["dilation_rate"] = json!([9223372036854775808u64, 9223372036854775808u64]);
    assert!(build_error(&m).is_some());
}

#[test]
fn an_activation_layer_needs_its_activation() {
    let mut m = fixture_json("tutorial_cnn");
    config_of(&mut m, "activation").as_object_mut().unwrap().remove("activation");
    let e = build_error(&m).unwrap();
    assert!(e.contains("`activation`") && e.contains("required"), "{e}");
}

/// The shortcut_functional fixture with other `output_layers`, written into `dir`: (model, its
/// weights, its input).
fn with_outputs(dir: &Path, outputs: Value) -> (PathBuf, PathBuf, PathBuf) {
    let mut m = fixture_json("shortcut_functional");
    m["config"]["output_layers"] = outputs;
    let model = dir.join("outputs.json");
    std::fs::write(&model, m.to_string()).unwrap();
    (model, keras_fixture("shortcut_functional.safetensors"), keras_fixture("shortcut_functional.input.npy"))
}

#[test]
fn run_writes_every_output_of_a_model_with_two() {
    let dir = scratch("outputs");
    let (model, weights, input) = with_outputs(&dir, json!([["dense", 0, 0], ["global_average_pooling2d", 0, 0]]));
    let base = ["run", s(&model), "--weights", s(&weights), "--input", s(&input), "--device", "cpu", "--output"];
    let npy_out = dir.join("y.npy");
    let mut a = base.to_vec();
    a.push(s(&npy_out));
    refused(&a, &["2 outputs", "`dense`", "`global_average_pooling2d`", ".safetensors"]);
    assert!(!npy_out.exists());
    let st_out = dir.join("y.safetensors");
    let mut a = base.to_vec();
    a.push(s(&st_out));
    let (ok, _, err) = bitgrad(&a);
    assert!(ok, "{err}");
    let got = TensorFile::read(&st_out).unwrap();
    assert_eq!(got.tensors.keys().collect::<Vec<_>>(), ["dense", "global_average_pooling2d"]);
    let want = TensorFile::read(&keras_fixture("shortcut_functional.data.safetensors")).unwrap();
    let (a, b) = (got.tensors["dense"].as_f32().unwrap(), want.tensors["output"].as_f32().unwrap());
    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4), "{a:?} vs Larq's {b:?}");
    assert_eq!(got.tensors["global_average_pooling2d"].shape().dims()[0], want.tensors["output"].shape().dims()[0]);
    // Gradients need one output.
    let g = dir.join("g.safetensors");
    let up = keras_fixture("shortcut_functional.upstream.npy");
    let args =
        ["grad", s(&model), "--weights", s(&weights), "--input", s(&input), "--upstream", s(&up), "--output", s(&g), "--device", "cpu"];
    refused(&args, &["2 outputs"]);
}

/// `bytes` with every occurrence of the f32 `from` (little-endian) replaced by `to`: bitgrad
/// writes no non-finite value, so tests make such files by patching finite ones.
fn patched(bytes: Vec<u8>, from: f32, to: f32) -> Vec<u8> {
    let (f, t) = (from.to_le_bytes(), to.to_le_bytes());
    let mut b = bytes;
    let hits: Vec<usize> = (0..b.len().saturating_sub(3)).filter(|&i| b[i..i + 4] == f).collect();
    assert!(!hits.is_empty(), "no {from} to patch");
    for i in hits {
        b[i..i + 4].copy_from_slice(&t);
    }
    b
}

/// `t` with element `at` set to the marker value `patched` looks for.
fn marked(t: &HostTensor, at: usize) -> HostTensor {
    let mut v = t.as_f32().unwrap().to_vec();
    v[at] = MARK;
    HostTensor::f32(t.shape().dims().to_vec(), v).unwrap()
}

const MARK: f32 = 12345.678;

#[test]
fn non_finite_values_are_refused_by_every_reader_and_never_written() {
    let dir = scratch("finite");
    let (model, weights, input, up) = (
        keras_fixture("guide_mlp.json"),
        keras_fixture("guide_mlp.safetensors"),
        keras_fixture("guide_mlp.input.npy"),
        keras_fixture("guide_mlp.upstream.npy"),
    );
    let mut w = TensorFile::read(&weights).unwrap();
    let kernel = marked(&w.tensors["quant_dense/kernel"], 3);
    w.tensors.insert("quant_dense/kernel".into(), kernel);
    let bad_weights = dir.join("inf.safetensors");
    std::fs::write(&bad_weights, patched(w.to_bytes().unwrap(), MARK, f32::INFINITY)).unwrap();
    let out = dir.join("y.npy");
    refused(
        &["run", s(&model), "--weights", s(&bad_weights), "--input", s(&input), "--output", s(&out), "--device", "cpu"],
        &["inf.safetensors", "`quant_dense/kernel`", "inf at element 3"],
    );
    let x = marked(&npy::read(&up).unwrap(), 1);
    let bad_up = dir.join("nan.npy");
    std::fs::write(&bad_up, patched(npy::to_bytes(&x).unwrap(), MARK, f32::NAN)).unwrap();
    let g = dir.join("g.safetensors");
    let grad =
        ["grad", s(&model), "--weights", s(&weights), "--input", s(&input), "--upstream", s(&bad_up), "--output", s(&g), "--device", "cpu"];
    refused(&grad, &["nan.npy", "NaN at element 1"]);
    let inf_in = dir.join("inf_in.npy");
    std::fs::write(&inf_in, patched(npy::to_bytes(&x).unwrap(), MARK, f32::NEG_INFINITY)).unwrap();
    assert!(npy::read(&inf_in).unwrap_err().to_string().contains("-inf at element 1"));
    // A trainer state is a safetensors file: the same reader, the same rule.
    let mut state = TensorFile::default();
    state.tensors.insert("w".into(), HostTensor::f32([2], vec![0.0, MARK]).unwrap());
    let e = TensorFile::from_bytes("state.safetensors", &patched(state.to_bytes().unwrap(), MARK, f32::NAN)).unwrap_err().to_string();
    assert!(e.contains("state.safetensors") && e.contains("`w`") && e.contains("NaN"), "{e}");
    // What would not read back is not written (a diverged run's state, an infinite output).
    state.tensors.insert("w".into(), HostTensor::f32([2], vec![0.0, f32::NAN]).unwrap());
    let e = state.write(&dir.join("diverged.safetensors")).unwrap_err().to_string();
    assert!(e.contains("`w`") && e.contains("NaN") && !dir.join("diverged.safetensors").exists(), "{e}");
    let e = npy::to_bytes(&HostTensor::f32([2], vec![f32::INFINITY, 0.0]).unwrap()).unwrap_err().to_string();
    assert!(e.contains("inf at element 0"), "{e}");
}

// 3. Lost data.

#[test]
fn a_checkpoint_path_that_would_overwrite_is_refused_before_training() {
    let dir = scratch("checkpoint");
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    tiny_mnist(&data, &[0, 1, 2, 3]);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let (plain, json, slash, history) =
        (out.join("ck"), out.join("ck.json"), format!("{}/", out.join("sub").display()), out.join("h.json"));
    for ck in [s(&plain), s(&json), slash.as_str()] {
        let err = refused(&train_args(&data, &["--checkpoint", ck]), &["--checkpoint"]);
        assert!(!err.contains("Epoch 1/1"), "{err}");
    }
    // The history may not be the checkpoint, nor its model JSON.
    let ck = out.join("ck.safetensors");
    let (ck_mlp, json_mlp) = (out.join("ck-mlp.safetensors"), out.join("ck-mlp.json"));
    refused(&train_args(&data, &["--checkpoint", s(&ck), "--history", s(&ck)]), &["--history", "--checkpoint"]);
    let hist_json = out.join("ck.json");
    refused(&train_args(&data, &["--checkpoint", s(&ck), "--history", s(&hist_json)]), &["--checkpoint", "--history"]);
    assert!(listing(&out).is_empty(), "{:?}", listing(&out));
    // Not in the library either.
    assert!(bitgrad::train::ModelCheckpoint::new(out.join("state.json")).check(1).is_err());
    // A good one writes all three files.
    let (ok, _, err) = bitgrad(&train_args(&data, &["--checkpoint", s(&ck), "--history", s(&history)]));
    assert!(ok, "{err}");
    assert_eq!(listing(&out), ["ck-mlp.json", "ck-mlp.safetensors", "h-mlp.json"]);
    assert!(TensorFile::read(&ck_mlp).is_ok() && model_from_json("j", &std::fs::read_to_string(&json_mlp).unwrap()).is_ok());
}

#[test]
fn no_command_writes_over_one_of_its_inputs() {
    let dir = scratch("collide");
    let copy = |name: &str| {
        let p = dir.join(name);
        std::fs::copy(keras_fixture(name), &p).unwrap();
        p
    };
    let (model, weights, input, up) =
        (copy("guide_mlp.json"), copy("guide_mlp.safetensors"), copy("guide_mlp.input.npy"), copy("guide_mlp.upstream.npy"));
    let before: Vec<Vec<u8>> = [&model, &weights, &input, &up].iter().map(|p| std::fs::read(p).unwrap()).collect();
    // The same file by another spelling is still the same file.
    let sneaky = dir.join(".").join("guide_mlp.safetensors");
    let cases: Vec<Vec<&str>> = vec![
        vec!["export", s(&model), "--weights", s(&weights), "--output", s(&weights)],
        vec!["export", s(&model), "--weights", s(&weights), "--output", s(&sneaky)],
        vec!["export", s(&model), "--weights", s(&weights), "--output", s(&model)],
        vec!["grad", s(&model), "--weights", s(&weights), "--input", s(&input), "--upstream", s(&up), "--output", s(&weights)],
        vec!["grad", s(&model), "--weights", s(&weights), "--input", s(&input), "--upstream", s(&up), "--output", s(&up)],
        vec!["run", s(&model), "--weights", s(&weights), "--input", s(&input), "--output", s(&input), "--device", "cpu"],
        vec!["run", s(&model), "--weights", s(&weights), "--input", s(&input), "--output", s(&model), "--device", "cpu"],
    ];
    for args in &cases {
        refused(args, &["--output", "overwrite"]);
    }
    let after: Vec<Vec<u8>> = [&model, &weights, &input, &up].iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(before == after, "an input changed");
    // A folder that does not exist is refused before any work.
    let nowhere = dir.join("absent").join("y.npy");
    refused(&["run", s(&model), "--weights", s(&weights), "--input", s(&input), "--output", s(&nowhere)], &["absent", "does not exist"]);
    let bench_json = dir.join("absent").join("b.json");
    let err = refused(&["bench", "--device", "cpu", "--min-time", "0", "--json", s(&bench_json)], &["--json"]);
    assert!(!err.contains("benchmarking"), "{err}");
}

#[test]
fn the_atomic_writer_creates_its_temporary_file_exclusively_and_cleans_up() {
    let dir = scratch("atomic");
    let target = dir.join("y.bin");
    // A planted link at the name the old writer used, and at a guess of the new pattern.
    let victim = dir.join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&victim, dir.join(format!(".y.bin.{}.tmp", std::process::id()))).unwrap();
    }
    bitgrad::io::write_atomically(&target, b"new").unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    // A temporary file left by a killed process (a pid that cannot run) goes with the next save;
    // other files stay.
    let stale = dir.join(".y.bin.4194305.abcdefabcdef.tmp");
    let other = dir.join(".z.bin.4194305.abcdefabcdef.tmp");
    // `.y.bin.5.<pid>...` is y.bin.5's, even though `5` could be read as a pid.
    let longer = dir.join(".y.bin.5.4194305.abcdefabcdef.tmp");
    for f in [&stale, &other, &longer] {
        std::fs::write(f, b"partial").unwrap();
    }
    bitgrad::io::write_atomically(&target, b"newer").unwrap();
    assert!(!stale.exists() && other.exists() && longer.exists());
    let mut left = listing(&dir);
    left.retain(|n| {
        n.starts_with(".y.bin.") && !n.starts_with(".y.bin.5.") && !n.starts_with(&format!(".y.bin.{}.tmp", std::process::id()))
    });
    assert!(left.is_empty(), "{left:?}");
    // A failed write (the target is a folder) leaves nothing behind.
    let folder = dir.join("folder");
    std::fs::create_dir(&folder).unwrap();
    assert!(bitgrad::io::write_atomically(&folder, b"x").is_err());
    let e = bitgrad::io::write_atomically(&dir.join("sub/"), b"x").unwrap_err().to_string();
    assert!(e.contains("names a directory"), "{e}");
    assert!(!dir.join("sub").exists());
    let temporaries: Vec<String> =
        listing(&dir).into_iter().filter(|n| n.ends_with(".tmp") && !n.contains("z.bin") && !n.contains("y.bin.5")).collect();
    assert!(temporaries.len() <= 1, "{temporaries:?}"); // only the planted link
}

// 4. Resources and late validation.

#[test]
fn a_compressed_idx_file_inflates_only_what_it_declares() {
    let mut raw = vec![0u8, 0, 8, 1, 0, 0, 0, 16];
    raw.extend(std::iter::repeat_n(7u8, 16 + 50_000_000));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 100_000);
    let e = Idx::parse(&bomb, "bomb.gz").unwrap_err().to_string();
    assert!(e.contains("data after the 16 bytes"), "{e}");
    let e = Idx::parse(&raw, "raw").unwrap_err().to_string();
    assert!(e.contains("data after the 16 bytes"), "{e}");
}

#[test]
fn devices_and_pipes_are_not_read_as_files() {
    #[cfg(unix)]
    {
        let zero = Path::new("/dev/zero");
        for e in [
            Idx::read(zero).unwrap_err().to_string(),
            npy::read(zero).unwrap_err().to_string(),
            TensorFile::read(zero).unwrap_err().to_string(),
            bitgrad::io::keras::read_model(zero).err().unwrap().to_string(),
        ] {
            assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
        }
        let dir = scratch("fifo");
        let fifo = dir.join("model.json");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let e = bitgrad::io::keras::read_model(&fifo).err().unwrap().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}

#[test]
fn a_run_is_validated_before_its_first_step() {
    let dir = scratch("late");
    tiny_mnist(&dir, &[0, 1, 12, 3]);
    let err = refused(&train_args(&dir, &[]), &["the test set", "label 12 of sample 2"]);
    assert!(!err.contains("Epoch 1/1"), "{err}");
    let ck = dir.join("absent").join("ck.safetensors");
    let err = refused(&train_args(&dir, &["--checkpoint", s(&ck)]), &["does not exist"]);
    assert!(!err.contains("Epoch 1/1"), "{err}");
    let h = dir.join("absent").join("h.csv");
    let err = refused(&train_args(&dir, &["--history", s(&h)]), &["--history", "does not exist"]);
    assert!(!err.contains("Epoch 1/1"), "{err}");
}

/// A GPU device that binds at most `bytes` per buffer: a small adapter, on any adapter.
fn small_gpu(bytes: u64) -> Option<bitgrad::Device> {
    common::gpu()?;
    Some(bitgrad::Device::gpu_with(&bitgrad::GpuOptions { max_binding_bytes: Some(bytes), ..Default::default() }).unwrap())
}

#[test]
fn a_training_batch_over_the_adapter_limit_fails_before_training_naming_the_layer() {
    use bitgrad::layers::{Activation, QuantDense, QuantLayer};
    use bitgrad::train::{optimizers::Adam, FitOptions, Loss, Metric, Trainer};
    let Some(d) = small_gpu(4096) else { return };
    // Small input and weights; the wide layer's output for 256 samples (64 KiB) does not fit.
    let model = || {
        bitgrad::models::Sequential::new()
            .named("small")
            .input_shape(&[2])
            .add(QuantDense::new(64).named("wide"))
            .add(QuantDense::new(4).named("out").activation(Activation::Softmax))
    };
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let mut t = Trainer::compile(model(), loss, std::sync::Arc::new(Adam::new(1e-3)), &[Metric::Accuracy], &d).unwrap();
    let data = bitgrad::train::data::Dataset::new(&[2], common::uniform(3, 512, 1.0), (0..256).map(|i| i % 4).collect()).unwrap();
    let e = t.fit(&data, None, &FitOptions { epochs: 1, batch_size: 256, ..FitOptions::default() }).unwrap_err().to_string();
    assert!(e.contains("batch_size") && e.contains("256 samples") && e.contains("layer `wide`"), "{e}");
    eprintln!("the refusal: {e}");
    assert_eq!(t.epochs_done(), 0);
    // Inference on the same device splits its batch, and gives what one batch gives on the CPU.
    let cpu = bitgrad::Device::cpu();
    let mut c = Trainer::compile(model(), loss, std::sync::Arc::new(Adam::new(1e-3)), &[Metric::Accuracy], &cpu).unwrap();
    let (on_gpu, on_cpu) = (t.predict(&data, 256).unwrap(), c.predict(&data, 256).unwrap());
    assert_eq!(on_gpu.shape(), on_cpu.shape());
    let (on_gpu, on_cpu) = (on_gpu.as_f32().unwrap(), on_cpu.as_f32().unwrap());
    assert!(on_gpu.iter().zip(on_cpu).all(|(a, b)| (a - b).abs() <= 1e-5), "split inference differs");
    let (m, mc) = (t.evaluate(&data, 256).unwrap(), c.evaluate(&data, 256).unwrap());
    assert!((m["accuracy"] - mc["accuracy"]).abs() < 1e-9 && (m["loss"] - mc["loss"]).abs() < 1e-5, "{m:?} vs {mc:?}");
}

#[test]
fn run_splits_a_batch_over_the_adapter_limit() {
    let Some(d) = small_gpu(16 * 1024) else { return };
    let model = bitgrad::io::keras::read_model(&keras_fixture("guide_mlp.json")).unwrap();
    let weights = TensorFile::read(&keras_fixture("guide_mlp.safetensors")).unwrap();
    let x = npy::read(&keras_fixture("guide_mlp.input.npy")).unwrap();
    let per: usize = x.shape().dims()[1..].iter().product();
    let rows = 512;
    let big: Vec<f32> = (0..rows).flat_map(|r| x.as_f32().unwrap()[(r % x.shape().dims()[0]) * per..][..per].to_vec()).collect();
    let mut dims = x.shape().dims().to_vec();
    dims[0] = rows;
    let big = HostTensor::f32(dims, big).unwrap();
    let split = bitgrad::io::execute::infer_with(&model, &d, &weights, "w", &big).unwrap();
    let whole = bitgrad::io::execute::infer_with(&model, &bitgrad::Device::cpu(), &weights, "w", &big).unwrap();
    assert_eq!(split.shape(), whole.shape());
    assert!(split.as_f32().unwrap().iter().zip(whole.as_f32().unwrap()).all(|(a, b)| (a - b).abs() <= 1e-4));
}

// 5. Every reader answers mutated fixtures with Ok or Err.

/// A seeded generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that find overflow, truncation and sign bugs.
const EDGES: [u64; 12] = [0, 1, 2, 3, 255, 65_536, 2_147_483_648, 4_294_967_295, 4_294_967_296, 1 << 40, 1 << 62, u64::MAX];

/// `bytes` with a few byte-level mutations: flips, overwrites with edge values, truncation,
/// duplication and deletion of a span.
fn mutate_bytes(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            b.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(b.len());
        match rng.below(6) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.next() as u8,
            2 => b.truncate(at),
            3 => {
                let v = EDGES[rng.below(EDGES.len())].to_le_bytes();
                for (k, byte) in v.iter().take(b.len() - at).enumerate() {
                    b[at + k] = *byte;
                }
            }
            4 => {
                let end = (at + rng.below(64)).min(b.len());
                let span = b[at..end].to_vec();
                b.splice(at..at, span);
            }
            _ => {
                let end = (at + rng.below(64)).min(b.len());
                b.drain(at..end);
            }
        }
    }
    b
}

/// `v` with one JSON-level mutation somewhere: a number replaced by an edge value, a value
/// replaced by another kind, a field or list item removed, a list emptied.
fn mutate_json(v: &mut Value, rng: &mut Rng) {
    let mut nodes = 0usize;
    count(v, &mut nodes);
    let mut target = rng.below(nodes);
    visit(v, &mut target, rng);

    fn count(v: &Value, n: &mut usize) {
        *n += 1;
        match v {
            Value::Array(a) => a.iter().for_each(|x| count(x, n)),
            Value::Object(o) => o.values().for_each(|x| count(x, n)),
            _ => {}
        }
    }
    fn visit(v: &mut Value, target: &mut usize, rng: &mut Rng) -> bool {
        if *target == 0 {
            *v = match rng.below(8) {
                0..=2 => json!(EDGES[rng.below(EDGES.len())]),
                3 => json!(-(rng.below(1 << 20) as i64) - 1),
                4 => json!(1e300),
                5 => Value::Null,
                6 => json!([]),
                _ => match v {
                    Value::Array(a) if !a.is_empty() => {
                        let i = rng.below(a.len());
                        a.remove(i);
                        return true;
                    }
                    Value::Object(o) if !o.is_empty() => {
                        let k = o.keys().nth(rng.below(o.len())).unwrap().clone();
                        o.remove(&k);
                        return true;
                    }
                    _ => json!("x"),
                },
            };
            return true;
        }
        *target -= 1;
        match v {
            Value::Array(a) => a.iter_mut().any(|x| visit(x, target, rng)),
            Value::Object(o) => o.values_mut().any(|x| visit(x, target, rng)),
            _ => false,
        }
    }
}

/// Runs `check` on `cases` mutations of each of `seeds` and reports how many were accepted; a
/// panic inside fails the test with the case that caused it.
fn survive<T>(
    what: &str,
    seeds: &[T],
    cases: usize,
    mut mutate: impl FnMut(&T, &mut Rng) -> Vec<u8>,
    mut check: impl FnMut(&[u8]) -> bool,
) {
    let mut rng = Rng(0x5eed ^ what.len() as u64);
    let mut accepted = 0;
    for i in 0..cases {
        let bytes = mutate(&seeds[i % seeds.len()], &mut rng);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes))) {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => {
                let path = std::env::temp_dir().join(format!("bitgrad-panic-{what}-{i}.bin"));
                std::fs::write(&path, &bytes).unwrap();
                panic!("{what}: case {i} panicked; its input is in {}", path.display());
            }
        }
    }
    eprintln!("{what}: {cases} mutated inputs, {accepted} accepted, the rest refused with an error");
}

fn fixture_bytes(suffix: &str) -> Vec<Vec<u8>> {
    common::KERAS_MODELS.iter().map(|m| std::fs::read(keras_fixture(&format!("{m}{suffix}"))).unwrap()).collect()
}

#[test]
fn mutated_keras_models_parse_build_and_summarize_or_fail_cleanly() {
    let seeds: Vec<Value> = fixture_bytes(".json").iter().map(|b| serde_json::from_slice(b).unwrap()).collect();
    survive(
        "keras_json",
        &seeds,
        3000,
        |v, rng| {
            let mut v = v.clone();
            for _ in 0..1 + rng.below(2) {
                mutate_json(&mut v, rng);
            }
            v.to_string().into_bytes()
        },
        |bytes| {
            let Ok(m) = model_from_json("m.json", std::str::from_utf8(bytes).unwrap()) else { return false };
            match m.build(2, Mode::Inference) {
                Ok(built) => {
                    let summary = built.summary();
                    let _ = (summary.table(), summary.to_json());
                    m.build(2, Mode::Training).is_ok()
                }
                Err(_) => false,
            }
        },
    );
    let texts = fixture_bytes(".json");
    survive(
        "keras_json_bytes",
        &texts,
        1500,
        |b, rng| mutate_bytes(b, rng),
        |bytes| {
            let Ok(text) = std::str::from_utf8(bytes) else { return false };
            model_from_json("m.json", text).is_ok_and(|m| m.build(1, Mode::Inference).is_ok())
        },
    );
}

#[test]
fn mutated_tensor_files_read_or_fail_cleanly() {
    let weights = fixture_bytes(".safetensors");
    survive("safetensors", &weights, 3000, |b, rng| mutate_bytes(b, rng), |bytes| TensorFile::from_bytes("w", bytes).is_ok());
    let arrays = fixture_bytes(".input.npy");
    survive("npy", &arrays, 3000, |b, rng| mutate_bytes(b, rng), |bytes| npy::from_bytes("x.npy", bytes).is_ok());
}

#[test]
fn mutated_idx_files_read_or_fail_cleanly() {
    let raw = Idx { dims: vec![3, 5, 4], data: (0..60).collect() }.to_bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    let seeds = vec![raw, gz.finish().unwrap(), Idx { dims: vec![7], data: vec![1; 7] }.to_bytes()];
    survive("idx", &seeds, 4000, |b, rng| mutate_bytes(b, rng), |bytes| Idx::parse(bytes, "f.idx").is_ok());
}

#[test]
fn mutated_packed_exports_load_or_fail_cleanly() {
    let seeds: Vec<Vec<u8>> = ["guide_mlp", "tutorial_cnn", "shortcut_functional"]
        .iter()
        .map(|m| {
            let model = bitgrad::io::keras::read_model(&keras_fixture(&format!("{m}.json"))).unwrap();
            let w = TensorFile::read(&keras_fixture(&format!("{m}.safetensors"))).unwrap();
            bitgrad::io::packed::export(&model, &w, "w").unwrap().0.to_bytes().unwrap()
        })
        .collect();
    survive(
        "packed",
        &seeds,
        1500,
        |b, rng| mutate_bytes(b, rng),
        |bytes| {
            let Ok(file) = TensorFile::from_bytes("p", bytes) else { return false };
            PackedModel::from_file("p", file).is_ok()
        },
    );
    // The model JSON inside the metadata, mutated as JSON: the loader refuses or builds.
    let files: Vec<TensorFile> = seeds.iter().map(|b| TensorFile::from_bytes("p", b).unwrap()).collect();
    let key = files[0].metadata.keys().find(|k| files[0].metadata[*k].starts_with('{')).unwrap().clone();
    survive(
        "packed_json",
        &files,
        1000,
        |f, rng| {
            let mut v: Value = serde_json::from_str(&f.metadata[&key]).unwrap();
            mutate_json(&mut v, rng);
            let mut f = f.clone();
            f.metadata.insert(key.clone(), v.to_string());
            f.to_bytes().unwrap()
        },
        |bytes| {
            let file = TensorFile::from_bytes("p", bytes).unwrap();
            PackedModel::from_file("p", file).is_ok_and(|p| bitgrad::io::packed::build_packed(&p.model, 1).is_ok())
        },
    );
}

/// A trainer of a 3-input dense layer of 2 logits on the CPU.
fn small_cpu_trainer() -> bitgrad::train::Trainer {
    use bitgrad::train::{optimizers::Adam, Loss, Metric, Trainer};
    let model = bitgrad::models::Sequential::new().named("small").input_shape(&[3]).add(bitgrad::layers::QuantDense::new(2).named("d"));
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    Trainer::compile(model, loss, std::sync::Arc::new(Adam::new(1e-3)), &[Metric::Accuracy], &bitgrad::Device::cpu()).unwrap()
}

#[test]
fn mutated_trainer_states_restore_or_fail_cleanly() {
    let mut t = small_cpu_trainer();
    let dir = scratch("state");
    let path = dir.join("state.safetensors");
    t.save_state(&path).unwrap();
    let seeds = vec![std::fs::read(&path).unwrap()];
    survive(
        "trainer_state",
        &seeds,
        1500,
        |b, rng| mutate_bytes(b, rng),
        |bytes| {
            std::fs::write(&path, bytes).unwrap();
            t.load_state(&path).is_ok()
        },
    );
}

#[test]
fn size_arithmetic_through_the_rust_api_is_checked() {
    use bitgrad::graph::{ConvGeometry, DataFormat, Padding};
    use bitgrad::{DType, Graph, Shape};
    let image = Shape::new([1, 8, 8, 1]);
    let huge = usize::MAX / 2 + 1;
    for (dilation, padding) in [([huge, 1], Padding::Valid), ([1, 1], Padding::Explicit(vec![(usize::MAX, 1), (0, 0)]))] {
        let e = ConvGeometry::new(&image, &[3, 3], &[1, 1], &dilation, &padding, DataFormat::ChannelsLast).unwrap_err().to_string();
        assert!(e.contains("overflows"), "{e}");
    }
    let e = ConvGeometry::new(&image, &[3, 3], &[huge, 1], &[1, 1], &Padding::Same, DataFormat::ChannelsLast);
    assert!(e.is_ok_and(|g| g.output == vec![1, 8]), "same padding with a huge stride");
    let mut g = Graph::new();
    let x = g.input("x", [2, 3], DType::F32).unwrap();
    let e = g.pad(x, &[(0, 0), (usize::MAX, 1)]).unwrap_err().to_string();
    assert!(e.contains("pad") && e.contains("overflows"), "{e}");
    assert!(g.slice(x, &[0, usize::MAX], [1, 2]).is_err());
    // A transposed convolution whose output size overflows, built from Rust.
    let mut t = bitgrad::layers::QuantConvTranspose::new(2, &[3, 3]).named("t");
    t.strides = vec![huge, huge];
    let m = bitgrad::models::Sequential::new().named("m").input_shape(&[4, 4, 1]).add(t);
    let e = m.build(1, Mode::Inference).err().unwrap().to_string();
    assert!(e.contains("`t`") && e.contains("overflows"), "{e}");
}

#[test]
fn a_second_gzip_member_after_an_idx_file_is_refused() {
    let raw = Idx { dims: vec![4], data: vec![1, 2, 3, 4] }.to_bytes();
    let gz = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, b).unwrap();
        e.finish().unwrap()
    };
    let mut two = gz(&raw);
    assert_eq!(Idx::parse(&two, "one.gz").unwrap().data, [1, 2, 3, 4]);
    two.extend(gz(b"more"));
    let e = Idx::parse(&two, "two.gz").unwrap_err().to_string();
    assert!(e.contains("data after the compressed IDX file"), "{e}");
}

#[test]
fn a_checkpoint_may_save_over_the_state_it_resumed_from_but_nothing_else_may() {
    let dir = scratch("resume");
    tiny_mnist(&dir, &[0, 1, 2, 3]);
    let ck = dir.join("ck.safetensors");
    let state = dir.join("ck-mlp.safetensors");
    let (ok, _, err) = bitgrad(&train_args(&dir, &["--checkpoint", s(&ck)]));
    assert!(ok, "{err}");
    let before = std::fs::read(&state).unwrap();
    let mut a = train_args(&dir, &["--checkpoint", s(&ck), "--resume", s(&state)]);
    a[6] = "2";
    let (ok, _, err) = bitgrad(&a);
    assert!(ok, "{err}");
    assert_ne!(std::fs::read(&state).unwrap(), before, "the second epoch's state replaced the first's");
    let history = dir.join("h.safetensors");
    let resumed = dir.join("h-mlp.safetensors");
    std::fs::copy(&state, &resumed).unwrap();
    let mut a = train_args(&dir, &["--history", s(&history), "--resume", s(&resumed)]);
    a[6] = "3";
    refused(&a, &["--history", "--resume"]);
}

#[test]
fn several_outputs_of_one_layer_get_distinct_names() {
    let dir = scratch("names");
    let (model, weights, input) = with_outputs(&dir, json!([["dense", 0, 0], ["dense", 0, 0]]));
    let out = dir.join("y.safetensors");
    let (ok, _, err) = bitgrad(&["run", s(&model), "--weights", s(&weights), "--input", s(&input), "--output", s(&out), "--device", "cpu"]);
    assert!(ok, "{err}");
    let got = TensorFile::read(&out).unwrap();
    assert_eq!(got.tensors.keys().collect::<Vec<_>>(), ["dense", "dense_1"]);
    assert_eq!(got.tensors["dense"], got.tensors["dense_1"]);
}

#[test]
fn what_the_callbacks_need_is_checked_before_training() {
    use bitgrad::train::{EarlyStopping, FitOptions, ModelCheckpoint};
    let mut t = small_cpu_trainer();
    let data = bitgrad::train::data::Dataset::new(&[3], common::uniform(1, 24, 1.0), vec![0, 1, 0, 1, 1, 0, 1, 0]).unwrap();
    let empty = bitgrad::train::data::Dataset::new(&[3], vec![], vec![]).unwrap();
    let e = t.fit(&data, Some(&empty), &FitOptions { epochs: 1, batch_size: 4, ..FitOptions::default() }).unwrap_err().to_string();
    assert!(e.contains("validation set has no samples"), "{e}");
    let es = EarlyStopping { monitor: "val_acc".into(), patience: 1, min_delta: 0.0 };
    let e = t.fit(&data, Some(&data), &FitOptions { epochs: 1, batch_size: 4, early_stopping: Some(es), ..FitOptions::default() });
    let e = e.unwrap_err().to_string();
    assert!(e.contains("val_acc") && e.contains("val_accuracy"), "{e}");
    let dir = scratch("monitor");
    let c = ModelCheckpoint { monitor: "val_los".into(), save_best_only: true, ..ModelCheckpoint::new(dir.join("c.safetensors")) };
    let e = t.fit(&data, Some(&data), &FitOptions { epochs: 1, batch_size: 4, checkpoint: Some(c), ..FitOptions::default() });
    assert!(e.unwrap_err().to_string().contains("val_los"));
    assert_eq!(t.epochs_done(), 0, "nothing trained");
    // A state without the model's JSON may take any name.
    let c = ModelCheckpoint { save_weights_only: true, ..ModelCheckpoint::new(dir.join("weights.bin")) };
    t.fit(&data, None, &FitOptions { epochs: 1, batch_size: 4, checkpoint: Some(c), ..FitOptions::default() }).unwrap();
    assert!(dir.join("weights.bin").exists());
}

#[test]
fn an_absurd_locally_connected_kernel_is_refused_before_its_index_map_is_built() {
    // Found by the keras_json fuzzer as a slow input: a 3 kB file whose implementation-2 kernel
    // would have 4e10 entries, on whose index map the build spent seconds before refusing it.
    let mut m = fixture_json("upsampling");
    config_of(&mut m, "zero_padding2d")["padding"] = json!([[1, 0], [0, 27771]]);
    config_of(&mut m, "quant_locally_connected2d")["implementation"] = json!(2);
    let e = build_error(&m).unwrap();
    assert!(e.contains("`kernel_size`") && e.contains("would hold more than 2^32-1 elements"), "{e}");
}
