//! Optimizers written as on the command line: `NAME key=value …` with PyTorch's class names
//! (`sgd`, `rmsprop`, `adam`, `adamw`, `adagrad`, `adamax`, `radam`, `adadelta`, `nadam`,
//! `rprop`, `asgd`, `adafactor`, `muon`, `lion` after the authors' port and `lamb` after
//! apex's `FusedLAMB`; case-insensitive) and argument names
//! (`lr`, `momentum`, `dampening`, `nesterov`, `alpha`, `centered`, `betas=0.9,0.999`, `eps`,
//! `weight_decay`, `amsgrad`, `lr_decay`, `initial_accumulator_value`, `rho`,
//! `momentum_decay`, `decoupled_weight_decay`, `etas=0.5,1.2`, `step_sizes=1e-6,50`, `lambd`,
//! `t0`, `beta2_decay`, `eps=None,1e-3` (Adafactor's pair), `d`, `use_nvlamb`,
//! `ns_coefficients=3.4445,-4.775,2.0315`, `ns_steps`, `adjust_lr_fn`, `maximize`), with
//! PyTorch's defaults for whatever is left out, plus the state precision (`state_dtype=bf16`
//! or `int8`, `state_min_len`), the gradients' type (`grad_dtype=f16` or `bf16`) and the
//! parameters' (`param_dtype=bf16-master` or `bf16`).

use super::{
    Adadelta, Adafactor, Adagrad, Adam, Adamax, AdjustLr, Asgd, GradDType, Lamb, Lion, Muon, NAdam,
    Optimizer, ParamDType, Precision, RAdam, RmsProp, Rprop, Sgd, StateDType, StatePrecision,
};
use crate::args::Args;
use crate::error::{Error, Result};

/// The state precision: `state_dtype=f32|bf16|int8` and `state_min_len=N` (groups smaller
/// than N elements keep f32 state; default 4096).
fn state(a: &mut Args) -> Result<StatePrecision> {
    let d = StatePrecision::default();
    let dtype = match a.take("state_dtype") {
        Some(name) => StateDType::parse(&name)?,
        None => d.dtype,
    };
    let min_len = a.u64_or("state_min_len", d.min_len as u64)?;
    Ok(StatePrecision {
        dtype,
        min_len: usize::try_from(min_len).unwrap_or(usize::MAX),
    })
}

/// The gradients' type: `grad_dtype=f32|f16|bf16`.
fn grads(a: &mut Args) -> Result<GradDType> {
    a.take("grad_dtype")
        .map_or(Ok(GradDType::F32), |name| GradDType::parse(&name))
}

/// The parameters' type: `param_dtype=f32|bf16-master|bf16`.
fn param_dtype(a: &mut Args) -> Result<ParamDType> {
    a.take("param_dtype")
        .map_or(Ok(ParamDType::F32), |name| ParamDType::parse(&name))
}

/// The precision keys: state, gradients, parameters.
fn precision(a: &mut Args) -> Result<Precision> {
    Ok(Precision {
        state: state(a)?,
        grads: grads(a)?,
        params: param_dtype(a)?,
    })
}

/// Adafactor's `eps=e1,e2`, PyTorch's `(None, 1e-3)` written `None,1e-3`, or `default`.
fn adafactor_eps(a: &mut Args, default: (Option<f64>, f64)) -> Result<(Option<f64>, f64)> {
    let Some(v) = a.take("eps") else {
        return Ok(default);
    };
    let bad = || {
        Error::Argument(format!(
            "adafactor: eps={v}: expected two values, e.g. None,1e-3"
        ))
    };
    let number = |x: &str| x.trim().parse::<f64>().map_err(|_| bad());
    match v.split(',').collect::<Vec<_>>().as_slice() {
        [e1, e2] => {
            let e1 = match e1.trim() {
                "None" | "none" => None,
                x => Some(number(x)?),
            };
            Ok((e1, number(e2)?))
        }
        _ => Err(bad()),
    }
}

/// `key=a,b` (two values: `betas`, `etas`, `step_sizes`), or `default`.
fn pair(a: &mut Args, key: &str, name: &str, default: (f64, f64)) -> Result<(f64, f64)> {
    match a.list(key)? {
        None => Ok(default),
        Some(b) if b.len() == 2 => Ok((b[0], b[1])),
        Some(b) => Err(Error::Argument(format!(
            "{name}: {key} needs two values, got {}",
            b.len()
        ))),
    }
}

/// `betas=b1,b2`, or `default`.
fn betas(a: &mut Args, name: &str, default: (f64, f64)) -> Result<(f64, f64)> {
    pair(a, "betas", name, default)
}

