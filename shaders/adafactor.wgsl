// Adafactor (torch.optim.Adafactor): factored second moments; driver: pieces.wgsl.
//   g ← s·c·g ;  w = t^τ (average × at_step.average_mul) ;  ρ = min(γ, 1/√t) (lr2 × lr2_mul)
//   lines_pass:    one invocation per row or column of a matrix in this chunk: its mean of g²
//                  (elements in order), lerped into its average with weight w
//   means_pass:    one invocation per matrix: the mean of its row averages
//   moments:       a vector's V ← lerp(V, g², w); u = g / √max(V̂, ε₁²) with V̂ = V, or
//                  R_i·C_j / max(mean(R), ε₁); returns (Σθ², Σu²) over the block's lanes
//   tensor_factor: α/max(1, RMS(u)/d), α = max(ε₂, RMS(θ))·ρ
//   apply:         θ ← θ(1 − γλ) − factor·u

// State slot (binding 4): variance, tensor by tensor: a matrix's B·rows row averages then its
// B·columns column averages, or a vector's averages (tables' shapes give where).

const LINE_INVOCATIONS: u32 = 64u;

// max(x, lo) as torch's clamp_(min=lo) has it: a NaN x stays NaN.
fn at_least(x: f32, lo: f32) -> f32 {
    return select(x, lo, x < lo);
}

// torch's lerp: a + w(b − a) for w < 0.5, else b − (b − a)(1 − w).
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w < 0.5 {
        return a + w * (b - a);
    }
    return b - (b - a) * (1.0 - w);
}

fn variance_at(k: u32) -> f32 {
    return variance[k / 4u][k % 4u];
}

fn set_variance(k: u32, x: f32) {
    variance[k / 4u][k % 4u] = x;
}

fn mean_weight() -> f32 {
    return step.average * at_step.average_mul;
}

@compute @workgroup_size(LINE_INVOCATIONS)
fn lines_pass(
    @builtin(global_invocation_id) id: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let header = tables[0];
    let range = tables[chunk_lines(header) + chunk.tail_lanes];
    let index = id.y * groups.x * LINE_INVOCATIONS + id.x;
    if control.skip != 0u || index >= range.y {
        return;
    }
    prepare();
    let line = tables[lines(header) + range.x + index];
    var s = 0.0;
    for (var k = 0u; k < line.y; k++) {
        let e = line.x + k * line.z;
        let g = load_grad(e / 4u)[e % 4u] * grad_factor;
        s += g * g;
    }
    set_variance(line.w, lerp(variance_at(line.w), s / f32(line.y), mean_weight()));
}

@compute @workgroup_size(64)
fn means_pass(@builtin(global_invocation_id) id: vec3<u32>) {
    let header = tables[0];
    let m = id.x;
    if control.skip != 0u || m >= header.w {
        return;
    }
    let matrix = tables[matrices(header) + m];
    var s = 0.0;
    for (var k = 0u; k < matrix.y; k++) {
        s += variance_at(matrix.x + k);
    }
    sums[header.x + header.y + m] = vec2<f32>(s / f32(matrix.y), 0.0);
}

// Element `e` of tensor `t`'s u for gradient g (its averages already updated).
fn direction(t: u32, e: u32, g: f32) -> f32 {
    let header = tables[0];
    let shape = tables[shapes(header) + t];
    var v_hat: f32;
    if shape.z == 0u {
        v_hat = variance_at(shape.y + e);
    } else {
        let run = tables[runs(header) + t];
        let size = shape.w * shape.z;
        let b = e / size;
        let within = e % size;
        let row = variance_at(shape.y + b * shape.w + within / shape.z);
        let col = variance_at(shape.y + run.w * shape.w + b * shape.z + within % shape.z);
        let mean = sums[header.x + header.y + run.z + b].x;
        v_hat = (row * col) / at_least(mean, step.eps);
    }
    return (1.0 / sqrt(at_least(v_hat, step.eps * step.eps))) * g;
}

// The element of tensor `t` in lane 0 of block `i` of this chunk.
fn tensor_element(t: u32, i: u32) -> u32 {
    return 4u * (chunk.first_vec + i - tables[shapes(tables[0]) + t].x);
}

fn moments(i: u32, lanes: vec4<bool>, tensor: u32) -> vec2<f32> {
    let p = load_param(i);
    let g = load_grad(i) * grad_factor;
    let vector = tables[shapes(tables[0]) + tensor].z == 0u;
    let first = tensor_element(tensor, i);
    let state = tables[shapes(tables[0]) + tensor].y + first;
    var u = vec4<f32>(0.0);
    for (var l = 0u; l < 4u; l++) {
        if lanes[l] {
            if vector {
                set_variance(state + l, lerp(variance_at(state + l), g[l] * g[l], mean_weight()));
            }
            u[l] = direction(tensor, first + l, g[l]);
        }
    }
    return vec2<f32>(squares(select(vec4<f32>(0.0), p, lanes)), squares(u));
}

fn tensor_factor(tensor: u32, s: vec2<f32>) -> f32 {
    let header = tables[0];
    let shape = tables[shapes(header) + tensor];
    var n = shape.w;
    if shape.z != 0u {
        n = tables[runs(header) + tensor].w * shape.w * shape.z;
    }
    let root_n = sqrt(f32(n));
    let rho = min(step.lr, step.lr2 * at_step.lr2_mul);
    // Python's max(ε₂, rms) and max(1, q), as torch computes them: a NaN loses.
    let rms = sqrt(s.x) / root_n;
    let alpha = select(step.eps2, rms, rms > step.eps2) * rho;
    let q = sqrt(s.y) / (root_n * step.clip_threshold);
    return alpha / select(1.0, q, q > 1.0);
}

fn apply(i: u32, lanes: vec4<bool>, tensor: u32, factor: f32) {
    let p = load_param(i);
    let g = load_grad(i) * grad_factor;
    let first = tensor_element(tensor, i);
    var u = vec4<f32>(0.0);
    for (var l = 0u; l < 4u; l++) {
        if lanes[l] {
            u[l] = direction(tensor, first + l, g[l]);
        }
    }
    store_param(i, p, p * step.decay - factor * u, lanes);
}
