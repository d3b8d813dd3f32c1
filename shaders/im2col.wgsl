// requires: common
// im2col and col2im for 1-, 2- and 3-D convolutions with strides, dilation and padding, on any
// 4-byte element (f32 values, or u32 words of packed channel bits).
//
// Bindings (group 0):
//   0  p      uniform Params
//   1  image  storage read        im2col: the image, [N, in..., C] or [N, C, in...]
//   2  cols   storage read        col2im: patches, [N, out..., taps..., C]
//   3  out    storage read_write  im2col: patches | col2im: the image (f32)
// The image layout is given by element strides (batch, each spatial axis, channel), so
// channels-first and channels-last images use the same code. Spatial vectors hold up to 3 axes.
// im2col writes `pad_word` (raw bits) where a tap falls in the padding.
// col2im sums, for each image element, the one patch entry per tap that read it (taps in
// ascending order), so it needs no atomics and is deterministic.
// im2col: each thread copies every tap of one output pixel for `run` consecutive channels (4
// when channels are contiguous and a multiple of 4, else 1), so the index arithmetic is shared by
// the taps and the run, and neighbouring threads still touch neighbouring memory.
// col2im: each thread sums `run` consecutive channels (4 when
// they are a multiple of 4, in either layout), sharing the tap arithmetic, whose integer
// divisions dominate on a CPU rasterizer (lavapipe), among them.
// col2im_signs_<rows>: col2im of a product with sign bits, without the patches (see there).

struct Params {
    n: u32,
    rank: u32,
    channels: u32,
    pad_word: u32,
    batch_stride: u32,
    channel_stride: u32,
    taps: u32,
    out_pixels: u32,
    run: u32,
    k: u32,
    _pad1: u32,
    _pad2: u32,
    input: vec4<u32>,
    output: vec4<u32>,
    kernel: vec4<u32>,
    strides: vec4<u32>,
    dilation: vec4<u32>,
    pad_begin: vec4<u32>,
    spatial_strides: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> image: array<u32>;
@group(0) @binding(2) var<storage, read> cols: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

// The tap after `tap` in order, last axis fastest: counting instead of dividing a flat tap index.
fn next_tap(tap: vec4<u32>) -> vec4<u32> {
    var t = tap;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        t[d] += 1u;
        if (t[d] < p.kernel[d]) { break; }
        t[d] = 0u;
    }
    return t;
}

@compute @workgroup_size(WG)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // One thread per (image, output pixel, run of channels), looping over the taps: the index
    // arithmetic (integer divisions, slow on CPU rasterizers) is done once per pixel, not per
    // patch element.
    let first = flat_index(gid, nwg) * p.run;
    if (first >= p.n / p.taps) { return; }
    let c = first % p.channels;
    var rest = first / p.channels;
    var pix: vec4<u32>;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        pix[d] = rest % p.output[d];
        rest = rest / p.output[d];
    }
    let n = rest;
    let base = n * p.batch_stride + c * p.channel_stride;
    // Patch rows are [taps, channels] per output pixel.
    let row = (first / p.channels) * p.taps * p.channels + c;
    var tap = vec4<u32>(0u);
    for (var t = 0u; t < p.taps; t++) {
        var off = base;
        var inside = true;
        for (var d = 0u; d < p.rank; d++) {
            let x = i32(pix[d] * p.strides[d] + tap[d] * p.dilation[d]) - i32(p.pad_begin[d]);
            inside = inside && x >= 0 && x < i32(p.input[d]);
            off += u32(max(x, 0)) * p.spatial_strides[d];
        }
        for (var j = 0u; j < p.run; j++) {
            out[row + t * p.channels + j] = select(p.pad_word, image[off + j * p.channel_stride], inside);
        }
        tap = next_tap(tap);
    }
}

// Image element `i` of col2im's threads, in logical order (n, spatial..., c): its channel,
// spatial position, image, and where it is written (through the layout's strides).
struct Element {
    c: u32,
    x: vec4<u32>,
    n: u32,
    dst: u32,
}

// The output pixel (flat over the output's spatial axes) whose patch reads image position `x`
// through kernel tap `tap`, and whether there is one. A stride of 1 (the usual convolution)
// takes no division.
struct Reader {
    pixel: u32,
    hit: bool,
}

fn reader(x: vec4<u32>, tap: vec4<u32>) -> Reader {
    var pixel = 0u;
    var hit = true;
    for (var d = 0u; d < p.rank; d++) {
        let num = i32(x[d] + p.pad_begin[d]) - i32(tap[d] * p.dilation[d]);
        var o = u32(num);
        if (p.strides[d] != 1u) {
            hit = hit && o % p.strides[d] == 0u;
            o = o / p.strides[d];
        }
        hit = hit && num >= 0 && o < p.output[d];
        pixel = pixel * p.output[d] + o;
    }
    return Reader(pixel, hit);
}

fn image_element(i: u32) -> Element {
    let c = i % p.channels;
    var rest = i / p.channels;
    var x: vec4<u32>;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        x[d] = rest % p.input[d];
        rest = rest / p.input[d];
    }
    var dst = rest * p.batch_stride + c * p.channel_stride;
    for (var d = 0u; d < p.rank; d++) {
        dst += x[d] * p.spatial_strides[d];
    }
    return Element(c, x, rest, dst);
}

@compute @workgroup_size(WG)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg) * p.run;
    if (i >= p.n) { return; }
    let e = image_element(i);
    var acc = vec4<f32>(0.0);
    // Taps in order, last axis fastest, stepped by counting rather than by dividing t.
    var tap = vec4<u32>(0u);
    for (var t = 0u; t < p.taps; t++) {
        let rd = reader(e.x, tap);
        if (rd.hit) {
            let src = ((e.n * p.out_pixels + rd.pixel) * p.taps + t) * p.channels + e.c;
            for (var j = 0u; j < p.run; j++) {
                acc[j] += cols[src + j];
            }
        }
        tap = next_tap(tap);
    }
    for (var j = 0u; j < p.run; j++) {
        out[e.dst + j * p.channel_stride] = bitcast<u32>(acc[j]);
    }
}

