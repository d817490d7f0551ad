//! The examples' cores at small sizes: the loss falls, the pictures are written and non-empty.
//! (The examples themselves run them at full size: `cargo run --release --example NAME`.)

mod common;

use wgoptim::demo::classify::{
    Model, draw_lr_sweep, draw_runs, draw_sweep, log_space, lr_sweep, sweep, train,
};
use wgoptim::demo::data::{digits, make_classification};
use wgoptim::demo::schedules::{catalog, plateau_trace, trace};
use wgoptim::demo::surfaces::{Surface, draw, path, path_from};
use wgoptim::{Adam, LrFinder, Sgd};

fn out(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgoptim-examples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn assert_png(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "{} is {} bytes",
        path.display(),
        bytes.len()
    );
}

#[test]
fn loss_surfaces_descend_and_draw() {
    let Some(ctx) = common::full() else { return };
    for surface in Surface::ALL {
        let mut paths = Vec::new();
        for (name, optimizer) in surface
            .optimizers()
            .into_iter()
            .take(3)
            .chain(surface.optimizers().into_iter().skip(4).take(1))
        {
            let p = path(&ctx, surface, optimizer, 40).unwrap();
            let (start, end) = (p[0], *p.last().unwrap());
            assert!(
                surface.value(end.0, end.1) < surface.value(start.0, start.1),
                "{} {name}: f did not fall",
                surface.name()
            );
            paths.push((name, p));
        }
        let file = out(&format!("{}.png", surface.name()));
        draw(&file, surface, &paths).unwrap();
        assert_png(&file);
    }
}

#[test]
fn classifiers_learn_and_draw() {
    let Some(ctx) = common::full() else { return };
    let data = make_classification(300, 8, 3, 2, 2, 2, 1.0, 0.0, 1).unwrap();
    let (tr, te) = data.split(0.25, 2);
    let mut runs = Vec::new();
    for model in [Model::Logistic, Model::Mlp { hidden: 8 }] {
        let run = train(
            &ctx,
            model,
            ("Adam", Adam::default().lr(0.01).into()),
            &tr,
            &te,
            30,
            3,
        )
        .unwrap();
        assert!(
            run.train_loss[30] < 0.8 * run.train_loss[0],
            "{}: {:?}",
            model.name(),
            run.train_loss
        );
        assert!(run.test_accuracy[30] > 0.6);
        runs.push((model, vec![run]));
    }
    let file = out("classifiers.png");
    draw_runs(&file, "test", &runs).unwrap();
    assert_png(&file);
    let d = digits().unwrap();
    assert_eq!((d.x.nrows(), d.x.ncols(), d.classes), (1797, 64, 10));
    assert!(d.y.iter().all(|&y| y < 10) && d.x.iter().all(|&v| (0.0..=16.0).contains(&v)));
    assert!(
        make_classification(10, 3, 3, 1, 2, 1, 1.0, 0.0, 1).is_err(),
        "informative + redundant > features"
    );
}

#[test]
fn lr_finder_sweeps_and_draws() {
    let Some(ctx) = common::full() else { return };
    let (tr, _) = digits().unwrap().split(0.5, 1);
    let mut finder = LrFinder::new(1e-5, 10.0, 60).unwrap();
    lr_sweep(
        &ctx,
        Model::Logistic,
        Sgd::default().into(),
        &tr,
        64,
        &mut finder,
        1,
    )
    .unwrap();
    let pts = finder.points();
    assert!(pts.len() > 20);
    assert!(
        pts.iter().map(|p| p.smoothed).fold(f64::INFINITY, f64::min) < pts[0].smoothed,
        "the loss falls somewhere"
    );
    assert!(finder.suggestion().is_some());
    let file = out("lr_finder.png");
    draw_sweep(&file, "test", &finder).unwrap();
    assert_png(&file);
}

/// The demos take either backend ([`wgoptim::demo::Engine`]) and get the same numbers from
/// both: the CPU backend's twins step bit for bit as the kernels do.
#[test]
fn demos_agree_on_both_backends() {
    let Some(ctx) = common::full() else { return };
    let cpu = wgoptim::CpuContext::new();
    let schedule = wgoptim::Schedule::cosine(50);
    for (name, opt) in Surface::Himmelblau.optimizers() {
        let on = |engine: &dyn wgoptim::demo::Engine| {
            path_from(
                engine,
                Surface::Himmelblau,
                opt,
                (0.5, -4.0),
                Some(&schedule),
                60,
            )
            .unwrap()
        };
        assert_eq!(on(&ctx), on(&cpu), "{name}");
    }
    let data = make_classification(200, 6, 3, 1, 3, 1, 1.0, 0.0, 4).unwrap();
    let (tr, te) = data.split(0.25, 2);
    let run = |engine: &dyn wgoptim::demo::Engine| {
        train(
            engine,
            Model::Mlp { hidden: 6 },
            ("AdamW", Adam::adamw().lr(0.01).into()),
            &tr,
            &te,
            15,
            5,
        )
        .unwrap()
        .train_loss
    };
    assert_eq!(run(&ctx), run(&cpu));
}

