// Muon (torch.optim.Muon): each matrix's momentum, orthogonalized by a Newton–Schulz
// iteration; driver: pieces.wgsl; products: gemm.wgsl.
//   g ← c·g ;  B ← lerp(B, g, 1−μ) ;  U = lerp(g, B, μ) with NESTEROV, else B
//   moments:        B and U; U into X₀ where X (m×n, m ≤ n: the matrix or its transpose)
//                   holds it; returns (0, ΣU²) over the block's lanes
//   tensor_factor:  ‖U‖, at least ε
//   scale_pass:     X₀ ← X₀ / ‖U‖                  (over 64×64 tiles of every X)
//   gram_pass_p:    S = X_p X_pᵀ, into X_{1−p}'s space (over 64×64 tiles of every S; p = 0, 1)
//   poly_pass_p:    P = b·S + c·(S S)
//                   (S and P are symmetric bit for bit: the sums for (i, j) and (j, i) multiply
//                   the same pairs in the same k order. Their tiles are those on and above the
//                   diagonal, each above it writing its outputs at (i, j) and (j, i).)
//   combine_pass_p: X_{1−p} = a·X_p + P X_p         (over tiles of every X)
//                   (the three, ns_steps times, p alternating from 0)
//   apply:          θ ← θ(1 − γλ) − (γ·r)·X         (X the last one written)
// (a, b, c) are the uniform's eta_minus, eta_plus, step_size_min; μ its momentum, 1 − μ its
// one_minus_beta1.
//
// Tables (pieces.wgsl's, with Muon's meaning): the lines are OUT_TILE × OUT_TILE tiles (OUT_TILE
// from the host's `optim::muon::GEMM_TILE`), (tensor, tile row, tile column, 0), first every X's,
// then every S's; matrix t is tensor t: (first scratch element,
// r as f32 bits, first element of the final X, 0); every chunk's lines row is (first X tile,
// X tiles, first S tile, S tiles).

override NESTEROV: bool = true;

// State slot (binding 4): momentum_buffer.

// Scratch: per matrix from its first element, X₀ and X₁ (m·n each), then P (m·m); S (m·m ≤ m·n)
// lives in the X that the step's combine_pass overwrites.
@group(0) @binding(12) var<storage, read_write> work: array<f32>;

struct Matrix {
    rows: u32,
    cols: u32,
    m: u32,
    n: u32,
    base: u32,
    ratio: f32,
    last: u32,
}

fn matrix_of(t: u32) -> Matrix {
    let h = tables[0];
    let shape = tables[shapes(h) + t];
    let row = tables[matrices(h) + t];
    let rows = shape.w;
    let cols = shape.z;
    return Matrix(rows, cols, min(rows, cols), max(rows, cols), row.x, bitcast<f32>(row.y), row.z);
}

// Where X holds element e of the matrix (row-major): e, or its place in the transpose.
fn wide(mat: Matrix, e: u32) -> u32 {
    if mat.rows > mat.cols {
        return (e % mat.cols) * mat.rows + e / mat.cols;
    }
    return e;
}

fn lerp4(a: vec4<f32>, b: vec4<f32>, w: f32) -> vec4<f32> {
    return vec4<f32>(lerp(a.x, b.x, w), lerp(a.y, b.y, w), lerp(a.z, b.z, w), lerp(a.w, b.w, w));
}

// Element (in its matrix) of lane 0 of chunk block i of tensor t.
fn first_element(i: u32, t: u32) -> u32 {
    return (chunk.first_vec + i - tables[shapes(tables[0]) + t].x) * 4u;
}

fn moments(i: u32, lanes: vec4<bool>, tensor: u32) -> vec2<f32> {
    let mat = matrix_of(tensor);
    let g = load_grad(i) * grad_factor;
    let b = lerp4(load_momentum_buffer(i), g, step.one_minus_beta1);
    store_momentum_buffer(i, b, lanes);
    var u = b;
    if NESTEROV {
        u = lerp4(g, b, step.momentum);
    }
    let e = first_element(i, tensor);
    for (var k = 0u; k < 4u; k++) {
        if lanes[k] {
            work[mat.base + wide(mat, e + k)] = u[k];
        }
    }
    return vec2<f32>(0.0, squares(select(vec4<f32>(0.0), u, lanes)));
}

