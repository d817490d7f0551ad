//! ZeRO stage 1 over MPI, with real `mpirun` launches: each test starts `mpirun -np N` on this
//! test binary's `worker` (ignored unless run by mpirun), which runs one case on every rank and
//! writes what it found to files the test then checks against the single-process optimizer.
//!
//! Gradients are small multiples of 2⁻¹² whose sums are exact in f32: rank r of N gets
//! `base + d_r` with Σ_r d_r = 0, so the mean over ranks is `base` for every world size and
//! the reduction order cannot matter. Every launch is time-bounded: a hang fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wgoptim::zero::ZeroOptimizer;
use wgoptim::{
    Adagrad, Adam, Backend, CpuContext, CpuOptimizer, GpuOptimizer, GradientControl, Optimizer,
    ParamGroup, Schedule, Sgd, StatePrecision,
};

/// Steps of every trajectory; a NaN in the gradient at `NAN_STEP`.
const STEPS: usize = 20;
const NAN_STEP: usize = 7;

/// The cases: name, and its groups (two groups, so that shards cut across groups and tensors).
fn groups(case: &str) -> Vec<ParamGroup> {
    let (a, b): (Optimizer, Optimizer) = match case {
        "adam" => (
            Adam::default().lr(0.01).into(),
            Adam::default().lr(0.003).into(),
        ),
        "adamw" | "adamw-gpu" => (
            Adam::adamw().lr(0.01).weight_decay(0.1).into(),
            Adam::adamw()
                .lr(0.01)
                .weight_decay(0.0)
                .amsgrad(true)
                .into(),
        ),
        "adamw-int8" => {
            let int8 = StatePrecision::int8().min_len(0);
            (
                Adam::adamw().lr(0.01).state(int8).into(),
                Adam::adamw().lr(0.02).state(int8).into(),
            )
        }
        "momentum" => (
            Sgd::default().lr(0.05).momentum(0.9).into(),
            Sgd::default()
                .lr(0.05)
                .momentum(0.9)
                .nesterov(true)
                .weight_decay(0.01)
                .into(),
        ),
        "adagrad" => (
            Adagrad::default().lr(0.1).into(),
            Adagrad::default().lr(0.05).into(),
        ),
        other => panic!("unknown case {other}"),
    };
    vec![
        ParamGroup::new(a)
            .tensor("w1", &[61, 53])
            .tensor("b1", &[53]),
        ParamGroup::new(b)
            .tensor("w2", &[53, 17])
            .tensor("b2", &[17]),
    ]
}

/// The schedule of a case's groups (`set_schedule` sets every group's).
fn schedule(case: &str) -> Option<Schedule> {
    match case {
        "adam" | "momentum" => Some(Schedule::cosine(STEPS as u64)),
        "adamw" => Some(Schedule::step(5)),
        _ => None,
    }
}

const CASES: [&str; 5] = ["adam", "adamw", "adamw-int8", "momentum", "adagrad"];

fn control() -> GradientControl {
    GradientControl {
        max_norm: Some(0.05),
        skip_nonfinite: true,
        loss_scale: 4.0,
    }
}