#[test]
fn lr_sweeps_end_where_training_does_and_draw() {
    let Some(ctx) = common::full() else { return };
    let data = make_classification(300, 8, 3, 2, 2, 2, 1.0, 0.0, 1).unwrap();
    let (tr, te) = data.split(0.25, 2);
    let lrs = log_space(1e-3, 1e3, 4);
    assert_eq!(lrs.len(), 4);
    assert!(
        (lrs[1] - 0.1).abs() < 1e-12 && (lrs[3] - 1e3).abs() < 1e-9,
        "{lrs:?}"
    );
    let model = Model::Mlp { hidden: 8 };
    let opt = Sgd::default().momentum(0.9);
    let points = sweep(&ctx, model, opt.into(), &tr, &te, &lrs, 20, 3).unwrap();
    // Each point is where a plain training run at that lr ends.
    for p in &points {
        let run = train(&ctx, model, ("m", opt.lr(p.lr).into()), &tr, &te, 20, 3).unwrap();
        assert_eq!(
            p.loss.to_bits(),
            run.train_loss[20].to_bits(),
            "lr {}",
            p.lr
        );
        assert_eq!(p.accuracy, run.test_accuracy[20]);
    }
    // Too small learns little, too large diverges or does worse than the middle.
    assert!(points[1].loss < points[0].loss, "{points:?}");
    assert!(
        points[3].loss.is_nan() || points[3].loss >= points[1].loss,
        "{points:?}"
    );
    let file = out("lr_sweep.png");
    draw_lr_sweep(&file, "test", &[("momentum".into(), points)]).unwrap();
    assert_png(&file);
}

#[test]
fn schedules_trace_through_the_gpu_uniform() {
    let Some(ctx) = common::full() else { return };
    for (name, schedule) in catalog() {
        let t = trace(&ctx, &schedule, 0.1, 30).unwrap();
        for (e, s) in t.iter().enumerate() {
            assert_eq!(
                s.lr,
                f64::from(schedule.lr(0.1, e as u64).unwrap() as f32),
                "{name} at {e}"
            );
        }
    }
    let p = plateau_trace(0.1, 100).unwrap();
    assert!(p[99] < p[0], "the plateau schedule reduces");
}

/// The convergence check of low-precision state: on the UCI digits MLP (the example's setup),
/// int8 and bf16 state end within 1 percentage point of the f32 run's test accuracy, for
/// momentum SGD and AdamW.
#[test]
fn low_precision_state_trains_the_digits_mlp_as_well_as_f32() {
    let Some(ctx) = common::full() else { return };
    let (train_set, test_set) = digits().unwrap().split(0.2, 5);
    let all = wgoptim::demo::classify::optimizers();
    let find = |name: &str| all.iter().find(|(n, _)| *n == name).unwrap().1;
    for (f32_name, lowp) in [
        ("momentum 0.9", ["momentum int8", "momentum bf16"]),
        ("AdamW λ=0.01", ["AdamW int8", "AdamW bf16"]),
    ] {
        let accuracy = |name: &str| {
            let run = train(
                &ctx,
                Model::Mlp { hidden: 32 },
                (name, find(name)),
                &train_set,
                &test_set,
                150,
                11,
            )
            .unwrap();
            (
                *run.test_accuracy.last().unwrap(),
                *run.train_loss.last().unwrap(),
            )
        };
        let (reference, reference_loss) = accuracy(f32_name);
        for name in lowp {
            let (got, loss) = accuracy(name);
            eprintln!(
                "{name}: {:.2}% (loss {loss:.5}) vs {f32_name} {:.2}% (loss {reference_loss:.5})",
                100.0 * got,
                100.0 * reference
            );
            assert!(
                (got - reference).abs() <= 0.01,
                "{name}: {got} vs {f32_name}: {reference}"
            );
            // The runs did differ: the state really was kept in low precision.
            assert_ne!(loss, reference_loss, "{name}");
        }
    }
}
