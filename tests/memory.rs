//! `wgoptim memory`'s numbers agree with SEMANTICS.md (state bytes per parameter, written here
//! from the families' flags, not from the library's layout) and with the device allocator.

mod common;

use wgoptim::Optimizer;
use wgoptim::memory::profile;
use wgoptim::verify::variants;

/// SEMANTICS.md: SGD 0 B (4 with momentum), RMSprop 4 (+4 centered, +4 momentum), Adam and
/// AdamW 8 (+4 AMSGrad), Adagrad 4, Adamax 8, RAdam 8, Adadelta 8, NAdam 8, Rprop 8, ASGD 4,
/// Lion 4, LAMB 8 (its per-tensor tables and sums are counted apart, as the uniforms are),
/// Adafactor 4·(rows + columns) bytes per matrix, Muon 4 (its momentum; the Newton–Schulz
/// matrices are scratch space, counted apart).
fn expected_state_bytes(o: &Optimizer) -> f64 {
    match o {
        Optimizer::Sgd(s) => 4.0 * f64::from(u8::from(s.momentum != 0.0)),
        Optimizer::RmsProp(r) => {
            4.0 + 4.0 * f64::from(u8::from(r.centered))
                + 4.0 * f64::from(u8::from(r.momentum > 0.0))
        }
        Optimizer::Adam(a) => 8.0 + 4.0 * f64::from(u8::from(a.amsgrad)),
        Optimizer::Adagrad(_) | Optimizer::Asgd(_) | Optimizer::Lion(_) | Optimizer::Muon(_) => 4.0,
        Optimizer::Adamax(_)
        | Optimizer::RAdam(_)
        | Optimizer::Adadelta(_)
        | Optimizer::NAdam(_)
        | Optimizer::Rprop(_)
        | Optimizer::Lamb(_) => 8.0,
        // Profiled over a 256 × 256 matrix at 2^16 parameters: 256 row and 256 column averages.
        Optimizer::Adafactor(_) => 4.0 * 512.0 / 65536.0,
    }
}

#[test]
fn state_bytes_per_parameter_match_semantics() {
    let Some(ctx) = common::full() else { return };
    let n = 1 << 16;
    for (name, optimizer) in variants() {
        let r = profile(&ctx, name, optimizer, n).unwrap();
        assert_eq!(
            r.state_bytes_per_param,
            expected_state_bytes(&optimizer),
            "{name}"
        );
        let data: u64 = r
            .buffers
            .iter()
            .filter(|b| !["uniform", "tables", "scratch"].contains(&b.role.as_str()))
            .map(|b| b.requested_bytes)
            .sum();
        assert_eq!(
            data as f64,
            (8.0 + r.state_bytes_per_param) * n as f64,
            "{name}: params + grads + state"
        );
        // Muon's scratch space, 4·(2mn + m²) bytes per m×n matrix (m ≤ n): at 2^16, a 128 × 256
        // and a 256 × 128 matrix.
        let scratch: u64 = r
            .buffers
            .iter()
            .filter(|b| b.role == "scratch")
            .map(|b| b.requested_bytes)
            .sum();
        let expected = match optimizer {
            Optimizer::Muon(_) => 2 * 4 * (2 * 128 * 256 + 128 * 128),
            _ => 0,
        };
        assert_eq!(scratch, expected, "{name}: scratch bytes");
        if let Some(device) = r.device_bytes {
            assert!(
                device >= r.requested_bytes,
                "{name}: the allocator holds at least what was asked"
            );
            for b in &r.buffers {
                assert!(
                    b.device_bytes.is_some_and(|d| d >= b.requested_bytes),
                    "{name}: {} not found in the allocator report",
                    b.label
                );
            }
        }
        assert_eq!(
            r.readback_transient_bytes,
            Some(4 * n as u64),
            "{name}: a readback stages the whole vector"
        );
    }
}