/// A small integer in -8..=8 from (a, b, c).
fn small(a: usize, b: usize, c: usize) -> f32 {
    let mut h = (a as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (b as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= (c as u64).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
    ((h >> 40) % 17) as f32 - 8.0
}

const UNIT: f32 = 1.0 / 4096.0;

/// The mean gradient of step `t` (loss-scaled by 4), with a NaN at step `NAN_STEP`.
fn base(len: usize, t: usize) -> Vec<f32> {
    let mut g: Vec<f32> = (0..len).map(|i| 4.0 * small(i, t, 1) * UNIT).collect();
    if t == NAN_STEP {
        g[len / 3] = f32::NAN;
    }
    g
}

/// Rank `rank`'s gradient of step `t` in a world of `world`: base + d, the d summing to 0.
fn rank_grads(len: usize, t: usize, rank: usize, world: usize) -> Vec<f32> {
    let mut g = base(len, t);
    if world > 1 {
        let pair = rank / 2;
        let sign = if rank.is_multiple_of(2) { 1.0 } else { -1.0 };
        for (i, v) in g.iter_mut().enumerate() {
            *v += sign * 4.0 * small(i, t, 100 + pair) * UNIT;
        }
    }
    g
}

/// The starting parameters: multiples of 2⁻⁸.
fn initial(len: usize) -> Vec<f32> {
    (0..len).map(|i| small(i, 0, 7) / 256.0).collect()
}

/// What a rank reports.
#[derive(Serialize, Deserialize, Debug, Default)]
struct Report {
    rank: usize,
    world: usize,
    /// Parameter bits after the case's steps.
    params: Vec<u32>,
    state_bytes: u64,
    skipped: u64,
    errors: Vec<String>,
}

/// Asserts that rank `r`'s `i`-th error says `want`.
fn assert_error(r: &Report, i: usize, want: &str) {
    let e = &r.errors[i];
    assert!(e.contains(want), "rank {}: {e}", r.rank);
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The single-process optimizer over the same groups, given the mean gradients of steps
/// `from..to`, starting from `start` (a checkpoint) or from the initial parameters.
fn reference(case: &str, start: Option<&[u8]>, from: usize, to: usize) -> CpuOptimizer {
    let cpu = CpuContext::with_threads(1).unwrap();
    let mut opt = CpuOptimizer::with_groups(&cpu, groups(case)).unwrap();
    match start {
        Some(bytes) => opt.restore(bytes).unwrap(),
        None => {
            opt.set_schedule(schedule(case)).unwrap();
            if case == "adagrad" {
                opt.set_group_lr(1, 0.07).unwrap();
            }
            opt.set_gradient_control(Some(control())).unwrap();
            opt.write_params(&initial(opt.len())).unwrap();
        }
    }
    for t in from..to {
        opt.write_grads(&base(opt.len(), t)).unwrap();
        opt.step().unwrap();
    }
    opt
}

// ---------------------------------------------------------------------------------------------
// The worker: run by mpirun on every rank.

fn build(
    case: &str,
    comm: &mpi::topology::SimpleCommunicator,
    groups: Vec<ParamGroup>,
) -> wgoptim::Result<ZeroOptimizer> {
    if case.ends_with("-gpu") {
        let ctx = common::full().expect("a GPU adapter");
        ZeroOptimizer::with_groups(comm, groups, |g| GpuOptimizer::with_groups(&ctx, g))
    } else {
        let cpu = CpuContext::with_threads(1)?;
        ZeroOptimizer::with_groups(comm, groups, |g| CpuOptimizer::with_groups(&cpu, g))
    }
}

fn dir() -> PathBuf {
    PathBuf::from(std::env::var("WGOPTIM_ZERO_DIR").expect("WGOPTIM_ZERO_DIR"))
}

fn write_report(name: &str, report: &Report) {
    let path = dir().join(format!("{name}-rank{}.json", report.rank));
    std::fs::write(path, serde_json::to_string(report).unwrap()).unwrap();
}

#[test]
#[ignore = "the MPI worker: started by mpirun from the tests below"]
fn worker() {
    use mpi::traits::*;
    let universe = mpi::initialize().expect("MPI initialised once");
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let job = std::env::var("WGOPTIM_ZERO_JOB").expect("WGOPTIM_ZERO_JOB");
    let mut report = Report {
        rank,
        world: size,
        ..Default::default()
    };
    match job.as_str() {
        "trajectories" => {
            let cases = std::env::var("WGOPTIM_ZERO_CASES").unwrap();
            for case in cases.split(',') {
                let mut z = build(case, &world, groups(case)).unwrap();
                z.set_schedule(schedule(case)).unwrap();
                if case == "adagrad" {
                    // Group 1 lies on the last rank(s) only: the others check the lr and agree.
                    z.set_group_lr(1, 0.07).unwrap();
                }
                z.set_gradient_control(Some(control())).unwrap();
                z.write_params(&initial(z.len())).unwrap();
                for t in 0..STEPS {
                    z.step(&rank_grads(z.len(), t, rank, size)).unwrap();
                }
                let report = Report {
                    rank,
                    world: size,
                    params: bits(z.params()),
                    state_bytes: z.state_bytes(),
                    skipped: z.skipped_steps().unwrap(),
                    errors: Vec::new(),
                };
                write_report(case, &report);
            }
            return;
        }
        "save" => {
            // 10 steps, save the shards, 10 more.
            let case = "adamw";
            let mut z = build(case, &world, groups(case)).unwrap();
            z.set_schedule(schedule(case)).unwrap();
            z.set_gradient_control(Some(control())).unwrap();
            z.write_params(&initial(z.len())).unwrap();
            for t in 0..STEPS / 2 {
                z.step(&rank_grads(z.len(), t, rank, size)).unwrap();
            }
            z.save_shard(dir()).unwrap();
            for t in STEPS / 2..STEPS {
                z.step(&rank_grads(z.len(), t, rank, size)).unwrap();
            }
            report.params = bits(z.params());
        }
        "resume" => {
            // Load the consolidated checkpoint, then steps 10..20; and try the 4-rank shards
            // without consolidating.
            let case = "adamw";
            let mut z = build(case, &world, groups(case)).unwrap();
            let before = z.params().to_vec();
            if let Err(e) = z.load_shard(dir()) {
                report.errors.push(e.to_string());
            }
            assert_eq!(
                bits(z.params()),
                bits(&before),
                "a refused load changed nothing"
            );
            let bytes = std::fs::read(dir().join("consolidated.safetensors")).unwrap();
            z.load_consolidated(&bytes).unwrap();
            for t in STEPS / 2..STEPS {
                z.step(&rank_grads(z.len(), t, rank, size)).unwrap();
            }
            report.params = bits(z.params());
        }
        "bad" => {
            // A different layout on the last rank.
            let mut g = groups("adam");
            if rank == size - 1 {
                g[1] = g[1].clone().tensor("extra", &[3]);
            }
            match build("adam", &world, g) {
                Ok(_) => report.errors.push("built".into()),
                Err(e) => report.errors.push(e.to_string()),
            }
            // A different optimizer on the last rank.
            let mut g = groups("adam");
            if rank == size - 1 {
                g[0].optimizer = Adam::default().lr(0.02).into();
            }
            match build("adam", &world, g) {
                Ok(_) => report.errors.push("built".into()),
                Err(e) => report.errors.push(e.to_string()),
            }
            // A backend that ignores the shard's groups (on the last rank).
            let cpu = CpuContext::with_threads(1).unwrap();
            let built = ZeroOptimizer::with_groups(&world, groups("adam"), |g| {
                if rank == size - 1 {
                    CpuOptimizer::new(&cpu, Adam::default(), 10)
                } else {
                    CpuOptimizer::with_groups(&cpu, g)
                }
            });
            match built {
                Ok(_) => report.errors.push("built".into()),
                Err(e) => report.errors.push(e.to_string()),
            }
            // A model past MPI's i32 counts: refused before anything is allocated.
            let huge = vec![ParamGroup::new(Adam::default()).tensor("w", &[1 << 31])];
            match ZeroOptimizer::with_groups(&world, huge, |g| CpuOptimizer::with_groups(&cpu, g)) {
                Ok(_) => report.errors.push("built".into()),
                Err(e) => report.errors.push(e.to_string()),
            }
            // LAMB, Adafactor and Muon, whose per-tensor sums and products need whole
            // tensors: refused on every rank.
            for o in [
                wgoptim::Optimizer::from(wgoptim::Lamb::default()),
                wgoptim::Adafactor::default().into(),
                wgoptim::Muon::default().into(),
            ] {
                let groups = vec![ParamGroup::new(o).tensor("w", &[64, 10])];
                match ZeroOptimizer::with_groups(&world, groups, |g| {
                    CpuOptimizer::with_groups(&cpu, g)
                }) {
                    Ok(_) => report.errors.push("built".into()),
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
            // A group that does not exist, and a NaN learning rate: refused on every rank.
            let mut z = build("adam", &world, groups("adam")).unwrap();
            for (g, lr) in [(2, 0.1), (1, f64::NAN)] {
                match z.set_group_lr(g, lr) {
                    Ok(()) => report.errors.push("set".into()),
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
            drop(z);
            // A gradient of the wrong length on the last rank: refused on every rank, nothing
            // changed; then the steps go on.
            let mut z = build("adam", &world, groups("adam")).unwrap();
            z.set_schedule(schedule("adam")).unwrap();
            z.set_gradient_control(Some(control())).unwrap();
            z.write_params(&initial(z.len())).unwrap();
            for t in 0..STEPS {
                if t == 3 {
                    let len = if rank == size - 1 {
                        z.len() - 1
                    } else {
                        z.len()
                    };
                    let before = z.params().to_vec();
                    match z.step(&rank_grads(len, t, rank, size)[..len]) {
                        Ok(()) => report.errors.push("stepped".into()),
                        Err(e) => report.errors.push(e.to_string()),
                    }
                    assert_eq!(bits(z.params()), bits(&before));
                }
                z.step(&rank_grads(z.len(), t, rank, size)).unwrap();
            }
            report.params = bits(z.params());
        }
        other => panic!("unknown job {other}"),
    }
    write_report(&job, &report);
}

// ---------------------------------------------------------------------------------------------
// The tests: launch mpirun, check the reports.

/// Runs `mpirun -np {np}` on the worker with `job`.
fn mpirun(np: usize, job: &str, dir: &Path, env: &[(&str, &str)]) {
    let exe = std::env::current_exe().unwrap();
    let args = [
        "--ignored",
        "--exact",
        "worker",
        "--nocapture",
        "--test-threads",
        "1",
    ];
    let env: Vec<(&str, &str)> = [("WGOPTIM_ZERO_JOB", job), ("RAYON_NUM_THREADS", "1")]
        .into_iter()
        .chain(env.iter().copied())
        .collect();
    launch(np, job, dir, &env, &exe, &args);
}

/// Runs `mpirun -np {np} program args` with `env` and `WGOPTIM_ZERO_DIR=dir`, its output in
/// `dir/{job}-np{np}.log` (shown on failure, returned on success); a run still going after
/// 240 s is killed and fails the test.
fn launch(
    np: usize,
    job: &str,
    dir: &Path,
    env: &[(&str, &str)],
    program: &Path,
    args: &[&str],
) -> String {
    launch_with(np, job, dir, env, &[], program, args)
}

/// [`launch`] with more options for mpirun.
fn launch_with(
    np: usize,
    job: &str,
    dir: &Path,
    env: &[(&str, &str)],
    mpirun_args: &[&str],
    program: &Path,
    args: &[&str],
) -> String {
    let mut cmd = Command::new("mpirun");
    let np_arg = np.to_string();
    cmd.args(["-np", &np_arg, "--oversubscribe", "--allow-run-as-root"])
        .args(["--mca", "btl_vader_single_copy_mechanism", "none"])
        .args(mpirun_args)
        .arg(program)
        .args(args)
        .env("WGOPTIM_ZERO_DIR", dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    // The ranks' output (their own test harness's, for the worker) goes to a file.
    let log_path = dir.join(format!("{job}-np{np}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    cmd.stdout(log.try_clone().unwrap()).stderr(log);
    let show = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut child = cmd.spawn().expect(
        "mpirun: install OpenMPI (apt-get install openmpi-bin libopenmpi-dev; scripts/test.sh does)",
    );
    let limit = Duration::from_secs(240);
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "mpirun -np {np} {job}: {status}\n{}",
                show()
            );
            return show();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!(
                "mpirun -np {np} {job} still running after {limit:?}: a hang\n{}",
                show()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgoptim-zero-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn reports(dir: &Path, name: &str, np: usize) -> Vec<Report> {
    (0..np)
        .map(|r| {
            let path = dir.join(format!("{name}-rank{r}.json"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_json::from_str(&text).unwrap()
        })
        .collect()
}

#[test]
fn sharded_steps_equal_one_process_bit_for_bit() {
    let dir = scratch("trajectories");
    let cases = CASES.join(",");
    let references: Vec<(Vec<u32>, u64)> = CASES
        .iter()
        .map(|case| {
            let r = reference(case, None, 0, STEPS);
            let unsharded = r.state_bytes();
            assert_eq!(
                r.skipped_steps().unwrap(),
                1,
                "{case}: the NaN step was skipped"
            );
            (bits(&r.read_params().unwrap()), unsharded)
        })
        .collect();
    for np in [1, 2, 4] {
        mpirun(np, "trajectories", &dir, &[("WGOPTIM_ZERO_CASES", &cases)]);
        for (case, (want, unsharded)) in CASES.iter().zip(&references) {
            let reports = reports(&dir, case, np);
            let mut total = 0;
            for r in &reports {
                let differ = r.params.iter().zip(want).filter(|(a, b)| a != b).count();
                assert_eq!(
                    differ, 0,
                    "{case}, np {np}, rank {}: {differ} parameters differ",
                    r.rank
                );
                assert_eq!(
                    r.skipped, 1,
                    "{case}, np {np}: the NaN step skipped on every rank"
                );
                total += r.state_bytes;
                // 1/N of the state, up to one alignment block of padding.
                let share = unsharded / np as u64;
                assert!(
                    r.state_bytes <= share + 4096,
                    "{case}, np {np}, rank {}: {} state bytes, 1/N is {share}",
                    r.rank,
                    r.state_bytes
                );
            }
            eprintln!(
                "{case}, np {np}: state bytes per rank {:?} (unsharded {unsharded})",
                reports.iter().map(|r| r.state_bytes).collect::<Vec<_>>()
            );
            assert_eq!(
                total, *unsharded,
                "{case}, np {np}: the shards' state adds up to the whole"
            );
        }
    }
}

#[test]
fn sharded_steps_on_the_gpu_backend() {
    if common::full().is_none() {
        return;
    }
    let dir = scratch("gpu");
    let want = bits(
        &reference("adamw-gpu", None, 0, STEPS)
            .read_params()
            .unwrap(),
    );
    mpirun(
        2,
        "trajectories",
        &dir,
        &[("WGOPTIM_ZERO_CASES", "adamw-gpu")],
    );
    for r in reports(&dir, "adamw-gpu", 2) {
        assert_eq!(r.params, want, "GPU shards, rank {}", r.rank);
        assert_eq!(r.skipped, 1);
    }
}

#[test]
fn saved_on_four_ranks_resumes_on_two_and_on_one() {
    let dir = scratch("resume");
    mpirun(4, "save", &dir, &[]);
    let straight = reports(&dir, "save", 4);
    let want = bits(&reference("adamw", None, 0, STEPS).read_params().unwrap());
    for r in &straight {
        assert_eq!(r.params, want, "4 ranks, rank {}", r.rank);
    }
    let shards: Vec<PathBuf> = (0..4)
        .map(|r| wgoptim::zero::shard_path(&dir, r, 4))
        .collect();
    let consolidated = wgoptim::zero::consolidate(&shards).unwrap();
    // The consolidated file is the single-process checkpoint after 10 steps.
    let ten = reference("adamw", None, 0, STEPS / 2);
    assert_eq!(
        consolidated,
        ten.checkpoint().unwrap(),
        "consolidated = one process's checkpoint"
    );
    std::fs::write(dir.join("consolidated.safetensors"), &consolidated).unwrap();
    // On one process.
    let one = reference("adamw", Some(&consolidated), STEPS / 2, STEPS);
    assert_eq!(
        bits(&one.read_params().unwrap()),
        want,
        "resumed on one process"
    );
    // On two ranks; the 4-rank shards are refused without consolidation.
    mpirun(2, "resume", &dir, &[]);
    for r in reports(&dir, "resume", 2) {
        assert_eq!(r.params, want, "resumed on 2 ranks, rank {}", r.rank);
        assert_eq!(r.errors.len(), 1, "rank {}: {:?}", r.rank, r.errors);
        assert_error(&r, 0, "world size");
    }
    // Bad shard sets.
    assert!(
        wgoptim::zero::consolidate(&shards[..3]).is_err(),
        "a missing shard"
    );
    let twice = [
        shards[0].clone(),
        shards[0].clone(),
        shards[2].clone(),
        shards[3].clone(),
    ];
    assert!(
        wgoptim::zero::consolidate(&twice).is_err(),
        "a shard given twice"
    );
    // Shards whose headers were altered: refused, not a panic.
    for (key, value) in [
        ("shard_len", serde_json::json!(1u64 << 60)),
        ("rank", serde_json::json!(9)),
        (
            "pieces",
            serde_json::json!([{"group": 7, "start": 0, "len": 4}]),
        ),
    ] {
        let bad = dir.join(format!("bad-{key}.safetensors"));
        std::fs::write(
            &bad,
            edit_shard_header(&std::fs::read(&shards[1]).unwrap(), key, value),
        )
        .unwrap();
        let mut set = shards.clone();
        set[1] = bad;
        let err = wgoptim::zero::consolidate(&set).unwrap_err();
        assert!(matches!(err, wgoptim::Error::Checkpoint(_)), "{key}: {err}");
    }
    let not_a_shard = dir.join("consolidated.safetensors");
    let err = wgoptim::zero::consolidate(&[not_a_shard])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a shard"), "{err}");
}

#[test]
fn bad_input_errs_on_every_rank_without_a_hang() {
    let dir = scratch("bad");
    mpirun(2, "bad", &dir, &[]);
    // The step refused at t = 3 was not taken: the run equals 20 good steps.
    let want = bits(&reference("adam", None, 0, STEPS).read_params().unwrap());
    for r in reports(&dir, "bad", 2) {
        assert_eq!(r.errors.len(), 10, "rank {}: {:?}", r.rank, r.errors);
        assert_error(&r, 0, "tensor layout differs");
        assert_error(&r, 1, "optimizer differs");
        let foreign = if r.rank == 1 {
            "build it from the groups given"
        } else {
            "rank 1 could not build its shard's optimizer"
        };
        for (i, want) in [
            (2, foreign),
            (3, "MPI's i32 counts"),
            (4, "lamb cannot be sharded"),
            (5, "adafactor cannot be sharded"),
            (6, "muon cannot be sharded"),
            (7, "group 2"),
            (8, "lr"),
        ] {
            assert_error(&r, i, want);
        }
        let length = &r.errors[9];
        if r.rank == 1 {
            assert!(length.contains("gradients"), "{length}");
        } else {
            assert!(length.contains("rank 1 could not step"), "{length}");
        }
        assert_eq!(r.params, want, "rank {}", r.rank);
    }
}

/// The path of example `name`, built beside this test by `cargo test --features mpi,demo`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} not built: cargo test --features mpi,demo builds it",
        path.display()
    );
    path
}

#[test]
fn digits_mlp_data_parallel_follows_one_process() {
    let example = example("zero_digits");
    let dir = scratch("digits");
    for np in [2, 4] {
        let out = launch(np, "digits", &dir, &[], &example, &["--steps", "100"]);
        let worst: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("max |loss difference| vs one process: "))
            .unwrap_or_else(|| panic!("np {np}: no loss comparison in\n{out}"))
            .parse()
            .unwrap();
        assert!(worst < 1e-5, "np {np}: loss curves {worst} apart\n{out}");
        let shares: Vec<f64> = out
            .lines()
            .filter_map(|l| l.split(" bytes = ").nth(1))
            .map(|s| s.split(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(shares.len(), np, "a memory line per rank\n{out}");
        let total: f64 = shares.iter().sum();
        assert!((total - 1.0).abs() < 1e-3, "np {np}: shares {shares:?}");
        for s in &shares {
            assert!(*s < 1.0 / np as f64 + 0.05, "np {np}: shares {shares:?}");
        }
    }
}

/// The bytes each rank really sends, counted by OpenMPI's monitoring component, equal
/// `bytes_sent_per_step` = (N−1)/N · (gradient + parameter bytes) per step, plus the few bytes
/// of the ranks' agreement before each step.
#[test]
fn bytes_sent_per_rank_are_the_collectives_minimum() {
    let example = example("zero_step");
    let dir = scratch("bytes");
    for np in [2, 4] {
        let prefix = dir.join(format!("np{np}"));
        let prefix = prefix.to_str().unwrap();
        let args = [
            "--mca",
            "pml_monitoring_enable",
            "2",
            "--mca",
            "pml_monitoring_enable_output",
            "3",
            "--mca",
            "pml_monitoring_filename",
            prefix,
        ];
        let out = launch_with(
            np,
            "bytes",
            &dir,
            &[],
            &args,
            &example,
            &["--size", "18", "--steps", "4"],
        );
        let len = 1u64 << 18;
        let steps = 5; // 4 timed and the warm-up
        let want = 2 * (np as u64 - 1) * len * 4 / np as u64;
        assert!(out.contains(&format!("sends {want},")), "np {np}: {out}");
        let mut total = 0u64;
        for r in 0..np {
            let prof = std::fs::read_to_string(format!("{prefix}.{r}.prof")).unwrap();
            let sent: u64 = prof
                .lines()
                .filter(|l| l.starts_with("C\t"))
                .map(|l| {
                    l.split('\t')
                        .nth(3)
                        .unwrap()
                        .trim_end_matches(" bytes")
                        .parse::<u64>()
                        .unwrap()
                })
                .sum();
            total += sent;
        }
        let per_step = total / np as u64 / steps;
        assert!(
            per_step >= want && per_step < want + 1024,
            "np {np}: {per_step} bytes sent per rank per step, the minimum is {want}"
        );
    }
}

/// A shard file with `key` of its `wgoptim-zero` header set to `value`.
fn edit_shard_header(bytes: &[u8], key: &str, value: serde_json::Value) -> Vec<u8> {
    use safetensors::SafeTensors;
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let mut map = meta.metadata().clone().unwrap();
    let mut header: serde_json::Value = serde_json::from_str(&map["wgoptim-zero"]).unwrap();
    header[key] = value;
    map.insert("wgoptim-zero".into(), header.to_string());
    let file = SafeTensors::deserialize(bytes).unwrap();
    safetensors::serialize(file.tensors(), Some(map)).unwrap()
}
