// Half-precision values packed two per u32, lane 0 in the low half of `.x`, widened to f32
// exactly with integer operations (the same on every device). Twins in src/precision.rs.

// Four bf16 values (the high halves of f32s) → f32 (`bf16_value`).
fn bf16_unpack(w: vec2<u32>) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u));
}

// Four IEEE binary16 values → f32 (`f16_value`): normals rebias the exponent, subnormals are
// k·2⁻²⁴, ±∞ and NaN keep their payload.
fn f16_unpack(w: vec2<u32>) -> vec4<f32> {
    let h = vec4<u32>(w.x & 0xffffu, w.x >> 16u, w.y & 0xffffu, w.y >> 16u);
    let sign = (h & vec4<u32>(0x8000u)) << vec4<u32>(16u);
    let e = (h >> vec4<u32>(10u)) & vec4<u32>(0x1fu);
    let m = h & vec4<u32>(0x3ffu);
    let normal = sign | ((e + vec4<u32>(112u)) << vec4<u32>(23u)) | (m << vec4<u32>(13u));
    let special = sign | vec4<u32>(0x7f800000u) | (m << vec4<u32>(13u));
    let subnormal = sign | bitcast<vec4<u32>>(vec4<f32>(m) * 5.9604645e-8);
    var bits = select(normal, special, e == vec4<u32>(31u));
    bits = select(bits, subnormal, e == vec4<u32>(0u));
    return bitcast<vec4<f32>>(bits);
}
