//! Timing optimizer steps against the device's own copy bandwidth, shared by `wgoptim bench`
//! and the criterion benches; on the GPU ([`Bench`]) or the CPU backend ([`CpuBench`], wall
//! clock, against a copy of the same bytes on the same threads).
//!
//! Each repetition records the work into one encoder and submits it; its time comes from
//! timestamp queries written around the work where the device has them
//! (`TIMESTAMP_QUERY_INSIDE_ENCODERS`), else from the wall clock around submit and device wait.
//! Median and minimum over the repetitions are reported. Achieved bandwidth counts the bytes a
//! fused step must move ([`Optimizer::bytes_moved_per_param`]); the copy baseline is
//! `copy_buffer_to_buffer` of the parameter bytes (read + write counted), timed right before
//! each kernel so that both see the same state of a noisy machine.

use std::time::Instant;

use serde::Serialize;

use crate::backend::Backend;
use crate::control::GradientControl;
use crate::cpu::{CpuContext, CpuOptimizer, host_vec};
use crate::error::Result;
use crate::gpu::{GpuContext, GpuOptimizer, compat};
use crate::layout::ParamLayout;
use crate::optim::{Kernel, Optimizer};
use crate::verify::Data;

/// Median and minimum of repeated timings, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Timing {
    /// Median over the repetitions.
    pub median: f64,
    /// Fastest repetition.
    pub min: f64,
}

impl Timing {
    fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Self {
            median: samples[samples.len() / 2],
            min: samples[0],
        }
    }
}

/// Where the times come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// GPU timestamp queries around the recorded work.
    Timestamps,
    /// Host wall clock around submit and device wait.
    WallClock,
}

struct Timer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    period_ns: f64,
}

/// A benchmark session on one device.
pub struct Bench {
    ctx: GpuContext,
    warmup: usize,
    reps: usize,
    timer: Option<Timer>,
}

