//! The CPU backend's context: the threads its optimizers step on.

use std::sync::Arc;

use crate::error::{Error, Result};

/// What [`crate::CpuOptimizer`]'s constructors take where [`crate::GpuOptimizer`]'s take a
/// [`crate::GpuContext`]: the thread pool the steps run on. Cheap to clone (the pool is shared),
/// so that switching backend is changing one constructor:
///
/// ```
/// use wgoptim::{Adam, Backend, CpuContext, CpuOptimizer};
/// let cpu = CpuContext::with_threads(2)?;
/// let mut opt = CpuOptimizer::with_params(&cpu, Adam::adamw(), &[0.5; 1000])?;
/// // on a GPU: GpuOptimizer::with_params(&gpu, Adam::adamw(), &[0.5; 1000])?
/// opt.write_grads(&[0.1; 1000])?;
/// opt.step()?;
/// assert_eq!(opt.threads(), 2);
/// # Ok::<(), wgoptim::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct CpuContext {
    /// `None`: rayon's global pool.
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl CpuContext {
    /// Rayon's global pool: one thread per core (or `RAYON_NUM_THREADS`).
    pub fn new() -> Self {
        Self::default()
    }

    /// A pool of `threads` threads of its own (`0`: rayon's global pool).
    pub fn with_threads(threads: usize) -> Result<Self> {
        let pool = match threads {
            0 => None,
            n => Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| Error::Argument(format!("thread pool of {n}: {e}")))?,
            )),
        };
        Ok(Self { pool })
    }

    /// Threads a step runs on.
    pub fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads())
    }

    /// Runs `f` on this context's threads.
    pub(crate) fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }
}

/// `len` copies of `value` in memory that Linux may back with transparent huge pages (a
/// `madvise(MADV_HUGEPAGE)` hint before the first write; elsewhere, or when the kernel says no,
/// ordinary pages). A step streams every vector once: with 2 MiB pages it misses the TLB 512
/// times less often. A length whose bytes cannot be reserved is [`Error::HostAllocation`] (the
/// kernel may still refuse the pages later, when they are first written).
pub(crate) fn host_vec(what: &'static str, len: usize, value: f32) -> Result<Vec<f32>> {
    let mut v: Vec<f32> = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::HostAllocation {
            what,
            bytes: (len as u64).saturating_mul(4),
        })?;
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + len * std::mem::size_of::<f32>();
        let (first, last) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if last > first {
            // SAFETY: [first, last) lies inside the allocation just made; the hint changes how
            // its pages are backed, never their contents. An error leaves ordinary pages.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    v.resize(len, value);
    Ok(v)
}
