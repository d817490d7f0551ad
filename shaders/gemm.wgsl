// Products of matrices in the scratch space `work` (declared by the family: Muon), over 16×16
// tiles of the output, a workgroup of 16×16 invocations each: `gemm_sum` is Σₖ A[i][k]·B[k][j]
// for the invocation's output (i, j), k from 0 up, starting from 0 (sixteen k at a time through
// workgroup memory; the same order as the CPU twin's `cpu::muon::dot`). An operand is
// (base, row stride, column stride) in `work`: element (i, k) at base + i·row + k·col, so a
// transpose is a swap of strides.

const TILE: u32 = 16u;

var<workgroup> tile_a: array<array<f32, TILE>, TILE>;
var<workgroup> tile_b: array<array<f32, TILE>, TILE>;

// The sum for output (i0 + y, j0 + x) of a product of `rows` × `depth` by `depth` × `cols`
// (0 outside it). Every invocation of the workgroup calls it, with the same i0, j0, sizes and
// operands (the loop holds barriers).
fn gemm_sum(
    i0: u32,
    j0: u32,
    sizes: vec3<u32>,
    a: vec3<u32>,
    b: vec3<u32>,
    x: u32,
    y: u32,
) -> f32 {
    let rows = sizes.x;
    let cols = sizes.y;
    let depth = sizes.z;
    let i = i0 + y;
    let j = j0 + x;
    var s = 0.0;
    for (var k0 = 0u; k0 < depth; k0 += TILE) {
        var va = 0.0;
        var vb = 0.0;
        if i < rows && k0 + x < depth {
            va = work[a.x + i * a.y + (k0 + x) * a.z];
        }
        if k0 + y < depth && j < cols {
            vb = work[b.x + (k0 + y) * b.y + j * b.z];
        }
        tile_a[y][x] = va;
        tile_b[y][x] = vb;
        workgroupBarrier();
        let end = min(TILE, depth - k0);
        for (var k = 0u; k < end; k++) {
            s = s + tile_a[y][k] * tile_b[k][x];
        }
        workgroupBarrier();
    }
    return s;
}
