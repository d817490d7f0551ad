//! What the page offers: the optimizers with PyTorch's argument names and defaults (taken from
//! the library's own `Default`s), presets, schedules with example arguments, surfaces, models
//! and data sets, and the limits. The ranges of the sliders are the page's; every value sent
//! back is checked by the library.

use serde::Serialize;
use serde_json::{Value, json};

use super::api;
use crate::demo::surfaces::Surface;
use crate::optim::{
    Adadelta, Adafactor, Adagrad, Adam, Adamax, Asgd, Lamb, Lion, NAdam, Optimizer, RAdam, RmsProp,
    Rprop, Sgd,
};
use crate::precision::{GradDType, ParamDType, StateDType};

/// One argument of an optimizer or schedule.
#[derive(Serialize)]
struct Param {
    key: &'static str,
    /// `number`, `bool`, `pair` (two numbers, e.g. betas), `choice` or `text`.
    kind: &'static str,
    default: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    range: Option<(f64, f64)>,
    /// A log-scale slider.
    log: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    choices: Vec<&'static str>,
}

fn number(key: &'static str, default: Value, lo: f64, hi: f64, log: bool) -> Param {
    Param {
        key,
        kind: "number",
        default,
        range: Some((lo, hi)),
        log,
        choices: vec![],
    }
}

fn boolean(key: &'static str, default: Value) -> Param {
    Param {
        key,
        kind: "bool",
        default,
        range: None,
        log: false,
        choices: vec![],
    }
}

fn choice(key: &'static str, default: &str, choices: Vec<&'static str>) -> Param {
    Param {
        key,
        kind: "choice",
        default: json!(default),
        range: None,
        log: false,
        choices,
    }
}

/// Two numbers in `range` (betas, etas, step sizes).
fn pair(key: &'static str, default: Value, range: (f64, f64)) -> Param {
    Param {
        key,
        kind: "pair",
        default,
        range: Some(range),
        log: false,
        choices: vec![],
    }
}

fn text(key: &'static str, default: &str) -> Param {
    Param {
        key,
        kind: "text",
        default: json!(default),
        range: None,
        log: false,
        choices: vec![],
    }
}

