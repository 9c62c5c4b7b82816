//! Loss surfaces: filter normalisation, the plane through three solutions against one-at-a-time
//! evaluation, orthonormal axes, grids, resume and shards, the CSV layout.
mod common;
#[allow(dead_code)] // only `files` is used here
#[path = "common/files.rs"]
mod files;

use common::{gpu, mnist};
use losscape::data::{DeviceImages, Split};
use losscape::io::shard::{SetInfo, Shard};
use losscape::model::{init_vector, Arch, Evaluator, Network, TensorSpec, Want};
use losscape::ops::Act;
use losscape::probe::directions::{filter_normalise, filter_norms, gaussian, Biases, DirectionSpec, Plane};
use losscape::probe::grid::AxisRange;
use losscape::probe::surface::{
    collect_rows, rows_file, run_surface, RowRecord, Surface, SurfaceConfig, SurfaceEvaluator, SurfaceProgress,
    SurfaceRun,
};

fn spec(name: &'static str, shape: &[usize]) -> TensorSpec {
    TensorSpec { name, shape: shape.to_vec(), fan_in: 1 }
}

/// A hand-made network: a 2-filter 3x3 convolution on 2 channels with bias, a 3x4 dense layer with
/// bias, a 2x3 dense layer without.
fn small_net() -> Vec<TensorSpec> {
    vec![
        spec("conv.weight", &[2, 2, 3, 3]),
        spec("conv.bias", &[2]),
        spec("fc.weight", &[3, 4]),
        spec("fc.bias", &[3]),
        spec("out.weight", &[2, 3]),
    ]
}

#[test]
fn filter_normalised_directions_have_the_weights_filter_norms() {
    let specs = small_net();
    let n: usize = specs.iter().map(TensorSpec::len).sum();
    let w: Vec<f32> = (0..n).map(|i| ((i * 7919 % 113) as f32 / 113.0 - 0.5) * (1.0 + (i % 5) as f32)).collect();
    let w64: Vec<f64> = w.iter().map(|&x| x as f64).collect();
    let mut d = gaussian(n, 1, 0);
    filter_normalise(&specs, &w, &mut d, Biases::Copy).unwrap();
    let (dn, wn) = (filter_norms(&specs, &d).unwrap(), filter_norms(&specs, &w64).unwrap());
    // filters: 2 conv + 1 bias + 3 rows + 1 bias + 2 rows
    assert_eq!(dn.len(), 9);
    for (a, b) in dn.iter().zip(&wn) {
        assert!((a - b).abs() <= 1e-9 * b, "filter norms {dn:?} vs {wn:?}");
    }
    // biases are copied, so not random
    assert_eq!(&d[36..38], &w64[36..38]);
    // the direction within a filter stays random: it is not the weights
    assert!(d[..18].iter().zip(&w64[..18]).any(|(a, b)| (a - b).abs() > 1e-3));
    let mut d = gaussian(n, 1, 0);
    filter_normalise(&specs, &w, &mut d, Biases::Ignore).unwrap();
    assert!(d[36..38].iter().chain(&d[50..53]).all(|&x| x == 0.0), "ignored biases must be 0");
    // a 2-direction plane draws independent directions, each normalised
    let plane = Plane::random(&specs, &w, 2, 4, Biases::Copy, "w").unwrap();
    let (d1, d2) = (plane.direction(0), plane.direction(1));
    assert_ne!(d1, d2);
    for d in [d1, d2] {
        for (a, b) in filter_norms(&specs, &d).unwrap().iter().zip(&wn) {
            assert!((a - b).abs() <= 1e-9 * b);
        }
    }
    assert!(filter_normalise(&specs, &w[1..], &mut gaussian(n, 1, 0), Biases::Copy).is_err());
    assert!(Plane::random(&specs, &w, 3, 0, Biases::Copy, "w").is_err());
}

fn scaled(arch: Arch, seed: u64, s: f32) -> Vec<f32> {
    init_vector(arch, seed).iter().map(|x| x * s).collect()
}

