// Products of matrices in the scratch space `work` (declared by the family: Muon), over
// OUT_TILE × OUT_TILE tiles of the output (64 × 64, from the host), a workgroup of 16 × 16
// invocations each; invocation (x, y) owns the 4 × 4 outputs (y + 16a, x + 16b) of its tile.
// `gemm_sums` gives each of them Σₖ A[i][k]·B[k][j], k from 0 up, starting from 0 (sixteen k
// at a time through workgroup memory; the same order as the CPU twin's `cpu::muon::gemm`: the
// blocking changes which invocation adds a product, never the order of one output's sum). An
// operand is (base, row stride, column stride) in `work`: element (i, k) at base + i·row +
// k·col, so a transpose is a swap of strides.

const SIDE: u32 = 16u;
const REG: u32 = 4u;

var<workgroup> tile_a: array<array<f32, SIDE>, OUT_TILE>;
var<workgroup> tile_b: array<array<f32, OUT_TILE>, SIDE>;

// The sums for outputs (i0 + y + 16a, j0 + x + 16b) of a product of `sizes.x` × `sizes.z` by
// `sizes.z` × `sizes.y` (0 outside it). Every invocation of the workgroup calls it, with the
// same i0, j0, sizes and operands (the loop holds barriers).
fn gemm_sums(
    i0: u32,
    j0: u32,
    sizes: vec3<u32>,
    a: vec3<u32>,
    b: vec3<u32>,
    x: u32,
    y: u32,
) -> array<vec4<f32>, REG> {
    let rows = sizes.x;
    let cols = sizes.y;
    let depth = sizes.z;
    var s: array<vec4<f32>, REG>;
    for (var k0 = 0u; k0 < depth; k0 += SIDE) {
        for (var r = 0u; r < REG; r++) {
            let i = i0 + y + SIDE * r;
            var va = 0.0;
            if i < rows && k0 + x < depth {
                va = work[a.x + i * a.y + (k0 + x) * a.z];
            }
            tile_a[y + SIDE * r][x] = va;
            let j = j0 + x + SIDE * r;
            var vb = 0.0;
            if k0 + y < depth && j < cols {
                vb = work[b.x + (k0 + y) * b.y + j * b.z];
            }
            tile_b[y][x + SIDE * r] = vb;
        }
        workgroupBarrier();
        let end = min(SIDE, depth - k0);
        for (var k = 0u; k < end; k++) {
            let bk = vec4<f32>(
                tile_b[k][x],
                tile_b[k][x + SIDE],
                tile_b[k][x + 2u * SIDE],
                tile_b[k][x + 3u * SIDE],
            );
            for (var r = 0u; r < REG; r++) {
                s[r] = s[r] + tile_a[y + SIDE * r][k] * bk;
            }
        }
        workgroupBarrier();
    }
    return s;
}