fn tensor_factor(tensor: u32, s: vec2<f32>) -> f32 {
    return at_least(sqrt(s.y), step.eps);
}

fn apply(i: u32, lanes: vec4<bool>, tensor: u32, norm: f32) {
    let mat = matrix_of(tensor);
    let e = first_element(i, tensor);
    var x = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) {
        if lanes[k] {
            x[k] = work[mat.last + wide(mat, e + k)];
        }
    }
    let p = load_param(i);
    store_param(i, p, p * step.decay - (step.lr * mat.ratio) * x, lanes);
}

// The tile a workgroup takes: its matrix, first output row and column; `valid` 0 past the
// last tile or on a skipped step. Read by invocation 0, then shared (uniform across the
// workgroup, as the products' barriers need).
struct Tile {
    valid: u32,
    tensor: u32,
    m: u32,
    n: u32,
    base: u32,
    i0: u32,
    j0: u32,
}

var<workgroup> current: Tile;

fn begin_tile(square: bool, wg: vec3<u32>, groups: vec3<u32>, local: u32) -> Tile {
    if local == 0u {
        let h = tables[0];
        let range = tables[chunk_lines(h) + chunk.tail_lanes];
        let index = wg.y * groups.x + wg.x;
        var first = range.x;
        var count = range.y;
        if square {
            first = range.z;
            count = range.w;
        }
        var tile = Tile(0u, 0u, 0u, 0u, 0u, 0u, 0u);
        if control.skip == 0u && index < count {
            let row = tables[lines(h) + first + index];
            let mat = matrix_of(row.x);
            tile = Tile(1u, row.x, mat.m, mat.n, mat.base, row.y * OUT_TILE, row.z * OUT_TILE);
        }
        current = tile;
    }
    return workgroupUniformLoad(&current);
}

// Where the invocation's 4 × 4 outputs (t.i0 + y + 16r, t.j0 + x + 16c) sit in a row-major
// `rows` × `cols` result: [r][c] their index, u32::MAX for one outside the result.
fn for_outputs(t: Tile, id: vec3<u32>, cols: u32, rows: u32) -> array<vec4<u32>, REG> {
    var at: array<vec4<u32>, REG>;
    for (var r = 0u; r < REG; r++) {
        for (var c = 0u; c < REG; c++) {
            let i = t.i0 + id.y + SIDE * r;
            let j = t.j0 + id.x + SIDE * c;
            at[r][c] = select(0xffffffffu, i * cols + j, i < rows && j < cols);
        }
    }
    return at;
}

// A symmetric m × m result (S, P) has tiles on and above the diagonal only: where the
// invocation's outputs' mirror images (j, i) sit, for a tile above the diagonal; u32::MAX on
// the diagonal, whose tile covers both halves itself, and outside the result.
fn for_mirrors(t: Tile, id: vec3<u32>, m: u32) -> array<vec4<u32>, REG> {
    var at: array<vec4<u32>, REG>;
    for (var r = 0u; r < REG; r++) {
        for (var c = 0u; c < REG; c++) {
            let i = t.i0 + id.y + SIDE * r;
            let j = t.j0 + id.x + SIDE * c;
            at[r][c] = select(0xffffffffu, j * m + i, t.i0 != t.j0 && i < m && j < m);
        }
    }
    return at;
}

@compute @workgroup_size(16, 16)
fn scale_pass(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) id: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let t = begin_tile(false, wg, groups, local);
    if t.valid == 0u {
        return;
    }
    let norm = sums[tables[0].x + t.tensor].x;
    let at = for_outputs(t, id, t.n, t.m);
    for (var r = 0u; r < REG; r++) {
        for (var c = 0u; c < REG; c++) {
            if at[r][c] != 0xffffffffu {
                let k = t.base + at[r][c];
                work[k] = work[k] / norm;
            }
        }
    }
}

