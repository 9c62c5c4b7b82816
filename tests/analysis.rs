//! Weight statistics, L2 distances, kernel PCA, and the report's files on a synthetic work directory.

use losscape::analysis::{distances_to_common_origin, kernel_pca, weight_stats};
use losscape::io::workdir::SETS;
use losscape::io::{read_weights, write_weights, WeightStack};
use losscape::model::{init_vector, Arch};
use std::path::Path;

#[test]
fn weight_stats_of_the_authors_first_two_lstm_rows() {
    // mean and standard deviation of the 30,912 numbers, computed with Python's math.fsum
    let w = read_weights(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lstm_authors_rows01.npy"), Arch::Lstm)
        .unwrap();
    let v: Vec<&[f32]> = (0..w.count()).map(|i| w.vector(i)).collect();
    let (mu, sigma) = weight_stats(&v);
    assert!((mu - 0.011629012308307887).abs() < 1e-12, "mu {mu}");
    assert!((sigma - 0.7631709849444694).abs() < 1e-12, "sigma {sigma}");
}

#[test]
fn table_s1_of_the_authors_lstm_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lstm_bfgs_train_best48.npy");
    let w = read_weights(&path, Arch::Lstm).unwrap();
    let v: Vec<&[f32]> = (0..w.count()).map(|i| w.vector(i)).collect();
    let (mu, sigma) = weight_stats(&v);
    assert!((mu - 9.821e-3).abs() / 9.821e-3 <= 1e-3, "mu {mu}");
    assert!((sigma - 0.72184).abs() / 0.72184 <= 1e-3, "sigma {sigma}");
}

#[test]
fn l2_distances_and_centroids_on_a_known_case() {
    // A = {(0,0), (2,0)}, B = {(0,4), (2,4)}: centroids (1,0), (1,4), origin (1,2)
    let (a1, a2, b1, b2) = ([0f32, 0.0], [2f32, 0.0], [0f32, 4.0], [2f32, 4.0]);
    let d = distances_to_common_origin(&[&a1, &a2], &[&b1, &b2]);
    for v in d.a.iter().chain(&d.b) {
        assert!((v - 5f64.sqrt()).abs() < 1e-12);
    }
    assert!((d.centroid - 2.0).abs() < 1e-12);
}

fn cluster(centre: f32, k: usize, seed: u32) -> Vec<Vec<f32>> {
    (0..k).map(|i| (0..20).map(|j| centre + ((i as u32 * 31 + j * 17 + seed) % 13) as f32 * 0.01).collect()).collect()
}

#[test]
fn kernel_pca_separates_clusters_with_exact_eigenpairs_and_fixed_signs() {
    let (a, b) = (cluster(0.0, 6, 1), cluster(0.5, 6, 2));
    let points: Vec<&[f32]> = a.iter().chain(&b).map(|v| v.as_slice()).collect();
    let two_sigma_sq = 20.0;
    let pca = kernel_pca(&points, two_sigma_sq, 2);
    // PC1 separates the clusters
    let pc1: Vec<f64> = pca.projections.iter().map(|p| p[0]).collect();
    let (max_a, min_a) =
        (pc1[..6].iter().cloned().fold(f64::MIN, f64::max), pc1[..6].iter().cloned().fold(f64::MAX, f64::min));
    let (max_b, min_b) =
        (pc1[6..].iter().cloned().fold(f64::MIN, f64::max), pc1[6..].iter().cloned().fold(f64::MAX, f64::min));
    assert!(max_a < min_b || max_b < min_a, "PC1 does not separate: {pc1:?}");
    // a direct f64 computation: the centred kernel, and Kc alpha = lambda alpha for alpha = projection / sqrt(lambda)
    let n = points.len();
    let k: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    (-points[i].iter().zip(points[j]).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>()
                        / two_sigma_sq)
                        .exp()
                })
                .collect()
        })
        .collect();
    let row: Vec<f64> = k.iter().map(|r| r.iter().sum::<f64>() / n as f64).collect();
    let all = row.iter().sum::<f64>() / n as f64;
    let kc: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| k[i][j] - row[i] - row[j] + all).collect()).collect();
    for c in 0..2 {
        let lambda = pca.eigenvalues[c];
        let alpha: Vec<f64> = pca.projections.iter().map(|p| p[c] / lambda.sqrt()).collect();
        assert!((alpha.iter().map(|a| a * a).sum::<f64>() - 1.0).abs() < 1e-9, "unit eigenvector");
        for i in 0..n {
            let kv: f64 = (0..n).map(|j| kc[i][j] * alpha[j]).sum();
            assert!((kv - lambda * alpha[i]).abs() < 1e-9, "component {c} row {i}");
        }
        let big = alpha.iter().cloned().fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
        assert!(big > 0.0, "sign convention: largest entry positive");
    }
    // the top eigenvalue by power iteration
    let mut v = vec![1.0; n];
    for _ in 0..500 {
        let w: Vec<f64> = (0..n).map(|i| (0..n).map(|j| kc[i][j] * v[j]).sum()).collect();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = w.iter().map(|x| x / norm).collect();
    }
    let rayleigh: f64 = (0..n).map(|i| v[i] * (0..n).map(|j| kc[i][j] * v[j]).sum::<f64>()).sum();
    assert!((rayleigh - pca.eigenvalues[0]).abs() < 1e-9 * rayleigh.abs().max(1.0));
    assert!(pca.eigenvalues[0] >= pca.eigenvalues[1]);
    // deterministic
    let again = kernel_pca(&points, two_sigma_sq, 2);
    assert_eq!(again.projections, pca.projections);
}

