//! A user-defined quantizer: the identity-gradient sign from the Larq guide, as WGSL for the GPU
//! and closures for the CPU reference, applied on the best device available.
//!
//! `cargo run --example custom_quantizer`

use bitgrad::quantizers::{CustomQuantizer, Quantizer};
use bitgrad::{DType, Device, Graph, HostTensor, ParamStore, Plan};

fn main() -> bitgrad::Result<()> {
    let identity_sign = CustomQuantizer::new(
        "IdentitySign",
        1,
        "fn forward(x: f32) -> f32 { return sign(x); }
         fn gradient(x: f32, dy: f32) -> f32 { return dy; }",
        |x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        },
        |_x, dy| dy,
    )?;
    let q = Quantizer::Custom(identity_sign);
    let mut g = Graph::new();
    let x = g.input("x", [5], DType::F32)?;
    let y = q.apply(&mut g, x)?;
    let loss = g.sum(y, &[0], false)?;
    let dx = g.backward(loss, &[x])?[0];
    let device = Device::try_best()?;
    let mut plan = Plan::new(&device, &g, &[y, dx], &mut ParamStore::new())?;
    plan.feed("x", &HostTensor::f32([5], vec![-1.5, -0.2, 0.0, 0.3, 2.0])?)?;
    plan.run()?;
    println!("device: {}", device.describe());
    println!("q(x)  = {:?}", plan.fetch(y)?.as_f32()?);
    println!("dq/dx = {:?}", plan.fetch(dx)?.as_f32()?);
    println!("keras = {}", q.to_keras());
    // A typo in the WGSL is reported against the user's own code.
    let err = CustomQuantizer::new(
        "Typo",
        1,
        "fn forward(x: f32) -> f32 { return sgn(x); }\nfn gradient(x: f32, dy: f32) -> f32 { return dy; }",
        |x| x,
        |_, d| d,
    )
    .unwrap_err();
    println!("a typo gives:\n{err}");
    Ok(())
}
