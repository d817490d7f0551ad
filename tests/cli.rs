//! The `wgoptim` binary: output, files and exit codes, bad arguments included (a clear message
//! and a non-zero exit, never a panic: a panic would exit with 101).

use std::process::{Command, Output};

fn wgoptim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgoptim"))
        .args(args)
        .output()
        .expect("run wgoptim")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A refusal: exit 1 or 2 (never a panic's 101) and `message` on stderr.
fn assert_refused(o: &Output, message: &str, what: &str) {
    let code = o.status.code();
    assert!(
        code == Some(1) || code == Some(2),
        "{what}: exit {code:?}\n{}",
        stderr(o)
    );
    assert!(
        stderr(o).contains(message),
        "{what}: stderr lacks {message:?}:\n{}",
        stderr(o)
    );
}

#[test]
fn schedule_prints_pytorch_csv() {
    // torch.optim.lr_scheduler.StepLR(SGD(..., lr=1.0), step_size=3, gamma=0.5): 1,1,1,.5,.5,.5,.25
    let o = wgoptim(&[
        "schedule",
        "StepLR",
        "step_size=3",
        "gamma=0.5",
        "lr=1.0",
        "--steps",
        "7",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "step,lr\n0,1\n1,1\n2,1\n3,0.5\n4,0.5\n5,0.5\n6,0.25\n"
    );
}

#[test]
fn schedule_prints_momentum_where_cycled() {
    let o = wgoptim(&[
        "schedule",
        "onecycle",
        "max_lr=0.1",
        "total_steps=10",
        "--steps",
        "11",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "step,lr,momentum");
    assert_eq!(lines.len(), 12);
    assert!(
        lines[1].starts_with("0,0.004") && lines[1].ends_with(",0.95"),
        "{}",
        lines[1]
    );
    let no = wgoptim(&[
        "schedule",
        "OneCycleLR",
        "max_lr=0.1",
        "total_steps=10",
        "cycle_momentum=false",
        "--steps",
        "3",
    ]);
    assert!(stdout(&no).starts_with("step,lr\n"));
}

#[test]
fn schedule_plots_png_and_svg() {
    let dir = std::env::temp_dir().join(format!("wgoptim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, magic) in [
        ("cyclic.png", &b"\x89PNG"[..]),
        ("cyclic.svg", &b"<svg"[..]),
    ] {
        let path = dir.join(file);
        let o = wgoptim(&[
            "schedule",
            "CyclicLR",
            "base_lr=0.01",
            "max_lr=0.1",
            "step_size_up=5",
            "mode=triangular2",
            "--steps",
            "40",
            "--plot",
            path.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() > 1000, "{file} is {} bytes", bytes.len());
        assert!(
            bytes.windows(magic.len()).take(200).any(|w| w == magic),
            "{file} is not a {magic:?} file"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn schedule_plateau_takes_metrics() {
    let o = wgoptim(&[
        "schedule",
        "ReduceLROnPlateau",
        "factor=0.5",
        "patience=1",
        "metrics=1,1,1,1,1",
        "--steps",
        "6",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "step,lr\n0,0.1\n1,0.1\n2,0.1\n3,0.05\n4,0.05\n5,0.025\n"
    );
}

#[test]
fn bad_arguments_exit_non_zero_with_a_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["schedule", "NoSuchLR"], "unknown schedule"),
        (
            &["schedule", "StepLR", "step_size=3", "gama=0.5"],
            "unknown parameter `gama`",
        ),
        (&["schedule", "StepLR"], "needs step_size"),
        (
            &["schedule", "StepLR", "step_size=x"],
            "not a non-negative integer",
        ),
        (&["schedule", "CosineAnnealingLR", "T_max=0"], "T_max"),
        (&["schedule", "MultiStepLR", "milestones=5,3"], "milestones"),
        (
            &[
                "schedule",
                "OneCycleLR",
                "max_lr=0.1",
                "total_steps=10",
                "pct_start=1.5",
            ],
            "pct_start",
        ),
        (
            &[
                "schedule",
                "OneCycleLR",
                "max_lr=0.1",
                "total_steps=10",
                "--steps",
                "12",
            ],
            "past its total_steps",
        ),
        (
            &["schedule", "ReduceLROnPlateau", "factor=1.0", "metrics=1"],
            "factor",
        ),
        (
            &["schedule", "ReduceLROnPlateau", "metrics=1", "--steps", "5"],
            "need 4 metrics",
        ),
        (&["schedule", "ExponentialLR", "gamma=-1"], "gamma"),
        (
            &["schedule", "StepLR", "step_size=2", "--plot", "/tmp/x.jpg"],
            ".png or .svg",
        ),
        (&["schedule", "StepLR", "step_size"], "not key=value"),
        (&["bench", "--optimizers", "bogus"], "unknown optimizer"),
        (&["bench", "--sizes", "2^x"], "not a positive size"),
        (
            &["bench", "--device", "cpu", "--max-norm=-1", "--sizes", "64"],
            "max_norm",
        ),
        (&["tune", "--optimizers", "bogus"], "unknown optimizer"),
        (&["bench", "--state-dtype", "int4"], "unknown state dtype"),
        (
            &["memory", "--optimizers", "rmsprop-centered@int8"],
            "unknown optimizer",
        ),
    ];
    for (args, message) in cases {
        assert_refused(&wgoptim(args), message, &format!("{args:?}"));
    }
}

fn npy_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgoptim-replay-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn p(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

/// The golden inputs and PyTorch results of tests/golden_pytorch.rs.
mod golden {
    #![allow(dead_code)]
    include!("golden/pytorch_optim.rs");
}
mod lion_reference {
    #![allow(dead_code)]
    include!("golden/lion_reference.rs");
}
mod lamb_reference {
    #![allow(dead_code)]
    include!("golden/lamb_reference.rs");
}
mod adafactor_golden {
    #![allow(dead_code)]
    include!("golden/pytorch_adafactor.rs");
}
mod muon_golden {
    #![allow(dead_code)]
    include!("golden/muon_reference.rs");
}
use golden::{ADAMAX_L2, ADAMW, ASGD_AVERAGING, GRADS, NADAM_L2, PARAMS, RADAM_L2, RPROP_BOUNDS};

/// `wgoptim replay OPTIMIZER… --shape SHAPE` of one matrix (`p0`, gradient `rows`) on the GPU and
/// the CPU: both end within 1e-6 (absolute or relative) of torch's `golden`.
fn replay_matrix(
    dir: &std::path::Path,
    optimizer: &[&str],
    shape: &str,
    p0: &[f32],
    rows: &[&[f32]],
    golden: &[f32],
) {
    let (p0_path, g, out) = (dir.join("m0.npy"), dir.join("mg.npy"), dir.join("mout.npy"));
    ndarray_npy::write_npy(&p0_path, &ndarray::Array1::from(p0.to_vec())).unwrap();
    let flat: Vec<f32> = rows.concat();
    let grads = ndarray::Array2::from_shape_vec((rows.len(), p0.len()), flat).unwrap();
    ndarray_npy::write_npy(&g, &grads).unwrap();
    for device in ["gpu", "cpu"] {
        let mut args = vec!["replay"];
        args.extend_from_slice(optimizer);
        args.extend_from_slice(&[
            "--shape",
            shape,
            "--params",
            p(&p0_path),
            "--grads",
            p(&g),
            "--out",
            p(&out),
            "--device",
            device,
        ]);
        let o = wgoptim(&args);
        let name = optimizer[0];
        assert!(o.status.success(), "{name} {device}: {}", stderr(&o));
        let got: ndarray::Array1<f32> = ndarray_npy::read_npy(&out).unwrap();
        assert_eq!(got.len(), golden.len());
        for (a, &b) in got.iter().zip(golden) {
            assert!(
                approx::relative_eq!(*a, b, epsilon = 1e-6, max_relative = 1e-6),
                "{name} {device}: {a} vs torch {b}"
            );
        }
    }
}

#[test]
fn replay_reproduces_pytorch_on_gpu_and_cpu() {
    let dir = npy_dir("ok");
    let (p0, g, out, lrs) = (
        dir.join("p0.npy"),
        dir.join("g.npy"),
        dir.join("out.npy"),
        dir.join("lrs.npy"),
    );
    ndarray_npy::write_npy(&p0, &ndarray::Array1::from(PARAMS.to_vec())).unwrap();
    let rows = ndarray::Array2::from_shape_vec((5, 7), GRADS.concat()).unwrap();
    ndarray_npy::write_npy(&g, &rows).unwrap();
    let cases: [(&[&str], &[f32; 7], f64); 8] = [
        (
            &["adamw", "lr=0.01", "betas=(0.8, 0.99)", "weight_decay=0.1"],
            &ADAMW[4],
            0.01,
        ),
        (
            &["Adamax", "lr=0.05", "betas=0.8,0.99", "weight_decay=0.1"],
            &ADAMAX_L2[4],
            0.05,
        ),
        (
            &["radam", "lr=0.05", "betas=0.8,0.9", "weight_decay=0.1"],
            &RADAM_L2[4],
            0.05,
        ),
        (
            &[
                "NAdam",
                "lr=0.05",
                "betas=0.8,0.99",
                "weight_decay=0.1",
                "momentum_decay=0.01",
            ],
            &NADAM_L2[4],
            0.05,
        ),
        (
            &["Rprop", "lr=0.05", "etas=0.4,1.5", "step_sizes=0.01,0.1"],
            &RPROP_BOUNDS[4],
            0.05,
        ),
        (
            &[
                "ASGD",
                "lr=0.05",
                "lambd=0.01",
                "alpha=0.5",
                "t0=2",
                "weight_decay=0.1",
            ],
            &ASGD_AVERAGING[4],
            0.05,
        ),
        (
            &["lion", "lr=0.05", "betas=0.9,0.99"],
            &lion_reference::LION[4],
            0.05,
        ),
        (
            &["LAMB", "lr=0.05", "weight_decay=0.1"],
            &lamb_reference::LAMB[4],
            0.05,
        ),
    ];
    for ((optimizer, golden, lr), device) in cases
        .iter()
        .flat_map(|c| ["gpu", "cpu"].map(move |d| (c, d)))
    {
        let mut args = vec!["replay"];
        args.extend_from_slice(optimizer);
        args.extend_from_slice(&[
            "--params",
            p(&p0),
            "--grads",
            p(&g),
            "--out",
            p(&out),
            "--device",
            device,
            "--lrs-out",
            p(&lrs),
        ]);
        let o = wgoptim(&args);
        assert!(o.status.success(), "{optimizer:?} {device}: {}", stderr(&o));
        let got: ndarray::Array1<f32> = ndarray_npy::read_npy(&out).unwrap();
        for (a, &b) in got.iter().zip(golden.iter()) {
            assert!(
                approx::relative_eq!(*a, b, epsilon = 1e-6, max_relative = 1e-6),
                "{optimizer:?} {device}: {a} vs torch {b}"
            );
        }
        let lrs: ndarray::Array1<f64> = ndarray_npy::read_npy(&lrs).unwrap();
        assert_eq!(lrs.to_vec(), vec![*lr; 5]);
    }
    // With a schedule whose base is the optimizer's lr: StepLR(step_size=2, gamma=0.5).
    let o = wgoptim(&[
        "replay",
        "sgd",
        "lr=0.4",
        "--schedule",
        "StepLR step_size=2 gamma=0.5",
        "--params",
        p(&p0),
        "--grads",
        p(&g),
        "--out",
        p(&out),
        "--lrs-out",
        p(&lrs),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lrs: ndarray::Array1<f64> = ndarray_npy::read_npy(&lrs).unwrap();
    assert_eq!(lrs.to_vec(), vec![0.4, 0.4, 0.2, 0.2, 0.1]);
    // Adafactor over a matrix (`--shape 3,5`): the golden model's first tensor, which torch
    // steps on its own (its RMS and rows and columns are its own).
    let adafactor = [
        "Adafactor",
        "lr=0.05",
        "beta2_decay=-0.5",
        "eps=1e-20,1e-2",
        "d=2",
        "weight_decay=0.1",
        "maximize=true",
    ];
    let rows: Vec<&[f32]> = adafactor_golden::GRADS.iter().map(|r| &r[..15]).collect();
    replay_matrix(
        &dir,
        &adafactor,
        "3,5",
        &adafactor_golden::PARAMS[..15],
        &rows,
        &adafactor_golden::ADAFACTOR_DECAY_MAXIMIZE[7][..15],
    );
    // Muon over a matrix (`--shape 7,3`): the golden model's tall matrix, which torch steps
    // on its own; against torch's rule with the iteration in f32, as in golden_pytorch.rs.
    let muon = [
        "Muon",
        "lr=0.02",
        "nesterov=false",
        "weight_decay=0",
        "ns_steps=4",
        "adjust_lr_fn=spectral_unclamped",
    ];
    let tall = 24..45;
    let rows: Vec<&[f32]> = muon_golden::GRADS
        .iter()
        .map(|r| &r[tall.clone()])
        .collect();
    replay_matrix(
        &dir,
        &muon,
        "7,3",
        &muon_golden::PARAMS[tall.clone()],
        &rows,
        &muon_golden::MUON_PLAIN_UNCLAMPED_F32[5][tall],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn replay_refuses_bad_files_and_flags() {
    let dir = npy_dir("bad");
    let p0 = dir.join("p0.npy");
    ndarray_npy::write_npy(&p0, &ndarray::Array1::from(vec![1.0f32; 4])).unwrap();
    let g = dir.join("g.npy");
    ndarray_npy::write_npy(&g, &ndarray::Array2::<f32>::zeros((3, 4))).unwrap();
    let g64 = dir.join("g64.npy");
    ndarray_npy::write_npy(&g64, &ndarray::Array2::<f64>::zeros((3, 4))).unwrap();
    let g1d = dir.join("g1d.npy");
    ndarray_npy::write_npy(&g1d, &ndarray::Array1::<f32>::zeros(4)).unwrap();
    let g5 = dir.join("g5.npy");
    ndarray_npy::write_npy(&g5, &ndarray::Array2::<f32>::zeros((3, 5))).unwrap();
    let g12 = dir.join("g12.npy");
    ndarray_npy::write_npy(&g12, &ndarray::Array2::<f32>::zeros((12, 4))).unwrap();
    let junk = dir.join("junk.npy");
    std::fs::write(&junk, b"not a numpy file").unwrap();
    let out = dir.join("out.npy");
    let run = |opt: &[&str], params: &std::path::Path, grads: &std::path::Path| {
        let mut args = vec!["replay"];
        args.extend_from_slice(opt);
        args.extend_from_slice(&[
            "--params",
            p(params),
            "--grads",
            p(grads),
            "--out",
            p(&out),
            "--device",
            "cpu",
        ]);
        wgoptim(&args)
    };
    let cases: Vec<(Output, &str)> = vec![
        (run(&["adam"], &dir.join("missing.npy"), &g), "missing.npy"),
        (run(&["adam"], &p0, &g64), "2-D float32"),
        (run(&["adam"], &p0, &g1d), "2-D float32"),
        (
            run(&["adam"], &p0, &g5),
            "rows have 5 gradients but there are 4 parameters",
        ),
        (run(&["adam"], &junk, &g), "1-D float32"),
        (run(&["adam"], &g, &g), "1-D float32"),
        (run(&["lbfgs"], &p0, &g), "unknown optimizer"),
        (
            run(&["adam", "beta1=0.9"], &p0, &g),
            "unknown parameter `beta1`",
        ),
        (
            run(&["adam", "betas=0.9"], &p0, &g),
            "betas needs two values",
        ),
        (run(&["adam", "betas=0.9,1.0"], &p0, &g), "betas.1"),
        (
            run(&["adafactor", "--shape", "3,3"], &p0, &g),
            "holds 9 elements but there are 4 parameters",
        ),
        (
            run(&["adafactor", "eps=1e-3"], &p0, &g),
            "expected two values",
        ),
        (run(&["adafactor", "d=0.5"], &p0, &g), "`d`"),
        (run(&["muon"], &p0, &g), "only supports 2-D parameters"),
        (
            run(&["muon", "ns_steps=100", "--shape", "2,2"], &p0, &g),
            "ns_steps",
        ),
        (
            run(&["muon", "adjust_lr_fn=sqrt", "--shape", "2,2"], &p0, &g),
            "adjust_lr_fn `sqrt`",
        ),
        (
            run(&["muon", "ns_coefficients=1,2", "--shape", "2,2"], &p0, &g),
            "ns_coefficients needs three values",
        ),
        (
            run(&["muon", "state_dtype=bf16", "--shape", "2,2"], &p0, &g),
            "low-precision",
        ),
        (
            run(&["sgd", "nesterov=true"], &p0, &g),
            "nesterov needs momentum",
        ),
        (run(&["sgd", "lr=-1"], &p0, &g), "lr"),
        (
            run(
                &[
                    "adagrad",
                    "--schedule",
                    "OneCycleLR max_lr=0.1 total_steps=10",
                ],
                &p0,
                &g,
            ),
            "cycles momentum",
        ),
        (
            run(
                &["adam", "--schedule", "OneCycleLR max_lr=0.1 total_steps=10"],
                &p0,
                &g12,
            ),
            "past its total_steps",
        ),
    ];
    for (o, message) in &cases {
        assert_refused(o, message, "replay");
    }
    assert!(!out.exists(), "no output is written for refused input");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn verify_memory_and_bench_run_end_to_end() {
    let o = wgoptim(&[
        "verify", "--size", "1001", "--steps", "3", "--only", "nesterov",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("sgd-nesterov") && stdout(&o).contains(" ok"),
        "{}",
        stdout(&o)
    );

    let o = wgoptim(&[
        "memory",
        "--params",
        "4096",
        "--optimizers",
        "adam-amsgrad,sgd",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let per_param: Vec<f64> = v["optimizers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state_bytes_per_param"].as_f64().unwrap())
        .collect();
    assert_eq!(per_param, [12.0, 0.0]);

    // Low-precision state, from the allocations: int8 is 1 B plus one f32 absmax per 256
    // elements per state tensor, bf16 2 B.
    let o = wgoptim(&[
        "memory",
        "--params",
        "2^20",
        "--optimizers",
        "adamw@int8,adamw@bf16,sgd-momentum@int8,adagrad@int8",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["optimizers"].as_array().unwrap();
    let per_param: Vec<f64> = rows
        .iter()
        .map(|r| r["state_bytes_per_param"].as_f64().unwrap())
        .collect();
    assert_eq!(per_param, [2.0 * 1.015625, 4.0, 1.015625, 1.015625]);
    assert!(per_param[0] <= 2.05 && per_param[2] <= 1.03);
    let moved = rows[0]["bytes_moved_per_param"].as_f64().unwrap();
    assert_eq!(moved, 12.0 + 2.0 * 2.0 * 1.015625);

    // verify covers the low-precision variants: 0 ULP against the twin.
    let o = wgoptim(&[
        "verify", "--size", "3001", "--steps", "3", "--only", "adamw",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for name in ["adamw ", "adamw@bf16", "adamw@int8", "adamw-amsgrad@int8"] {
        assert!(stdout(&o).contains(name), "{name}: {}", stdout(&o));
    }

    let o = wgoptim(&[
        "bench",
        "--sizes",
        "4096",
        "--tensors",
        "1,8",
        "--reps",
        "2",
        "--warmup",
        "1",
        "--optimizers",
        "adamw,muon",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    // Muon (matrices only) runs over 64 × 64, and over 8 matrices of 32 × 16.
    for r in rows {
        let bytes = if r["kernel"] == "muon" { 20.0 } else { 28.0 };
        assert!(r["median_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["bytes_per_param"].as_f64(), Some(bytes), "{r}");
    }
    assert!(rows.iter().all(|r| r["shape"].as_str().is_some()));

    // Each precision beside f32, in the same run.
    let o = wgoptim(&[
        "bench",
        "--sizes",
        "4096",
        "--reps",
        "2",
        "--warmup",
        "1",
        "--optimizers",
        "adamw,rmsprop-centered",
        "--state-dtype",
        "f32,bf16,int8",
        "--grad-dtype",
        "f32,bf16",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let kernels: Vec<&str> = rows.iter().map(|r| r["kernel"].as_str().unwrap()).collect();
    // Centered RMSprop has no low-precision state: it runs in f32 state only.
    assert_eq!(
        kernels,
        [
            "adamw",
            "rmsprop-centered",
            "adamw@bf16",
            "adamw@int8",
            "adamw@grad-bf16",
            "rmsprop-centered@grad-bf16",
            "adamw@bf16@grad-bf16",
            "adamw@int8@grad-bf16"
        ]
    );
    // AdamW with bf16 gradients and int8 state moves 8 + 2 + 2·2.03 B per parameter.
    assert_eq!(rows[7]["bytes_per_param"].as_f64(), Some(14.0625));

    // The CPU backend, on 2 threads, beside a host copy, with clipping and skipping.
    let o = wgoptim(&[
        "bench",
        "--device",
        "cpu",
        "--threads",
        "2",
        "--sizes",
        "70000",
        "--tensors",
        "1,3",
        "--reps",
        "2",
        "--warmup",
        "1",
        "--optimizers",
        "adam,sgd,muon",
        "--max-norm",
        "1",
        "--skip-nonfinite",
        "--csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{out}");
    assert!(rows.iter().all(|r| r.contains(",cpu2,70000,")), "{out}");

    // Tuning two variants at a small size, printed as a table; nothing cached.
    let o = wgoptim(&[
        "tune",
        "--optimizers",
        "adam,sgd-momentum",
        "--size",
        "4096",
        "--steps",
        "1",
        "--rounds",
        "1",
        "--no-cache",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("c1")
            && out.contains("s8")
            && out.contains("adam ")
            && out.contains("not cached"),
        "{out}"
    );
}
