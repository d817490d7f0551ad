//! Golden values from PyTorch: parameters after each of 5 steps on fixed data, for every
//! family. Produced by `tests/golden/pytorch_optim.py` (torch 2.15.0, CPU, foreach=False); each
//! constant sits under the exact constructor call that produced it.
//!
//! Tolerance: PyTorch's single-tensor path rounds differently in places (it computes m with
//! `lerp`, and some scalars in f64 before one f32 rounding), so results agree to a few f32 ULP
//! of the update, not bit for bit: |gpu − torch| ≤ 1e-6, or ≤ 1e-6·max(|gpu|, |torch|)
//! (`approx::relative_eq!`; measured differences are ≤ 1 f32 ULP; the parameters are
//! O(1) and move by 1e-3–1e-1 per step; one f32 ULP of 2.0 is 2.4e-7).

mod common;

use wgoptim::{Adagrad, Adam, Backend, GpuOptimizer, Optimizer, RmsProp, Sgd};

const PARAMS: [f32; 7] = [0.5, -1.25, 2.0, -0.003, 0.75, -0.4, 1e-3];
const GRADS: [[f32; 7]; 5] = [
    [0.1, -0.2, 0.3, 0.05, -0.7, 0.0, 1.5],
    [-0.3, 0.1, 0.25, -0.6, 0.2, 0.9, -0.05],
    [0.02, 0.4, -0.15, 0.35, 0.5, -0.8, 0.6],
    [0.6, -0.45, 0.05, 0.1, -0.1, 0.3, -1.2],
    [-0.05, 0.3, 0.7, -0.25, 0.15, -0.6, 0.2],
];

fn check(optimizer: impl Into<Optimizer>, golden: &[[f32; 7]; 5]) {
    let Some(ctx) = common::full() else { return };
    let optimizer = optimizer.into();
    let mut opt = GpuOptimizer::with_params(&ctx, optimizer, &PARAMS).unwrap();
    for (t, (grads, expected)) in GRADS.iter().zip(golden).enumerate() {
        opt.write_grads(grads).unwrap();
        opt.step().unwrap();
        let got = opt.read_params().unwrap();
        for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
            assert!(
                approx::relative_eq!(g, e, epsilon = 1e-6, max_relative = 1e-6),
                "{}: step {} element {i}: gpu {g:e} vs torch {e:e} (diff {:e})",
                optimizer.name(),
                t + 1,
                (g - e).abs()
            );
        }
    }
}

#[test]
fn sgd_momentum_dampening() {
    check(
        Sgd::default()
            .lr(0.1)
            .momentum(0.9)
            .dampening(0.1)
            .weight_decay(0.01),
        &SGD_MOMENTUM_DAMPENING,
    );
}

#[test]
fn sgd_nesterov_maximize() {
    check(
        Sgd::default()
            .lr(0.1)
            .momentum(0.9)
            .nesterov(true)
            .maximize(true),
        &SGD_NESTEROV_MAXIMIZE,
    );
}

#[test]
fn rmsprop_centered_momentum() {
    let o = RmsProp::default()
        .lr(0.01)
        .alpha(0.9)
        .centered(true)
        .momentum(0.5)
        .weight_decay(0.1);
    check(o, &RMSPROP_CENTERED_MOMENTUM);
}

#[test]
fn rmsprop_plain() {
    check(RmsProp::default().lr(0.01), &RMSPROP_PLAIN);
}

#[test]
fn adam_l2_amsgrad() {
    check(
        Adam::default().lr(0.01).weight_decay(0.1).amsgrad(true),
        &ADAM_L2_AMSGRAD,
    );
}

#[test]
fn adam_maximize() {
    check(Adam::default().lr(0.05).maximize(true), &ADAM_MAXIMIZE);
}

#[test]
fn adamw() {
    check(
        Adam::adamw().lr(0.01).betas((0.8, 0.99)).weight_decay(0.1),
        &ADAMW,
    );
}