#[test]
fn a_plane_through_three_vectors_reproduces_them_and_one_at_a_time_eval() {
    let arch = Arch::Fcp;
    let net = Network { arch, act: Act::Softplus };
    let data = mnist(Split::Train, 120);
    let images = DeviceImages::upload(&gpu(), &data).unwrap();
    let vs = [scaled(arch, 1, 3.0), scaled(arch, 2, 3.0), scaled(arch, 3, 3.0)];
    let plane = Plane::through(&[&vs[0], &vs[1], &vs[2]], &["a".into(), "b".into(), "c".into()]).unwrap();
    let axis = AxisRange::new(-0.5, 1.5, 5).unwrap(); // -0.5, 0, 0.5, 1, 1.5
    let xs = axis.values();
    // the set evaluated as `eval` does
    let set = Evaluator::new(net, &images, 0..120, 3).unwrap();
    set.set_weights(&vs.concat()).unwrap();
    set.run(Want::Loss);
    let named = set.results().unwrap();
    let mut se = SurfaceEvaluator::new(net, &images, (5, 3)).unwrap(); // rows of 5 in pieces of 3 + 2
    let one = Evaluator::new(net, &images, 0..120, 1).unwrap();
    let mut w = vec![0f32; arch.n_params()];
    for &y in &axis.values() {
        let row = se.row(&plane, &xs, y).unwrap();
        for (&x, r) in xs.iter().zip(&row) {
            plane.point(x, y, &mut w);
            let k = match (x, y) {
                (0.0, 0.0) => Some(0),
                (1.0, 0.0) => Some(1),
                (0.0, 1.0) => Some(2),
                _ => None,
            };
            if let Some(k) = k {
                assert_eq!(w, vs[k], "the grid point ({x}, {y}) is not bit-for-bit vector {k}");
                assert_eq!(r.loss, named[k].loss, "loss at vector {k}");
                assert_eq!(r.accuracy, named[k].accuracy);
            }
            one.set_weights(&w).unwrap();
            one.run(Want::Loss);
            let single = one.results().unwrap()[0];
            assert!((r.loss - single.loss).abs() <= 1e-6 * single.loss, "({x}, {y}): {} vs {}", r.loss, single.loss);
            assert_eq!(r.accuracy, single.accuracy);
        }
    }
    assert!(se
        .row(&Plane::through(&[&[1.0, 2.0], &[2.0, 1.0]], &["p".into(), "q".into()]).unwrap(), &xs, 0.0)
        .is_err());
}

#[test]
fn orthonormal_axes_place_the_vectors_at_their_distances() {
    let a = [0.0f32, 0.0, 1.0];
    let b = [3.0f32, 0.0, 1.0];
    let c = [1.0f32, 2.0, 1.0];
    let labels = ["a".to_string(), "b".into(), "c".into()];
    let plane = Plane::orthonormal(&[&a, &b, &c], &labels).unwrap();
    let at: Vec<(f64, f64)> = plane.marks.iter().map(|m| (m.x, m.y)).collect();
    assert_eq!(at, vec![(0.0, 0.0), (3.0, 0.0), (1.0, 2.0)]);
    let (u, v) = (plane.direction(0), plane.direction(1));
    let dot = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(x, y)| x * y).sum::<f64>();
    assert!((dot(&u, &u) - 1.0).abs() < 1e-12 && (dot(&v, &v) - 1.0).abs() < 1e-12 && dot(&u, &v).abs() < 1e-12);
    let mut w = [0f32; 3];
    for (m, want) in plane.marks.iter().zip([a, b, c]) {
        plane.point(m.x, m.y, &mut w);
        assert_eq!(w, want);
    }
    assert!(Plane::orthonormal(&[&a, &b, &[6.0, 0.0, 1.0]], &labels).is_err(), "collinear vectors span no plane");
    assert!(Plane::through(&[&a], &labels[..1]).is_err());
    // equal vectors are named by their labels
    let e = Plane::through(&[&a, &b, &a], &labels).unwrap_err().to_string();
    assert!(e.contains("vectors a and c are equal"), "{e}");
    // a third vector on the line of the first two up to f32 rounding (the midpoint of a and b, off by
    // one ulp in one weight) spans no plane, on either kind of axes; a small real offset does
    let n = 1000;
    let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos() * 3.0).collect();
    let mut mid: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x + y) / 2.0).collect();
    mid[7] = f32::from_bits(mid[7].to_bits() + 1);
    for orthonormal in [false, true] {
        let plane = |c: &[f32]| match orthonormal {
            true => Plane::orthonormal(&[&a, &b, c], &labels),
            false => Plane::through(&[&a, &b, c], &labels),
        };
        let e = plane(&mid).unwrap_err().to_string();
        assert!(e.contains("vectors a, b and c lie on one line (to f32 rounding)"), "{e}");
        let mut off = mid.clone();
        off[3] += 1e-3;
        assert!(plane(&off).is_ok(), "a third vector 1e-3 off the line spans a plane");
    }
}

