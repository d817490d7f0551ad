// Adafactor (torch.optim.Adafactor): factored second moments; driver: pieces.wgsl.
//   g ← s·c·g ;  w = t^τ (average × at_step.average_mul) ;  ρ = min(γ, 1/√t) (lr2 × lr2_mul)
//   lines_pass:    one invocation per row or column (or four adjacent columns) of a matrix in
//                  this chunk: its mean of g² (elements in order), lerped into its average
//   means_pass:    one invocation per matrix: the mean of its row averages
//   moments:       a vector's V ← lerp(V, g², w); u = g / √max(V̂, ε₁²) with V̂ = V, or
//                  R_i·C_j / max(mean(R), ε₁); returns (Σθ², Σu²) over the block's lanes
//   tensor_factor: α/max(1, RMS(u)/d), α = max(ε₂, RMS(θ))·ρ
//   apply:         θ ← θ(1 − γλ) − factor·u

// State slot (binding 4): variance, tensor by tensor: a matrix's B·rows row averages then its
// B·columns column averages, or a vector's averages (tables' shapes give where).

const LINE_INVOCATIONS: u32 = 64u;

fn variance_at(k: u32) -> f32 {
    return variance[k / 4u][k % 4u];
}

fn set_variance(k: u32, x: f32) {
    variance[k / 4u][k % 4u] = x;
}

fn mean_weight() -> f32 {
    return step.average * at_step.average_mul;
}

// A line's mean of g² lerped into its average: one row (stride 1) or column, or, where the
// stride is a multiple of 4 (columns of a matrix of 4k columns), four adjacent columns at once
// as one vec4 (each column still summed row by row in order). A row whose elements fill whole
// vec4 blocks is read a block at a time, its squares added left to right.
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
    // (first element in the chunk, elements, stride, state element)
    let line = tables[lines(header) + range.x + index];
    let w = mean_weight();
    if line.z % 4u == 0u {
        var s = vec4<f32>(0.0);
        for (var k = 0u; k < line.y; k++) {
            let g = load_grad((line.x + k * line.z) / 4u) * grad_factor;
            s += g * g;
        }
        let mean = s / f32(line.y);
        for (var j = 0u; j < 4u; j++) {
            set_variance(line.w + j, lerp(variance_at(line.w + j), mean[j], w));
        }
        return;
    }
    var s = 0.0;
    if line.z == 1u && line.x % 4u == 0u && line.y % 4u == 0u {
        for (var k = 0u; k < line.y / 4u; k++) {
            let g = load_grad(line.x / 4u + k) * grad_factor;
            s = s + g.x * g.x;
            s = s + g.y * g.y;
            s = s + g.z * g.z;
            s = s + g.w * g.w;
        }
    } else {
        for (var k = 0u; k < line.y; k++) {
            let e = line.x + k * line.z;
            let g = load_grad(e / 4u)[e % 4u] * grad_factor;
            s += g * g;
        }
    }
    set_variance(line.w, lerp(variance_at(line.w), s / f32(line.y), w));
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

// What a block's lanes need of their tensor, read from the tables once per block.
struct Tensor {
    // First state element; columns (0: a vector); rows (a vector's length); matrices.
    state: u32,
    cols: u32,
    rows: u32,
    batch: u32,
    // Where the tensor's matrices' mean row averages start in `sums`.
    means: u32,
    // The tensor's element in lane 0 of the block.
    first: u32,
}

fn tensor_at(t: u32, i: u32) -> Tensor {
    let header = tables[0];
    let shape = tables[shapes(header) + t];
    let run = tables[runs(header) + t];
    return Tensor(shape.y, shape.z, shape.w, run.w, header.x + header.y + run.z,
                  4u * (chunk.first_vec + i - shape.x));
}

// A lane's matrix, row and column in its tensor.
struct At {
    b: u32,
    r: u32,
    c: u32,
}

// The next element's.
fn next(x: Tensor, a: At) -> At {
    if a.c + 1u < x.cols {
        return At(a.b, a.r, a.c + 1u);
    }
    if a.r + 1u < x.rows {
        return At(a.b, a.r + 1u, 0u);
    }
    return At(a.b + 1u, 0u, 0u);
}

// R_i·C_j / max(mean(R), ε₁) at `a`. Lanes past the tensor read other averages (in bounds, or
// clamped by the robust access WGSL guarantees); `directions` drops them.
fn factored_at(x: Tensor, a: At) -> f32 {
    let row = variance_at(x.state + a.b * x.rows + a.r);
    let col = variance_at(x.state + x.batch * x.rows + a.b * x.cols + a.c);
    return (row * col) / at_least(sums[x.means + a.b].x, step.eps);
}

// u = g / √max(V̂, ε₁²) for the block's lanes (averages already updated; 0 in the others), with
// V̂ a vector's average, or `factored_at` each lane's (matrix, row, column): found by division
// for lane 0 and stepped for the others.
fn directions(x: Tensor, g: vec4<f32>, lanes: vec4<bool>) -> vec4<f32> {
    var v_hat: vec4<f32>;
    if x.cols == 0u {
        let k = x.state + x.first;
        v_hat = vec4<f32>(variance_at(k), variance_at(k + 1u), variance_at(k + 2u),
                          variance_at(k + 3u));
    } else {
        let size = x.rows * x.cols;
        let within = x.first % size;
        let a0 = At(x.first / size, within / x.cols, within % x.cols);
        let a1 = next(x, a0);
        let a2 = next(x, a1);
        let a3 = next(x, a2);
        v_hat = vec4<f32>(factored_at(x, a0), factored_at(x, a1), factored_at(x, a2),
                          factored_at(x, a3));
    }
    let floor = vec4<f32>(step.eps * step.eps);
    let v = select(v_hat, floor, v_hat < floor);
    return select(vec4<f32>(0.0), (1.0 / sqrt(v)) * g, lanes);
}

fn moments(i: u32, lanes: vec4<bool>, tensor: u32) -> vec2<f32> {
    let p = load_param(i);
    let g = load_grad(i) * grad_factor;
    let x = tensor_at(tensor, i);
    if x.cols == 0u {
        let w = mean_weight();
        for (var l = 0u; l < 4u; l++) {
            if lanes[l] {
                let k = x.state + x.first + l;
                set_variance(k, lerp(variance_at(k), g[l] * g[l], w));
            }
        }
    }
    let u = directions(x, g, lanes);
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
    let u = directions(tensor_at(tensor, i), g, lanes);
    store_param(i, p, p * step.decay - factor * u, lanes);
}
