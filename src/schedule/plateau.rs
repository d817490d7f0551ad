use crate::error::Result;
use crate::optim::{ensure, setters};

/// Whether a lower or a higher metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// How `threshold` decides that a metric improved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdMode {
    /// Better than `best·(1 ∓ threshold)`.
    Rel,
    /// Better than `best ∓ threshold`.
    Abs,
}

/// ReduceLROnPlateau: fed a metric each epoch, multiplies the learning rate by `factor` after
/// more than `patience` epochs without improvement, then waits `cooldown` epochs. Semantics and
/// defaults are PyTorch's (mode min, factor 0.1, patience 10, threshold 1e-4 relative, cooldown
/// 0, min_lr 0, eps 1e-8: a reduction smaller than eps is skipped).
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceLrOnPlateau {
    /// Min or max.
    pub mode: PlateauMode,
    /// Multiplier of the lr on a plateau, in [0, 1).
    pub factor: f64,
    /// Bad epochs tolerated before reducing.
    pub patience: u64,
    /// Improvement threshold.
    pub threshold: f64,
    /// Relative or absolute threshold.
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction before counting bad epochs again.
    pub cooldown: u64,
    /// Lower bound of the lr.
    pub min_lr: f64,
    /// Reductions smaller than this are skipped.
    pub eps: f64,
    lr: f64,
    best: f64,
    bad_epochs: u64,
    cooldown_counter: u64,
    epochs: u64,
}

setters!(ReduceLrOnPlateau {
    factor: f64,
    patience: u64,
    threshold: f64,
    threshold_mode: ThresholdMode,
    cooldown: u64,
    min_lr: f64,
    eps: f64
});

impl ReduceLrOnPlateau {
    /// PyTorch's defaults, starting from learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        Self {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
            lr,
            best: f64::INFINITY,
            bad_epochs: 0,
            cooldown_counter: 0,
            epochs: 0,
        }
    }

    /// Sets the mode (and resets `best` to its worst value).
    #[must_use]
    pub fn mode(mut self, mode: PlateauMode) -> Self {
        self.mode = mode;
        self.best = match mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        self
    }

    /// Checks the parameters: factor in [0, 1), the rest finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        ensure(
            (0.0..1.0).contains(&self.factor),
            "factor",
            self.factor,
            "must be in [0, 1)",
        )?;
        for (name, v) in [
            ("threshold", self.threshold),
            ("min_lr", self.min_lr),
            ("eps", self.eps),
            ("lr", self.lr),
        ] {
            ensure(
                v.is_finite() && v >= 0.0,
                name,
                v,
                "must be finite and >= 0",
            )?;
        }
        Ok(())
    }

    fn is_better(&self, a: f64) -> bool {
        match (self.mode, self.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < self.best * (1.0 - self.threshold),
            (PlateauMode::Min, ThresholdMode::Abs) => a < self.best - self.threshold,
            (PlateauMode::Max, ThresholdMode::Rel) => a > self.best * (self.threshold + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > self.best + self.threshold,
        }
    }

    /// Feeds the metric of one epoch and returns the learning rate of the next. A NaN metric
    /// counts as a bad epoch, as in PyTorch.
    pub fn step(&mut self, metric: f64) -> Result<f64> {
        self.validate()?;
        self.epochs += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > self.patience {
            let new_lr = (self.lr * self.factor).max(self.min_lr);
            if self.lr - new_lr > self.eps {
                self.lr = new_lr;
            }
            self.cooldown_counter = self.cooldown;
            self.bad_epochs = 0;
        }
        Ok(self.lr)
    }

    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Epochs fed so far.
    pub fn epochs(&self) -> u64 {
        self.epochs
    }
}
