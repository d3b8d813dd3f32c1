//! Kernel benchmarks, one module per area. GPU work is waited for inside the timed region, so
//! each sample is the full time from encoding to completion.
//!
//! `cargo bench --bench kernels` (set `BITGRAD_ADAPTER` / `BITGRAD_BACKEND` to choose the GPU).

use criterion::{criterion_group, criterion_main, Criterion};

mod gemm {
    use bitgrad::{DType, Device, Graph, HostTensor, ParamStore, Plan};
    use criterion::{BenchmarkId, Criterion, Throughput};

    /// A plan computing one `m x k @ k x n` product, with random inputs fed once.
    pub fn plan(device: &Device, m: usize, k: usize, n: usize) -> Plan {
        let mut g = Graph::new();
        let a = g.input("a", [m, k], DType::F32).unwrap();
        let b = g.input("b", [k, n], DType::F32).unwrap();
        let c = g.matmul(a, b).unwrap();
        let mut plan = Plan::new(device, &g, &[c], &mut ParamStore::new()).unwrap();
        let fill = |len: usize, seed: u64| {
            (0..len as u32)
                .map(|i| (bitgrad::backend::cpu::random_bits(seed, i) >> 8) as f32 / 16_777_216.0 - 0.5)
                .collect::<Vec<_>>()
        };
        plan.feed("a", &HostTensor::f32([m, k], fill(m * k, 1)).unwrap()).unwrap();
        plan.feed("b", &HostTensor::f32([k, n], fill(k * n, 2)).unwrap()).unwrap();
        plan
    }

    pub fn f32_gemm(c: &mut Criterion) {
        let device = match Device::gpu() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("f32 GEMM benchmark skipped: {e}");
                return;
            }
        };
        let mut group = c.benchmark_group(format!("f32_gemm/{}", device.describe()));
        group.sample_size(10);
        for size in [128usize, 256, 512, 1024] {
            let mut p = plan(&device, size, size, size);
            // Throughput counts FLOPs: 2 per multiply-accumulate.
            group.throughput(Throughput::Elements(2 * (size * size * size) as u64));
            group.bench_function(BenchmarkId::from_parameter(format!("{size}x{size}x{size}")), |bench| {
                bench.iter(|| {
                    p.run().unwrap();
                    device.synchronize().unwrap();
                })
            });
        }
        group.finish();
    }
}

fn all(c: &mut Criterion) {
    gemm::f32_gemm(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
