//! Low-precision optimizer state: the formats, and the one home of their encodings, shared by
//! the CPU twins and (as tables and twins of `shaders/state_*.wgsl` and `shaders/blockwise.wgsl`)
//! the kernels.
//!
//! - [`StateDType::Bf16`]: each state element stored as bfloat16 (the high half of an f32),
//!   rounded to nearest-even or stochastically (see [`Rounding`]).
//! - [`StateDType::Int8`]: bitsandbytes' block-wise 8-bit state (Dettmers et al., 2022): blocks
//!   of [`BLOCK`] elements, one f32 absmax per block and state tensor, each element an 8-bit
//!   code into a dynamic map ([`DynamicMap`]): x ≈ map\[code\]·absmax. A step dequantizes with
//!   the old absmax, updates in f32 (PyTorch's rule, unchanged), takes the parameter step from
//!   the unrounded state, then requantizes with the block's new absmax by nearest code.
//!
//! The state type is part of the optimizer's configuration ([`StatePrecision`]), so it travels
//! with parameter groups, checkpoints and the CPU backend:
//!
//! ```no_run
//! use wgoptim::{Adam, Backend, GpuContext, GpuOptimizer, StatePrecision};
//! let ctx = GpuContext::new()?;
//! let adamw = Adam::adamw().lr(1e-3).state(StatePrecision::int8());
//! let mut opt = GpuOptimizer::with_params(&ctx, adamw, &vec![0.1; 1 << 20])?;
//! opt.write_grads(&vec![0.01; 1 << 20])?;
//! opt.step()?;
//! let m = opt.read_state("exp_avg")?; // dequantized
//! # Ok::<(), wgoptim::Error>(())
//! ```

use std::sync::OnceLock;

/// Elements per quantization block of [`StateDType::Int8`] state (bitsandbytes' block size).
pub const BLOCK: usize = 256;

/// Tensors (parameter groups) with fewer elements keep f32 state unless told otherwise, as
/// bitsandbytes' `min_8bit_size`.
pub const DEFAULT_MIN_LEN: usize = 4096;

/// Element type of the optimizer state.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum StateDType {
    /// 32-bit float, 4 B per parameter and state tensor.
    #[default]
    F32,
    /// bfloat16, 2 B.
    Bf16,
    /// Block-wise 8-bit codes with one f32 absmax per [`BLOCK`] elements: 1 + 4/256 B.
    Int8,
}

impl StateDType {
    /// Every state type.
    pub const ALL: [StateDType; 3] = [StateDType::F32, StateDType::Bf16, StateDType::Int8];

    /// The name used on the command line and in checkpoints: `f32`, `bf16`, `int8`.
    pub fn name(self) -> &'static str {
        match self {
            StateDType::F32 => "f32",
            StateDType::Bf16 => "bf16",
            StateDType::Int8 => "int8",
        }
    }

    /// Parses [`StateDType::name`].
    pub fn parse(name: &str) -> crate::Result<Self> {
        parse_named(&Self::ALL, Self::name, "state dtype", name)
    }

    /// Bytes of one state tensor over `len` elements as allocated (before padding to whole
    /// vec4 blocks): codes plus one absmax per block for int8.
    pub fn bytes(self, len: usize) -> u64 {
        let len = len as u64;
        match self {
            StateDType::F32 => 4 * len,
            StateDType::Bf16 => 2 * len,
            StateDType::Int8 => len + 4 * len.div_ceil(BLOCK as u64),
        }
    }
}

/// Element type of the gradients an optimizer reads. Half-precision gradients are stored two
/// to a `u32` (four per vec4 block) and widened to f32 exactly in the kernel; everything after
/// the load (unscaling, clipping, the update) is f32.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum GradDType {
    /// 32-bit float.
    #[default]
    F32,
    /// IEEE binary16: 5 exponent bits, so loss scaling matters (overflow becomes ±∞, which
    /// non-finite skipping catches).
    F16,
    /// bfloat16: f32's range, 8 significant bits.
    Bf16,
}

impl GradDType {
    /// Every gradient type.
    pub const ALL: [GradDType; 3] = [GradDType::F32, GradDType::F16, GradDType::Bf16];

    /// `f32`, `f16` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            GradDType::F32 => "f32",
            GradDType::F16 => "f16",
            GradDType::Bf16 => "bf16",
        }
    }

    /// Parses [`GradDType::name`].
    pub fn parse(name: &str) -> crate::Result<Self> {
        parse_named(&Self::ALL, Self::name, "gradient dtype", name)
    }

    /// Bytes per gradient element.
    pub fn bytes(self) -> u64 {
        match self {
            GradDType::F32 => 4,
            GradDType::F16 | GradDType::Bf16 => 2,
        }
    }

    /// The bits of `x` rounded to nearest-even in this (half) type; `None` for f32.
    pub fn half_bits(self, x: f32) -> Option<u16> {
        match self {
            GradDType::F32 => None,
            GradDType::F16 => Some(f16_bits(x)),
            GradDType::Bf16 => Some(bf16_bits(x, Rounding::NearestEven, 0)),
        }
    }

    /// The f32 value of half bits `h` in this type (exact; the shader's `load_grad`).
    pub fn half_value(self, h: u16) -> f32 {
        match self {
            GradDType::F16 => f16_value(h),
            _ => bf16_value(h),
        }
    }

    /// `x` as the kernel reads it back after it was stored in this type: rounded to
    /// nearest-even and widened again (f32: unchanged).
    pub fn round(self, x: f32) -> f32 {
        self.half_bits(x).map_or(x, |h| self.half_value(h))
    }
}

