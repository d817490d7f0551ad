//! Every candidate kernel shape (contiguous and strided, 1 to 8 vec4 blocks per invocation,
//! burn's one-block shape among them) gives the f32 twin's results bit for bit, for every
//! family, at sizes that are not multiples of a block or a workgroup and that cross the chunk
//! seams of a 1 MiB-binding device dispatching in two dimensions, and writes nothing past the
//! end of the caller's buffers (NaN poison there must survive).

mod common;

use common::{POISON, poisoned_buffer, read_raw};
use wgoptim::verify::{self, Data, run_against_reference};
use wgoptim::{GpuOptimizer, KernelShape, Shapes};

const CHUNK: usize = (common::SMALL_BINDING_BYTES / 4) as usize;
const SIZES: [usize; 4] = [1, 5, 8195, 2 * CHUNK + 5];
const VARIANTS: [&str; 5] = [
    "sgd-nesterov",
    "rmsprop-centered-momentum",
    "adam-amsgrad",
    "adamw",
    "adagrad-decay",
];

fn run(shape: KernelShape) {
    let Some(small) = common::small() else { return };
    let ctx = small.with_shapes(Shapes::Fixed(shape)).unwrap();
    for name in VARIANTS {
        let optimizer = verify::variants()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, o)| o)
            .unwrap();
        assert_eq!(ctx.shape_for(&optimizer).unwrap(), shape);
        for &n in &SIZES {
            let seed = n as u64 + 17;
            let params = Data::new(seed).vector(n);
            let param_buffer = poisoned_buffer(&ctx, &params, 64);
            let grad_buffer = poisoned_buffer(&ctx, &vec![0.0; n], 64);
            let mut gpu =
                GpuOptimizer::adopt(&ctx, optimizer, param_buffer.clone(), grad_buffer, n).unwrap();
            let reports = run_against_reference(&mut gpu, &params, 3, &[3], seed + 1).unwrap();
            let diff = reports[0].diff;
            assert_eq!(diff.max_ulp, 0, "{} {name} n={n}: {diff:?}", shape.name());
            assert!(diff.passes(3), "{} {name} n={n}: {diff:?}", shape.name());
            let raw = read_raw(&ctx, &param_buffer);
            assert!(
                raw[n..].iter().all(|x| x.to_bits() == POISON.to_bits()),
                "{} {name} n={n}: written past the end",
                shape.name()
            );
        }
    }
}

#[test]
fn contiguous_1_burns_shape() {
    run(KernelShape::contiguous(1));
}

#[test]
fn contiguous_2() {
    run(KernelShape::contiguous(2));
}

#[test]
fn contiguous_4() {
    run(KernelShape::contiguous(4));
}

#[test]
fn contiguous_8() {
    run(KernelShape::contiguous(8));
}

#[test]
fn strided_2() {
    run(KernelShape::strided(2));
}

#[test]
fn strided_4() {
    run(KernelShape::strided(4));
}

#[test]
fn strided_8() {
    run(KernelShape::strided(8));
}

#[test]
fn a_smaller_workgroup_strided() {
    run(KernelShape {
        workgroup_size: 128,
        vecs_per_invocation: 3,
        strided: true,
    });
}

#[test]
fn every_candidate_has_a_test() {
    let tested = [
        KernelShape::contiguous(1),
        KernelShape::contiguous(2),
        KernelShape::contiguous(4),
        KernelShape::contiguous(8),
        KernelShape::strided(2),
        KernelShape::strided(4),
        KernelShape::strided(8),
    ];
    assert_eq!(tested, KernelShape::CANDIDATES);
}

#[test]
fn shapes_the_device_cannot_run_are_refused() {
    let Some(ctx) = common::full() else { return };
    for bad in [
        KernelShape {
            workgroup_size: 0,
            vecs_per_invocation: 1,
            strided: false,
        },
        KernelShape {
            workgroup_size: 256,
            vecs_per_invocation: 0,
            strided: true,
        },
        KernelShape {
            workgroup_size: 4096,
            vecs_per_invocation: 1,
            strided: false,
        },
    ] {
        let e = ctx.with_shapes(Shapes::Fixed(bad)).unwrap_err();
        assert!(matches!(e, wgoptim::Error::InvalidShape(_)), "{bad:?}: {e}");
    }
}