#[test]
fn batches_hold_whole_rows_or_balanced_pieces() {
    use losscape::probe::surface::batching;
    assert_eq!(batching(51, 256), (255, 5));
    assert_eq!(batching(51, 51), (51, 1));
    assert_eq!(batching(51, 32), (26, 1));
    assert_eq!(batching(51, 1), (1, 1));
    assert_eq!(batching(5, 0), (1, 1));
}

#[test]
fn axis_ranges_parse_hit_zero_and_one_and_refuse_bad_input() {
    let r: AxisRange = "-1:1:51".parse().unwrap();
    assert_eq!((r.value(0), r.value(25), r.value(50)), (-1.0, 0.0, 1.0));
    assert_eq!(r.index_of(1.0), Some(50));
    let r: AxisRange = "-0.5:1.5:21".parse().unwrap();
    assert_eq!((r.index_of(0.0), r.index_of(1.0)), (Some(5), Some(15)));
    // spacings whose f64 arithmetic misses 0 or 1 by an ulp or two still hold them exactly
    for (range, zero, one) in [("-0.2:1.2:8", 1, 6), ("-0.3:1.4:18", 3, 13)] {
        let r: AxisRange = range.parse().unwrap();
        assert_eq!((r.index_of(0.0), r.index_of(1.0)), (Some(zero), Some(one)), "{range}: {:?}", r.values());
    }
    let r: AxisRange = "0.1:0.9:5".parse().unwrap();
    assert_eq!(r.values(), [0.1, 0.30000000000000004, 0.5, 0.7000000000000001, 0.9], "no snapping elsewhere");
    for bad in ["1:0:5", "0:1", "0:1:1", "a:1:3", "0:inf:3", "nan:1:3", "0:1:x", "0:1:-3", "0:1:3:4", ""] {
        assert!(bad.parse::<AxisRange>().is_err(), "{bad} must be refused");
    }
}

struct Quiet;
impl SurfaceProgress for Quiet {
    fn start(&mut self, _: usize, _: usize) {}
    fn row(&mut self, _: &RowRecord) {}
}

fn config(arch: Arch, images: usize, dims: usize) -> SurfaceConfig {
    SurfaceConfig {
        model: arch,
        activation: Act::Softplus,
        set: SetInfo { file: "made in the test".into(), sha256: "0".into(), vectors: 1 },
        landscape: Split::Train,
        images,
        directions: DirectionSpec::Random { vector: 0, count: dims, seed: 2, biases: Biases::Copy },
        x: AxisRange::new(-1.0, 1.0, 5).unwrap(),
        y: (dims == 2).then(|| AxisRange::new(-1.0, 1.0, 3).unwrap()),
        data_sha256: None,
    }
}