impl Bench {
    /// A session with `warmup` untimed and `reps` timed repetitions per measurement.
    pub fn new(ctx: &GpuContext, warmup: usize, reps: usize) -> Result<Self> {
        let device = ctx.device();
        let timer = if device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
        {
            Some(compat::scoped(device, || Timer {
                queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("bench timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
                resolve: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("bench resolve"),
                    size: 16,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                staging: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("bench staging"),
                    size: 16,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                period_ns: f64::from(ctx.queue().get_timestamp_period()),
            })?)
        } else {
            None
        };
        Ok(Self {
            ctx: ctx.clone(),
            warmup,
            reps: reps.max(1),
            timer,
        })
    }

    /// The clock this session reads.
    pub fn clock(&self) -> Clock {
        if self.timer.is_some() {
            Clock::Timestamps
        } else {
            Clock::WallClock
        }
    }

    /// Times the work `record` puts into an encoder.
    pub fn time(
        &self,
        mut record: impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<Timing> {
        let device = self.ctx.device();
        let queue = self.ctx.queue();
        for _ in 0..self.warmup {
            let mut encoder = device.create_command_encoder(&Default::default());
            record(&mut encoder)?;
            queue.submit([encoder.finish()]);
        }
        self.ctx.wait()?;
        let mut samples = Vec::with_capacity(self.reps);
        for _ in 0..self.reps {
            let mut encoder = device.create_command_encoder(&Default::default());
            if let Some(t) = &self.timer {
                encoder.write_timestamp(&t.queries, 0);
            }
            record(&mut encoder)?;
            if let Some(t) = &self.timer {
                encoder.write_timestamp(&t.queries, 1);
                encoder.resolve_query_set(&t.queries, 0..2, &t.resolve, 0);
                encoder.copy_buffer_to_buffer(&t.resolve, 0, &t.staging, 0, 16);
            }
            let start = Instant::now();
            queue.submit([encoder.finish()]);
            self.ctx.wait()?;
            let wall = start.elapsed().as_secs_f64();
            samples.push(match &self.timer {
                Some(t) => {
                    let ticks: Vec<u64> =
                        bytemuck::pod_collect_to_vec(&compat::read_mapped(device, &t.staging)?);
                    ticks[1].saturating_sub(ticks[0]) as f64 * t.period_ns * 1e-9
                }
                None => wall,
            });
        }
        Ok(Timing::of(samples))
    }
}

/// One line of a benchmark report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Variant name (as in `wgoptim verify`).
    pub kernel: String,
    /// The kernel shape it ran with (`c4`: 4 contiguous vec4 blocks per invocation, `s8`: 8
    /// strided; see `KernelShape::name`), as the context chose it; `cpuN` for the CPU backend
    /// on N threads.
    pub shape: String,
    /// Parameters stepped.
    pub params: usize,
    /// Tensors they are split into (packed into one flat buffer).
    pub tensors: usize,
    /// Median step time, ms.
    pub median_ms: f64,
    /// Fastest step time, ms.
    pub min_ms: f64,
    /// Bytes a fused step must move per parameter (fractional with int8 state).
    pub bytes_per_param: f64,
    /// Achieved bandwidth at the median, GB/s.
    pub gb_per_s: f64,
    /// The copy baseline measured just before, GB/s (read + write, at its median).
    pub copy_gb_per_s: f64,
    /// `gb_per_s / copy_gb_per_s`, in percent.
    pub percent_of_copy: f64,
}

/// Benchmarks every kernel at every size and tensor count, with `control` (clipping, skipping)
/// if given; `progress` is called after each measurement. Bytes per parameter stay those of
/// the update alone, so the norm pass shows as a lower share of copy bandwidth.
pub fn run(
    bench: &dyn Session,
    kernels: &[(&str, Optimizer)],
    sizes: &[usize],
    tensors: &[usize],
    control: Option<GradientControl>,
    mut progress: impl FnMut(&Row),
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &n in sizes {
        for &(name, optimizer) in kernels {
            for &k in tensors {
                let copy = bench.copy(n as u64 * 4)?;
                let t = bench.step(optimizer, n, k, control)?;
                let bytes = optimizer.bytes_moved_per_param();
                let gb_per_s = bytes * n as f64 / t.median / 1e9;
                let copy_gb_per_s = 2.0 * 4.0 * n as f64 / copy.median / 1e9;
                let row = Row {
                    kernel: name.to_string(),
                    shape: bench.shape(&optimizer)?,
                    params: n,
                    tensors: k,
                    median_ms: t.median * 1e3,
                    min_ms: t.min * 1e3,
                    bytes_per_param: bytes,
                    gb_per_s,
                    copy_gb_per_s,
                    percent_of_copy: 100.0 * gb_per_s / copy_gb_per_s,
                };
                progress(&row);
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// `n` parameters as `tensors` tensors `t0`, `t1`, … of (nearly) equal length in `layout`:
/// vectors, or for `optimizer`s that see the shapes (Adafactor, Muon) matrices of c columns (c
/// the power of two nearest below √len) where c divides the length; else Muon, which takes
/// matrices only, one row.
fn split(
    mut layout: ParamLayout,
    optimizer: &Optimizer,
    n: usize,
    tensors: usize,
) -> Result<ParamLayout> {
    for k in 0..tensors {
        let len = (n / tensors + usize::from(k < n % tensors)).max(1);
        let cols = crate::verify::matrix_cols(len);
        let shape = if optimizer.kernel().sees_shapes() && len.is_multiple_of(cols) {
            vec![len / cols, cols]
        } else if optimizer.kernel() == Kernel::Muon {
            vec![1, len]
        } else {
            vec![len]
        };
        layout.add(&format!("t{k}"), &shape)?;
    }
    Ok(layout)
}

/// What [`run`] times on: the GPU ([`Bench`]) or the CPU backend ([`CpuBench`]).
pub trait Session {
    /// Times one step of `optimizer` over `n` parameters split into `tensors` tensors.
    fn step(
        &self,
        optimizer: Optimizer,
        n: usize,
        tensors: usize,
        control: Option<GradientControl>,
    ) -> Result<Timing>;
    /// Times a copy of `bytes` (the bandwidth baseline).
    fn copy(&self, bytes: u64) -> Result<Timing>;
    /// How the step runs, for the report (kernel shape, or CPU threads).
    fn shape(&self, optimizer: &Optimizer) -> Result<String>;
}

impl Session for Bench {
    /// Times one step of `optimizer` over `n` random parameters split into `tensors` tensors
    /// (packed into one flat buffer by [`ParamLayout`]; 1 = one plain buffer).
    fn step(
        &self,
        optimizer: Optimizer,
        n: usize,
        tensors: usize,
        control: Option<GradientControl>,
    ) -> Result<Timing> {
        let mut data = Data::new(1);
        let mut opt = if tensors <= 1 && !optimizer.kernel().sees_shapes() {
            GpuOptimizer::new(&self.ctx, optimizer, n)?
        } else {
            let limits = self.ctx.limits();
            let layout = split(
                ParamLayout::for_limits(&limits),
                &optimizer,
                n,
                tensors.max(1),
            )?;
            GpuOptimizer::with_layout(&self.ctx, optimizer, layout)?
        };
        opt.set_gradient_control(control)?;
        let len = opt.len();
        opt.write_params(&data.vector(len))?;
        opt.write_grads(&data.gradients(len))?;
        self.time(|encoder| opt.record_step(encoder))
    }

    /// Times `copy_buffer_to_buffer` of `bytes` between two device buffers.
    fn copy(&self, bytes: u64) -> Result<Timing> {
        let device = self.ctx.device();
        let bytes = bytes.div_ceil(4) * 4;
        let (src, dst) = compat::scoped(device, || {
            let make = |usage| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("copy baseline"),
                    size: bytes,
                    usage,
                    mapped_at_creation: false,
                })
            };
            let src = make(wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST);
            // Written once so that no timed copy pays for lazy zero-initialization.
            self.ctx
                .queue()
                .write_buffer(&src, 0, &vec![1u8; bytes as usize]);
            (src, make(wgpu::BufferUsages::COPY_DST))
        })?;
        self.time(|encoder| {
            encoder.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes);
            Ok(())
        })
    }

    fn shape(&self, optimizer: &Optimizer) -> Result<String> {
        Ok(self.ctx.shape_for(optimizer)?.name())
    }
}

/// A benchmark session on the CPU backend: wall clock around each [`CpuOptimizer`] step, and
/// as baseline a copy of the parameter bytes split across the same threads, with streaming
/// (non-temporal) stores on x86-64.
pub struct CpuBench {
    warmup: usize,
    reps: usize,
    ctx: CpuContext,
}

impl CpuBench {
    /// A session with `warmup` untimed and `reps` timed steps, on `threads` threads (0: one
    /// per core).
    pub fn new(warmup: usize, reps: usize, threads: usize) -> Result<Self> {
        Ok(Self {
            warmup,
            reps: reps.max(1),
            ctx: CpuContext::with_threads(threads)?,
        })
    }

