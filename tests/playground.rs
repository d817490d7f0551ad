//! The playground, really started (`wgoptim playground`) and driven by headless Chromium
//! (Debian's `chromium`; `scripts/test.sh` installs it): the page loads, a slider change redraws
//! the paths, a click on the contour plot moves the start, a schedule change redraws its curve,
//! a bad value shows its message, the training tab streams its curves; and what the page shows
//! equals direct library calls. The JSON API's bad input gets 4xx and the server keeps serving.
//! Screenshots of each tab go to `target/playground/`; with `WGOPTIM_UPDATE_SCREENSHOTS=1`
//! also to `docs/` for the README.

#[path = "browser/cdp.rs"]
mod cdp;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use wgoptim::demo::classify::{Model, train};
use wgoptim::demo::data::digits;
use wgoptim::demo::surfaces::{Surface, path_from};
use wgoptim::{
    Adadelta, Adagrad, Adam, Adamax, CpuContext, Lion, NAdam, Optimizer, RAdam, RmsProp, Rprop,
    Schedule, Sgd,
};

/// `wgoptim playground --port 0 --device DEVICE`, killed when dropped.
struct Server {
    child: Child,
    url: String,
    addr: String,
}

impl Server {
    fn start(device: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wgoptim"))
            .args(["playground", "--port", "0", "--device", device])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start wgoptim playground");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("wgoptim playground printed no address within 120 s");
            }
        };
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Server { child, url, addr }
    }

    /// One HTTP/1.1 request; (status, body).
    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        // A server may answer (413) before reading a big body and close: that is fine.
        let _ = s.write_all(body);
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        let text = String::from_utf8_lossy(&reply).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) = self.request("POST", path, body.to_string().as_bytes());
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium() -> Option<PathBuf> {
    let found = cdp::find_chromium();
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let allowed = std::env::var("WGOPTIM_ALLOW_NO_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            allowed && !ci,
            "no Chromium: install Debian's `chromium` (scripts/test.sh does), or set \
             WGOPTIM_ALLOW_NO_BROWSER=1 outside CI to skip"
        );
        eprintln!("skipping the browser test (WGOPTIM_ALLOW_NO_BROWSER=1): no chromium");
    }
    found
}

fn screenshot(browser: &mut cdp::Browser, name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("target/playground").join(format!("{name}.png"));
    browser.screenshot(&file);
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "{name}"
    );
    if std::env::var("WGOPTIM_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        std::fs::copy(
            &file,
            root.join("docs").join(format!("playground-{name}.png")),
        )
        .unwrap();
    }
}

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.trim().parse().unwrap_or(f64::NAN),
        v => v.as_f64().expect("a number"),
    }
}