/// f32 → IEEE binary16 bits, round to nearest-even; overflow to ±∞, NaN stays a quiet NaN.
pub fn f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let abs = b & 0x7fff_ffff;
    if abs > 0x7f80_0000 {
        return sign | 0x7e00 | ((abs >> 13) & 0x3ff) as u16;
    }
    if abs >= 0x4780_0000 {
        return sign | 0x7c00;
    }
    if abs >= 0x3880_0000 {
        // Normal: rebias the exponent (127 → 15), round the 13 dropped bits; a carry moves into
        // the exponent (up to ∞ from 65520 on), as it should.
        let m = abs - 0x3800_0000;
        return sign | ((m + 0x0fff + ((m >> 13) & 1)) >> 13) as u16;
    }
    let e = abs >> 23;
    if e < 102 {
        return sign; // below 2^-25: rounds to ±0
    }
    // Subnormal: k·2^-24 with k = m·2^(e−126), rounded to nearest-even.
    let m = (abs & 0x7f_ffff) | 0x80_0000;
    let shift = 126 - e;
    sign | ((m + (1 << (shift - 1)) - 1 + ((m >> shift) & 1)) >> shift) as u16
}

/// IEEE binary16 bits → f32 (exact; the shader's `f16_unpack`).
pub fn f16_value(h: u16) -> f32 {
    let sign = (u32::from(h) & 0x8000) << 16;
    let e = u32::from(h >> 10) & 0x1f;
    let m = u32::from(h) & 0x3ff;
    match e {
        0 => {
            let magnitude = m as f32 * (1.0 / (1u32 << 24) as f32);
            f32::from_bits(sign | magnitude.to_bits())
        }
        31 => f32::from_bits(sign | 0x7f80_0000 | (m << 13)),
        _ => f32::from_bits(sign | ((e + 112) << 23) | (m << 13)),
    }
}

/// How the parameters are stored and updated.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum ParamDType {
    /// f32 parameters (PyTorch's default).
    #[default]
    F32,
    /// f32 master weights, updated in f32, and a bf16 model copy the same pass writes (rounded
    /// to nearest-even), so the forward pass reads bf16 without a separate cast (apex's and
    /// PyTorch AMP's master weights, fused).
    Bf16Master,
    /// bf16 parameters only (2 B each): read, updated in f32, and written back with
    /// stochastic rounding (torchao's approach), whose expectation is the f32 result, so
    /// updates smaller than half a bf16 ulp still move the parameters on average.
    Bf16,
}

impl ParamDType {
    /// Every parameter type.
    pub const ALL: [ParamDType; 3] = [ParamDType::F32, ParamDType::Bf16Master, ParamDType::Bf16];

    /// `f32`, `bf16-master` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            ParamDType::F32 => "f32",
            ParamDType::Bf16Master => "bf16-master",
            ParamDType::Bf16 => "bf16",
        }
    }

    /// Parses [`ParamDType::name`].
    pub fn parse(name: &str) -> crate::Result<Self> {
        parse_named(&Self::ALL, Self::name, "parameter dtype", name)
    }

    /// Bytes of the parameter buffer per element (the master's for `Bf16Master`).
    pub fn bytes(self) -> u64 {
        match self {
            ParamDType::F32 | ParamDType::Bf16Master => 4,
            ParamDType::Bf16 => 2,
        }
    }

    /// Bytes one step moves per parameter: read and written, plus the bf16 copy written.
    pub fn bytes_moved(self) -> u64 {
        match self {
            ParamDType::F32 => 8,
            ParamDType::Bf16Master => 10,
            ParamDType::Bf16 => 4,
        }
    }
}

/// The state slot number the parameters' stochastic rounding draws its bits from (after the
/// three state slots), in [`random_bits`].
pub const PARAM_STREAM_SLOT: u32 = 3;

/// How an optimizer stores what it steps: its state, the gradients it reads and its
/// parameters. Part of each optimizer's configuration (not of its update rule), so it travels
/// with groups, checkpoints and both backends; set it with the families' `.state()`,
/// `.grads()` and `.params()`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Precision {
    /// The state: f32 (PyTorch's), bf16 or block-wise int8, and the threshold below which a
    /// group keeps f32.
    #[serde(default)]
    pub state: StatePrecision,
    /// The gradients: f32, f16 or bf16.
    #[serde(default)]
    pub grads: GradDType,
    /// The parameters: f32, f32 masters with a bf16 copy, or bf16.
    #[serde(default)]
    pub params: ParamDType,
}

