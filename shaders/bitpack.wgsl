// requires: common
// Bit packing along the last axis, Larq Compute Engine convention: 32 values per u32 word,
// element j of a group in bit j (least significant first), bit 1 = -1 (x < 0), bit 0 = +1
// (x >= 0, so sign(0) = +1). The same kernel packs the 1-bit straight-through masks that a
// binarized layer saves for its backward pass (bit 1 = |x| <= clip, inclusive).
//
// Bindings (group 0):
//   0  p     uniform Params
//   1  x     storage read        pack: f32 [rows, k]
//   2  bits  storage read        unpack, masked: u32 [rows, words]
//   3  dy    storage read        masked: f32 [rows, k]
//   4  packed  storage read_write  pack: u32 [rows, words]; pack_both: the sign bits
//   5  out   storage read_write  unpack, masked: f32 [rows, k]
//   6  packed2 storage read_write  pack_both: u32 [rows, words], the clip mask
// pack_both packs the sign bits and the clip mask of the same values in one pass (a binarized
// layer saves both of its input for the backward; the planner pairs the two packs).
// mode: PACK_SIGN sign bits, PACK_CLIP_MASK clip mask, PACK_UNIT_MASK 0 <= x <= 1 (`PackMode::code` in
// src/graph/ops/bitpack.rs). Bits past k in a row's last word are 0.
// Dispatch: pack one thread per word; unpack and masked one thread per element.

struct Params {
    rows: u32,
    k: u32,
    words: u32,
    mode: u32,
    clip: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> bits: array<u32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> packed: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> packed2: array<u32>;

const PACK_SIGN: u32 = 0u;
const PACK_CLIP_MASK: u32 = 1u;
const PACK_UNIT_MASK: u32 = 2u;

fn bit_of(mode: u32, v: f32) -> bool {
    if (mode == PACK_SIGN) { return v < 0.0; }
    if (mode == PACK_UNIT_MASK) { return v >= 0.0 && v <= 1.0; }
    return abs(v) <= p.clip;
}

// Word w of the packed rows, in `mode`.
fn pack_word(w: u32, mode: u32) -> u32 {
    let r = w / p.words;
    let first = (w % p.words) * 32u;
    let count = min(32u, p.k - first);
    let base = r * p.k + first;
    var word = 0u;
    for (var j = 0u; j < count; j++) {
        word |= select(0u, 1u << j, bit_of(mode, x[base + j]));
    }
    return word;
}

// The bit for element c of row r.
fn bit_at(r: u32, c: u32) -> bool {
    return ((bits[r * p.words + c / 32u] >> (c % 32u)) & 1u) == 1u;
}

@compute @workgroup_size(WG)
fn pack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = flat_index(gid, nwg);
    if (w >= p.rows * p.words) { return; }
    packed[w] = pack_word(w, p.mode);
}

@compute @workgroup_size(WG)
fn pack_both(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = flat_index(gid, nwg);
    if (w >= p.rows * p.words) { return; }
    packed[w] = pack_word(w, PACK_SIGN);
    packed2[w] = pack_word(w, PACK_CLIP_MASK);
}

@compute @workgroup_size(WG)
fn unpack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.rows * p.k) { return; }
    let b = bit_at(i / p.k, i % p.k);
    if (p.mode == PACK_SIGN) {
        out[i] = select(1.0, -1.0, b);
    } else {
        out[i] = select(0.0, 1.0, b);
    }
}

@compute @workgroup_size(WG)
fn masked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.rows * p.k) { return; }
    out[i] = select(0.0, dy[i], bit_at(i / p.k, i % p.k));
}