/// The optimizer a page card's arguments describe, built with the library's types directly
/// (not through the server's parser).
fn optimizer(spec: &Value) -> Optimizer {
    let p = &spec["params"];
    let f = |k: &str| number(&p[k]);
    let b = |k: &str| p[k].as_bool().unwrap_or_else(|| panic!("{k}: {p}"));
    let pair = |k: &str| {
        let v: Vec<f64> = p[k]
            .as_str()
            .unwrap()
            .split(',')
            .map(|v| v.trim().parse().unwrap())
            .collect();
        (v[0], v[1])
    };
    for dtype in ["state_dtype", "grad_dtype", "param_dtype"] {
        assert_eq!(p[dtype], "f32", "{spec}");
    }
    match spec["name"].as_str().unwrap() {
        "sgd" => Sgd {
            lr: f("lr"),
            momentum: f("momentum"),
            dampening: f("dampening"),
            weight_decay: f("weight_decay"),
            nesterov: b("nesterov"),
            maximize: b("maximize"),
            ..Sgd::default()
        }
        .into(),
        "rmsprop" => RmsProp {
            lr: f("lr"),
            alpha: f("alpha"),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
            momentum: f("momentum"),
            centered: b("centered"),
            maximize: b("maximize"),
            ..RmsProp::default()
        }
        .into(),
        name @ ("adam" | "adamw") => {
            let base = if name == "adamw" {
                Adam::adamw()
            } else {
                Adam::default()
            };
            Adam {
                lr: f("lr"),
                betas: pair("betas"),
                eps: f("eps"),
                weight_decay: f("weight_decay"),
                amsgrad: b("amsgrad"),
                maximize: b("maximize"),
                ..base
            }
            .into()
        }
        "adamax" => Adamax {
            lr: f("lr"),
            betas: pair("betas"),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
            maximize: b("maximize"),
            ..Adamax::default()
        }
        .into(),
        "radam" => RAdam {
            lr: f("lr"),
            betas: pair("betas"),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
            decoupled_weight_decay: b("decoupled_weight_decay"),
            maximize: b("maximize"),
            ..RAdam::default()
        }
        .into(),
        "nadam" => NAdam {
            lr: f("lr"),
            betas: pair("betas"),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
            momentum_decay: f("momentum_decay"),
            decoupled_weight_decay: b("decoupled_weight_decay"),
            maximize: b("maximize"),
            ..NAdam::default()
        }
        .into(),
        "rprop" => Rprop {
            lr: f("lr"),
            etas: pair("etas"),
            step_sizes: pair("step_sizes"),
            maximize: b("maximize"),
            ..Rprop::default()
        }
        .into(),
        "lion" => Lion {
            lr: f("lr"),
            betas: pair("betas"),
            weight_decay: f("weight_decay"),
            maximize: b("maximize"),
            ..Lion::default()
        }
        .into(),
        "adadelta" => Adadelta {
            lr: f("lr"),
            rho: f("rho"),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
            maximize: b("maximize"),
            ..Adadelta::default()
        }
        .into(),
        "adagrad" => Adagrad {
            lr: f("lr"),
            lr_decay: f("lr_decay"),
            weight_decay: f("weight_decay"),
            initial_accumulator_value: f("initial_accumulator_value"),
            eps: f("eps"),
            maximize: b("maximize"),
            ..Adagrad::default()
        }
        .into(),
        other => panic!("unknown optimizer {other}"),
    }
}