#[test]
fn the_report_of_a_synthetic_work_directory_has_every_figure_and_number() {
    use losscape::path::sweep::PairRecord;
    use losscape::path::PathOutcome;
    use losscape::train::{Optimizer, RunRecord, Summary};
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let arch = Arch::Fcp;
    let n = arch.n_params();
    let mut sets = Vec::new();
    for (s, &(opt, kind)) in SETS.iter().enumerate() {
        let flat: Vec<f32> =
            (0..3).flat_map(|i| init_vector(arch, (10 * s + i) as u64)).map(|x| x * (1.0 + s as f32)).collect();
        let stack = WeightStack::new(arch, flat);
        write_weights(&losscape::io::workdir::set_file(&work, arch, opt, kind), &stack).unwrap();
        sets.push(stack);
    }
    for opt in [Optimizer::Lbfgs, Optimizer::Sgd] {
        let run = RunRecord {
            seed: Some(0),
            // the SGD runs' losses only grew: the report warns of them
            initial_train: Some(if opt == Optimizer::Sgd { 0.2 } else { 2.3 }),
            train: vec![1.0, 0.5, 0.25],
            test: vec![1.1, 0.9, 1.0],
            best_train: Some((3, 0.25)),
            best_test: Some((2, 0.9)),
            stopped: None,
        };
        let summary = Summary {
            model: arch,
            optimizer: opt,
            n_prm: n,
            kept: 3,
            mean_train_loss: 0.25,
            mean_test_loss: 0.9,
            kept_runs: vec![0, 1, 2],
            runs: vec![run.clone(), run.clone(), run],
        };
        losscape::io::atomic_write(
            &losscape::io::workdir::summary_file(&work, arch, opt),
            serde_json::to_string(&summary).unwrap().as_bytes(),
        )
        .unwrap();
    }
    let heights = [0.5, 0.7, 0.9, 1.1];
    let mut lines = String::new();
    for (s, h) in heights.iter().enumerate() {
        let outcome = PathOutcome {
            straight_losses: vec![0.1, 2.0, 0.1],
            losses: vec![0.1, *h, 0.1],
            best_iteration: 3,
            height: *h,
            barrier: h - 0.1,
            straight_height: 2.0,
            length: 5.0,
            weighted_mean_loss: 0.3,
            coefficients: None,
            iterations: Some(4),
            converged: Some(true),
            trace: None,
        };
        let r = PairRecord {
            index: s,
            set: s,
            // the report ties a path to its set by the file's name
            set_file: losscape::io::workdir::set_name(arch, SETS[s].0, SETS[s].1),
            pair: (0, 1),
            seeds: None,
            curve: Default::default(),
            aligned: false,
            distance: None,
            unaligned_distance: None,
            unaligned_straight_height: None,
            outcome,
        };
        lines.push_str(&serde_json::to_string(&r).unwrap());
        lines.push('\n');
    }
    losscape::io::atomic_write(&work.join("fcp/paths-train/paths.jsonl"), lines.as_bytes()).unwrap();
    let out = dir.path().join("report");
    let figures = losscape::report::analyze(&work, &out, "<p>test</p>").unwrap();
    assert_eq!(figures.len(), 8, "{figures:?}"); // 2 L2 histograms, 2 kPCA, train heights, 2 curves, toy
    for f in &figures {
        let img = image::open(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let expect = if f == "toy.png" { (1400, 620) } else { (900, 600) };
        assert_eq!((img.width(), img.height()), expect, "{f}");
    }
    // Table I and S1 numbers
    let t1 = std::fs::read_to_string(out.join("table1.csv")).unwrap();
    assert!(t1.contains("FCP,2.500e-1,2.500e-1,9.000e-1,9.000e-1,42200"), "{t1}");
    let s1 = std::fs::read_to_string(out.join("tableS1.csv")).unwrap();
    let v: Vec<&[f32]> = (0..3).map(|i| sets[0].vector(i)).collect();
    let (mu, sigma) = weight_stats(&v);
    assert!(s1.contains(&format!("FCP,BFGS-train,3,{mu:.3e},{sigma:.5}")), "{s1}");
    // distances CSV equals the direct computation
    let l2 = std::fs::read_to_string(out.join("fcp-l2-bfgs-train-sgd-test.csv")).unwrap();
    let a: Vec<&[f32]> = (0..3).map(|i| sets[0].vector(i)).collect();
    let b: Vec<&[f32]> = (0..3).map(|i| sets[3].vector(i)).collect();
    let d = distances_to_common_origin(&a, &b);
    assert!(
        l2.contains(&format!("BFGS-train,0,{}", d.a[0])) && l2.contains(&format!("centroid,,{}", d.centroid)),
        "{l2}"
    );
    // heights CSV holds every pair
    let h = std::fs::read_to_string(out.join("fcp-heights-train.csv")).unwrap();
    assert_eq!(h.lines().count(), 5);
    assert!(h.contains(",0.9,0.8,2,5,3"), "{h}");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("Table I") && html.contains("<p>test</p>") && html.contains("toy.png"));
    assert!(html.contains("3 of the 3 kept SGD runs diverged (runs 0, 1, 2)"), "{html}");
    assert_eq!(html.matches("diverged").count(), 1, "the L-BFGS runs learned");
}