/// `.state()`, `.grads()` and `.params()` on an optimizer family with a `precision` field.
macro_rules! precision_setters {
    ($($ty:ty),*) => {
        $(
            impl $ty {
                /// Keeps the state as `state` says ([`crate::StatePrecision`]).
                #[must_use]
                pub fn state(mut self, state: crate::StatePrecision) -> Self {
                    self.precision.state = state;
                    self
                }

                /// Reads gradients of type `grads` ([`crate::GradDType`]).
                #[must_use]
                pub fn grads(mut self, grads: crate::GradDType) -> Self {
                    self.precision.grads = grads;
                    self
                }

                /// Stores the parameters as `params` ([`crate::ParamDType`]).
                #[must_use]
                pub fn params(mut self, params: crate::ParamDType) -> Self {
                    self.precision.params = params;
                    self
                }
            }
        )*
    };
}
pub(crate) use precision_setters;

/// Parses `input` as one of `all` by name (case-insensitive); the error lists the names.
fn parse_named<T: Copy>(
    all: &[T],
    name: impl Fn(T) -> &'static str,
    what: &str,
    input: &str,
) -> crate::Result<T> {
    all.iter()
        .copied()
        .find(|&d| name(d).eq_ignore_ascii_case(input))
        .ok_or_else(|| {
            let known: Vec<&str> = all.iter().map(|&d| name(d)).collect();
            crate::Error::Argument(format!(
                "unknown {what} `{input}`; known: {}",
                known.join(", ")
            ))
        })
}

/// How an optimizer keeps its state: the element type, and the smallest parameter group that
/// gets it (smaller ones keep f32, as bitsandbytes' `min_8bit_size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct StatePrecision {
    /// The element type.
    pub dtype: StateDType,
    /// Groups of fewer elements keep f32 state.
    pub min_len: usize,
}

impl Default for StatePrecision {
    fn default() -> Self {
        Self {
            dtype: StateDType::F32,
            min_len: DEFAULT_MIN_LEN,
        }
    }
}

impl StatePrecision {
    /// f32 state (PyTorch's).
    pub fn f32() -> Self {
        Self::default()
    }

    /// bfloat16 state for groups of at least [`DEFAULT_MIN_LEN`] elements.
    pub fn bf16() -> Self {
        Self {
            dtype: StateDType::Bf16,
            ..Self::default()
        }
    }

    /// Block-wise 8-bit state for groups of at least [`DEFAULT_MIN_LEN`] elements.
    pub fn int8() -> Self {
        Self {
            dtype: StateDType::Int8,
            ..Self::default()
        }
    }

    /// The same with threshold `min_len` (0: every group, however small).
    #[must_use]
    pub fn min_len(mut self, min_len: usize) -> Self {
        self.min_len = min_len;
        self
    }

    /// The element type a group of `len` elements gets.
    pub fn dtype_for(self, len: usize) -> StateDType {
        if len < self.min_len {
            StateDType::F32
        } else {
            self.dtype
        }
    }
}

/// How a bf16 state tensor is rounded from the f32 the update computes.
///
/// Round-to-nearest-even stalls a state whose per-step change is under half a bf16 ulp
/// (2⁻⁹ relative): v with β₂ = 0.999 moves by ≈ 0.1 % a step and would never move, nor would
/// Adagrad's sum once it is large. Those take stochastic rounding (torchao's
/// `_fp32_to_bf16_sr`: add 16 random bits, truncate), whose expectation is the f32 value;
/// the first moments and momentum buffers (≥ 10 % a step) take nearest-even.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Round to nearest, ties to even.
    NearestEven,
    /// Add 16 bits from [`random_bits`] and truncate.
    Stochastic,
}

/// 32 random bits for element `element` of state slot `slot` at step `t`: the PCG hash
/// (O'Neill; Jarzynski & Olano 2020) chained over the three, the same on the device
/// (`random_bits` in `shaders/lowp.wgsl`) so that stochastic rounding is bit-identical.
pub fn random_bits(element: u32, t: u32, slot: u32) -> u32 {
    random_bits_in(stream(t, slot), element)
}

/// The per-(step, slot) half of [`random_bits`], computed once per block.
pub fn stream(t: u32, slot: u32) -> u32 {
    pcg_hash(t ^ pcg_hash(slot.wrapping_add(0x9e37_79b9)))
}

/// [`random_bits`] of `element` in the stream of [`stream`].
pub fn random_bits_in(stream: u32, element: u32) -> u32 {
    pcg_hash(element ^ stream)
}

