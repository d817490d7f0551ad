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
    ];
    for (args, message) in cases {
        let o = wgoptim(args);
        let code = o.status.code();
        assert!(
            code == Some(1) || code == Some(2),
            "{args:?}: exit {code:?}\n{}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(message),
            "{args:?}: stderr lacks {message:?}:\n{}",
            stderr(&o)
        );
    }
}
