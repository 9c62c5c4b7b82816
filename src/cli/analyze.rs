use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Tables and figures of a work directory (made by `reproduce`, or laid out like it).
#[derive(Args)]
#[command(after_help = "Example:\n  losscape analyze --in work --out work/report\n\n\
Reads DIR/<model>/{lbfgs,sgd}/ (train outputs) and DIR/<model>/paths-{train,test}/ (path sweeps, shards\n\
included) and writes REPORT/index.html with Table I, Table S1 (CSV and Markdown too), the L2-distance\n\
histograms, kernel-PCA scatters, path-height histograms, loss curves and the toy figure (PNG), and the\n\
numbers behind every figure (CSV).")]
pub struct AnalyzeArgs {
    /// Work directory.
    #[arg(long = "in")]
    input: PathBuf,
    /// Report directory.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: AnalyzeArgs) -> Result<()> {
    if let Some(gap) = crate::pipeline::unfinished_sweeps(&args.input)? {
        eprintln!("warning: {gap}; until then the report shows only the pairs written so far");
    }
    // a study's report opens with its configuration, as `reproduce` wrote it
    let context = crate::pipeline::configuration(&args.input)?.unwrap_or_default();
    let figures = crate::report::analyze(&args.input, &args.out, &context)?;
    outln!("wrote {} with {} figures", args.out.join("index.html").display(), figures.len())?;
    Ok(())
}
