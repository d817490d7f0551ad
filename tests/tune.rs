//! Tuning: every candidate is timed, the fastest kept, the choice cached on disk per adapter
//! and read back by the next context; an explicit shape overrides it. (Which shape wins is a
//! measurement, reported by `wgoptim tune`, not asserted here.)

mod common;

use wgoptim::gpu::tune::{self, ShapeCache, TuneOptions};
use wgoptim::{
    Adam, Backend, ContextOptions, CpuOptimizer, GpuContext, GpuOptimizer, KernelShape, Optimizer,
    Sgd, Shapes,
};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgoptim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn tune_times_every_candidate_and_keeps_the_fastest() {
    let Some(ctx) = common::full() else { return };
    let optimizer = Optimizer::from(Adam::default());
    let options = TuneOptions {
        elements: Some(10_000),
        steps: 2,
        rounds: 2,
        ..TuneOptions::default()
    };
    let report = tune::tune(&ctx, &optimizer, &options).unwrap();
    assert_eq!(report.elements, 10_000);
    let shapes: Vec<KernelShape> = report.timings.iter().map(|(s, _)| *s).collect();
    assert_eq!(shapes, KernelShape::CANDIDATES);
    assert!(
        report
            .timings
            .iter()
            .all(|(_, t)| t.is_finite() && *t > 0.0)
    );
    let fastest = report
        .timings
        .iter()
        .map(|(_, t)| *t)
        .fold(f64::INFINITY, f64::min);
    let best = report.time_of(report.best).unwrap();
    assert!(best <= 1.02 * fastest, "{report:?}");
    assert_eq!(report.builtin, KernelShape::contiguous(4));
}

#[test]
fn a_tuned_context_caches_its_choice_per_adapter() {
    if common::full().is_none() {
        return;
    }
    let dir = temp_dir("shape-cache");
    let options = ContextOptions {
        shapes: Shapes::Tuned,
        shape_cache_dir: Some(dir.clone()),
        ..Default::default()
    };
    let ctx = GpuContext::with_options(&options).unwrap();
    let sgd = Optimizer::from(Sgd::default().momentum(0.9));
    // First use tunes and writes the cache.
    let chosen = ctx.shape_for(&sgd).unwrap();
    assert!(KernelShape::CANDIDATES.contains(&chosen));
    let cache = ShapeCache::new(Some(&dir), &ctx.adapter_info()).unwrap();
    assert_eq!(cache.get(&sgd), Some(chosen));
    let text = std::fs::read_to_string(cache.path()).unwrap();
    assert!(text.contains(&ctx.adapter_info().name), "{text}");
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    // A new context reads the cache instead of timing: plant a choice and see it used.
    let planted = KernelShape::strided(8);
    cache.put(&sgd, planted).unwrap();
    let again = GpuContext::with_options(&options).unwrap();
    assert_eq!(again.shape_for(&sgd).unwrap(), planted);
    // ... and steps with it, exactly.
    let mut opt = GpuOptimizer::with_params(&again, sgd, &[1.0; 1000]).unwrap();
    opt.write_grads(&[0.5; 1000]).unwrap();
    opt.step().unwrap();
    let mut twin =
        CpuOptimizer::with_params(&wgoptim::CpuContext::new(), sgd, &[1.0; 1000]).unwrap();
    twin.write_grads(&[0.5; 1000]).unwrap();
    twin.step().unwrap();
    assert_eq!(opt.read_params().unwrap(), twin.params());
    // An unreadable cache is a miss, not an error.
    std::fs::write(cache.path(), "{ not json").unwrap();
    let fresh = GpuContext::with_options(&options).unwrap();
    assert!(KernelShape::CANDIDATES.contains(&fresh.shape_for(&sgd).unwrap()));
    // An explicit shape overrides tuning and the cache.
    let fixed = GpuContext::with_options(&ContextOptions {
        shapes: Shapes::Fixed(KernelShape::contiguous(1)),
        ..options
    })
    .unwrap();
    assert_eq!(fixed.shape_for(&sgd).unwrap(), KernelShape::contiguous(1));
    std::fs::remove_dir_all(&dir).unwrap();
}