#[test]
fn adagrad_decay_maximize() {
    let o = Adagrad::default()
        .lr(0.1)
        .lr_decay(0.01)
        .initial_accumulator_value(0.1)
        .weight_decay(0.1)
        .maximize(true);
    check(o, &ADAGRAD_DECAY_MAXIMIZE);
}

// torch 2.15.0+cu132
// torch.optim.SGD([p], foreach=False, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)
const SGD_MOMENTUM_DAMPENING: [[f32; 7]; 5] = [
    [
        0.4895,
        -1.22875,
        1.968,
        -0.007997001,
        0.81925,
        -0.3996,
        -0.149001,
    ],
    [
        0.50660944,
        -1.2175192,
        1.9149288,
        0.0415129,
        0.8628377,
        -0.47988036,
        -0.2793678,
    ],
    [
        0.519752,
        -1.2423156,
        1.8789413,
        0.05453445,
        0.85629004,
        -0.47970077,
        -0.4504465,
    ],
    [
        0.47711256,
        -1.2230144,
        1.8403615,
        0.057204764,
        0.8586265,
        -0.50610745,
        -0.4960119,
    ],
    [
        0.44280764,
        -1.2315425,
        1.7409834,
        0.08205657,
        0.8464565,
        -0.47541794,
        -0.5545744,
    ],
];
// torch.optim.SGD([p], foreach=False, lr=0.1, momentum=0.9, nesterov=True, maximize=True)
const SGD_NESTEROV_MAXIMIZE: [[f32; 7]; 5] = [
    [0.519, -1.288, 2.057, 0.0065, 0.617, -0.4, 0.28599998],
    [
        0.4701,
        -1.2852,
        2.1288,
        -0.10345001,
        0.5983,
        -0.22900002,
        0.39799997,
    ],
    [
        0.45689,
        -1.21568,
        2.1424198,
        -0.08190501,
        0.65847,
        -0.30810001,
        0.6173,
    ],
    [
        0.55720097,
        -1.274612,
        2.1776779,
        -0.07501451,
        0.648623,
        -0.25029,
        0.53266996,
    ],
    [
        0.58398086,
        -1.2301507,
        2.3379102,
        -0.12531306,
        0.6772607,
        -0.33926103,
        0.60250294,
    ],
];
// torch.optim.RMSprop([p], foreach=False, lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1)
const RMSPROP_CENTERED_MOMENTUM: [[f32; 7]; 5] = [
    [
        0.46666667,
        -1.2166667,
        1.9666667,
        -0.036333308,
        0.7833333,
        -0.3666667,
        -0.032333333,
    ],
    [
        0.47780234,
        -1.197659,
        1.9259212,
        -0.020037608,
        0.7864341,
        -0.38314795,
        -0.047765654,
    ],
    [
        0.47581238,
        -1.2100039,
        1.903136,
        -0.028319394,
        0.76627654,
        -0.3687727,
        -0.069250025,
    ],
    [
        0.44443622,
        -1.1889931,
        1.8779205,
        -0.03722895,
        0.75712,
        -0.36887315,
        -0.059305515,
    ],
    [
        0.42902157,
        -1.1870413,
        1.8344947,
        -0.029443808,
        0.7434304,
        -0.35279283,
        -0.05782705,
    ],
];
// torch.optim.RMSprop([p], foreach=False, lr=0.01)
const RMSPROP_PLAIN: [[f32; 7]; 5] = [
    [
        0.4000001,
        -1.1500001,
        1.9000001,
        -0.10299981,
        0.85,
        -0.4,
        -0.098999985,
    ],
    [
        0.49491587,
        -1.1949013,
        1.835792,
        -0.003341809,
        0.82240003,
        -0.5,
        -0.09565174,
    ],
    [
        0.4885691,
        -1.2823753,
        1.8718989,
        -0.053789046,
        0.7654142,
        -0.43337727,
        -0.13309547,
    ],
    [
        0.3999408,
        -1.2120553,
        1.8598901,
        -0.068125516,
        0.7767944,
        -0.45773068,
        -0.0729602,
    ],
    [
        0.40734333,
        -1.2546775,
        1.773832,
        -0.03423547,
        0.75988513,
        -0.4137638,
        -0.08298252,
    ],
];
// torch.optim.Adam([p], foreach=False, lr=0.01, weight_decay=0.1, amsgrad=True)
const ADAM_L2_AMSGRAD: [[f32; 7]; 5] = [
    [0.49, -1.24, 1.99, -0.012999997, 0.76, -0.39000002, -0.009],
    [
        0.49295247,
        -1.2327694,
        1.9800423,
        -0.0061355676,
        0.7631217,
        -0.39712256,
        -0.015444251,
    ],
    [
        0.49369916,
        -1.2326479,
        1.9719092,
        -0.0047466937,
        0.76084447,
        -0.39660636,
        -0.022438757,
    ],
    [
        0.48868084,
        -1.2279282,
        1.9636517,
        -0.0044423793,
        0.7591356,
        -0.3974228,
        -0.02356131,
    ],
    [
        0.48444995,
        -1.2253693,
        1.955033,
        -0.0023701978,
        0.756397,
        -0.3955174,
        -0.025039043,
    ],
];
// torch.optim.Adam([p], foreach=False, lr=0.05, maximize=True)
const ADAM_MAXIMIZE: [[f32; 7]; 5] = [
    [0.55, -1.3, 2.05, 0.046999995, 0.7, -0.4, 0.050999995],
    [
        0.52529055,
        -1.3133168,
        2.0995586,
        0.0127024315,
        0.67801356,
        -0.36279315,
        0.083244145,
    ],
    [
        0.50824535,
        -1.2904502,
        2.1238556,
        0.00584316,
        0.682103,
        -0.36252782,
        0.11825186,
    ],
    [
        0.52743006,
        -1.297456,
        2.1470697,
        0.004415054,
        0.6821586,
        -0.35528746,
        0.12392932,
    ],
    [
        0.54159576,
        -1.2912693,
        2.1805542,
        -0.005865368,
        0.68675095,
        -0.36166325,
        0.13140462,
    ],
];
// torch.optim.AdamW([p], foreach=False, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)
const ADAMW: [[f32; 7]; 5] = [
    [
        0.48950002,
        -1.23875,
        1.988,
        -0.012996999,
        0.75925,
        -0.3996,
        -0.009001001,
    ],
    [
        0.4944655,
        -1.2354,
        1.9761493,
        -0.005694413,
        0.7623842,
        -0.4070375,
        -0.015027308,
    ],
    [
        0.49746764,
        -1.2396016,
        1.9700588,
        -0.0046910387,
        0.7599152,
        -0.40615988,
        -0.021712163,
    ],
    [
        0.49225008,
        -1.2365925,
        1.9641545,
        -0.0048945807,
        0.75862265,
        -0.407042,
        -0.021744369,
    ],
    [
        0.48853877,
        -1.2369024,
        1.9549451,
        -0.002812086,
        0.7563371,
        -0.40465057,
        -0.022424897,
    ],
];
// torch.optim.Adagrad([p], foreach=False, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.1, maximize=True)
const ADAGRAD_DECAY_MAXIMIZE: [[f32; 7]; 5] = [
    [
        0.5156174,
        -1.2730769,
        2.0301511,
        0.012708774,
        0.6574111,
        -0.3874509,
        0.09884895,
    ],
    [
        0.44241348,
        -1.2163306,
        2.0440388,
        -0.07468153,
        0.6730917,
        -0.29369807,
        0.09498387,
    ],
    [
        0.4374218,
        -1.1382872,
        1.972789,
        -0.029126644,
        0.71766186,
        -0.3538666,
        0.13020311,
    ],
    [
        0.5111805,
        -1.1826032,
        1.9447196,
        -0.016253702,
        0.70041907,
        -0.3288131,
        0.07255489,
    ],
    [
        0.49802622,
        -1.1351191,
        2.01245,
        -0.045559276,
        0.7083415,
        -0.3672682,
        0.08158679,
    ],
];
