//! Kernel benchmarks, one module per area. GPU work is waited for inside the timed region, so
//! each sample is the full time from encoding to completion.
//!
//! `cargo bench --bench kernels` (set `BITGRAD_ADAPTER` / `BITGRAD_BACKEND` to choose the GPU).
//! Cases come from `bitgrad::bench`, shared with the `bitgrad bench` command.

use criterion::{criterion_group, criterion_main, Criterion};

mod gemm {
    use bitgrad::bench::{f32_gemm, xnor_gemm, Case};
    use bitgrad::Device;
    use criterion::{BenchmarkId, Criterion, Throughput};

    fn bench(
        c: &mut Criterion,
        device: &Device,
        group: &str,
        sizes: &[usize],
        make: fn(&Device, usize, usize, usize) -> bitgrad::Result<Case>,
    ) {
        let mut group = c.benchmark_group(format!("{group}/{}", device.describe()));
        group.sample_size(10);
        for &size in sizes {
            let mut case = make(device, size, size, size).unwrap();
            // Throughput counts multiply-accumulates (f32 or binary).
            group.throughput(Throughput::Elements(case.amount as u64));
            group.bench_function(BenchmarkId::from_parameter(&case.shape), |b| b.iter(|| case.run().unwrap()));
        }
        group.finish();
    }

    pub fn all(c: &mut Criterion, device: &Device) {
        bench(c, device, "f32_gemm_macs", &[128, 256, 512, 1024], f32_gemm);
        bench(c, device, "xnor_gemm_macs", &[256, 1024, 4096], xnor_gemm);
    }
}

mod bitpack {
    use bitgrad::Device;
    use criterion::{BenchmarkId, Criterion, Throughput};

    pub fn all(c: &mut Criterion, device: &Device) {
        let mut group = c.benchmark_group(format!("bit_pack_bytes/{}", device.describe()));
        group.sample_size(10);
        for size in [1024, 4096] {
            let mut case = bitgrad::bench::bit_pack(device, size, size).unwrap();
            group.throughput(Throughput::Bytes(case.amount as u64));
            group.bench_function(BenchmarkId::from_parameter(&case.shape), |b| b.iter(|| case.run().unwrap()));
        }
        group.finish();
    }
}

mod conv {
    use bitgrad::Device;
    use criterion::{BenchmarkId, Criterion, Throughput};

    pub fn all(c: &mut Criterion, device: &Device) {
        let mut group = c.benchmark_group(format!("conv3x3_macs/{}", device.describe()));
        group.sample_size(10);
        // The binary layer at the real BNN shape; the f32 one at batch 8, since a batch-64 f32
        // run takes seconds on a software adapter (`bitgrad bench --all` compares equal shapes).
        for (binary, batch) in [(true, 64), (false, 8)] {
            let mut case = bitgrad::bench::conv(device, binary, batch, 14, 256, 256).unwrap();
            group.throughput(Throughput::Elements(case.amount as u64));
            group.bench_function(BenchmarkId::new(case.kernel, &case.shape), |b| b.iter(|| case.run().unwrap()));
        }
        group.finish();
    }
}

fn all(c: &mut Criterion) {
    let device = match bitgrad::Device::gpu() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("kernel benchmarks skipped: {e}");
            return;
        }
    };
    gemm::all(c, &device);
    bitpack::all(c, &device);
    conv::all(c, &device);
}

criterion_group!(benches, all);
criterion_main!(benches);
