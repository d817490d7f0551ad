//! Kernel-shape tuning: time every [`KernelShape::CANDIDATES`] shape of a variant for a few
//! steps on this adapter, keep the fastest, and cache the choice on disk keyed by adapter,
//! driver and crate version.
//!
//! The shape changes only which invocation touches which vec4 block, never the arithmetic:
//! every shape gives bit-identical results (tests check each against the f32 twin), so tuning
//! trades nothing but a few hundred milliseconds on first use for speed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::context::GpuContext;
use super::kernel::KernelShape;
use super::optimizer::GpuOptimizer;
use crate::backend::Backend;
use crate::error::Result;
use crate::optim::Optimizer;

/// How a context chooses the kernel shape of each optimizer variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shapes {
    /// The shape cached on disk for this adapter, driver and crate version; on a miss, time
    /// every candidate on first use ([`tune`]) and cache the fastest.
    #[default]
    Tuned,
    /// The built-in per-variant defaults measured on lavapipe
    /// ([`KernelShape::for_state_tensors`]); nothing is timed or cached.
    Builtin,
    /// This shape for every variant (an explicit choice overrides tuning).
    Fixed(KernelShape),
}

/// What [`tune`] times.
#[derive(Clone, Debug)]
pub struct TuneOptions {
    /// Parameters per timed optimizer; `None`: start at 2^18 and grow ×4 (up to 2^24 and what
    /// the device's buffers allow) until one step takes at least 2 ms, so that fixed costs do
    /// not decide.
    pub elements: Option<usize>,
    /// Steps per timed round.
    pub steps: usize,
    /// Rounds; each candidate's time is its fastest round, and rounds interleave candidates
    /// so that a change in the machine's speed hits them alike.
    pub rounds: usize,
    /// The shapes to time.
    pub candidates: Vec<KernelShape>,
}

impl Default for TuneOptions {
    fn default() -> Self {
        Self {
            elements: None,
            steps: 4,
            rounds: 3,
            candidates: KernelShape::CANDIDATES.to_vec(),
        }
    }
}

/// The timings of one variant's candidate shapes.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TuneReport {
    /// The variant, as `family[flags]` (`adam[false]`).
    pub variant: String,
    /// Parameters per timed optimizer.
    pub elements: usize,
    /// Each candidate and its time per step (milliseconds, fastest round).
    pub timings: Vec<(KernelShape, f64)>,
    /// The fastest candidate.
    pub best: KernelShape,
    /// The built-in default for this variant, for comparison.
    pub builtin: KernelShape,
}

impl TuneReport {
    /// Time per step of `shape`, if it was timed.
    pub fn time_of(&self, shape: KernelShape) -> Option<f64> {
        self.timings
            .iter()
            .find(|(s, _)| *s == shape)
            .map(|(_, t)| *t)
    }
}

/// The cache key of a variant: its family, variant flags and (when not f32) state type (Adam
/// and AdamW share a kernel).
pub fn variant_key(optimizer: &Optimizer) -> String {
    let dtype = optimizer.state_layout().dtype();
    let suffix = match dtype {
        crate::optim::StateDType::F32 => String::new(),
        d => format!("@{}", d.name()),
    };
    format!(
        "{}{:?}{suffix}",
        optimizer.kernel().name(),
        optimizer.variant()
    )
}

