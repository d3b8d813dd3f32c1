// requires: common
// The optimizer update functions, shared by the update family (shaders/update.wgsl) and the
// kernels the planner generates for fused elementwise trees (src/runtime/fuse.rs): one home per
// function. Constants and functions only. Each is one pass over a variable's elements, in the
// order of operations of the op-by-op form it replaces (Keras' and Larq's update order).
// `x`, `y`, `z` are the arrays (the variable or slot being updated, then the second and third
// array), `s`, `t` the scalars; `k`, `k2` the function's constants (see shaders/update.wgsl).

const UPDATE_MOMENT: u32 = 0u;
const UPDATE_SQUARED_MOMENT: u32 = 1u;
const UPDATE_ADAM_STEP: u32 = 2u;
const UPDATE_ADAM_W_STEP: u32 = 3u;
const UPDATE_SGD: u32 = 4u;
const UPDATE_VELOCITY: u32 = 5u;
const UPDATE_NESTEROV_STEP: u32 = 6u;
const UPDATE_BOP_MOMENT: u32 = 7u;
const UPDATE_BOP_FLIP: u32 = 8u;
const UPDATE_ADAM_ALPHA: u32 = 9u;

fn update_f(op: u32, x: f32, y: f32, z: f32, s: f32, t: f32, k: f32, k2: f32) -> f32 {
    switch op {
        case UPDATE_MOMENT: {
            let dm = y - x;
            return x + dm * k;
        }
        case UPDATE_SQUARED_MOMENT: {
            let dv = y * y - x;
            return x + dv * k;
        }
        case UPDATE_ADAM_STEP: {
            let step = y * s;
            return x - step / (sqrt(z) + k);
        }
        case UPDATE_ADAM_W_STEP: {
            let base = x - x * t;
            let step = y * s;
            return base - step / (sqrt(z) + k);
        }
        case UPDATE_SGD: {
            return x - y * s;
        }
        case UPDATE_VELOCITY: {
            return x * t - y * s;
        }
        case UPDATE_NESTEROV_STEP: {
            return x + (y * t - z * s);
        }
        case UPDATE_BOP_MOMENT: {
            let dm = y - x;
            return x + dm * s;
        }
        case UPDATE_ADAM_ALPHA: {
            let step = x + 1.0;
            let b1t = exp(step * k);
            let b2t = exp(step * k2);
            let root = sqrt(-b2t + 1.0);
            let alpha = s * root;
            return alpha / (-b1t + 1.0);
        }
        case UPDATE_BOP_FLIP, default: {
            let wm = x * y;
            let sg = select(0.0, 1.0, wm > s) - select(0.0, 1.0, s > wm);
            return larq_sign(-(sg * x));
        }
    }
}