// col2im where windows do not overlap (kernel <= stride and dilation 1 on every axis, as in
// pooling): each image element lies in at most one window, found by one division per axis
// instead of a loop over every tap.
@compute @workgroup_size(WG)
fn col2im_disjoint(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg) * p.run;
    if (i >= p.n) { return; }
    let e = image_element(i);
    var pixel = 0u;
    var t = 0u;
    var hit = true;
    for (var d = 0u; d < p.rank; d++) {
        let num = i32(e.x[d] + p.pad_begin[d]);
        let o = u32(num) / p.strides[d];
        let tap = u32(num) - o * p.strides[d];
        hit = hit && num >= 0 && tap < p.kernel[d] && o < p.output[d];
        pixel = pixel * p.output[d] + o;
        t = t * p.kernel[d] + tap;
    }
    let src = ((e.n * p.out_pixels + pixel) * p.taps + t) * p.channels + e.c;
    for (var j = 0u; j < p.run; j++) {
        var v = 0.0;
        if (hit) { v = cols[src + j]; }
        out[e.dst + j * p.channel_stride] = bitcast<u32>(v);
    }
}

// col2im of the product dY @ sign(W), the input gradient of a binary convolution, without
// storing the patch gradients: cols[row, tap, c] = sum_o dY[row, o] sign(W)[o, tap, c] is
// computed where col2im would read it. Bindings: 1 dY [N * out pixels, k] (vec4s), 2 sign bits
// of W [k, taps * C] (a set bit is -1; rows without padding bits), 3 the image (vec4s; channels
// last, C and k multiples of 4). Each thread sums `rows` consecutive image pixels for 4
// channels, so the four sign rows it decodes per step of 4 in k serve every pixel; neighbouring
// threads take neighbouring channels of the same pixels, so they skip a tap that reads none of
// them together. Each pixel's sum is one fma chain over taps in order, then k in order (rows
// that a tap does not read add 0 there), so both row counts give the same bits.
// Dispatch: grid_1d(ceil(pixels / rows) * C / 4, WG).
@group(0) @binding(1) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w_bits: array<u32>;
@group(0) @binding(3) var<storage, read_write> image4: array<vec4<f32>>;

fn col2im_signs(gid: vec3<u32>, nwg: vec3<u32>, rows: u32) {
    let c4 = p.channels / 4u;
    let i = flat_index(gid, nwg);
    let cq = i % c4;
    let first = (i / c4) * rows;
    let pixels = p.n / p.channels;
    if (first >= pixels) { return; }
    let k4 = p.k / 4u;
    let row_bits = p.taps * p.channels;
    // Each pixel's image and spatial position (rows past the end repeat the last pixel; they
    // are not stored).
    var at: array<vec4<u32>, 8>;
    var img: array<u32, 8>;
    for (var r = 0u; r < rows; r++) {
        var rest = min(first + r, pixels - 1u);
        for (var d = i32(p.rank) - 1; d >= 0; d--) {
            at[r][d] = rest % p.input[d];
            rest = rest / p.input[d];
        }
        img[r] = rest;
    }
    var total: array<vec4<f32>, 8>;
    for (var r = 0u; r < rows; r++) { total[r] = vec4<f32>(0.0); }
    var tap = vec4<u32>(0u);
    for (var t = 0u; t < p.taps; t++) {
        // The dY row that read each pixel at this tap, if any.
        var src: array<u32, 8>;
        var hit: array<bool, 8>;
        var any_hit = false;
        for (var r = 0u; r < rows; r++) {
            let rd = reader(at[r], tap);
            hit[r] = rd.hit;
            any_hit = any_hit || rd.hit;
            src[r] = select(0u, (img[r] * p.out_pixels + rd.pixel) * k4, rd.hit);
        }
        if (any_hit) {
            let bit0 = t * p.channels + cq * 4u;
            for (var kq = 0u; kq < k4; kq++) {
                let bit = bit0 + 4u * kq * row_bits;
                let b0 = nibble_signs(w_bits[bit / 32u] >> (bit % 32u));
                let b1 = nibble_signs(w_bits[(bit + row_bits) / 32u] >> ((bit + row_bits) % 32u));
                let b2 = nibble_signs(w_bits[(bit + 2u * row_bits) / 32u] >> ((bit + 2u * row_bits) % 32u));
                let b3 = nibble_signs(w_bits[(bit + 3u * row_bits) / 32u] >> ((bit + 3u * row_bits) % 32u));
                for (var r = 0u; r < rows; r++) {
                    let av = select(vec4<f32>(0.0), dy4[src[r] + kq], hit[r]);
                    total[r] = fma(vec4<f32>(av.x), b0, total[r]);
                    total[r] = fma(vec4<f32>(av.y), b1, total[r]);
                    total[r] = fma(vec4<f32>(av.z), b2, total[r]);
                    total[r] = fma(vec4<f32>(av.w), b3, total[r]);
                }
            }
        }
        tap = next_tap(tap);
    }
    for (var r = 0u; r < rows; r++) {
        if (first + r < pixels) { image4[(first + r) * c4 + cq] = total[r]; }
    }
}

@compute @workgroup_size(WG)
fn col2im_signs_4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) { col2im_signs(gid, nwg, 4u); }

@compute @workgroup_size(WG)
fn col2im_signs_8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) { col2im_signs(gid, nwg, 8u); }