/// Times every candidate shape of `optimizer`'s variant on `ctx`'s device (a few steps each,
/// interleaved), and returns the timings and the fastest. Uses `ctx`'s device but not its
/// shape policy, and writes no cache.
pub fn tune(ctx: &GpuContext, optimizer: &Optimizer, options: &TuneOptions) -> Result<TuneReport> {
    optimizer.validate()?;
    let limits = ctx.limits();
    let candidates: Vec<KernelShape> = options
        .candidates
        .iter()
        .copied()
        .filter(|s| s.validate(&limits).is_ok())
        .collect();
    let builtin = KernelShape::for_state_tensors(optimizer.state_layout().slots.len());
    let max_elements = (limits.max_buffer_size / 16 * 4).min(1 << 24) as usize;
    let steps = options.steps.max(1);
    let build = |shape: KernelShape, n: usize| -> Result<GpuOptimizer> {
        let shaped = ctx.with_shapes(Shapes::Fixed(shape))?;
        let mut opt = GpuOptimizer::new(&shaped, *optimizer, n)?;
        opt.write_grads(&vec![1e-3; n])?;
        opt.step()?; // compiles and warms up
        Ok(opt)
    };
    let time = |opt: &mut GpuOptimizer| -> Result<f64> {
        ctx.wait()?;
        let start = Instant::now();
        for _ in 0..steps {
            opt.step()?;
        }
        ctx.wait()?;
        Ok(start.elapsed().as_secs_f64() * 1e3 / steps as f64)
    };
    let mut elements = options.elements.unwrap_or(1 << 18).clamp(1, max_elements);
    if options.elements.is_none() {
        // Grow until a step is long enough to time.
        loop {
            let mut probe = build(builtin, elements)?;
            if time(&mut probe)? >= 2.0 || elements * 4 > max_elements {
                break;
            }
            elements *= 4;
        }
    }
    let mut optimizers = candidates
        .iter()
        .map(|&shape| build(shape, elements))
        .collect::<Result<Vec<_>>>()?;
    let mut best_times = vec![f64::INFINITY; candidates.len()];
    for _ in 0..options.rounds.max(1) {
        for (opt, best) in optimizers.iter_mut().zip(&mut best_times) {
            *best = best.min(time(opt)?);
        }
    }
    let timings: Vec<(KernelShape, f64)> = candidates.into_iter().zip(best_times).collect();
    // The fastest; the built-in default wins ties within 2% (timing noise).
    let (fastest, fastest_ms) = timings
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((builtin, f64::INFINITY));
    let builtin_ties = timings
        .iter()
        .any(|&(s, t)| s == builtin && t <= 1.02 * fastest_ms);
    let best = if builtin_ties { builtin } else { fastest };
    Ok(TuneReport {
        variant: variant_key(optimizer),
        elements,
        timings,
        best,
        builtin,
    })
}

/// `$WGOPTIM_CACHE_DIR`, else `$XDG_CACHE_HOME/wgoptim`, else `$HOME/.cache/wgoptim`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    var("WGOPTIM_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("wgoptim")))
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache").join("wgoptim")))
}

/// Tuned shapes on disk: `kernel-shapes.json` in the cache folder, one entry per adapter
/// (name, backend, driver, driver info, crate version) and variant.
pub struct ShapeCache {
    path: PathBuf,
    adapter: String,
}

type CacheFile = BTreeMap<String, BTreeMap<String, KernelShape>>;

impl ShapeCache {
    /// The cache of `adapter` in `dir`; `None` without a folder.
    pub fn new(dir: Option<&Path>, adapter: &wgpu::AdapterInfo) -> Option<Self> {
        Some(Self {
            path: dir?.join("kernel-shapes.json"),
            adapter: format!(
                "{} | {:?} | {} | {} | wgoptim {}",
                adapter.name,
                adapter.backend,
                adapter.driver,
                adapter.driver_info,
                env!("CARGO_PKG_VERSION")
            ),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> CacheFile {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// The cached shape of `optimizer`'s variant on this adapter (an unreadable file is a miss).
    pub fn get(&self, optimizer: &Optimizer) -> Option<KernelShape> {
        self.read()
            .get(&self.adapter)?
            .get(&variant_key(optimizer))
            .copied()
    }

    /// Records `shape` for `optimizer`'s variant (written to a temporary file, then renamed,
    /// so that a reader never sees half a file).
    pub fn put(&self, optimizer: &Optimizer, shape: KernelShape) -> std::io::Result<()> {
        let mut file = self.read();
        file.entry(self.adapter.clone())
            .or_default()
            .insert(variant_key(optimizer), shape);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        let tmp = self
            .path
            .with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}
