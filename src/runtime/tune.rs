//! The kernel tuner: an op that offers interchangeable kernels (`Step::Choice`) gets the one
//! that runs fastest on this device, timed once per shape class while a plan is built (so a step
//! never tunes mid-run) and remembered in the device's [`Tuning`](crate::device::Tuning), which
//! also caches it on disk.
//!
//! Candidates run on scratch buffers of the same sizes as the op's own, so timing touches no
//! value of any plan. Times come from timestamp queries around each run where the adapter has
//! them, else from the wall clock around a submission and its wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::gpu::{encode_steps, Encoded};
use crate::device::{GpuContext, TuneMode, TuneRecord};
use crate::error::Result;
use crate::kernels::{BufferView, Choice, Dispatch, Step};

/// After a warm-up run longer than this, one timed run is enough (tuning a product that takes
/// seconds per run on a software adapter then costs two runs per candidate, not four).
const SLOW_MS: f64 = 200.0;

/// The dispatch to record for `choice`: the pinned variant, the remembered choice, the first
/// candidate when tuning is off, or the fastest candidate by timing.
pub(super) fn choose(ctx: &GpuContext, choice: Choice) -> Result<Dispatch> {
    let Choice { class, mut candidates } = choice;
    // A variant whose grid exceeds the adapter's limits for this shape (one workgroup per row
    // past 65535 rows) is no candidate; if none fits, the first stays for the limit's error.
    let (fit, over): (Vec<Dispatch>, Vec<Dispatch>) = candidates.into_iter().partition(|d| super::gpu::check_grid(ctx, d, "").is_ok());
    candidates = if fit.is_empty() { over } else { fit };
    let tuning = &ctx.tuning;
    let position = |candidates: &[Dispatch], name: &str| candidates.iter().position(|d| d.kernel.to_string() == name);
    if let Some(prefix) = tuning.pinned() {
        if let Some(i) = candidates.iter().position(|d| d.kernel.entry.starts_with(prefix.as_str())) {
            return Ok(candidates.swap_remove(i));
        }
    }
    if candidates.len() == 1 {
        return Ok(candidates.remove(0));
    }
    if let Some(i) = tuning.get(&class).and_then(|r| position(&candidates, &r.chosen)) {
        return Ok(candidates.swap_remove(i));
    }
    let mode = tuning.mode();
    if mode == TuneMode::Off {
        tuning.insert(TuneRecord { class, chosen: candidates[0].kernel.to_string(), timings: Vec::new(), how: "default".into() });
        return Ok(candidates.remove(0));
    }
    match time(ctx, &candidates, mode.runs()) {
        Ok(times) => {
            let best = (0..times.len()).min_by(|&a, &b| times[a].total_cmp(&times[b])).expect("two or more candidates");
            let timings = candidates.iter().zip(&times).map(|(d, t)| (d.kernel.to_string(), *t)).collect();
            let how = if mode == TuneMode::Full { "timed full" } else { "timed quick" };
            tuning.insert(TuneRecord { class, chosen: candidates[best].kernel.to_string(), timings, how: how.into() });
            Ok(candidates.swap_remove(best))
        }
        Err(e) => {
            log::warn!("could not time the kernels for {class} ({e}); using {}", candidates[0].kernel);
            Ok(candidates.remove(0))
        }
    }
}

/// Median milliseconds per run of each candidate.
fn time(ctx: &GpuContext, candidates: &[Dispatch], runs: usize) -> Result<Vec<f64>> {
    // One scratch buffer per distinct buffer the op binds, as large as its largest view.
    let mut sizes: HashMap<*const wgpu::Buffer, u64> = HashMap::new();
    for (_, v) in candidates.iter().flat_map(|d| &d.bindings) {
        let s = sizes.entry(Arc::as_ptr(&v.buffer)).or_default();
        *s = (*s).max(v.size);
    }
    let scratch: HashMap<*const wgpu::Buffer, Arc<wgpu::Buffer>> =
        sizes.into_iter().map(|(k, size)| Ok((k, Arc::new(ctx.buffer("tuning scratch", size)?)))).collect::<Result<_>>()?;
    let steps = candidates
        .iter()
        .map(|d| {
            let bindings =
                d.bindings.iter().map(|(b, v)| (*b, BufferView { buffer: scratch[&Arc::as_ptr(&v.buffer)].clone(), size: v.size }));
            Step::Dispatch(Dispatch { bindings: bindings.collect(), ..d.clone() })
        })
        .collect();
    let (encoded, _uniforms, _) = encode_steps(ctx, steps)?;
    encoded.iter().map(|e| median_ms(ctx, e, runs)).collect()
}

fn median_ms(ctx: &GpuContext, e: &Encoded, runs: usize) -> Result<f64> {
    // The first run also pays for compiling the pipeline where the driver does that lazily.
    let first = wall_ms(ctx, e)?;
    let runs = if first > SLOW_MS { 1 } else { runs };
    let mut times = if ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
        timestamp_ms(ctx, e, runs)?
    } else {
        (0..runs).map(|_| wall_ms(ctx, e)).collect::<Result<Vec<_>>>()?
    };
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn dispatch(pass: &mut wgpu::ComputePass, e: &Encoded) {
    if let Encoded::Dispatch { pipeline, bind_group, workgroups, .. } = e {
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
    }
}

/// One run from submission to completion.
fn wall_ms(ctx: &GpuContext, e: &Encoded) -> Result<f64> {
    let start = Instant::now();
    ctx.scoped("timing a kernel variant", || {
        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bitgrad tuning") });
        dispatch(&mut enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("bitgrad tuning"), timestamp_writes: None }), e);
        ctx.queue.submit([enc.finish()]);
        Ok(())
    })?;
    ctx.wait()?;
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// `runs` runs in one submission, each in its own pass between two timestamps.
fn timestamp_ms(ctx: &GpuContext, e: &Encoded, runs: usize) -> Result<Vec<f64>> {
    let ns = ctx.time_passes("tuning", runs as u32, |enc, query_set| {
        for i in 0..runs as u32 {
            let timestamp_writes = Some(wgpu::ComputePassTimestampWrites {
                query_set,
                beginning_of_pass_write_index: Some(2 * i),
                end_of_pass_write_index: Some(2 * i + 1),
            });
            dispatch(&mut enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("bitgrad tuning"), timestamp_writes }), e);
        }
    })?;
    Ok(ns.iter().map(|t| t / 1e6).collect())
}