#[test]
fn shards_and_resume_give_the_same_surface_as_one_run() {
    let arch = Arch::Fcp;
    let data = mnist(Split::Train, 64);
    let images = DeviceImages::upload(&gpu(), &data).unwrap();
    let w = scaled(arch, 5, 2.0);
    let plane = Plane::random(&arch.params(), &w, 2, 2, Biases::Copy, "w").unwrap();
    let cfg = config(arch, 64, 2);
    let run_with = |dir: &std::path::Path, shard: Shard, batch: usize| {
        run_surface(SurfaceRun { dir, cfg: &cfg, plane: &plane, images: &images, shard, batch }, &mut Quiet).unwrap().0
    };
    let run = |dir: &std::path::Path, shard: Shard| run_with(dir, shard, 4);
    let whole = tempfile::tempdir().unwrap();
    assert_eq!(run(whole.path(), Shard { index: 0, count: 1 }).rows, 3);
    let full = collect_rows(whole.path(), &cfg).unwrap();
    // all three rows in one call (batch 15) give the same values as rows in pieces of 3 + 2
    let one_call = tempfile::tempdir().unwrap();
    let summary = run_with(one_call.path(), Shard { index: 0, count: 1 }, 16);
    assert_eq!((summary.rows, summary.batch), (3, 15));
    for (a, b) in collect_rows(one_call.path(), &cfg).unwrap().values().zip(full.values()) {
        for (x, y) in a.losses.iter().zip(&b.losses) {
            assert!((x.unwrap() - y.unwrap()).abs() <= 1e-6 * y.unwrap(), "row {}: {x:?} vs {y:?}", a.j);
        }
    }
    let parts = tempfile::tempdir().unwrap();
    assert_eq!(run(parts.path(), Shard { index: 1, count: 2 }).rows, 1);
    assert!(Surface::assemble(&cfg, &collect_rows(parts.path(), &cfg).unwrap()).is_none());
    // a killed run leaves half a line: it is dropped, and the rest is computed
    let file = rows_file(parts.path(), Shard { index: 1, count: 2 });
    let mut text = std::fs::read(&file).unwrap();
    text.extend_from_slice(b"{\"j\":0,\"losses\":[1.0");
    std::fs::write(&file, text).unwrap();
    let summary = run(parts.path(), Shard { index: 0, count: 1 });
    assert_eq!(summary.rows, 2);
    assert_eq!(collect_rows(parts.path(), &cfg).unwrap(), full);
    assert_eq!(run(parts.path(), Shard { index: 0, count: 1 }).rows, 0, "nothing left to do");
    // another shard's file is read as it is; its own run cuts the half line
    assert!(!std::fs::read_to_string(&file).unwrap().ends_with('\n'));
    assert_eq!(run(parts.path(), Shard { index: 1, count: 2 }).rows, 0);
    assert!(std::fs::read_to_string(&file).unwrap().ends_with('\n'));
    // another configuration is refused
    let mut other = cfg.clone();
    other.x = AxisRange::new(-2.0, 2.0, 5).unwrap();
    let r = run_surface(
        SurfaceRun {
            dir: parts.path(),
            cfg: &other,
            plane: &plane,
            images: &images,
            shard: Shard { index: 0, count: 1 },
            batch: 4,
        },
        &mut Quiet,
    );
    assert!(r.unwrap_err().to_string().contains("different configuration"));
}

