// State slot `$name` as block-wise 8-bit codes: four codes per u32 (one vec4 block), one f32
// absmax per BLOCK_VECS blocks, decoded with dynamic map $map (0 signed, 1 unsigned).
// `store` keeps the unrounded value and folds |x| into the block's maximum; `finish` (after the
// workgroup barrier) requantizes with the block's new absmax.
@group(0) @binding($binding) var<storage, read_write> $name: array<u32>;
@group(0) @binding($absmax_binding) var<storage, read_write> $name_absmax: array<f32>;
var<private> $name_new: vec4<f32>;

fn load_$name(i: u32) -> vec4<f32> {
    return decode_codes($name[i], $mapu) * $name_absmax[i / BLOCK_VECS];
}

fn store_$name(i: u32, x: vec4<f32>, lanes: vec4<bool>) {
    $name_new = x;
    fold_block_max($slotu, x, lanes);
}

fn finish_$name(i: u32, lanes: vec4<bool>) {
    let absmax = block_absmax($slotu);
    $name[i] = encode_codes($name[i], $name_new, absmax, $mapu, lanes);
    if i % BLOCK_VECS == 0u {
        $name_absmax[i / BLOCK_VECS] = absmax;
    }
}
