use crate::error::Result;
use crate::optim::ensure;

/// One point of an LR-finder sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FinderPoint {
    /// The learning rate of the step.
    pub lr: f64,
    /// The loss the caller reported.
    pub loss: f64,
    /// The loss smoothed by a bias-corrected exponential average (β = 0.98).
    pub smoothed: f64,
}

/// The learning-rate range test (Smith 2015, as fastai runs it): the learning rate rises
/// exponentially from `start` to `end` over `steps` steps; the caller trains one step at each
/// [`LrFinder::lr`] and reports the loss; the sweep stops when the smoothed loss exceeds 4× its
/// best; [`LrFinder::suggestion`] is the lr where the smoothed loss falls fastest per log-lr.
#[derive(Clone, Debug, PartialEq)]
pub struct LrFinder {
    start: f64,
    end: f64,
    steps: u64,
    beta: f64,
    average: f64,
    best: f64,
    points: Vec<FinderPoint>,
    stopped: bool,
}

impl LrFinder {
    /// A sweep from `start` to `end` (fastai: 1e-7 to 10) over `steps` ≥ 2 steps.
    pub fn new(start: f64, end: f64, steps: u64) -> Result<Self> {
        ensure(
            start.is_finite() && start > 0.0,
            "start_lr",
            start,
            "must be finite and > 0",
        )?;
        ensure(
            end.is_finite() && end > start,
            "end_lr",
            end,
            "must be finite and > start_lr",
        )?;
        ensure(steps >= 2, "steps", steps as f64, "must be >= 2")?;
        Ok(Self {
            start,
            end,
            steps,
            beta: 0.98,
            average: 0.0,
            best: f64::INFINITY,
            points: Vec::new(),
            stopped: false,
        })
    }

    /// The learning rate of step `i` (0-based): `start·(end/start)^(i/(steps−1))`.
    pub fn lr(&self, i: u64) -> f64 {
        self.start * (self.end / self.start).powf(i as f64 / (self.steps - 1) as f64)
    }

    /// The learning rate the next step should use, or `None` when the sweep is over.
    pub fn next_lr(&self) -> Option<f64> {
        let i = self.points.len() as u64;
        (!self.stopped && i < self.steps).then(|| self.lr(i))
    }

    /// Records the loss of the step run at [`LrFinder::next_lr`]; returns whether to go on.
    /// A non-finite loss or a smoothed loss above 4× the best ends the sweep.
    pub fn record(&mut self, loss: f64) -> bool {
        let Some(lr) = self.next_lr() else {
            return false;
        };
        let n = self.points.len() as i32 + 1;
        self.average = self.beta * self.average + (1.0 - self.beta) * loss;
        let smoothed = self.average / (1.0 - self.beta.powi(n));
        self.points.push(FinderPoint { lr, loss, smoothed });
        if !smoothed.is_finite() || smoothed > 4.0 * self.best {
            self.stopped = true;
        }
        self.best = self.best.min(smoothed);
        self.next_lr().is_some()
    }

    /// Every point recorded so far.
    pub fn points(&self) -> &[FinderPoint] {
        &self.points
    }

    /// The lr of steepest descent of the smoothed loss against log₁₀ lr (central differences,
    /// one-sided at the ends, as `numpy.gradient`), over the points before divergence.
    pub fn suggestion(&self) -> Option<f64> {
        let pts: Vec<&FinderPoint> = self
            .points
            .iter()
            .filter(|p| p.smoothed.is_finite())
            .collect();
        if pts.len() < 3 {
            return None;
        }
        let x: Vec<f64> = pts.iter().map(|p| p.lr.log10()).collect();
        let y: Vec<f64> = pts.iter().map(|p| p.smoothed).collect();
        let n = pts.len();
        let slope = |i: usize| {
            let (a, b) = if i == 0 {
                (0, 1)
            } else if i == n - 1 {
                (n - 2, n - 1)
            } else {
                (i - 1, i + 1)
            };
            (y[b] - y[a]) / (x[b] - x[a])
        };
        (0..n)
            .min_by(|&a, &b| slope(a).total_cmp(&slope(b)))
            .map(|i| pts[i].lr)
    }
}