/// One round of the PCG-RXS-M-XS hash.
fn pcg_hash(x: u32) -> u32 {
    let state = x.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// f32 → bf16 bits (the shader's `bf16_bits`): nearest-even, or stochastic with `random`'s low
/// 16 bits. NaN stays a quiet NaN; overflow goes to ±∞ as the rounding says.
pub fn bf16_bits(x: f32, rounding: Rounding, random: u32) -> u16 {
    let b = x.to_bits();
    let add = match rounding {
        Rounding::NearestEven => 0x7fff + ((b >> 16) & 1),
        Rounding::Stochastic => random & 0xffff,
    };
    let bits = if (b & 0x7fff_ffff) > 0x7f80_0000 {
        (b >> 16) | 0x40
    } else {
        b.wrapping_add(add) >> 16
    };
    bits as u16
}

/// bf16 bits → f32 (exact).
pub fn bf16_value(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// One of bitsandbytes' dynamic quantization maps (`create_dynamic_map(signed,
/// max_exponent_bits=7, total_bits=8)`): 256 sorted values in [−1, 1] with exact 0 and 1,
/// denser near zero (a decimal exponent from 10⁻⁶ to 10⁰ and a linear fraction whose bits
/// grow as the exponent does), and the 255 midpoints between neighbours that nearest-code
/// rounding compares against.
#[derive(Clone, Debug, PartialEq)]
pub struct DynamicMap {
    /// The code values, ascending.
    pub values: [f32; 256],
    /// `midpoints[j]` lies between `values[j]` and `values[j + 1]` (`midpoints[255]` is +∞).
    pub midpoints: [f32; 256],
    /// For each bucket of floats sharing their top [`BUCKET_BITS`] bits: the codes of the
    /// bucket's smallest and largest value. [`DynamicMap::code`] starts there.
    buckets: Vec<[u8; 2]>,
    /// `midpoints` followed by [`SCAN`] more +∞: [`DynamicMap::code`]'s fixed window may read
    /// past the last code.
    padded: Vec<f32>,
}

/// The window [`DynamicMap::code`] counts midpoints over without a data-dependent branch: every
/// bucket of finite floats spans at most this many codes in both maps (a test checks).
const SCAN: usize = 5;

/// Bits of an f32 (sign, exponent, 4 mantissa bits) that pick its bucket in
/// [`DynamicMap::code`]'s table.
pub(crate) const BUCKET_BITS: u32 = 13;

impl DynamicMap {
    /// The map for signed states (first moments, momentum buffers): 127 negative values, 0 at
    /// code 127, 128 positive values ending at 1.
    pub fn signed() -> &'static DynamicMap {
        static MAP: OnceLock<DynamicMap> = OnceLock::new();
        MAP.get_or_init(|| Self::build(true))
    }

    /// The map for non-negative states (second moments, square averages, Adagrad's sum): 0 at
    /// code 0, then 255 positive values ending at 1.
    pub fn unsigned() -> &'static DynamicMap {
        static MAP: OnceLock<DynamicMap> = OnceLock::new();
        MAP.get_or_init(|| Self::build(false))
    }

    /// The map for a state that is never negative (`non_negative`) or may be.
    pub fn for_state(non_negative: bool) -> &'static DynamicMap {
        if non_negative {
            Self::unsigned()
        } else {
            Self::signed()
        }
    }

    /// bitsandbytes' construction, in f64 and rounded once to f32: for each decimal exponent
    /// i = 0…6, the midpoints of `linspace(0.1, 1, n + 1)` scaled by 10^(i−6), with n = 2^i
    /// (signed, and mirrored) or 2^(i+1) (unsigned); then 0 and 1.
    fn build(signed: bool) -> DynamicMap {
        let mut data: Vec<f64> = Vec::with_capacity(256);
        for i in 0..7 {
            let n = if signed { 1 << i } else { 1 << (i + 1) };
            let scale = 10f64.powi(i - 6);
            for k in 0..n {
                let a = 0.1 + 0.9 * k as f64 / n as f64;
                let b = 0.1 + 0.9 * (k + 1) as f64 / n as f64;
                let mean = scale * (a + b) / 2.0;
                data.push(mean);
                if signed {
                    data.push(-mean);
                }
            }
        }
        data.push(0.0);
        data.push(1.0);
        assert_eq!(data.len(), 256, "the dynamic map has 256 codes");
        let mut values: Vec<f32> = data.iter().map(|&x| x as f32).collect();
        values.sort_by(f32::total_cmp);
        let mut midpoints = [f32::INFINITY; 256];
        for j in 0..255 {
            midpoints[j] = ((f64::from(values[j]) + f64::from(values[j + 1])) / 2.0) as f32;
        }
        let mut map = DynamicMap {
            values: values.try_into().expect("256 values"),
            midpoints,
            buckets: Vec::new(),
            padded: midpoints
                .iter()
                .copied()
                .chain([f32::INFINITY; SCAN])
                .collect(),
        };
        let shift = 32 - BUCKET_BITS;
        map.buckets = (0..1u32 << BUCKET_BITS)
            .map(|b| {
                let (a, z) = (
                    f32::from_bits(b << shift),
                    f32::from_bits(b << shift | ((1 << shift) - 1)),
                );
                let (lo, hi) = if a <= z { (a, z) } else { (z, a) };
                if lo.is_nan() || hi.is_nan() {
                    [0, 255]
                } else {
                    [map.search(lo), map.search(hi)]
                }
            })
            .collect();
        map
    }

    /// The code of `x` (already divided by the block's absmax): the nearest value, ties to the
    /// larger; the number of midpoints ≤ x (the binary search [`DynamicMap::search`] counts the
    /// same). A table gives the codes of the smallest and largest float sharing x's top 13 bits
    /// (the count is monotonic in x, so x's lies between them) and a short scan finishes, as
    /// the shader's `nearest_code` does. NaN gives code 0. Here the scan is a count over a
    /// fixed window of 5 midpoints (the same count: 2.8× faster on the CPU backend,
    /// BENCHMARKS.md); the shader keeps the loop, which stops as soon as every lane is done.
    pub fn code(&self, x: f32) -> u8 {
        let [lo, hi] = self.buckets[(x.to_bits() >> (32 - BUCKET_BITS)) as usize];
        let c = if usize::from(hi - lo) <= SCAN {
            // Midpoints from `hi` on are above every float of the bucket (they are sorted), so
            // counting over a window of SCAN from `lo` gives the scan's count, branch-free.
            let window = &self.padded[usize::from(lo)..usize::from(lo) + SCAN];
            lo + window.iter().map(|&m| u8::from(m <= x)).sum::<u8>()
        } else {
            let mut c = lo;
            while c < hi && self.midpoints[usize::from(c)] <= x {
                c += 1;
            }
            c
        };
        if x.is_nan() { 0 } else { c }
    }
    /// The number of midpoints ≤ x by an 8-step binary search (NaN: 0): the definition
    /// [`DynamicMap::code`] is tested against.
    pub fn search(&self, x: f32) -> u8 {
        let mut pos = 0usize;
        let mut s = 128usize;
        while s > 0 {
            if pos + s <= 255 && self.midpoints[pos + s - 1] <= x {
                pos += s;
            }
            s /= 2;
        }
        pos as u8
    }

    /// The value code `code` stands for in a block of absmax `absmax` (the shader's
    /// `decode_codes`: one multiplication).
    pub fn value(&self, code: u8, absmax: f32) -> f32 {
        self.values[usize::from(code)] * absmax
    }

    /// The code whose value is exactly 0.
    pub fn zero_code(&self) -> u8 {
        self.code(0.0)
    }
}