    /// Threads the steps and copies run on.
    pub fn threads(&self) -> usize {
        self.ctx.threads()
    }

    fn time(&self, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
        for _ in 0..self.warmup {
            f()?;
        }
        let mut samples = Vec::with_capacity(self.reps);
        for _ in 0..self.reps {
            let start = Instant::now();
            f()?;
            samples.push(start.elapsed().as_secs_f64());
        }
        Ok(Timing::of(samples))
    }
}

/// Copies `src` into `dst` with non-temporal stores on x86-64: no line of `dst` is read for
/// ownership first, so the copy moves exactly its read and written bytes, which makes it the
/// host's best copy for [`Row::percent_of_copy`]. `memcpy` decides by the cache size whether
/// to stream; with this machine's 480 MiB of L3 it did not, and reached 26 GB/s where
/// streaming stores reach 39–47 GB/s at 2^26 floats (BENCHMARKS § The CPU backend). Elsewhere,
/// a plain copy.
fn stream_copy(dst: &mut [f32], src: &[f32]) {
    let src = &src[..dst.len()];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_loadu_ps, _mm_sfence, _mm_stream_ps};
        // Element by element up to the first 16-byte boundary of `dst`, then 4 at a time.
        let head = dst.as_ptr().align_offset(16).min(dst.len());
        dst[..head].copy_from_slice(&src[..head]);
        let mut body = dst[head..].chunks_exact_mut(4);
        let mut from = src[head..].chunks_exact(4);
        for (d, s) in (&mut body).zip(&mut from) {
            // SAFETY: SSE is part of x86-64; `d` is 4 floats at a 16-byte boundary (the first
            // is, and each chunk is 16 bytes), `s` 4 readable floats.
            unsafe { _mm_stream_ps(d.as_mut_ptr(), _mm_loadu_ps(s.as_ptr())) }
        }
        body.into_remainder().copy_from_slice(from.remainder());
        // SAFETY: SSE; orders the streamed stores before whatever follows the copy.
        unsafe { _mm_sfence() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

impl Session for CpuBench {
    fn step(
        &self,
        optimizer: Optimizer,
        n: usize,
        tensors: usize,
        control: Option<GradientControl>,
    ) -> Result<Timing> {
        let mut data = Data::new(1);
        let mut opt = if tensors <= 1 && !optimizer.kernel().sees_shapes() {
            CpuOptimizer::new(&self.ctx, optimizer, n)?
        } else {
            CpuOptimizer::with_layout(
                &self.ctx,
                optimizer,
                split(ParamLayout::new(64), &optimizer, n, tensors.max(1))?,
            )?
        };
        opt.set_gradient_control(control)?;
        let len = opt.len();
        opt.write_params(&data.vector(len))?;
        opt.write_grads(&data.gradients(len))?;
        self.time(|| opt.step())
    }

    fn copy(&self, bytes: u64) -> Result<Timing> {
        use rayon::prelude::*;
        let n = (bytes / 4) as usize;
        let src = host_vec("copy source", n, 1.0)?;
        let mut dst = host_vec("copy destination", n, 0.0)?;
        // One contiguous piece per thread, each copied with stores that bypass the caches.
        let piece = n.div_ceil(self.threads()).max(1);
        let mut copy = || {
            dst.par_chunks_mut(piece)
                .zip(src.par_chunks(piece))
                .for_each(|(d, s)| stream_copy(d, s));
        };
        self.time(|| {
            self.ctx.install(&mut copy);
            Ok(())
        })
    }

    fn shape(&self, _: &Optimizer) -> Result<String> {
        Ok(format!("cpu{}", self.threads()))
    }
}

#[cfg(test)]
mod tests {
    use super::stream_copy;

    /// Every element arrives, whatever the destination's alignment and the length's remainder
    /// (the head before the first 16-byte boundary, the streamed body, the tail), and nothing
    /// past the destination is written.
    #[test]
    fn stream_copy_copies_every_element_at_every_alignment() {
        let src: Vec<f32> = (0..41).map(|i| i as f32 + 0.5).collect();
        for offset in 0..4 {
            for len in 0..=37 {
                let mut dst = [-1.0f32; 45];
                stream_copy(&mut dst[offset..offset + len], &src[..len]);
                assert_eq!(&dst[offset..offset + len], &src[..len], "{offset} {len}");
                assert!(dst[..offset].iter().all(|&x| x == -1.0), "{offset} {len}");
                assert!(
                    dst[offset + len..].iter().all(|&x| x == -1.0),
                    "{offset} {len}"
                );
            }
        }
    }
}
