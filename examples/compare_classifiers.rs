//! Logistic regression and a small MLP trained with each optimizer (the update on the GPU) on a
//! synthetic make_classification-style set and on the UCI digits; loss and accuracy curves of
//! all optimizers in one picture per data set, and a table of steps to a loss threshold and the
//! final accuracy. `cargo run --release --example compare_classifiers` writes
//! `out/compare_classifiers/*.png`.

use wgoptim::GpuContext;
use wgoptim::demo::classify::{Model, draw_runs, optimizers, train};
use wgoptim::demo::data::{digits, make_classification};

const STEPS: usize = 150;

fn main() -> wgoptim::Result<()> {
    let ctx = GpuContext::new()?;
    let dir = std::path::Path::new("out/compare_classifiers");
    std::fs::create_dir_all(dir).map_err(|e| wgoptim::Error::Argument(e.to_string()))?;
    let sets = [
        (
            "synthetic",
            make_classification(1000, 20, 5, 5, 2, 2, 1.0, 0.01, 3)?,
            0.4,
        ),
        ("digits", digits()?, 0.25),
    ];
    println!(
        "{:<10} {:<22} {:<14} {:>14} {:>11} {:>9}",
        "data", "model", "optimizer", "steps to loss", "final loss", "test acc"
    );
    for (tag, data, threshold) in sets {
        let (train_set, test_set) = data.split(0.2, 5);
        let mut runs = Vec::new();
        for model in [Model::Logistic, Model::Mlp { hidden: 32 }] {
            let mut model_runs = Vec::new();
            for (name, optimizer) in optimizers() {
                let run = train(
                    &ctx,
                    model,
                    (name, optimizer),
                    &train_set,
                    &test_set,
                    STEPS,
                    11,
                )?;
                let reached = run
                    .steps_to(threshold)
                    .map_or(format!("> {STEPS}"), |s| s.to_string());
                println!(
                    "{tag:<10} {:<22} {name:<14} {:>14} {:>11.4} {:>8.1}%",
                    model.name(),
                    format!("{reached} (≤ {threshold})"),
                    run.train_loss[STEPS],
                    100.0 * run.test_accuracy[STEPS]
                );
                model_runs.push(run);
            }
            runs.push((model, model_runs));
        }
        let file = dir.join(format!("{tag}.png"));
        draw_runs(&file, &data.name, &runs)?;
        println!("wrote {}", file.display());
    }
    Ok(())
}
