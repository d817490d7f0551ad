//! Training and sweep jobs: run on a thread of their own, polled by the page while they run.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use super::api::{Problem, SweepCurve, SweepRequest, TrainRequest};
use crate::demo::Engine;
use crate::demo::classify::{Run, Trainer, sweep};
use crate::error::{Error, Result};

/// Jobs kept for polling (the oldest finished one goes first).
const KEPT: usize = 16;
/// Jobs running at once.
const RUNNING: usize = 4;

/// What a job has produced so far.
#[derive(Clone, Debug, Default)]
struct Progress {
    done: bool,
    error: Option<String>,
    runs: Vec<Run>,
    sweeps: Vec<SweepCurve>,
}

/// One job.
struct Job {
    id: u64,
    kind: &'static str,
    labels: Vec<String>,
    steps: usize,
    threshold: f64,
    cancelled: AtomicBool,
    progress: Mutex<Progress>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A job thread that panicked leaves its progress as it was: still readable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a job's body; a panic in it ends the job with an error instead of leaving it running
/// for ever (the page would poll it without end).
fn guarded(run: impl FnOnce() -> Result<()>) -> Result<()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .unwrap_or_else(|_| Err(Error::Argument("internal error in the job".into())))
}

impl Job {
    fn finish(&self, result: Result<()>) {
        let mut p = lock(&self.progress);
        p.done = true;
        p.error = result.err().map(|e| e.to_string());
    }
}

/// Why a job did not start.
pub(crate) enum Refused {
    /// As many jobs as may run are running (429).
    Busy(String),
    /// The request is wrong (or the engine failed).
    Error(Error),
}

impl From<Error> for Refused {
    fn from(e: Error) -> Self {
        Refused::Error(e)
    }
}

/// The jobs of one server.
#[derive(Default)]
pub(crate) struct Jobs {
    inner: Mutex<(u64, VecDeque<Arc<Job>>)>,
}

/// One optimizer's row of a training job's table.
#[derive(Serialize)]
struct Row<'a> {
    label: &'a str,
    steps_to_threshold: Option<usize>,
    final_loss: Option<f64>,
    final_accuracy: Option<f64>,
}

impl Jobs {
    /// Registers a job, or refuses it while [`RUNNING`] jobs run.
    fn add(
        &self,
        kind: &'static str,
        labels: Vec<String>,
        steps: usize,
        threshold: f64,
    ) -> std::result::Result<Arc<Job>, Refused> {
        let mut inner = lock(&self.inner);
        let running = inner.1.iter().filter(|j| !lock(&j.progress).done).count();
        if running >= RUNNING {
            return Err(Refused::Busy(format!(
                "{running} jobs are running already; wait for one to finish or cancel it"
            )));
        }
        inner.0 += 1;
        let job = Arc::new(Job {
            id: inner.0,
            kind,
            labels,
            steps,
            threshold,
            cancelled: AtomicBool::new(false),
            progress: Mutex::new(Progress::default()),
        });
        while inner.1.len() >= KEPT {
            match inner.1.iter().position(|j| lock(&j.progress).done) {
                Some(k) => drop(inner.1.remove(k)),
                None => break,
            }
        }
        inner.1.push_back(job.clone());
        Ok(job)
    }

    fn get(&self, id: u64) -> Option<Arc<Job>> {
        lock(&self.inner).1.iter().find(|j| j.id == id).cloned()
    }

