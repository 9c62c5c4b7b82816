use anyhow::Result;
use clap::Args;
use std::fmt::Write;
use std::path::PathBuf;

use crate::io::atomic_write;
use crate::path::toy::{run as run_toy, ToySettings};

/// The 2-D toy landscape of Fig. 3: straight line and Fourier paths for several lambda.
#[derive(Args)]
#[command(
    after_help = "Example:\n  losscape toy --out toy\n\nWrites DIR/toy.png (the figure), DIR/toy-paths.csv (every point of every path) and\nDIR/toy-heights.csv."
)]
pub struct ToyArgs {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Regulariser weights (each 0 to 1e12).
    // hyphen values: a list such as "-1,10" is no number, so negative numbers alone would not take it
    #[arg(long, allow_hyphen_values = true, value_delimiter = ',', default_value = "10,100,1000", value_parser = super::ranges::lambda)]
    lambdas: Vec<f64>,
}

pub fn run(args: ToyArgs) -> Result<()> {
    if let Some(l) = args.lambdas.iter().enumerate().find_map(|(i, l)| args.lambdas[..i].contains(l).then_some(l)) {
        let message = format!("--lambdas names {l} twice; give each lambda once");
        return Err(super::ranges::usage("toy", message));
    }
    let paths = run_toy(&args.lambdas, ToySettings::default());
    let (mut points, mut heights) = (String::from("path,lambda,m,t,x,y,f\n"), String::from("path,lambda,height\n"));
    let mut lines = Vec::new(); // printed once the files are written
    for (i, p) in paths.iter().enumerate() {
        let lambda = p.lambda.map_or("straight".to_string(), |l| l.to_string());
        let m = p.points.len() - 1;
        for (k, (q, f)) in p.points.iter().zip(&p.values).enumerate() {
            writeln!(points, "{i},{lambda},{k},{},{},{},{}", k as f64 / m as f64, q[0], q[1], f)?;
        }
        writeln!(heights, "{i},{lambda},{}", p.height)?;
        match p.lambda {
            None => lines.push(format!("straight line: height {:.4}", p.height)),
            Some(l) => lines.push(format!("lambda {l}: height {:.4}", p.height)),
        }
    }
    atomic_write(&args.out.join("toy-paths.csv"), points.as_bytes())?;
    atomic_write(&args.out.join("toy-heights.csv"), heights.as_bytes())?;
    crate::plot::toy::figure(&paths, &args.out.join("toy.png"))?;
    for line in lines {
        outln!("{line}")?;
    }
    outln!("wrote {}", args.out.join("toy.png").display())?;
    Ok(())
}
