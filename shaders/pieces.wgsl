// The per-tensor driver (after the family's file: LAMB, Adafactor, Muon): passes over pieces, each
// piece up to PIECE_INVOCATIONS × PIECE_VECS vec4 blocks (4,096 elements) of one tensor inside
// one binding chunk, cut on a grid from the group's first element, so that every backend and
// binding size sees the same pieces (src/gpu/segment.rs builds them; the CPU twins in
// src/cpu/lamb.rs, src/cpu/adafactor.rs and src/cpu/muon.rs repeat the order).
//   (the family's own passes first: Adafactor's lines_pass and means_pass; Muon's scale and
//   matrix-product passes come between finish_pass and apply_pass)
//   moments_pass: one workgroup per piece of the chunk: invocation l sums the family's
//                 `moments` of blocks 4l … 4l+3 in order, then a tree over the 256; the
//                 piece's (Σθ², Σu²) into sums[piece]
//   finish_pass:  one invocation per tensor: its pieces' sums in order; the family's
//                 `tensor_factor` of them (LAMB's trust ratio, Adafactor's step) into
//                 sums[pieces + tensor].x
//   apply_pass:   one workgroup per piece: the family's `apply` with its tensor's factor
// A skipped step (control.skip) writes nothing.

// The chunk uniform holds the chunk's first piece (`first_partial`), its number of pieces
// (`full_vecs`) and the chunk's index (`tail_lanes`). Written once by the host, with
// header = tables[0] = (pieces P, tensors T, lines L, matrices M):
//   tables[1 + p]               piece p: (tensor, first block in its chunk, blocks, lanes of
//                               its last block: 1–4)
//   tables[runs(h) + t]         tensor t: (first piece, pieces, first matrix, matrices)
//   tables[shapes(h) + t]       tensor t: (first vec4 block in the flat buffers, first state
//                               element, columns (0: a vector), rows (a vector's length))
//   tables[lines(h) + k]        Adafactor's line k: (first element in its chunk, elements,
//                               stride, state element)
//   tables[matrices(h) + m]     Adafactor's matrix m: (first row state element, rows, 0, 0)
//   tables[chunk_lines(h) + c]  chunk c's lines: (first line, lines, 0, 0)
@group(0) @binding(10) var<storage, read> tables: array<vec4<u32>>;
// sums[p]: piece p's (Σθ², Σu²); sums[P + t].x: tensor t's factor; sums[P + T + m].x: matrix
// m's mean row average (Adafactor).
@group(0) @binding(11) var<storage, read_write> sums: array<vec2<f32>>;

fn runs(h: vec4<u32>) -> u32 {
    return 1u + h.x;
}
fn shapes(h: vec4<u32>) -> u32 {
    return 1u + h.x + h.y;
}
fn lines(h: vec4<u32>) -> u32 {
    return 1u + h.x + 2u * h.y;
}
fn matrices(h: vec4<u32>) -> u32 {
    return 1u + h.x + 2u * h.y + h.z;
}
fn chunk_lines(h: vec4<u32>) -> u32 {
    return 1u + h.x + 2u * h.y + h.z + h.w;
}

// x·x summed left to right (the CPU twins' order; `dot` leaves it to the driver).
fn squares(x: vec4<f32>) -> f32 {
    return x.x * x.x + x.y * x.y + x.z * x.z + x.w * x.w;
}

const PIECE_INVOCATIONS: u32 = 256u;
const PIECE_VECS: u32 = 4u;

var<workgroup> tree: array<vec2<f32>, PIECE_INVOCATIONS>;

fn prepare() {
    at_step = scalars[control.steps % arrayLength(&scalars)];
    grad_factor = step.grad_scale * control.grad_mul;
    set_streams();
}

// The lanes of block `j` of `piece` (all but in its last block).
fn piece_lanes(piece: vec4<u32>, j: u32) -> vec4<bool> {
    if j + 1u == piece.z {
        return vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(piece.w);
    }
    return vec4<bool>(true);
}

@compute @workgroup_size(PIECE_INVOCATIONS)
fn moments_pass(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    prepare();
    // A two-dimensional dispatch may have workgroups past the chunk's pieces.
    let local_piece = wg.y * groups.x + wg.x;
    let index = chunk.first_partial + local_piece;
    let working = control.skip == 0u && local_piece < chunk.full_vecs;
    var piece = vec4<u32>(0u);
    if working {
        piece = tables[1u + index];
    }
    var acc = vec2<f32>(0.0);
    if working {
        for (var k = 0u; k < PIECE_VECS; k++) {
            let j = local * PIECE_VECS + k;
            if j < piece.z {
                acc += moments(piece.y + j, piece_lanes(piece, j), piece.x);
            }
        }
    }
    tree[local] = acc;
    for (var half = PIECE_INVOCATIONS / 2u; half > 0u; half = half / 2u) {
        workgroupBarrier();
        if local < half {
            tree[local] = tree[local] + tree[local + half];
        }
    }
    if local == 0u && working {
        sums[index] = tree[0];
    }
}

@compute @workgroup_size(64)
fn finish_pass(@builtin(global_invocation_id) id: vec3<u32>) {
    let header = tables[0];
    let t = id.x;
    if control.skip != 0u || t >= header.y {
        return;
    }
    prepare();
    let run = tables[runs(header) + t];
    var s = vec2<f32>(0.0);
    for (var k = 0u; k < run.y; k++) {
        s += sums[run.x + k];
    }
    sums[header.x + t] = vec2<f32>(tensor_factor(t, s), 0.0);
}

@compute @workgroup_size(PIECE_INVOCATIONS)
fn apply_pass(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let local_piece = wg.y * groups.x + wg.x;
    if control.skip != 0u || local_piece >= chunk.full_vecs {
        return;
    }
    prepare();
    let piece = tables[1u + chunk.first_partial + local_piece];
    let factor = sums[tables[0].x + piece.x].x;
    for (var k = 0u; k < PIECE_VECS; k++) {
        let j = local * PIECE_VECS + k;
        if j < piece.z {
            apply(piece.y + j, piece_lanes(piece, j), piece.x, factor);
        }
    }
}
