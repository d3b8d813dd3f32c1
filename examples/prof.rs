//! lab
fn main() {
    let d = bitgrad::Device::gpu().unwrap();
    let m = std::env::args().nth(1).unwrap_or("cnn".into());
    let x = bitgrad::bench::train_step(&d, &m, 64, 3).unwrap();
    eprintln!("{:?} ms", x.gpu_ms);
    let model = if m == "cnn" { bitgrad::models::zoo::larq_mnist_cnn() } else { bitgrad::models::zoo::larq_guide_mlp() };
    let loss = bitgrad::train::Loss::SparseCategoricalCrossentropy { from_logits: false };
    let mut t = bitgrad::train::Trainer::compile(
        model,
        loss,
        std::sync::Arc::new(bitgrad::train::optimizers::Adam::new(1e-3)),
        &[bitgrad::train::Metric::Accuracy],
        &d,
    )
    .unwrap();
    let data = bitgrad::train::data::Dataset::new(&[28, 28, 1], vec![0.1; 64 * 784], vec![1; 64]).unwrap();
    let k = t.profile_step(&data, 64).unwrap();
    let mut v: Vec<(usize, &bitgrad::KernelTime)> = k.iter().enumerate().collect();
    v.sort_by(|a, b| b.1.ns.total_cmp(&a.1.ns));
    for (i, k) in v.iter().take(45) {
        println!("#{i:<4} {:<34} {:>16} {:8.3}", k.kernel, format!("{:?}", k.workgroups), k.ns / 1e6);
    }
}
