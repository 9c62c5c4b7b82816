//! Throughput of the batched loss-and-gradient primitive, against a ceiling: a large plain matrix
//! product through the same tiled kernel on the same adapter.

use anyhow::Result;
use serde::Serialize;
use std::sync::Arc;

use crate::data::{Dataset, GpuImages};
use crate::gpu::{AdapterSummary, Gpu, Layout, Product, Source};
use crate::model::{init_vector, Arch, Evaluator, Network, Want};

/// FLOPs of one FCP loss+gradient per (image x vector): forward 2*42200 multiply-adds; backward the
/// same again for the weight gradients plus 2*(50*10 + 50*50) for the data gradients of layers 3 and 2.
pub fn flops_per_image_vector(arch: Arch) -> f64 {
    match arch {
        Arch::Fcp => (2 * 42200 + 2 * 42200 + 2 * (50 * 10 + 50 * 50)) as f64,
        _ => f64::NAN,
    }
}

#[derive(Serialize, Debug)]
pub struct Case {
    pub model: &'static str,
    pub batch: usize,
    pub images: usize,
    pub seconds_per_call: f64,
    pub evaluations_per_second: f64,
    pub gflops: f64,
    pub fraction_of_ceiling: f64,
}

#[derive(Serialize, Debug)]
pub struct Ceiling {
    pub size: usize,
    pub seconds: f64,
    pub gflops: f64,
}

#[derive(Serialize, Debug)]
pub struct Record {
    pub adapter: AdapterSummary,
    pub commit: &'static str,
    pub timing: &'static str,
    pub flop_count: &'static str,
    pub repeats: usize,
    pub ceiling: Ceiling,
    pub cases: Vec<Case>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times an S x S x S product through the tiled matmul kernel.
pub fn ceiling(gpu: &Arc<Gpu>, size: usize, repeats: usize) -> Result<Ceiling> {
    let a: Vec<f32> = (0..size * size)
        .map(|i| ((i % 7) as f32 - 3.0) * 0.1)
        .collect();
    let a = gpu.upload(&a, "ceiling a")?;
    let c = gpu.zeros(size * size, "ceiling c")?;
    let m = Layout::row_major(0, size, 0);
    let d = gpu.matmul(
        Product {
            m: size,
            n: size,
            k: size,
            batches: 1,
            accumulate: false,
        },
        (Source::F32(&a), m),
        (Source::F32(&a), m),
        (&c, m),
    )?;
    gpu.submit_timed(&[&d])?;
    let times = (0..repeats)
        .map(|_| gpu.submit_timed(&[&d]))
        .collect::<Result<Vec<_>>>()?;
    let seconds = median(times);
    Ok(Ceiling {
        size,
        seconds,
        gflops: 2.0 * (size as f64).powi(3) / seconds * 1e-9,
    })
}

/// Times loss+gradient of `batch` vectors of `net` on all images of `data`.
pub fn case(
    gpu: &Arc<Gpu>,
    net: Network,
    data: &Dataset,
    batch: usize,
    repeats: usize,
    ceiling: f64,
) -> Result<Case> {
    let images = GpuImages::upload(gpu, data)?;
    let eval = Evaluator::new(net, &images, 0..images.count, batch)?;
    let flat: Vec<f32> = (0..batch as u64)
        .flat_map(|s| init_vector(net.arch, s))
        .collect();
    eval.set_weights(&flat)?;
    eval.run_timed(Want::LossAndGrad)?; // warm-up
    let times = (0..repeats)
        .map(|_| eval.run_timed(Want::LossAndGrad))
        .collect::<Result<Vec<_>>>()?;
    let seconds = median(times);
    let evals = (batch * data.len()) as f64;
    let gflops = evals * flops_per_image_vector(net.arch) / seconds * 1e-9;
    Ok(Case {
        model: net.arch.id(),
        batch,
        images: data.len(),
        seconds_per_call: seconds,
        evaluations_per_second: evals / seconds,
        gflops,
        fraction_of_ceiling: gflops / ceiling,
    })
}

/// The commit this binary was built from (set by build.rs), or "unknown".
pub fn commit() -> &'static str {
    option_env!("LOSSCAPE_GIT_COMMIT").unwrap_or("unknown")
}