fn gram(p: u32, wg: vec3<u32>, groups: vec3<u32>, id: vec3<u32>, local: u32) {
    let t = begin_tile(true, wg, groups, local);
    if t.valid == 0u {
        return;
    }
    let x = t.base + p * t.m * t.n;
    let sizes = vec3<u32>(t.m, t.m, t.n);
    let s = gemm_sums(t.i0, t.j0, sizes, vec3<u32>(x, t.n, 1u), vec3<u32>(x, 1u, t.n), id.x, id.y);
    let out = t.base + (1u - p) * t.m * t.n;
    let at = for_outputs(t, id, t.m, t.m);
    let mirrors = for_mirrors(t, id, t.m);
    for (var r = 0u; r < REG; r++) {
        for (var c = 0u; c < REG; c++) {
            if at[r][c] != 0xffffffffu {
                work[out + at[r][c]] = s[r][c];
            }
            if mirrors[r][c] != 0xffffffffu {
                work[out + mirrors[r][c]] = s[r][c];
            }
        }
    }
}

fn combine(p: u32, wg: vec3<u32>, groups: vec3<u32>, id: vec3<u32>, local: u32) {
    let t = begin_tile(false, wg, groups, local);
    if t.valid == 0u {
        return;
    }
    let x = t.base + p * t.m * t.n;
    let y = t.base + (1u - p) * t.m * t.n;
    let poly = t.base + 2u * t.m * t.n;
    let sizes = vec3<u32>(t.m, t.n, t.m);
    let s = gemm_sums(t.i0, t.j0, sizes, vec3<u32>(poly, t.m, 1u), vec3<u32>(x, t.n, 1u), id.x, id.y);
    let at = for_outputs(t, id, t.n, t.m);
    for (var r = 0u; r < REG; r++) {
        for (var c = 0u; c < REG; c++) {
            if at[r][c] != 0xffffffffu {
                work[y + at[r][c]] = step.eta_minus * work[x + at[r][c]] + s[r][c];
            }
        }
    }
}

fn poly(p: u32, wg: vec3<u32>, groups: vec3<u32>, id: vec3<u32>, local: u32) {
    let t = begin_tile(true, wg, groups, local);
    if t.valid == 0u {
        return;
    }
    let sq = t.base + (1u - p) * t.m * t.n;
    let out = t.base + 2u * t.m * t.n;
    let sizes = vec3<u32>(t.m, t.m, t.m);
    let s = gemm_sums(t.i0, t.j0, sizes, vec3<u32>(sq, t.m, 1u), vec3<u32>(sq, t.m, 1u), id.x, id.y);
    let at = for_outputs(t, id, t.m, t.m);
    let mirrors = for_mirrors(t, id, t.m);
    for (var r = 0u; r < REG; r++) {
        for (var c = 0u; c < REG; c++) {
            if at[r][c] != 0xffffffffu {
                let k = at[r][c];
                let v = step.eta_plus * work[sq + k] + step.step_size_min * s[r][c];
                work[out + k] = v;
                if mirrors[r][c] != 0xffffffffu {
                    work[out + mirrors[r][c]] = v;
                }
            }
        }
    }
}

@compute @workgroup_size(16, 16)
fn gram_pass_0(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) id: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    gram(0u, wg, groups, id, local);
}

@compute @workgroup_size(16, 16)
fn gram_pass_1(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) id: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    gram(1u, wg, groups, id, local);
}

@compute @workgroup_size(16, 16)
fn poly_pass_0(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) id: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    poly(0u, wg, groups, id, local);
}

@compute @workgroup_size(16, 16)
fn poly_pass_1(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) id: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    poly(1u, wg, groups, id, local);
}

@compute @workgroup_size(16, 16)
fn combine_pass_0(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) id: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    combine(0u, wg, groups, id, local);
}

@compute @workgroup_size(16, 16)
fn combine_pass_1(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) id: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    combine(1u, wg, groups, id, local);
}