/// The divisor that maps a block onto [−1, 1]: its absmax, or 1 for an all-zero block (whose
/// elements are then coded as 0 without dividing by zero).
pub fn block_divisor(absmax: f32) -> f32 {
    if absmax == 0.0 { 1.0 } else { absmax }
}

/// The absmax of a block as the shader's workgroup reduction takes it: the largest bit pattern
/// of |x| as an unsigned integer (for finite values the same as the largest |x|; a NaN wins).
pub fn block_absmax(values: &[f32]) -> f32 {
    f32::from_bits(values.iter().map(|x| x.abs().to_bits()).max().unwrap_or(0))
}

/// What the block-wise kernel reads, as one `array<u32>` (binding 10): the four tables it reads
/// in place (signed values, unsigned values, signed midpoints, unsigned midpoints;
/// 1024 f32 as bits), then one word per bucket of [`DynamicMap::code`]'s table (8192): the
/// signed map's first and last code in its low two bytes, the unsigned map's in its high two.
pub fn code_tables() -> Vec<u32> {
    let (s, u) = (DynamicMap::signed(), DynamicMap::unsigned());
    let floats = [s.values, u.values, s.midpoints, u.midpoints].concat();
    let buckets = s.buckets.iter().zip(&u.buckets).map(|(a, b)| {
        u32::from(a[0]) | u32::from(a[1]) << 8 | u32::from(b[0]) << 16 | u32::from(b[1]) << 24
    });
    floats.iter().map(|x| x.to_bits()).chain(buckets).collect()
}

/// One state tensor in host memory, in its stored form: what the device buffers hold (without
/// their padding), what checkpoints record, and what the CPU backend steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StoredState {
    /// No such state (a slot the variant does not use).
    #[default]
    None,
    /// f32 values.
    F32(Vec<f32>),
    /// bf16 bit patterns.
    Bf16(Vec<u16>),
    /// Codes into the slot's [`DynamicMap`] and one absmax per [`BLOCK`] elements.
    Int8 {
        /// One code per element.
        codes: Vec<u8>,
        /// One scale per block.
        absmax: Vec<f32>,
    },
}

impl StoredState {
    /// `len` elements of `slot`'s type, all `value` (rounded to nearest for bf16; for int8 each
    /// block's absmax is |value| and the code is that of ±1 or 0).
    pub fn filled(slot: &crate::optim::StateSlot, len: usize, value: f32) -> Self {
        Self::encode(slot, &vec![value; len], 0, 0)
    }

    /// `values` of `slot` in its stored form, as the kernel's `store` and `finish` write them:
    /// bf16 rounded as the slot says (stochastic bits from element `first + i` at step `t`),
    /// int8 with each block's absmax.
    pub fn encode(slot: &crate::optim::StateSlot, values: &[f32], first: u32, t: u32) -> Self {
        let n = values.len();
        let mut stored = match slot.dtype {
            StateDType::F32 => StoredState::F32(vec![0.0; n]),
            StateDType::Bf16 => StoredState::Bf16(vec![0; n]),
            StateDType::Int8 => StoredState::Int8 {
                codes: vec![0; n],
                absmax: vec![0.0; n.div_ceil(BLOCK)],
            },
        };
        stored.as_slice_mut().encode_from(slot, values, first, t);
        stored
    }