/// The paths the page received for its last request equal `path_from` called directly on
/// `engine` with the same settings, bit for bit.
fn page_paths_equal_library(
    browser: &mut cdp::Browser,
    engine: &dyn wgoptim::demo::Engine,
) -> Value {
    let request = browser.eval("wg.last.surfaceRequest");
    let response = browser.eval("wg.last.surface");
    let surface = Surface::parse(request["surface"].as_str().unwrap()).unwrap();
    let start = (number(&response["start"][0]), number(&response["start"][1]));
    let steps = request["steps"].as_u64().unwrap() as usize;
    // The page's schedule, built with the library's types directly.
    let schedule = match request["schedule"]["name"].as_str() {
        None => None,
        Some("CosineAnnealingLR") => Some(Schedule::Cosine {
            t_max: number(&request["schedule"]["params"]["T_max"]) as u64,
            eta_min: number(&request["schedule"]["params"]["eta_min"]),
        }),
        Some(other) => panic!("the test knows no {other}"),
    };
    let specs = request["optimizers"].as_array().unwrap();
    let paths = response["paths"].as_array().unwrap();
    assert_eq!(specs.len(), paths.len());
    for (spec, shown) in specs.iter().zip(paths) {
        let direct = path_from(
            engine,
            surface,
            optimizer(spec),
            start,
            schedule.as_ref(),
            steps,
        )
        .unwrap();
        let shown: Vec<(f64, f64)> = shown["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (number(&p[0]), number(&p[1])))
            .collect();
        assert_eq!(shown.len(), direct.len(), "{}", spec["label"]);
        if let Some(k) = (0..shown.len()).find(|&k| shown[k] != direct[k]) {
            panic!(
                "{}: the page's point {k} is {:?}, the library's {:?}",
                spec["label"], shown[k], direct[k]
            );
        }
    }
    response
}

#[test]
fn the_page_drives_the_library_in_chromium() {
    let Some(ctx) = common::full() else { return };
    let Some(binary) = chromium() else { return };
    let server = Server::start("gpu");
    let mut browser = cdp::Browser::launch(&binary, 1150, 1000);
    browser.goto(&server.url);

    // It loads: the catalog, the contour plot, the first paths (Rosenbrock, 13 optimizers).
    browser.wait_for("window.wg && wg.ready && wg.draws.surface >= 1", 120);
    assert_eq!(
        browser.eval("document.querySelector('#error').hidden"),
        true
    );
    let device = browser.eval("wg.catalog.device");
    assert!(device.as_str().unwrap().starts_with("GPU"), "{device}");
    let first = page_paths_equal_library(&mut browser, &ctx);
    assert_eq!(first["paths"].as_array().unwrap().len(), 13);
    browser.wait_for("new Promise(r => setTimeout(() => r(true), 1000))", 5);
    screenshot(&mut browser, "surfaces");

    // A slider change re-runs and redraws: SGD's lr slider moved, only SGD's path changes.
    let draws = browser.eval("wg.draws.surface").as_u64().unwrap();
    browser.eval(
        "(() => { const s = document.querySelector('.card[data-label=\"SGD\"] .param[data-key=\"lr\"] input[type=range]'); \
         s.value = 420; s.dispatchEvent(new Event('input')); return true; })()",
    );
    browser.wait_for(&format!("wg.draws.surface > {draws}"), 120);
    let moved = page_paths_equal_library(&mut browser, &ctx);
    assert_ne!(moved["paths"][0], first["paths"][0], "SGD's path");
    assert_eq!(moved["paths"][4], first["paths"][4], "Adam's path");
    let lr = number(&browser.eval("wg.last.surfaceRequest.optimizers[0].params.lr"));
    assert!(
        (lr - 10f64.powf(-5.0 + 0.42 * 6.0)).abs() / lr < 0.01,
        "{lr}"
    );

    // A click on the contour plot moves the start point to the clicked (x, y).
    let draws = browser.eval("wg.draws.surface").as_u64().unwrap();
    let rect = browser.eval(
        "(() => { const r = document.querySelector('#contour').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()",
    );
    let (left, top, width, height) = (
        number(&rect[0]),
        number(&rect[1]),
        number(&rect[2]),
        number(&rect[3]),
    );
    // Canvas pixel (390, 150) of 640 × 520; plot area x ∈ [46, 628] ↦ [−2, 2], y ∈ [12, 488] ↦ [3, −1].
    browser.click(left + 390.0 * width / 640.0, top + 150.0 * height / 520.0);
    browser.wait_for(&format!("wg.draws.surface > {draws}"), 120);
    let clicked = page_paths_equal_library(&mut browser, &ctx);
    let (x, y) = (number(&clicked["start"][0]), number(&clicked["start"][1]));
    let (ex, ey) = (
        -2.0 + (390.0 - 46.0) / 582.0 * 4.0,
        -1.0 + (488.0 - 150.0) / 476.0 * 4.0,
    );
    assert!(
        (x - ex).abs() < 0.02 && (y - ey).abs() < 0.02,
        "start ({x}, {y}), clicked ({ex}, {ey})"
    );
    for p in clicked["paths"].as_array().unwrap() {
        assert_eq!(number(&p["points"][0][0]), f64::from(x as f32));
        assert_eq!(number(&p["points"][0][1]), f64::from(y as f32));
    }

    // A schedule on the surfaces tab drives every optimizer's lr.
    let draws = browser.eval("wg.draws.surface").as_u64().unwrap();
    browser.eval(
        "(() => { const s = document.querySelector('#surface-schedule select'); s.value = 'CosineAnnealingLR'; \
         s.dispatchEvent(new Event('change')); return true; })()",
    );
    browser.wait_for(&format!("wg.draws.surface > {draws}"), 120);
    let scheduled = page_paths_equal_library(&mut browser, &ctx);
    assert_eq!(
        browser.eval("wg.last.surfaceRequest.schedule.name"),
        "CosineAnnealingLR"
    );
    assert_ne!(scheduled["paths"][4], clicked["paths"][4], "Adam's path");

    // A bad value shows the library's message on the page; a good one clears it.
    let errors = browser.eval("wg.errors").as_u64().unwrap();
    let set_adam_lr = |b: &mut cdp::Browser, v: &str| {
        b.eval(&format!(
            "(() => {{ const t = document.querySelector('.card[data-label=\"Adam\"] .param[data-key=\"lr\"] input[type=text]'); \
             t.value = {v:?}; t.dispatchEvent(new Event('change')); return true; }})()"
        ));
    };
    set_adam_lr(&mut browser, "-1");
    browser.wait_for(&format!("wg.errors > {errors}"), 60);
    let shown = browser.eval("document.querySelector('#error').textContent");
    assert!(
        !browser
            .eval("document.querySelector('#error').hidden")
            .as_bool()
            .unwrap()
            && shown.as_str().unwrap().contains("Adam")
            && shown.as_str().unwrap().contains("lr")
            && shown.as_str().unwrap().contains("must be finite and >= 0"),
        "{shown}"
    );
    let draws = browser.eval("wg.draws.surface").as_u64().unwrap();
    set_adam_lr(&mut browser, "0.02");
    browser.wait_for(&format!("wg.draws.surface > {draws}"), 120);
    assert_eq!(
        browser.eval("document.querySelector('#error').hidden"),
        true
    );

    // The schedules tab: a real click opens it; a schedule change redraws the lr curve, which is
    // what the library's schedule gives at each step (as the kernel's f32 uniform carries it).
    browser.click_on("nav button[data-tab=schedules]");
    browser.wait_for("wg.draws.schedule >= 1 && wg.draws.finder >= 1", 180);
    let onecycle = browser.eval("wg.last.schedule.lr");
    assert_eq!(
        browser.eval("wg.last.scheduleRequest.schedule.name"),
        "OneCycleLR"
    );
    assert!(browser.eval("wg.last.schedule.momentum").is_array());
    let suggestion = browser.eval("wg.last.finder.suggestion");
    assert!(number(&suggestion) > 0.0, "{suggestion}");
    screenshot(&mut browser, "schedules");
    let draws = browser.eval("wg.draws.schedule").as_u64().unwrap();
    browser.eval(
        "(() => { const s = document.querySelector('#schedule-controls select'); s.value = 'StepLR'; \
         s.dispatchEvent(new Event('change')); return true; })()",
    );
    browser.wait_for(&format!("wg.draws.schedule > {draws}"), 60);
    let step_lr = browser.eval("wg.last.schedule.lr");
    assert_ne!(step_lr, onecycle);
    let schedule = Schedule::Step {
        step_size: 25,
        gamma: 0.5,
    };
    for (e, v) in step_lr.as_array().unwrap().iter().enumerate() {
        let direct = schedule.lr(0.1, e as u64).unwrap() as f32;
        assert_eq!(number(v), f64::from(direct), "StepLR at {e}");
    }

    // The training tab streams its curves (several polls before the end), then fills the table;
    // the Adam curve equals the library's own training run.
    browser.click_on("nav button[data-tab=training]");
    browser.wait_for(
        "wg.draws.train >= 2 && wg.last.train && !wg.last.train.done",
        120,
    );
    let partial = browser
        .eval("wg.last.train.loss[0].length")
        .as_u64()
        .unwrap();
    browser.wait_for(
        "wg.last.train && wg.last.train.done && wg.last.train.table",
        300,
    );
    let labels = browser.eval("wg.last.train.labels");
    let loss = browser.eval("wg.last.train.loss");
    assert!(
        partial < 151,
        "the curves came in pieces ({partial} of 151 at one poll)"
    );
    assert_eq!(loss[0].as_array().unwrap().len(), 151);
    let rows = browser.eval("document.querySelectorAll('#train-table tbody tr').length");
    assert_eq!(
        rows.as_u64().unwrap() as usize,
        labels.as_array().unwrap().len()
    );
    let k = labels
        .as_array()
        .unwrap()
        .iter()
        .position(|l| l == "Adam")
        .expect("Adam is trained");
    let (train_set, test_set) = digits().unwrap().split(0.2, 5);
    let direct = train(
        &ctx,
        Model::Mlp { hidden: 32 },
        ("Adam", Adam::default().lr(0.01).into()),
        &train_set,
        &test_set,
        150,
        11,
    )
    .unwrap();
    let shown: Vec<f64> = loss[k].as_array().unwrap().iter().map(number).collect();
    assert_eq!(shown, direct.train_loss);
    let accuracy =
        browser.eval("wg.last.train.table").as_array().unwrap()[k]["final_accuracy"].clone();
    assert_eq!(number(&accuracy), *direct.test_accuracy.last().unwrap());

    // The sweep: each chosen optimizer over a log-spaced lr grid.
    browser.eval(
        "(() => { document.querySelector('#sweep-count').value = 5; document.querySelector('#sweep-steps').value = 30; return true; })()",
    );
    browser.click_on("#sweep-run");
    browser.wait_for("wg.last.sweep && wg.last.sweep.done", 300);
    let sweeps = browser.eval("wg.last.sweep.sweeps");
    assert_eq!(
        sweeps.as_array().unwrap().len(),
        labels.as_array().unwrap().len()
    );
    for s in sweeps.as_array().unwrap() {
        assert_eq!(s["points"].as_array().unwrap().len(), 5, "{}", s["label"]);
    }
    browser.eval("window.scrollTo(0, 0)");
    browser.resize(1150, 1560);
    browser.wait_for("new Promise(r => setTimeout(() => r(true), 300))", 5);
    screenshot(&mut browser, "training");
}

#[test]
fn the_api_refuses_bad_input_with_4xx_and_keeps_serving() {
    let server = Server::start("cpu");
    let good = json!({
        "surface": "bowl", "steps": 50,
        "optimizers": [{"name": "adam", "params": {"lr": 0.1}}, {"name": "sgd", "params": {"lr": "0.4"}}],
    });
    let surface_with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/api/surface",
            surface_with(&|v| v["surface"] = json!("everest")),
            400,
            "unknown surface `everest`",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["steps"] = json!(1_000_000_000u64)),
            400,
            "more than the playground's 5000",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["steps"] = json!("many")),
            400,
            "malformed request",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["optimizers"][0]["params"]["lr"] = json!("nan")),
            400,
            "`lr` = NaN",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["optimizers"][0]["params"]["lr"] = json!(-0.1)),
            400,
            "`lr` = -0.1",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["optimizers"][0]["params"]["betas"] = json!([0.9, 1.0])),
            400,
            "`betas.1` = 1",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["optimizers"][0]["params"]["lrr"] = json!(0.1)),
            400,
            "lrr",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["optimizers"][0]["name"] = json!("lbfgs")),
            400,
            "unknown optimizer `lbfgs`",
        ),
        // Muon takes matrices only, and a surface's point is a vector (as in PyTorch).
        (
            "/api/surface",
            surface_with(&|v| v["optimizers"][0]["name"] = json!("muon")),
            400,
            "Muon only supports 2-D parameters",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["optimizers"] = json!([])),
            400,
            "at least one optimizer",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["start"] = json!([1e9, 0.0])),
            400,
            "within ±1000",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["schedule"] = json!({"name": "StepLR", "params": {}})),
            400,
            "step_size",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["schedule"] = json!({"name": "ReduceLROnPlateau"})),
            400,
            "schedules tab",
        ),
        (
            "/api/surface",
            surface_with(&|v| v["colour"] = json!("red")),
            400,
            "unknown field `colour`",
        ),
        (
            "/api/schedule",
            json!({"schedule": {"name": "CosineAnnealingLR", "params": {"T_max": 10}}, "steps": 1_000_000_000u64}),
            400,
            "more than",
        ),
        (
            "/api/schedule",
            json!({"schedule": {"name": "Sinusoidal"}, "steps": 10}),
            400,
            "unknown schedule",
        ),
        (
            "/api/train",
            json!({"model": "mlp", "dataset": "digits", "optimizers": [{"name": "adam"}], "steps": 1_000_000_000u64}),
            400,
            "more than",
        ),
        (
            "/api/train",
            json!({"model": "transformer", "dataset": "digits", "optimizers": [{"name": "adam"}], "steps": 10}),
            400,
            "unknown model",
        ),
        (
            "/api/train",
            json!({"model": "mlp", "dataset": "imagenet", "optimizers": [{"name": "adam"}], "steps": 10}),
            400,
            "unknown dataset",
        ),
        (
            "/api/sweep",
            json!({"model": "mlp", "dataset": "digits", "optimizers": [{"name": "adam"}], "lr_min": -1.0, "lr_max": 1.0, "count": 3, "steps": 5}),
            400,
            "positive",
        ),
        (
            "/api/sweep",
            json!({"model": "mlp", "dataset": "digits", "optimizers": [{"name": "adam"}], "lr_min": 0.1, "lr_max": 1.0, "count": 1_000_000_000u64, "steps": 5}),
            400,
            "more than",
        ),
        (
            "/api/lr-finder",
            json!({"model": "mlp", "dataset": "digits", "optimizer": {"name": "adam"}, "start_lr": 1.0, "end_lr": 1e-3, "num_iter": 10}),
            400,
            "lr",
        ),
    ];
    for (path, body, status, message) in &cases {
        let (got, reply) = server.post(path, body);
        let text = reply["error"].as_str().unwrap_or_default();
        assert_eq!(got, *status, "{path} {body}: {reply}");
        assert!(
            text.contains(message),
            "{path} {body}: {text:?} lacks {message:?}"
        );
    }
    // Not JSON, a huge body, a wrong method, nowhere, an unknown job.
    let (status, text) = server.request("POST", "/api/surface", b"{\"surface\": ");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("malformed request"), "{text}");
    let (status, text) = server.request("POST", "/api/surface", &vec![b'x'; 1 << 20]);
    assert_eq!(status, 413, "{text}");
    let (status, _) = server.request("GET", "/api/surface", b"");
    assert_eq!(status, 405);
    let (status, _) = server.request("GET", "/etc/passwd", b"");
    assert_eq!(status, 404);
    let (status, _) = server.request("GET", "/api/jobs/999", b"");
    assert_eq!(status, 404);
    let (status, _) = server.request("GET", "/api/jobs/1?from=minus", b"");
    assert_eq!(status, 400);

    // Four long jobs run; a fifth gets 429 until one is cancelled.
    let long = json!({"model": "mlp", "dataset": "digits", "optimizers": [{"name": "sgd"}], "steps": 2000});
    let ids: Vec<u64> = (0..4)
        .map(|_| {
            let (status, reply) = server.post("/api/train", &long);
            assert_eq!(status, 202, "{reply}");
            reply["id"].as_u64().unwrap()
        })
        .collect();
    let (status, reply) = server.post("/api/train", &long);
    assert_eq!(status, 429, "{reply}");
    for id in &ids {
        let (status, _) = server.request("DELETE", &format!("/api/jobs/{id}"), b"");
        assert_eq!(status, 200);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for id in &ids {
        loop {
            let (_, text) = server.request("GET", &format!("/api/jobs/{id}"), b"");
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["done"] == true {
                assert_eq!(v["error"], "cancelled");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {id} did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // Still serving, and its paths are the library's (CPU backend, bit for bit).
    let (status, reply) = server.post("/api/surface", &good);
    assert_eq!(status, 200, "{reply}");
    let cpu = CpuContext::new();
    for (k, opt) in [
        Optimizer::from(Adam::default().lr(0.1)),
        Sgd::default().lr(0.4).into(),
    ]
    .into_iter()
    .enumerate()
    {
        let direct = path_from(&cpu, Surface::Bowl, opt, Surface::Bowl.start(), None, 50).unwrap();
        let shown: Vec<(f64, f64)> = reply["paths"][k]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (number(&p[0]), number(&p[1])))
            .collect();
        assert_eq!(shown, direct);
    }
    let (status, page) = server.request("GET", "/", b"");
    assert!(status == 200 && page.contains("wgoptim playground"));
}