    /// Starts training every optimizer of `req` side by side, a step of each in turn.
    pub fn train(
        &self,
        engine: Arc<dyn Engine>,
        req: &TrainRequest,
    ) -> std::result::Result<u64, Refused> {
        let Problem {
            model,
            train,
            test,
            optimizers: opts,
        } = req.check()?;
        let labels = opts.iter().map(|(l, _)| l.clone()).collect();
        let job = self.add("train", labels, req.steps, req.threshold)?;
        let (steps, seed) = (req.steps, req.model.seed);
        let id = job.id;
        std::thread::spawn(move || {
            let run = || -> Result<()> {
                let mut trainers = Vec::new();
                for (label, opt) in &opts {
                    trainers.push(Trainer::new(&*engine, model, *opt, &train, seed)?);
                    lock(&job.progress).runs.push(Run {
                        optimizer: label.clone(),
                        train_loss: Vec::new(),
                        test_accuracy: Vec::new(),
                    });
                }
                for step in 0..=steps {
                    if job.cancelled.load(Ordering::Relaxed) {
                        return Err(Error::Argument("cancelled".into()));
                    }
                    let points = trainers
                        .iter_mut()
                        .map(|t| t.next(&train, &test, step < steps))
                        .collect::<Result<Vec<_>>>()?;
                    let mut p = lock(&job.progress);
                    for (run, (loss, accuracy)) in p.runs.iter_mut().zip(points) {
                        run.train_loss.push(loss);
                        run.test_accuracy.push(accuracy);
                    }
                }
                Ok(())
            };
            job.finish(guarded(run));
        });
        Ok(id)
    }

    /// Starts the learning-rate sweep of every optimizer of `req`.
    pub fn sweep(
        &self,
        engine: Arc<dyn Engine>,
        req: &SweepRequest,
    ) -> std::result::Result<u64, Refused> {
        let (
            Problem {
                model,
                train,
                test,
                optimizers: opts,
            },
            lrs,
        ) = req.check()?;
        let labels = opts.iter().map(|(l, _)| l.clone()).collect();
        let job = self.add("sweep", labels, req.steps, f64::NAN)?;
        let (steps, seed) = (req.steps, req.model.seed);
        let id = job.id;
        std::thread::spawn(move || {
            let run = || -> Result<()> {
                for (label, opt) in &opts {
                    lock(&job.progress).sweeps.push(SweepCurve {
                        label: label.clone(),
                        points: Vec::new(),
                    });
                    for &lr in &lrs {
                        if job.cancelled.load(Ordering::Relaxed) {
                            return Err(Error::Argument("cancelled".into()));
                        }
                        let point =
                            sweep(&*engine, model, *opt, &train, &test, &[lr], steps, seed)?;
                        if let Some(curve) = lock(&job.progress).sweeps.last_mut() {
                            curve.points.extend(point);
                        }
                    }
                }
                Ok(())
            };
            job.finish(guarded(run));
        });
        Ok(id)
    }

    /// The job's state as JSON: its curves from step `from` on (training) or its whole sweep,
    /// and once a training job is done, its table. `None` for an unknown job.
    pub fn poll(&self, id: u64, from: usize) -> Option<serde_json::Value> {
        let job = self.get(id)?;
        let p = lock(&job.progress).clone();
        let tail = |v: &Vec<f64>| v.get(from.min(v.len())..).unwrap_or_default().to_vec();
        let table: Vec<Row> = p
            .runs
            .iter()
            .map(|r| Row {
                label: &r.optimizer,
                steps_to_threshold: r.steps_to(job.threshold),
                final_loss: p.done.then(|| r.train_loss.last().copied()).flatten(),
                final_accuracy: p.done.then(|| r.test_accuracy.last().copied()).flatten(),
            })
            .collect();
        Some(serde_json::json!({
            "id": job.id,
            "kind": job.kind,
            "labels": job.labels,
            "steps": job.steps,
            "done": p.done,
            "error": p.error,
            "from": from,
            "loss": p.runs.iter().map(|r| tail(&r.train_loss)).collect::<Vec<_>>(),
            "accuracy": p.runs.iter().map(|r| tail(&r.test_accuracy)).collect::<Vec<_>>(),
            "table": if job.kind == "train" && p.done { serde_json::json!(table) } else { serde_json::Value::Null },
            "sweeps": p.sweeps,
        }))
    }

    /// Asks a job to stop after its current step; false for an unknown job.
    pub fn cancel(&self, id: u64) -> bool {
        match self.get(id) {
            Some(job) => {
                job.cancelled.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_job_ends_with_an_error() {
        let r = guarded(|| panic!("a bug in a job"));
        assert!(matches!(r, Err(Error::Argument(m)) if m.contains("internal error")));
        assert!(guarded(|| Ok(())).is_ok());
    }
}