/// An optimizer's arguments with the library's defaults (serialized `Default`: the field names
/// are PyTorch's).
fn optimizer_params(defaults: Value) -> Vec<Param> {
    let get = |k: &str| defaults.get(k).cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    let Some(fields) = defaults.as_object() else {
        return out;
    };
    for key in [
        "lr",
        "momentum",
        "dampening",
        "alpha",
        "rho",
        "betas",
        "eps",
        "weight_decay",
        "lr_decay",
        "initial_accumulator_value",
        "momentum_decay",
        "etas",
        "step_sizes",
        "lambd",
        "t0",
        "beta2_decay",
        "d",
        "nesterov",
        "centered",
        "amsgrad",
        "decoupled_weight_decay",
        "use_nvlamb",
        "maximize",
    ] {
        if !fields.contains_key(key) {
            continue;
        }
        out.push(match key {
            "lr" => number("lr", get(key), 1e-5, 10.0, true),
            "momentum" => number("momentum", get(key), 0.0, 0.999, false),
            "dampening" => number("dampening", get(key), 0.0, 1.0, false),
            "alpha" => number("alpha", get(key), 0.0, 0.9999, false),
            "rho" => number("rho", get(key), 0.5, 0.9999, false),
            // Adafactor's (ε₁, ε₂), with PyTorch's None: as the command line writes it.
            "eps" if get(key).is_array() => text("eps", &eps_pair(&get(key))),
            "eps" => number("eps", get(key), 1e-10, 1.0, true),
            "beta2_decay" => number("beta2_decay", get(key), -1.0, 0.0, false),
            "d" => number("d", get(key), 1.0, 10.0, false),
            "weight_decay" => number("weight_decay", get(key), 0.0, 0.5, false),
            "lr_decay" => number("lr_decay", get(key), 0.0, 0.1, false),
            "initial_accumulator_value" => {
                number("initial_accumulator_value", get(key), 0.0, 1.0, false)
            }
            "momentum_decay" => number("momentum_decay", get(key), 0.0, 0.1, false),
            "lambd" => number("lambd", get(key), 0.0, 0.1, false),
            "t0" => number("t0", get(key), 0.0, 1e6, false),
            "betas" => pair("betas", get(key), (0.0, 0.9999)),
            "etas" => pair("etas", get(key), (0.01, 2.0)),
            "step_sizes" => pair("step_sizes", get(key), (0.0, 50.0)),
            "nesterov" => boolean("nesterov", get(key)),
            "centered" => boolean("centered", get(key)),
            "amsgrad" => boolean("amsgrad", get(key)),
            "decoupled_weight_decay" => boolean("decoupled_weight_decay", get(key)),
            "use_nvlamb" => boolean("use_nvlamb", get(key)),
            _ => boolean("maximize", get(key)),
        });
    }
    let names = |all: &[&'static str]| all.to_vec();
    out.push(choice(
        "state_dtype",
        "f32",
        names(&StateDType::ALL.map(StateDType::name)),
    ));
    out.push(choice(
        "grad_dtype",
        "f32",
        names(&GradDType::ALL.map(GradDType::name)),
    ));
    out.push(choice(
        "param_dtype",
        "f32",
        names(&ParamDType::ALL.map(ParamDType::name)),
    ));
    out
}

/// Adafactor's serialized `eps` ([null, 0.001]) as the command line writes it (`None,0.001`).
fn eps_pair(v: &Value) -> String {
    let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .map(|x| match x {
            Value::Null => "None".to_string(),
            x => x.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Adam's arguments without `decoupled_weight_decay`, which the class name (Adam, AdamW) sets.
fn adam(o: Adam) -> Value {
    let mut v = to_value(o);
    if let Some(m) = v.as_object_mut() {
        m.remove("decoupled_weight_decay");
    }
    v
}

fn to_value<T: Serialize>(t: T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// An optimizer as the API names it: PyTorch's class name and every argument by PyTorch's name,
/// and its precision as the command line names it (`state_dtype`, with `state_min_len` where
/// it is not f32; `grad_dtype`; `param_dtype`).
pub fn describe(o: &Optimizer) -> (&'static str, Value) {
    let (name, mut v) = match o {
        Optimizer::Sgd(s) => ("sgd", to_value(s)),
        Optimizer::RmsProp(s) => ("rmsprop", to_value(s)),
        Optimizer::Adam(s) if s.decoupled_weight_decay => ("adamw", to_value(s)),
        Optimizer::Adam(s) => ("adam", to_value(s)),
        Optimizer::Adagrad(s) => ("adagrad", to_value(s)),
        Optimizer::Adamax(s) => ("adamax", to_value(s)),
        Optimizer::RAdam(s) => ("radam", to_value(s)),
        Optimizer::Adadelta(s) => ("adadelta", to_value(s)),
        Optimizer::NAdam(s) => ("nadam", to_value(s)),
        Optimizer::Rprop(s) => ("rprop", to_value(s)),
        Optimizer::Asgd(s) => ("asgd", to_value(s)),
        Optimizer::Lion(s) => ("lion", to_value(s)),
        Optimizer::Lamb(s) => ("lamb", to_value(s)),
        Optimizer::Adafactor(s) => ("adafactor", to_value(s)),
        Optimizer::Muon(s) => ("muon", to_value(s)),
    };
    if let Some(m) = v.as_object_mut() {
        m.remove("precision");
        if let Some(eps) = m.get_mut("eps").filter(|e| e.is_array()) {
            *eps = json!(eps_pair(eps));
        }
        if let Optimizer::Adam(_) = o {
            // The class name says it: Adam couples, AdamW decouples.
            m.remove("decoupled_weight_decay");
        }
        let p = o.precision();
        m.insert("state_dtype".into(), json!(p.state.dtype.name()));
        if p.state.dtype != StateDType::F32 {
            m.insert("state_min_len".into(), json!(p.state.min_len));
        }
        m.insert("grad_dtype".into(), json!(p.grads.name()));
        m.insert("param_dtype".into(), json!(p.params.name()));
    }
    (name, v)
}

/// `GET /api/catalog`.
pub fn catalog(device: &str) -> Value {
    let kinds = json!([
        {"name": "sgd", "class": "SGD", "params": optimizer_params(to_value(Sgd::default()))},
        {"name": "rmsprop", "class": "RMSprop", "params": optimizer_params(to_value(RmsProp::default()))},
        {"name": "adam", "class": "Adam", "params": optimizer_params(adam(Adam::default()))},
        {"name": "adamw", "class": "AdamW", "params": optimizer_params(adam(Adam::adamw()))},
        {"name": "adagrad", "class": "Adagrad", "params": optimizer_params(to_value(Adagrad::default()))},
        {"name": "adamax", "class": "Adamax", "params": optimizer_params(to_value(Adamax::default()))},
        {"name": "radam", "class": "RAdam", "params": optimizer_params(to_value(RAdam::default()))},
        {"name": "adadelta", "class": "Adadelta", "params": optimizer_params(to_value(Adadelta::default()))},
        {"name": "nadam", "class": "NAdam", "params": optimizer_params(to_value(NAdam::default()))},
        {"name": "rprop", "class": "Rprop", "params": optimizer_params(to_value(Rprop::default()))},
        {"name": "asgd", "class": "ASGD", "params": optimizer_params(to_value(Asgd::default()))},
        {"name": "lion", "class": "Lion", "params": optimizer_params(to_value(Lion::default()))},
        {"name": "lamb", "class": "LAMB", "params": optimizer_params(to_value(Lamb::default()))},
        {"name": "adafactor", "class": "Adafactor", "params": optimizer_params(to_value(Adafactor::default()))},
    ]);
    // The presets are the examples' own line-ups: the loss-surface one (learning rates per
    // surface come with `GET /api/surfaces/NAME`) and the classifiers' one.
    let presets = |list: Vec<(&str, Optimizer)>| -> Vec<Value> {
        list.iter()
            .map(|(label, o)| {
                let (name, params) = describe(o);
                json!({"label": label, "name": name, "params": params})
            })
            .collect()
    };
    let surface_presets = presets(Surface::Bowl.optimizers());
    let training_presets = presets(crate::demo::classify::optimizers());
    let warmup = || number("warmup_steps", json!(0), 0.0, 200.0, false);
    let schedules = json!([
        {"name": "constant", "params": []},
        {"name": "StepLR", "params": [number("step_size", json!(25), 1.0, 500.0, false), number("gamma", json!(0.5), 0.01, 1.0, false), warmup()]},
        {"name": "MultiStepLR", "params": [text("milestones", "30,60,80"), number("gamma", json!(0.3), 0.01, 1.0, false), warmup()]},
        {"name": "ExponentialLR", "params": [number("gamma", json!(0.97), 0.8, 1.0, false), warmup()]},
        {"name": "PolynomialLR", "params": [number("total_iters", json!(80), 1.0, 1000.0, false), number("power", json!(2.0), 0.1, 5.0, false), warmup()]},
        {"name": "LinearLR", "params": [number("start_factor", json!(0.3333), 0.01, 1.0, false), number("end_factor", json!(1.0), 0.0, 1.0, false), number("total_iters", json!(40), 1.0, 1000.0, false), warmup()]},
        {"name": "ConstantLR", "params": [number("factor", json!(0.3333), 0.01, 1.0, false), number("total_iters", json!(30), 1.0, 1000.0, false), warmup()]},
        {"name": "CosineAnnealingLR", "params": [number("T_max", json!(100), 1.0, 1000.0, false), number("eta_min", json!(0.0), 0.0, 0.1, false), warmup()]},
        {"name": "CosineAnnealingWarmRestarts", "params": [number("T_0", json!(10), 1.0, 500.0, false), number("T_mult", json!(2), 1.0, 4.0, false), number("eta_min", json!(0.0), 0.0, 0.1, false), warmup()]},
        {"name": "OneCycleLR", "params": [number("max_lr", json!(0.1), 1e-4, 10.0, true), number("total_steps", json!(100), 2.0, 2000.0, false), number("pct_start", json!(0.3), 0.01, 0.99, false), choice("anneal_strategy", "cos", vec!["cos", "linear"]), number("div_factor", json!(25.0), 1.0, 1000.0, true), number("final_div_factor", json!(10000.0), 1.0, 1e6, true), boolean("three_phase", json!(false)), boolean("cycle_momentum", json!(true))]},
        {"name": "CyclicLR", "params": [number("base_lr", json!(0.01), 1e-5, 1.0, true), number("max_lr", json!(0.1), 1e-4, 10.0, true), number("step_size_up", json!(10), 1.0, 500.0, false), choice("mode", "triangular", vec!["triangular", "triangular2", "exp_range"]), number("gamma", json!(0.98), 0.8, 1.0, false), boolean("cycle_momentum", json!(true))]},
        {"name": "ReduceLROnPlateau", "params": [number("factor", json!(0.5), 0.01, 0.99, false), number("patience", json!(5), 0.0, 50.0, false), number("cooldown", json!(3), 0.0, 50.0, false), number("threshold", json!(1e-4), 1e-6, 0.1, true)]},
    ]);
    json!({
        "device": device,
        "surfaces": Surface::ALL.iter().map(|s| json!({"name": s.name(), "formula": s.formula()})).collect::<Vec<_>>(),
        "optimizers": kinds,
        "presets": surface_presets,
        "training_presets": training_presets,
        "schedules": schedules,
        "models": ["logistic", "mlp"],
        "datasets": ["synthetic", "digits"],
        "limits": {
            "surface_steps": api::MAX_SURFACE_STEPS,
            "optimizers": api::MAX_OPTIMIZERS,
            "steps": api::MAX_STEPS,
            "sweep_lrs": api::MAX_SWEEP_LRS,
            "sweep_steps": api::MAX_SWEEP_STEPS,
        },
    })
}