/// Parses and validates an optimizer.
pub fn parse(name: &str, params: &[String]) -> Result<Optimizer> {
    let mut a = Args::parse(name, params)?;
    let optimizer: Optimizer = match name.to_ascii_lowercase().as_str() {
        "sgd" => {
            let d = Sgd::default();
            Sgd {
                lr: a.f64_or("lr", d.lr)?,
                momentum: a.f64_or("momentum", d.momentum)?,
                dampening: a.f64_or("dampening", d.dampening)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                nesterov: a.bool_or("nesterov", d.nesterov)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "rmsprop" => {
            let d = RmsProp::default();
            RmsProp {
                lr: a.f64_or("lr", d.lr)?,
                alpha: a.f64_or("alpha", d.alpha)?,
                eps: a.f64_or("eps", d.eps)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                momentum: a.f64_or("momentum", d.momentum)?,
                centered: a.bool_or("centered", d.centered)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "adam" | "adamw" => {
            let d = if name.eq_ignore_ascii_case("adamw") {
                Adam::adamw()
            } else {
                Adam::default()
            };
            Adam {
                lr: a.f64_or("lr", d.lr)?,
                betas: betas(&mut a, name, d.betas)?,
                eps: a.f64_or("eps", d.eps)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                amsgrad: a.bool_or("amsgrad", d.amsgrad)?,
                decoupled_weight_decay: a
                    .bool_or("decoupled_weight_decay", d.decoupled_weight_decay)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "adagrad" => {
            let d = Adagrad::default();
            Adagrad {
                lr: a.f64_or("lr", d.lr)?,
                lr_decay: a.f64_or("lr_decay", d.lr_decay)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                initial_accumulator_value: a
                    .f64_or("initial_accumulator_value", d.initial_accumulator_value)?,
                eps: a.f64_or("eps", d.eps)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "adamax" => {
            let d = Adamax::default();
            Adamax {
                lr: a.f64_or("lr", d.lr)?,
                betas: betas(&mut a, name, d.betas)?,
                eps: a.f64_or("eps", d.eps)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "radam" => {
            let d = RAdam::default();
            RAdam {
                lr: a.f64_or("lr", d.lr)?,
                betas: betas(&mut a, name, d.betas)?,
                eps: a.f64_or("eps", d.eps)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                decoupled_weight_decay: a
                    .bool_or("decoupled_weight_decay", d.decoupled_weight_decay)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "adadelta" => {
            let d = Adadelta::default();
            Adadelta {
                lr: a.f64_or("lr", d.lr)?,
                rho: a.f64_or("rho", d.rho)?,
                eps: a.f64_or("eps", d.eps)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "nadam" => {
            let d = NAdam::default();
            NAdam {
                lr: a.f64_or("lr", d.lr)?,
                betas: betas(&mut a, name, d.betas)?,
                eps: a.f64_or("eps", d.eps)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                momentum_decay: a.f64_or("momentum_decay", d.momentum_decay)?,
                decoupled_weight_decay: a
                    .bool_or("decoupled_weight_decay", d.decoupled_weight_decay)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "rprop" => {
            let d = Rprop::default();
            Rprop {
                lr: a.f64_or("lr", d.lr)?,
                etas: pair(&mut a, "etas", name, d.etas)?,
                step_sizes: pair(&mut a, "step_sizes", name, d.step_sizes)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "asgd" => {
            let d = Asgd::default();
            Asgd {
                lr: a.f64_or("lr", d.lr)?,
                lambd: a.f64_or("lambd", d.lambd)?,
                alpha: a.f64_or("alpha", d.alpha)?,
                t0: a.f64_or("t0", d.t0)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "lion" => {
            let d = Lion::default();
            Lion {
                lr: a.f64_or("lr", d.lr)?,
                betas: betas(&mut a, name, d.betas)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "lamb" => {
            let d = Lamb::default();
            Lamb {
                lr: a.f64_or("lr", d.lr)?,
                betas: betas(&mut a, name, d.betas)?,
                eps: a.f64_or("eps", d.eps)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                use_nvlamb: a.bool_or("use_nvlamb", d.use_nvlamb)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "adafactor" => {
            let d = Adafactor::default();
            Adafactor {
                lr: a.f64_or("lr", d.lr)?,
                beta2_decay: a.f64_or("beta2_decay", d.beta2_decay)?,
                eps: adafactor_eps(&mut a, d.eps)?,
                d: a.f64_or("d", d.d)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                maximize: a.bool_or("maximize", d.maximize)?,
                precision: precision(&mut a)?,
            }
            .into()
        }
        "muon" => {
            let d = Muon::default();
            let ns_coefficients = match a.list("ns_coefficients")? {
                None => d.ns_coefficients,
                Some(c) if c.len() == 3 => (c[0], c[1], c[2]),
                Some(c) => {
                    return Err(Error::Argument(format!(
                        "muon: ns_coefficients needs three values, got {}",
                        c.len()
                    )));
                }
            };
            let ns_steps = a.u64_or("ns_steps", u64::from(d.ns_steps))?;
            Muon {
                lr: a.f64_or("lr", d.lr)?,
                weight_decay: a.f64_or("weight_decay", d.weight_decay)?,
                momentum: a.f64_or("momentum", d.momentum)?,
                nesterov: a.bool_or("nesterov", d.nesterov)?,
                ns_coefficients,
                eps: a.f64_or("eps", d.eps)?,
                ns_steps: u32::try_from(ns_steps).unwrap_or(u32::MAX),
                adjust_lr_fn: match a.take("adjust_lr_fn") {
                    Some(name) => AdjustLr::parse(&name)?,
                    None => d.adjust_lr_fn,
                },
                precision: precision(&mut a)?,
            }
            .into()
        }
        _ => {
            return Err(Error::Argument(format!(
                "unknown optimizer `{name}`; known: sgd, rmsprop, adam, adamw, adagrad, adamax, \
                 radam, adadelta, nadam, rprop, asgd, lion, lamb, adafactor, muon"
            )));
        }
    };
    a.finish()?;
    optimizer.validate()?;
    Ok(optimizer)
}