#[test]
fn kernel_pca_of_degenerate_sets_is_finite_with_zero_eigenvalues() {
    // every vector the same: the centred kernel is zero
    let v = vec![0.25f32; 20];
    let same: Vec<&[f32]> = vec![&v; 6];
    let pca = kernel_pca(&same, 20.0, 2);
    assert_eq!(pca.eigenvalues, vec![0.0, 0.0]);
    assert!(pca.projections.iter().flatten().all(|&x| x == 0.0), "{:?}", pca.projections);
    // two sets that coincide: each point of A projects where its copy in B does, all finite
    let a = cluster(0.0, 4, 1);
    let points: Vec<&[f32]> = a.iter().chain(&a).map(|v| v.as_slice()).collect();
    let pca = kernel_pca(&points, 20.0, 2);
    assert!(pca.eigenvalues.iter().all(|l| l.is_finite() && *l >= 0.0), "{:?}", pca.eigenvalues);
    assert!(pca.eigenvalues[0] > 0.0);
    for i in 0..4 {
        for c in 0..2 {
            let (x, y) = (pca.projections[i][c], pca.projections[i + 4][c]);
            assert!(x.is_finite() && (x - y).abs() < 1e-9, "point {i} component {c}: {x} vs {y}");
        }
    }
    // one point, more components than points, no points
    assert_eq!(kernel_pca(&same[..1], 20.0, 2).projections, vec![vec![0.0]]);
    assert!(kernel_pca(&[], 20.0, 2).projections.is_empty());
}

#[test]
fn the_report_of_identical_sets_has_no_nan() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let arch = Arch::Fcp;
    // every set holds the same three copies of one vector
    let stack = WeightStack::new(arch, (0..3).flat_map(|_| init_vector(arch, 7)).collect());
    for (opt, kind) in SETS {
        write_weights(&losscape::io::workdir::set_file(&work, arch, opt, kind), &stack).unwrap();
    }
    let out = dir.path().join("report");
    losscape::report::analyze(&work, &out, "").unwrap();
    let mut csvs = 0;
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "csv" || x == "md") {
            let text = std::fs::read_to_string(&p).unwrap().to_lowercase();
            assert!(!text.contains("nan") && !text.contains("inf"), "{}: {text}", p.display());
            csvs += 1;
        }
    }
    assert!(csvs >= 6, "{csvs} files checked");
    let kpca = std::fs::read_to_string(out.join("fcp-kpca-bfgs-train-sgd-test.csv")).unwrap();
    assert!(kpca.lines().skip(1).all(|l| l.ends_with(",0,0")), "{kpca}");
}