    /// The f32 values (as the kernel's `load` decodes them; slot `non_negative` picks the map).
    pub fn decode(&self, non_negative: bool) -> Vec<f32> {
        match self {
            StoredState::None => Vec::new(),
            StoredState::F32(v) => v.clone(),
            StoredState::Bf16(v) => v.iter().map(|&b| bf16_value(b)).collect(),
            StoredState::Int8 { codes, absmax } => {
                let map = DynamicMap::for_state(non_negative);
                codes
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| map.value(c, absmax[i / BLOCK]))
                    .collect()
            }
        }
    }

    /// The whole state as a mutable slice.
    pub fn as_slice_mut(&mut self) -> StoredSlice<'_> {
        match self {
            StoredState::None => StoredSlice::None,
            StoredState::F32(v) => StoredSlice::F32(v),
            StoredState::Bf16(v) => StoredSlice::Bf16(v),
            StoredState::Int8 { codes, absmax } => StoredSlice::Int8 { codes, absmax },
        }
    }

    /// Number of elements.
    /// Bytes its vectors hold (allocated capacity, absmax included).
    pub fn allocated_bytes(&self) -> usize {
        match self {
            StoredState::None => 0,
            StoredState::F32(v) => v.capacity() * 4,
            StoredState::Bf16(v) => v.capacity() * 2,
            StoredState::Int8 { codes, absmax } => codes.capacity() + absmax.capacity() * 4,
        }
    }

    /// Elements `range` (for int8, `range.start` a multiple of [`BLOCK`]: whole blocks, the
    /// last one possibly partial at the end of the state).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> Self {
        match self {
            StoredState::None => StoredState::None,
            StoredState::F32(v) => StoredState::F32(v[range].to_vec()),
            StoredState::Bf16(v) => StoredState::Bf16(v[range].to_vec()),
            StoredState::Int8 { codes, absmax } => {
                debug_assert_eq!(range.start % BLOCK, 0);
                let blocks = range.start / BLOCK..range.end.div_ceil(BLOCK);
                StoredState::Int8 {
                    codes: codes[range].to_vec(),
                    absmax: absmax[blocks].to_vec(),
                }
            }
        }
    }

    /// Appends `other` (of the same type; for int8, `self` a whole number of blocks long).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn extend(&mut self, other: &Self) {
        match (self, other) {
            (StoredState::F32(a), StoredState::F32(b)) => a.extend_from_slice(b),
            (StoredState::Bf16(a), StoredState::Bf16(b)) => a.extend_from_slice(b),
            (
                StoredState::Int8 { codes, absmax },
                StoredState::Int8 {
                    codes: c,
                    absmax: m,
                },
            ) => {
                debug_assert_eq!(codes.len() % BLOCK, 0);
                codes.extend_from_slice(c);
                absmax.extend_from_slice(m);
            }
            (a @ StoredState::None, b) => *a = b.clone(),
            _ => {}
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            StoredState::None => 0,
            StoredState::F32(v) => v.len(),
            StoredState::Bf16(v) => v.len(),
            StoredState::Int8 { codes, .. } => codes.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored type (`None` for an unused slot).
    pub fn dtype(&self) -> Option<StateDType> {
        match self {
            StoredState::None => None,
            StoredState::F32(_) => Some(StateDType::F32),
            StoredState::Bf16(_) => Some(StateDType::Bf16),
            StoredState::Int8 { .. } => Some(StateDType::Int8),
        }
    }

    /// Refuses state that cannot replace a slot of `dtype` over `len` elements (another type,
    /// another length, or int8 with the wrong number of block scales).
    pub(crate) fn check_fits(&self, dtype: StateDType, len: usize) -> crate::Result<()> {
        let blocks_ok = match self {
            StoredState::Int8 { absmax, .. } => absmax.len() == len.div_ceil(BLOCK),
            _ => true,
        };
        let dtype_ok = self.dtype() == Some(dtype);
        if dtype_ok && blocks_ok && self.len() == len {
            return Ok(());
        }
        Err(crate::Error::LengthMismatch {
            what: "state",
            expected: len,
            got: if dtype_ok { self.len() } else { 0 },
        })
    }

    /// The raw bytes of the values (little-endian, as the device buffer holds them from byte 0)
    /// and, for int8, of the absmax.
    pub fn to_bytes(&self) -> (Vec<u8>, Vec<u8>) {
        match self {
            StoredState::None => (Vec::new(), Vec::new()),
            StoredState::F32(v) => (bytemuck::cast_slice(v).to_vec(), Vec::new()),
            StoredState::Bf16(v) => (bytemuck::cast_slice(v).to_vec(), Vec::new()),
            StoredState::Int8 { codes, absmax } => {
                (codes.clone(), bytemuck::cast_slice(absmax).to_vec())
            }
        }
    }

    /// The state of `len` elements of `dtype` from raw bytes (at least as many as it needs).
    pub fn from_bytes(dtype: StateDType, len: usize, data: &[u8], absmax: &[u8]) -> Self {
        match dtype {
            StateDType::F32 => StoredState::F32(bytemuck::pod_collect_to_vec(&data[..4 * len])),
            StateDType::Bf16 => StoredState::Bf16(bytemuck::pod_collect_to_vec(&data[..2 * len])),
            StateDType::Int8 => StoredState::Int8 {
                codes: data[..len].to_vec(),
                absmax: bytemuck::pod_collect_to_vec(&absmax[..4 * len.div_ceil(BLOCK)]),
            },
        }
    }
}

