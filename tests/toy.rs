//! The 2-D toy landscape of Fig. 3 (docs/algorithms.md §7).

use losscape::path::toy::{f, grad_f, run, ToySettings, END, START};

#[test]
fn toy_heights_reproduce_the_paper() {
    let paths = run(&[10.0, 100.0, 1000.0], ToySettings::default());
    assert!((paths[0].height - 1.102).abs() <= 0.001, "straight line {}", paths[0].height);
    for (p, expect) in paths[1..].iter().zip([0.644, 0.640, 0.655]) {
        assert!((p.height - expect).abs() <= 0.01, "lambda {:?}: height {} vs {expect}", p.lambda, p.height);
        // above the exact mountain pass f = 0.62439, below the straight line
        assert!(p.height > 0.6243 && p.height < paths[0].height);
        assert_eq!(p.points[0], START);
        assert_eq!(*p.points.last().unwrap(), END);
    }
}

#[test]
fn toy_gradient_matches_finite_differences() {
    for p in [[0.1, -0.2], [-0.5, -0.5], [0.3, 0.4]] {
        let g = grad_f(p);
        let h = 1e-6;
        let fx = (f([p[0] + h, p[1]]) - f([p[0] - h, p[1]])) / (2.0 * h);
        let fy = (f([p[0], p[1] + h]) - f([p[0], p[1] - h])) / (2.0 * h);
        assert!((g[0] - fx).abs() < 1e-8 && (g[1] - fy).abs() < 1e-8, "{p:?}");
    }
}

#[test]
fn toy_command_writes_a_figure_and_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_losscape"))
        .args(["toy", "--out", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("straight line: height 1.10") && stdout.contains("lambda 100: height 0.64"), "{stdout}");
    let img = image::open(dir.path().join("toy.png")).unwrap();
    assert_eq!((img.width(), img.height()), (1400, 620));
    let heights = std::fs::read_to_string(dir.path().join("toy-heights.csv")).unwrap();
    assert_eq!(heights.lines().count(), 5);
    let points = std::fs::read_to_string(dir.path().join("toy-paths.csv")).unwrap();
    assert_eq!(points.lines().count(), 1 + 4 * 100);
}