#[test]
fn csv_rows_columns_and_the_autoencoder_without_accuracy() {
    let arch = Arch::Autoencoder;
    let data = mnist(Split::Test, 64);
    let images = DeviceImages::upload(&gpu(), &data).unwrap();
    let w = init_vector(arch, 1);
    let plane = Plane::random(&arch.params(), &w, 1, 0, Biases::Copy, "w").unwrap();
    let cfg = config(arch, 64, 1);
    let dir = tempfile::tempdir().unwrap();
    let shard = Shard { index: 0, count: 1 };
    run_surface(
        SurfaceRun { dir: dir.path(), cfg: &cfg, plane: &plane, images: &images, shard, batch: 100 },
        &mut Quiet,
    )
    .unwrap();
    let surface = Surface::assemble(&cfg, &collect_rows(dir.path(), &cfg).unwrap()).unwrap();
    let csv = surface.csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "i,j,x,y,loss,accuracy");
    assert_eq!(lines.len(), 6);
    for (i, line) in lines[1..].iter().enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!((f[0], f[1], f[3], f[5]), (i.to_string().as_str(), "0", "0", ""), "{line}");
        assert_eq!(f[2].parse::<f64>().unwrap(), cfg.x.value(i));
        assert!(f[4].parse::<f64>().unwrap() > 0.0);
    }
    // the centre is the vector itself
    let e = Evaluator::new(Network { arch, act: Act::Softplus }, &images, 0..64, 1).unwrap();
    e.set_weights(&w).unwrap();
    e.run(Want::Loss);
    assert_eq!(surface.at(0.0, 0.0).unwrap().0, Some(e.results().unwrap()[0].loss));
    losscape::plot::surface::write_outputs(dir.path(), &cfg, &plane.marks, &surface, serde_json::json!({})).unwrap();
    for f in ["surface.csv", "surface.json", "surface.png"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
}

/// A set of three FCP vectors written by `losscape init` into `dir`.
fn three_vectors(dir: &std::path::Path) -> std::path::PathBuf {
    let set = dir.join("s.safetensors");
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_losscape"))
        .args(["init", "--model", "fcp", "--count", "3", "--out"])
        .arg(&set)
        .output();
    assert!(init.unwrap().status.success());
    set
}

/// `losscape surface` through the set's three vectors on the CPU backend, `--range RANGE` and
/// `--train-size N` from `grid`, then `extra`, into `out`; asserts that it succeeds.
fn surface(set: &std::path::Path, out: &std::path::Path, grid: (&str, &str), extra: &[&str]) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_losscape"));
    c.args(["surface", "--model", "fcp", "--through", "0,1,2", "--range", grid.0, "--train-size", grid.1]);
    c.args(["--backend", "cpu", "--quiet"]).args(extra).arg("--set").arg(set).arg("--out").arg(out);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `--batch` is an execution detail: on the CPU backend, whose chunks aim at its cache, a batch of
/// three rows used to take a smaller chunk than one row, and so other bits.
#[test]
fn any_batch_writes_the_same_surface_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let set = three_vectors(dir.path());
    let run = |batch: &str| {
        let out = dir.path().join(format!("b{batch}"));
        surface(&set, &out, ("-0.5:1.5:21", "2000"), &["--batch", batch]);
        std::fs::read(out.join("surface.csv")).unwrap()
    };
    assert_eq!(run("21"), run("63"), "three rows per call wrote other bytes than one");
}

/// A killed write leaves its temporary file (`.partial-…`) in the directory the shards share. A
/// resumed shard removes such leftovers when no other shard is writing there, and keeps them while
/// one is (the file may be that shard's write in flight), so a finished, resumed directory holds
/// the files of one that was never interrupted.
#[test]
fn a_resumed_shard_clears_leftovers_only_while_no_other_shard_writes() {
    use losscape::io::lock::{shard_lock, DirLock};
    let dir = tempfile::tempdir().unwrap();
    let (set, out) = (three_vectors(dir.path()), dir.path().join("s"));
    let run = |shard: &str| surface(&set, &out, ("-0.5:1.5:3", "100"), &["--shard", shard]);
    run("0/2");
    run("1/2");
    assert!(out.join("surface.csv").is_file(), "both shards ran");
    let finished = files::files(&out);
    let leftover = out.join(".partial-AbC123");
    std::fs::write(&leftover, b"half a surface.csv").unwrap();
    // shard 1 is writing (this process holds its lock): the leftover may be its write in flight
    let writing = DirLock::acquire(&out, &shard_lock(1, 2)).unwrap();
    run("0/2");
    assert!(leftover.exists(), "another shard's file in flight was removed");
    drop(writing);
    run("0/2");
    assert!(!leftover.exists(), "the leftover of a killed write stayed");
    assert_eq!(files::files(&out), finished, "the directory holds the files of an uninterrupted run");
}