/// A run of a [`StoredState`] (for int8, starting on a block boundary): what one task of the
/// CPU backend decodes, updates and encodes.
#[derive(Debug)]
pub enum StoredSlice<'a> {
    /// No such state.
    None,
    /// f32 values.
    F32(&'a mut [f32]),
    /// bf16 bit patterns.
    Bf16(&'a mut [u16]),
    /// Codes and the absmax of their blocks.
    Int8 {
        /// One code per element.
        codes: &'a mut [u8],
        /// One scale per block.
        absmax: &'a mut [f32],
    },
}

impl<'a> StoredSlice<'a> {
    /// Splits off runs of `n` elements (a multiple of [`BLOCK`]), `parts` of them (the last
    /// shorter; all empty for [`StoredSlice::None`]).
    pub fn chunks(self, n: usize, parts: usize) -> Vec<StoredSlice<'a>> {
        debug_assert!(n.is_multiple_of(BLOCK));
        match self {
            StoredSlice::None => (0..parts).map(|_| StoredSlice::None).collect(),
            StoredSlice::F32(v) => v.chunks_mut(n).map(StoredSlice::F32).collect(),
            StoredSlice::Bf16(v) => v.chunks_mut(n).map(StoredSlice::Bf16).collect(),
            StoredSlice::Int8 { codes, absmax } => codes
                .chunks_mut(n)
                .zip(absmax.chunks_mut(n / BLOCK))
                .map(|(codes, absmax)| StoredSlice::Int8 { codes, absmax })
                .collect(),
        }
    }

    /// Decodes elements `range` (starting on a block boundary for int8) into `out`.
    pub fn decode_range(&self, non_negative: bool, range: std::ops::Range<usize>, out: &mut [f32]) {
        match self {
            StoredSlice::None => {}
            StoredSlice::F32(v) => out.copy_from_slice(&v[range]),
            StoredSlice::Bf16(v) => {
                for (o, &b) in out.iter_mut().zip(&v[range]) {
                    *o = bf16_value(b);
                }
            }
            StoredSlice::Int8 { codes, absmax } => {
                let map = DynamicMap::for_state(non_negative);
                let scale = absmax[range.start / BLOCK];
                debug_assert!(range.len() <= BLOCK && range.start.is_multiple_of(BLOCK));
                for (o, &c) in out.iter_mut().zip(&codes[range]) {
                    *o = map.value(c, scale);
                }
            }
        }
    }

    /// Encodes `values` into elements `range` (one int8 block at most, from its start) as the
    /// kernel stores them; element `i` of the range is element `first + i` of the flat
    /// parameter space, at step `t` (for stochastic rounding).
    pub fn encode_range(
        &mut self,
        slot: &crate::optim::StateSlot,
        range: std::ops::Range<usize>,
        values: &[f32],
        first: u32,
        t: u32,
    ) {
        match self {
            StoredSlice::None => {}
            StoredSlice::F32(v) => v[range].copy_from_slice(values),
            StoredSlice::Bf16(v) => {
                let rounding = slot.rounding();
                let stream = stream(t, slot.slot as u32);
                for (k, (o, &x)) in v[range].iter_mut().zip(values).enumerate() {
                    let r = match rounding {
                        Rounding::Stochastic => {
                            random_bits_in(stream, first.wrapping_add(k as u32))
                        }
                        Rounding::NearestEven => 0,
                    };
                    *o = bf16_bits(x, rounding, r);
                }
            }
            StoredSlice::Int8 { codes, absmax } => {
                let map = DynamicMap::for_state(slot.non_negative);
                let a = block_absmax(values);
                let d = block_divisor(a);
                absmax[range.start / BLOCK] = a;
                for (o, &x) in codes[range].iter_mut().zip(values) {
                    *o = map.code(x / d);
                }
            }
        }
    }

    /// Encodes every element from `values`, block by block.
    pub fn encode_from(
        &mut self,
        slot: &crate::optim::StateSlot,
        values: &[f32],
        first: u32,
        t: u32,
    ) {
        let n = values.len();
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            self.encode_range(
                slot,
                start..end,
                &values[start..end],
                first.wrapping_add(start as u32),
                t,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_sorted_with_exact_zero_and_one() {
        for (map, zero) in [(DynamicMap::signed(), 127), (DynamicMap::unsigned(), 0)] {
            assert!(map.values.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(map.values[zero], 0.0);
            assert_eq!(map.values[255], 1.0);
            assert_eq!(map.zero_code() as usize, zero);
            for (j, v) in map.values.iter().enumerate() {
                assert_eq!(map.code(*v) as usize, j, "value {v} codes to itself");
            }
        }
        // The ends bitsandbytes' tables have (research notes).
        assert!((DynamicMap::signed().values[0] + 0.99297).abs() < 1e-5);
        assert!((DynamicMap::unsigned().values[1] - 3.25e-7).abs() < 1e-9);
    }

    #[test]
    fn finite_buckets_fit_the_scan_window() {
        for map in [DynamicMap::signed(), DynamicMap::unsigned()] {
            for (b, [lo, hi]) in map.buckets.iter().enumerate() {
                let x = f32::from_bits((b as u32) << (32 - BUCKET_BITS));
                if x.is_finite() {
                    assert!(usize::from(hi - lo) <= SCAN, "bucket {b}: {lo}..{hi}");
                }
            }
        }
    }

    #[test]
    fn bucketed_code_equals_the_shaders_search() {
        let mut x = 0x9e37_79b9u32;
        for map in [DynamicMap::signed(), DynamicMap::unsigned()] {
            let check = |v: f32| assert_eq!(map.code(v), map.search(v), "{v:e}");
            for v in map.values.iter().chain(&map.midpoints[..255]) {
                for d in [-2i32, -1, 0, 1, 2] {
                    check(f32::from_bits(v.to_bits().wrapping_add_signed(d)));
                }
            }
            for b in 0..1u32 << 13 {
                check(f32::from_bits(b << 19));
                check(f32::from_bits(b << 19 | 0x7ffff));
            }
            for _ in 0..1_000_000 {
                x = pcg_hash(x);
                check(f32::from_bits(x));
                check((x >> 8) as f32 / (1 << 23) as f32 * 2.0 - 1.0);
            }
            for v in [
                0.0,
                -0.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                1e-45,
                -1e-45,
            ] {
                check(v);
            }
        }
    }

    #[test]
    fn nearest_code_is_nearest() {
        let map = DynamicMap::signed();
        for k in -1000..=1000 {
            let x = k as f32 / 1000.0;
            let c = map.code(x) as usize;
            let err = (map.values[c] - x).abs();
            let best = map
                .values
                .iter()
                .map(|v| (v - x).abs())
                .fold(f32::INFINITY, f32::min);
            // Nearest up to the f32 rounding of the midpoint it is compared with.
            assert!(err <= best + f32::EPSILON * x.abs(), "{x}: {err} vs {best}");
        }
    }

    #[test]
    fn f16_round_trips_every_value_and_rounds_to_nearest_even() {
        for h in 0..=u16::MAX {
            let x = f16_value(h);
            if x.is_nan() {
                assert!(f16_value(f16_bits(x)).is_nan());
            } else {
                assert_eq!(f16_bits(x), h, "{h:#06x} = {x:e}");
            }
        }
        assert_eq!(f16_bits(65504.0), 0x7bff);
        assert_eq!(f16_bits(65519.0), 0x7bff);
        assert_eq!(f16_bits(65520.0), 0x7c00);
        assert_eq!(f16_bits(1.0 + 1.0 / 2048.0), 0x3c00); // tie: to even
        assert_eq!(f16_bits(1.0 + 3.0 / 2048.0), 0x3c02);
        assert_eq!(f16_bits(2f32.powi(-25)), 0); // tie with 0: to even
        assert_eq!(f16_bits(1.5 * 2f32.powi(-25)), 1);
        assert_eq!(f16_bits(-2f32.powi(-24)), 0x8001);
    }

    #[test]
    fn bf16_nearest_even_and_stochastic() {
        assert_eq!(bf16_bits(1.0, Rounding::NearestEven, 0), 0x3f80);
        // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even (1) wins.
        assert_eq!(
            bf16_bits(1.0 + 1.0 / 256.0, Rounding::NearestEven, 0),
            0x3f80
        );
        assert_eq!(
            bf16_bits(1.0 + 3.0 / 256.0, Rounding::NearestEven, 0),
            0x3f82
        );
        assert!(bf16_value(bf16_bits(f32::NAN, Rounding::NearestEven, 0)).is_nan());
        assert_eq!(
            bf16_bits(f32::INFINITY, Rounding::Stochastic, 0xffff),
            0x7f80
        );
        // Stochastic rounding's mean is the value.
        let x = 1.0 + 1.0 / 512.0;
        let mean = (0..4096u32)
            .map(|e| {
                f64::from(bf16_value(bf16_bits(
                    x,
                    Rounding::Stochastic,
                    random_bits(e, 1, 0),
                )))
            })
            .sum::<f64>()
            / 4096.0;
        assert!((mean - f64::from(x)).abs() < 2e-4, "{mean}");
    }
}
