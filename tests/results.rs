//! Results survive what users and machines do to them (issue 27): readers that never change what they
//! read, records that read back what was written (NaN included), a closed stdout, a mistyped `--in`, the
//! umask, and one writer per work directory.

#[path = "common/files.rs"]
mod files;
#[path = "common/lines.rs"]
mod lines;

use losscape::io::jsonl::{read_lines, Appender};
use losscape::io::lock::{shard_lock, DirLock, LOCK};
use losscape::probe::hessian::{Spectrum, SpectrumRecord};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn losscape(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_losscape")).args(args).output().unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `count` initialised FCP vectors in `dir/name` (seeds 0..count).
fn fcp_set(dir: &Path, name: &str, count: &str) -> std::path::PathBuf {
    let set = dir.join(name);
    ok(losscape(&["init", "--model", "fcp", "--count", count, "--out", s(&set)]));
    set
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Rec {
    i: usize,
}

const THREE: &str = "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n";

#[test]
fn the_reader_ignores_an_unfinished_last_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.jsonl");
    assert!(read_lines::<Rec>(&f).unwrap().is_empty(), "a missing file holds no records");
    for tail in ["{\"i\":3", "{\"i\":3}", "\u{0}\u{0}"] {
        let bytes = format!("{THREE}{tail}");
        std::fs::write(&f, &bytes).unwrap();
        let got = read_lines::<Rec>(&f).unwrap();
        assert_eq!(got, (0..3).map(|i| Rec { i }).collect::<Vec<_>>(), "tail {tail:?}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), bytes, "the reader left the file as it was");
    }
}

#[test]
fn a_damaged_line_is_an_error_naming_file_and_line_and_the_file_stays() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.jsonl");
    // a damaged second line, and a finished last line that does not parse either
    for bytes in ["{\"i\":0}\n{\"i\":1\n{\"i\":2}\n", "{\"i\":0}\n{\"i\":1}\n{\"i\":2]\n"] {
        std::fs::write(&f, bytes).unwrap();
        let line = if bytes.contains("1\n") { 2 } else { 3 };
        for e in [read_lines::<Rec>(&f).unwrap_err(), Appender::resume::<Rec>(&f).unwrap_err()] {
            let msg = format!("{e:#}");
            assert!(msg.contains(s(&f)) && msg.contains(&format!("line {line} ")), "{msg}");
        }
        assert_eq!(std::fs::read_to_string(&f).unwrap(), bytes, "nothing was cut");
    }
}

#[test]
fn only_the_resuming_appender_cuts_an_unfinished_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.jsonl");
    std::fs::write(&f, format!("{THREE}{{\"i\":3")).unwrap();
    let (appender, done) = Appender::resume::<Rec>(&f).unwrap();
    assert_eq!(done.len(), 3);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), THREE, "the unfinished line was cut");
    appender.append(&Rec { i: 3 }).unwrap();
    assert_eq!(read_lines::<Rec>(&f).unwrap().len(), 4);
    // a fresh file is created by the first append
    let (fresh, none) = Appender::resume::<Rec>(&dir.path().join("new.jsonl")).unwrap();
    assert!(none.is_empty());
    fresh.append(&Rec { i: 0 }).unwrap();
    // the record, closed by its checksum (the first 16 hex digits of the SHA-256 of `{"i":0}`)
    let sum = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(b"{\"i\":0}"));
    let want = format!("{{\"i\":0,\"checksum\":\"{}\"}}\n", &sum[..16]);
    assert_eq!(std::fs::read_to_string(dir.path().join("new.jsonl")).unwrap(), want);
}

#[test]
fn non_finite_spectra_read_back_as_written() {
    let s =
        Spectrum { eigenvalues: vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5], trace: Some((f64::NAN, 0.25)) };
    let line = serde_json::to_string(&SpectrumRecord::new(7, &s)).unwrap();
    assert!(!line.contains("null"), "{line}");
    let back: SpectrumRecord = serde_json::from_str(&line).unwrap();
    let b = back.spectrum();
    assert_eq!(back.vector, 7);
    assert!(b.eigenvalues[0].is_nan() && b.eigenvalues[1] == f64::INFINITY && b.eigenvalues[2] == f64::NEG_INFINITY);
    assert_eq!(b.eigenvalues[3], 1.5);
    let (m, se) = b.trace.unwrap();
    assert!(m.is_nan() && se == 0.25);
    // finite values are written as plain numbers, as before
    let plain = SpectrumRecord::new(0, &Spectrum { eigenvalues: vec![0.1], trace: Some((2.0, 0.5)) });
    assert_eq!(serde_json::to_string(&plain).unwrap(), "{\"vector\":0,\"eigenvalues\":[0.1],\"trace\":[2.0,0.5]}");
    // records of earlier versions (null for a non-finite eigenvalue) still read
    let old: SpectrumRecord = serde_json::from_str("{\"vector\":1,\"eigenvalues\":[null,2.0],\"trace\":null}").unwrap();
    assert!(old.spectrum().eigenvalues[0].is_nan() && old.spectrum().trace.is_none());
}

#[cfg(unix)]
fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_hessian_result_that_is_nan_reads_back_on_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("big.safetensors");
    let arch = losscape::model::Arch::Fcp;
    // vector 1's weights are so large that its loss, and so its spectrum, is not finite
    let flat: Vec<f32> = [losscape::model::init_vector(arch, 0), losscape::model::init_vector(arch, 1)]
        .iter()
        .enumerate()
        .flat_map(|(i, v)| v.iter().map(move |w| if i == 1 { w * 1e30 } else { *w }))
        .collect();
    losscape::io::write_weights(&set, &losscape::io::WeightStack::new(arch, flat)).unwrap();
    let out = dir.path().join("h");
    let run = || {
        ok(losscape(&[
            "hessian",
            "--model",
            "fcp",
            "--set",
            s(&set),
            "--steps",
            "3",
            "--probes",
            "2",
            "--train-size",
            "30",
            "--out",
            s(&out),
            "--backend",
            "cpu",
            "--quiet",
        ]))
    };
    run();
    let records = std::fs::read_to_string(out.join("vectors.jsonl")).unwrap();
    assert!(records.contains("\"NaN\"") && !records.contains("null"), "{records}");
    let csv = std::fs::read_to_string(out.join("hessian.csv")).unwrap();
    let o = run();
    let stdout = text(&o.stdout);
    assert!(stdout.contains("2 vector(s) done earlier") && stdout.contains("0 vector(s) computed"), "{stdout}");
    assert_eq!(std::fs::read_to_string(out.join("vectors.jsonl")).unwrap(), records, "nothing cut or appended");
    assert_eq!(std::fs::read_to_string(out.join("hessian.csv")).unwrap(), csv);
    assert!(csv.lines().nth(2).unwrap().starts_with("1,NaN"), "{csv}");
}

/// A small study: the FCP's four sets (copies of one init file) and a path sweep of the training set.
/// Returns the sweep's directory and its records file.
fn small_study(work: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use losscape::io::workdir::{paths_dir, set_file, SETS};
    let arch = losscape::model::Arch::Fcp;
    let first = set_file(work, arch, SETS[0].0, SETS[0].1);
    std::fs::create_dir_all(first.parent().unwrap()).unwrap();
    ok(losscape(&["init", "--model", "fcp", "--count", "3", "--out", s(&first)]));
    for &(opt, kind) in &SETS[1..] {
        let f = set_file(work, arch, opt, kind);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::copy(&first, f).unwrap();
    }
    let sweep = paths_dir(work, arch, "train");
    ok(losscape(&small_sweep(&first, &sweep)));
    let results = sweep.join("paths.jsonl");
    (sweep, results)
}

/// The sweep `small_study` runs: three pairs of `set` on 40 images, into `out`.
fn small_sweep<'a>(set: &'a Path, out: &'a Path) -> Vec<&'a str> {
    let tiny = ["--train-size", "40", "--points", "5", "--fourier", "2", "--iterations", "2", "--quiet"];
    [&["paths", "--model", "fcp", "--set", s(set), "--pairs", "3"][..], &tiny, &["--out", s(out), "--backend", "cpu"]]
        .concat()
}

#[test]
fn merge_and_analyze_read_a_results_directory_without_changing_it() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let (sweep, results) = small_study(&work);
    let whole = std::fs::read_to_string(&results).unwrap();
    assert_eq!(whole.lines().count(), 3);
    // a writer killed mid-append (or still appending) left an unfinished last line
    let unfinished = format!("{whole}{{\"index\":9,\"set\":0,\"set_fi");
    std::fs::write(&results, &unfinished).unwrap();
    let modified = std::fs::metadata(&results).unwrap().modified().unwrap();
    // read-only (root may write anyway: then the unchanged bytes and time below are the evidence)
    #[cfg(unix)]
    {
        set_mode(&results, 0o444);
        set_mode(&sweep, 0o555);
    }
    let merged = dir.path().join("merged.jsonl");
    let o = ok(losscape(&["merge", s(&sweep), "--out", s(&merged)]));
    assert!(text(&o.stdout).contains("merged 3 of 3 pairs"), "{}", text(&o.stdout));
    // the same records, each naming its set from the merged file's directory
    let from_merged: String = whole
        .lines()
        .map(|l| lines::resealed(&l.replace("\"set_file\":\"../lbfgs/", "\"set_file\":\"work/fcp/lbfgs/")) + "\n")
        .collect();
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), from_merged);
    ok(losscape(&["analyze", "--in", s(&work), "--out", s(&dir.path().join("report"))]));
    assert_eq!(std::fs::read_to_string(&results).unwrap(), unfinished, "the readers left the file as it was");
    assert_eq!(std::fs::metadata(&results).unwrap().modified().unwrap(), modified);
    #[cfg(unix)]
    {
        set_mode(&sweep, 0o755);
        set_mode(&results, 0o644);
    }
    // a damaged line in the middle: an error naming file and line; the intact records stay
    let mut lines: Vec<&str> = whole.lines().collect();
    lines[1] = &lines[1][..lines[1].len() / 2];
    let damaged = lines.join("\n") + "\n";
    std::fs::write(&results, &damaged).unwrap();
    for args in [
        vec!["merge", s(&sweep), "--out", s(&merged)],
        vec!["analyze", "--in", s(&work), "--out", s(&dir.path().join("report"))],
    ] {
        let o = losscape(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}: {err}", args[0]);
        assert!(err.contains(s(&results)) && err.contains("line 2 "), "{}: {err}", args[0]);
        assert_eq!(std::fs::read_to_string(&results).unwrap(), damaged, "{}: nothing was cut", args[0]);
    }
}

#[test]
fn a_refused_sweep_leaves_no_directory_and_the_corrected_command_runs() {
    let dir = tempfile::tempdir().unwrap();
    let set = fcp_set(dir.path(), "set.safetensors", "4");
    let out = dir.path().join("p");
    let sweep = |extra: &[&str]| {
        let base = ["paths", "--model", "fcp", "--set", s(&set), "--train-size", "40", "--iterations", "1"];
        let tail = ["--fourier", "2", "--out", s(&out), "--quiet", "--backend", "cpu"];
        losscape(&[&base[..], extra, &tail[..]].concat())
    };
    // help and check agree: --points 2 is a usage error
    let o = sweep(&["--pairs", "2", "--points", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("--points") && text(&o.stderr).contains("3"), "{}", text(&o.stderr));
    // more pairs than the set allows: refused before the directory is made
    let o = sweep(&["--pairs", "7", "--points", "5"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("6 distinct pairs"), "{}", text(&o.stderr));
    assert!(!out.exists(), "a refused command leaves no directory behind");
    ok(sweep(&["--pairs", "6", "--points", "5"]));
}

/// A raw (unzipped) copy of the bundled MNIST in `dir`; with `alter`, the first training image's first
/// pixel changed.
fn mnist_copy(dir: &Path, alter: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for name in
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    {
        let gz = losscape::data::bundled_dir().join(format!("{name}.gz"));
        let mut bytes = losscape::data::idx::read_maybe_gz(&gz).unwrap();
        if alter && name == "train-images-idx3-ubyte" {
            bytes[16] ^= 0x55; // after the 16-byte header: image 0, pixel 0
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn a_work_directory_refuses_other_data_but_not_another_copy_of_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (same, other) = (dir.path().join("same"), dir.path().join("other"));
    mnist_copy(&same, false);
    mnist_copy(&other, true);
    let out = dir.path().join("t");
    let train = |data: Option<&Path>| {
        let mut args = vec![
            "train",
            "--model",
            "fcp",
            "--optimizer",
            "lbfgs",
            "--runs",
            "2",
            "--iterations",
            "2",
            "--train-size",
            "50",
            "--test-size",
            "20",
            "--quiet",
            "--backend",
            "cpu",
            "--out",
            s(&out),
        ];
        if let Some(d) = data {
            args.extend(["--data", s(d)]);
        }
        losscape(&args)
    };
    ok(train(None));
    ok(train(Some(&same))); // the same images, unzipped: the same fingerprint
    let o = train(Some(&other));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("data_sha256") && err.contains(s(&out)), "{err}");
    // shards of one sweep on two datasets do not merge, and a shard does not resume on other data
    let set = fcp_set(dir.path(), "set.safetensors", "3");
    let shard = |i: usize, data: &Path| {
        let shard = format!("{i}/2");
        let out = dir.path().join(format!("shard-{i}"));
        losscape(&[
            "paths",
            "--model",
            "fcp",
            "--set",
            s(&set),
            "--pairs",
            "2",
            "--train-size",
            "40",
            "--points",
            "5",
            "--fourier",
            "2",
            "--iterations",
            "1",
            "--shard",
            &shard,
            "--data",
            s(data),
            "--quiet",
            "--backend",
            "cpu",
            "--out",
            s(&out),
        ])
    };
    ok(shard(0, &same));
    ok(shard(1, &other));
    let o = shard(0, &other);
    assert!(o.status.code() == Some(1) && text(&o.stderr).contains("data_sha256"), "{}", text(&o.stderr));
    let o = losscape(&[
        "merge",
        s(&dir.path().join("shard-0")),
        s(&dir.path().join("shard-1")),
        "--out",
        s(&dir.path().join("m.jsonl")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("data_sha256"), "{}", text(&o.stderr));
}

#[test]
fn a_checkpoint_copied_from_another_run_or_of_another_run_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run_of = |runs: &str, seed: &str, out: &Path| {
        losscape(&[
            "train",
            "--model",
            "fcp",
            "--optimizer",
            "lbfgs",
            "--runs",
            runs,
            "--iterations",
            "2",
            "--seed",
            seed,
            "--train-size",
            "50",
            "--test-size",
            "20",
            "--quiet",
            "--backend",
            "cpu",
            "--out",
            s(out),
        ])
    };
    let run = |seed: &str, out: &Path| run_of("2", seed, out);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(run("0", &a));
    ok(run("5", &b));
    ok(run("5", &b)); // its own checkpoint resumes
    let summary = std::fs::read(b.join("fcp-lbfgs-summary.json")).unwrap();
    std::fs::copy(a.join("checkpoint.safetensors"), b.join("checkpoint.safetensors")).unwrap();
    let o = run("5", &b);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("checkpoint of another run") && err.contains(s(&b.join("checkpoint.safetensors"))), "{err}");
    assert_eq!(std::fs::read(b.join("fcp-lbfgs-summary.json")).unwrap(), summary, "nothing rewritten from it");
    // a checkpoint of 2 runs found by a run of 3: its own message, with both counts and the fix
    let c = dir.path().join("c");
    ok(run_of("3", "5", &c));
    let summary = std::fs::read(c.join("fcp-lbfgs-summary.json")).unwrap();
    let checkpoint = c.join("checkpoint.safetensors");
    std::fs::copy(a.join("checkpoint.safetensors"), &checkpoint).unwrap();
    let o = run_of("3", "5", &c);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{}: a checkpoint of 2 runs, but this run trains 3", s(&checkpoint))), "{err}");
    assert!(err.contains("--runs 2") && err.contains("delete it"), "the fix: {err}");
    assert_eq!(std::fs::read(c.join("fcp-lbfgs-summary.json")).unwrap(), summary, "nothing rewritten from it");
}

#[test]
fn a_closed_stdout_ends_quietly_after_the_files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p);
    let (a, b, c, i, toy) = (d("a.safetensors"), d("b.safetensors"), d("c.npy"), d("i.npy"), d("toy"));
    let surface = d("surface");
    ok(losscape(&["init", "--model", "fcp", "--count", "1", "--out", s(&a)]));
    ok(losscape(&["init", "--model", "fcp", "--seed", "5", "--count", "2", "--out", s(&b)]));
    let cases: Vec<(Vec<&str>, Option<std::path::PathBuf>)> = vec![
        (vec!["toy", "--out", s(&toy)], Some(toy.join("toy.png"))),
        (vec!["align", "--model", "fcp", "--a", s(&a), "--b", s(&b), "--out", s(&c)], Some(c.clone())),
        (vec!["init", "--model", "fcp", "--out", s(&i)], Some(i.clone())),
        (vec!["plan", "--model", "fcp", "--profile", "h100"], None),
        (
            vec![
                "surface",
                "--model",
                "fcp",
                "--set",
                s(&b),
                "--through",
                "0,1",
                "--range",
                "0:1:3",
                "--train-size",
                "20",
                "--backend",
                "cpu",
                "--quiet",
                "--out",
                s(&surface),
            ],
            Some(surface.join("surface.csv")),
        ),
        (vec!["plan", "--preset", "quick", "--profile", "h100"], None),
    ];
    for (args, file) in cases {
        // the reader is gone before the command starts, so every write to stdout fails
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(env!("CARGO_BIN_EXE_losscape"))
            .args(&args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}: {}", args[0], text(&o.stderr));
        assert_eq!(text(&o.stderr), "", "{}: quiet", args[0]);
        if let Some(f) = file {
            assert!(f.is_file(), "{}: {} written before printing", args[0], f.display());
        }
    }
}

#[test]
fn analyze_of_a_directory_without_a_study_is_an_error_naming_what_it_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let missing = dir.path().join("nonexistent");
    let o = losscape(&["analyze", "--in", s(&missing), "--out", s(&report)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains(s(&missing)) && text(&o.stderr).contains("no such directory"),
        "{}",
        text(&o.stderr)
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = losscape(&["analyze", "--in", s(&empty), "--out", s(&report)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("holds no study") && err.contains("summary.json") && err.contains("safetensors"), "{err}");
    assert!(!report.exists(), "nothing written");
}

#[cfg(unix)]
#[test]
fn written_files_follow_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (umask, want) in [("022", 0o644), ("077", 0o600), ("002", 0o664)] {
        let out = dir.path().join(format!("u{umask}"));
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask {umask} && \"$0\" init --model fcp --out {0}/w.safetensors && \"$0\" toy --out {0} && \
                 \"$0\" train --model fcp --optimizer sgd --runs 1 --epochs 1 --train-size 64 --test-size 16 \
                 --backend cpu --quiet --out {0}/t",
                out.display()
            ))
            .arg(env!("CARGO_BIN_EXE_losscape"))
            .output()
            .unwrap();
        ok(o);
        let trained =
            ["t/config.json", "t/checkpoint.safetensors", "t/fcp-sgd-summary.json", "t/fcp-sgd-train.safetensors"];
        for f in ["w.safetensors", "toy-paths.csv", "toy-heights.csv"].iter().chain(&trained) {
            let mode = std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, want, "{f} under umask {umask}: {mode:o}");
        }
    }
}

#[test]
fn a_held_lock_names_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    let held = DirLock::acquire(dir.path(), LOCK).unwrap();
    let e = format!("{:#}", DirLock::acquire(dir.path(), LOCK).unwrap_err());
    assert!(e.contains(&format!("PID {}", std::process::id())) && e.contains(s(dir.path())), "{e}");
    // shards sharing a directory lock their own files
    let _a = DirLock::acquire(dir.path(), &shard_lock(0, 2)).unwrap();
    let _b = DirLock::acquire(dir.path(), &shard_lock(1, 2)).unwrap();
    assert!(DirLock::acquire(dir.path(), &shard_lock(1, 2)).is_err());
    drop(held);
    assert_eq!(std::fs::read_to_string(dir.path().join(LOCK)).unwrap(), "", "emptied when let go");
    DirLock::acquire(dir.path(), LOCK).unwrap();
}

#[test]
fn with_wait_a_second_writer_waits_for_the_holder_and_then_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (lone, out) = (dir.path().join("lone"), dir.path().join("waited"));
    ok(Command::new(env!("CARGO_BIN_EXE_losscape")).args(train_args(&lone)).output().unwrap());
    let held = DirLock::acquire(&out, LOCK).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_losscape"))
        .arg("--wait")
        .args(train_args(&out))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the child says it waits once it found the lock held (however long loading the data took)
    use std::io::{BufRead, Read};
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("waiting") {
        assert!(stderr.read_line(&mut said).unwrap() > 0, "ended without waiting: {said}");
    }
    assert!(said.contains(&format!("PID {}", std::process::id())), "{said}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "still waiting while the lock is held");
    assert!(!out.join("config.json").exists(), "nothing written while waiting");
    drop(held);
    stderr.read_to_string(&mut said).unwrap();
    assert!(child.wait().unwrap().success(), "{said}");
    files::assert_same_bytes(&lone, &out); // as a lone run
}

/// A small training run that still holds its directory for most of a second (in the debug build), so
/// that two of them started together overlap.
fn train_args(out: &Path) -> Vec<String> {
    [
        "train",
        "--model",
        "fcp",
        "--optimizer",
        "lbfgs",
        "--runs",
        "2",
        "--keep",
        "2",
        "--iterations",
        "10",
        "--train-size",
        "300",
        "--test-size",
        "100",
        "--quiet",
        "--backend",
        "cpu",
        "--out",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([s(out).to_string()])
    .collect()
}

/// `args` with `--iterations` set to `n`: a race's run must hold its lock for about a second, so that
/// the second process, started together with the first but slowed by the tests running beside it,
/// still finds the first holding the lock rather than finished (it would then resume the finished run
/// and succeed too, and the race would not count, [`races`]; a 10-iteration training, a quarter of a
/// second here, once did).
fn longer(mut args: Vec<String>, n: &str) -> Vec<String> {
    let at = args.iter().position(|x| x == "--iterations").expect("the arguments name --iterations") + 1;
    args[at] = n.to_string();
    args
}

/// Races of two writers started together per test in which one refused the other (issue 27's
/// acceptance: 10).
const ROUNDS: usize = 10;

/// The most races tried to get [`ROUNDS`] in which the writers overlapped: under a heavy load the
/// second process may start only after the first finished, and then resumes its finished work.
const ATTEMPTS: usize = 3 * ROUNDS;

/// Races two writers of `args(out)` in fresh directories until [`ROUNDS`] of them overlapped (one
/// refused the other), at most [`ATTEMPTS`]; each directory then holds the bytes of `lone`, the
/// directory of a lone run. A lock that let both writers in would never refuse, so the test fails.
fn races(args: impl Fn(&Path) -> Vec<String>, lone: &Path, what: &str) {
    let dir = lone.parent().unwrap();
    let mut overlapped = 0;
    for attempt in 0..ATTEMPTS {
        let out = dir.join(format!("both-{attempt}"));
        overlapped += usize::from(race(&args(&out), &out, &format!("{what}, attempt {attempt}")));
        files::assert_same_bytes(lone, &out); // as a lone run
        if overlapped == ROUNDS {
            return;
        }
    }
    panic!("{what}: only {overlapped} of {ATTEMPTS} races had one writer refuse the other");
}

/// Starts two copies of `args` (which name the directory `out`) together: asserts that either exactly
/// one finishes and the other exits 1 naming the winner's PID and `out` (returns true), or both finish,
/// the second having found the first's work done (returns false: they did not overlap).
fn race(args: &[String], out: &Path, what: &str) -> bool {
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_losscape"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let pids = [a.id(), b.id()];
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let finished: Vec<usize> = (0..2).filter(|&i| outs[i].status.success()).collect();
    if finished.len() == 2 {
        return false;
    }
    assert_eq!(finished.len(), 1, "{what}: exactly one finishes: {:?}", outs.map(|o| text(&o.stderr)));
    let (winner, loser) = (finished[0], 1 - finished[0]);
    let err = text(&outs[loser].stderr);
    assert_eq!(outs[loser].status.code(), Some(1), "{what}: {err}");
    assert!(err.contains(&format!("PID {}", pids[winner])) && err.contains(s(out)), "{what}: {err}");
    true
}

#[test]
fn two_trains_into_one_directory_one_refuses_the_other_finishes() {
    let args = |out: &Path| longer(train_args(out), "40");
    let dir = tempfile::tempdir().unwrap();
    let lone = dir.path().join("lone");
    ok(Command::new(env!("CARGO_BIN_EXE_losscape")).args(args(&lone)).output().unwrap());
    races(args, &lone, "train");
}

fn paths_args(set: &Path, out: &Path) -> Vec<String> {
    let args = [
        "paths",
        "--model",
        "fcp",
        "--set",
        s(set),
        "--pairs",
        "3",
        "--train-size",
        "200",
        "--points",
        "5",
        "--fourier",
        "2",
        "--iterations",
        "20",
        "--quiet",
        "--backend",
        "cpu",
        "--out",
        s(out),
    ];
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn two_path_sweeps_into_one_directory_one_refuses_the_other_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let set = fcp_set(dir.path(), "set.safetensors", "3");
    let lone = dir.path().join("lone");
    let args = |out: &Path| longer(paths_args(&set, out), "80");
    ok(Command::new(env!("CARGO_BIN_EXE_losscape")).args(args(&lone)).output().unwrap());
    races(args, &lone, "paths");
}

#[test]
fn surface_shards_sharing_a_directory_run_together_but_one_shard_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let set = fcp_set(dir.path(), "set.safetensors", "3");
    let out = dir.path().join("s");
    let args = |shard: &str| -> Vec<String> {
        [
            "surface",
            "--model",
            "fcp",
            "--set",
            s(&set),
            "--through",
            "0,1,2",
            "--range",
            "-1:1:15",
            "--train-size",
            "1000",
            "--shard",
            shard,
            "--quiet",
            "--backend",
            "cpu",
            "--out",
            s(&out),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let spawn = |shard: &str| Command::new(env!("CARGO_BIN_EXE_losscape")).args(args(shard)).output();
    let (a, b) = std::thread::scope(|t| {
        let a = t.spawn(|| spawn("0/2").unwrap());
        let b = t.spawn(|| spawn("1/2").unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    ok(a);
    ok(b);
    let rows: usize = ["rows-shard-0-of-2.jsonl", "rows-shard-1-of-2.jsonl"]
        .iter()
        .map(|f| std::fs::read_to_string(out.join(f)).unwrap().lines().count())
        .sum();
    assert_eq!(rows, 15, "the two shards hold every row of the grid once");
    // while shard 0's lock is held (here by this process), shard 0 is refused and shard 1 runs
    let held = DirLock::acquire(&out, &shard_lock(0, 2)).unwrap();
    std::fs::remove_file(out.join("rows-shard-0-of-2.jsonl")).unwrap();
    let o = spawn("0/2").unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("PID {}", std::process::id())), "{err}");
    assert!(!out.join("rows-shard-0-of-2.jsonl").exists(), "the refused shard wrote nothing");
    ok(spawn("1/2").unwrap());
    drop(held);
}

/// The same set named by another path (relative, through a symlink, after a move) is the same set,
/// and a moved work directory resumes to the bytes an unmoved one writes.
#[test]
fn a_moved_or_renamed_work_directory_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let set = fcp_set(dir.path(), "set.safetensors", "3");
    let out = dir.path().join("sweep");
    let first = paths_args(&set, &out);
    ok(Command::new(env!("CARGO_BIN_EXE_losscape")).args(&first).output().unwrap());
    let records = std::fs::read(out.join("paths.jsonl")).unwrap();
    // the set again through a symlink and by a relative path: the same set, nothing recomputed
    let link = dir.path().join("link.safetensors");
    std::os::unix::fs::symlink(&set, &link).unwrap();
    for (name, cwd) in [(s(&link).to_string(), None), ("set.safetensors".to_string(), Some(dir.path()))] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_losscape"));
        c.args(paths_args(Path::new(&name), &out));
        if let Some(cwd) = cwd {
            c.current_dir(cwd);
        }
        let o = ok(c.output().unwrap());
        assert!(text(&o.stdout).contains("0 pair(s) computed"), "{name}: {}", text(&o.stdout));
        assert_eq!(std::fs::read(out.join("paths.jsonl")).unwrap(), records, "{name}");
    }
    // another set of the same name is still another set
    ok(losscape(&["init", "--model", "fcp", "--count", "3", "--seed", "9", "--out", s(&link)]));
    let o = Command::new(env!("CARGO_BIN_EXE_losscape")).args(paths_args(&link, &out)).output().unwrap();
    assert!(!o.status.success() && text(&o.stderr).contains("differs in: sets"), "{}", text(&o.stderr));

    // a study trained in one directory, moved, and finished there writes what an unmoved one writes
    let study = |out: &Path, stage: &str| {
        losscape(&["reproduce", "--preset", "smoke", "--models", "fcp", "--stage", stage, "--out", s(out)])
    };
    let (moved, unmoved) = (dir.path().join("before"), dir.path().join("unmoved"));
    ok(study(&moved, "train"));
    let after = dir.path().join("after");
    std::fs::rename(&moved, &after).unwrap();
    ok(study(&after, "all"));
    ok(study(&unmoved, "all"));
    // every file the study wrote, the probes' records and the report included
    let compared = files::assert_same_bytes(&after, &unmoved);
    let names = files::files(&unmoved);
    assert!(compared > 20 && names.iter().any(|f| f.ends_with("sharpness/sgd-train.json")), "{names:?}");
    for f in &names {
        let a = std::fs::read(after.join(f)).unwrap();
        let f = f.display();
        assert!(!text(&a).contains("before") && !text(&a).contains("unmoved"), "{f} names its directory: {}", text(&a));
    }
    // a finished study run again keeps its report and says how to write it again
    let again = text(&ok(study(&unmoved, "all")).stderr);
    assert!(again.contains("report/index.html was written earlier and is kept"), "{again}");
    assert!(again.contains(&format!("losscape analyze --in {}", s(&unmoved))), "{again}");
    files::assert_same_bytes(&after, &unmoved);
    // on one thread (a 1-core Slurm task): the same bytes, the probes' records included
    let one_thread = dir.path().join("one-thread");
    let o = Command::new(env!("CARGO_BIN_EXE_losscape"))
        .args(["reproduce", "--preset", "smoke", "--models", "fcp", "--out", s(&one_thread)])
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    ok(o);
    assert_eq!(files::assert_same_bytes(&one_thread, &unmoved), compared);
    // and `analyze` of the study writes that report again, its configuration paragraph included
    let again = dir.path().join("again");
    ok(losscape(&["analyze", "--in", s(&unmoved), "--out", s(&again)]));
    assert!(files::assert_same_bytes(&unmoved.join("report"), &again) > 5);
    let report = text(&std::fs::read(again.join("index.html")).unwrap());
    assert!(report.contains("<h2>Configuration</h2><p>Preset <b>smoke</b>") && report.contains("a reduced scale"));
    // a surface cut short is refused, naming it; pairs missing from a sweep are reported with a warning
    let analyze = || losscape(&["analyze", "--in", s(&unmoved), "--out", s(&again)]);
    let csv = unmoved.join("fcp/surface-sgd/surface.csv");
    let whole = std::fs::read(&csv).unwrap();
    std::fs::write(&csv, &whole[..whole.len() / 2]).unwrap();
    let err = text(&analyze().stderr);
    assert!(err.contains(s(&csv)) && err.contains("cut short or changed"), "{err}");
    std::fs::write(&csv, &whole).unwrap();
    let sweep = unmoved.join("fcp/paths-train/paths.jsonl");
    let records = std::fs::read(&sweep).unwrap();
    std::fs::write(&sweep, b"").unwrap();
    let err = text(&ok(analyze()).stderr);
    assert!(err.contains("warning: ") && err.contains("pairs are missing"), "{err}");
    std::fs::write(&sweep, &records).unwrap();
    // a study trained by another build and finished by this one says so, once, and in its report
    let mixed = dir.path().join("mixed");
    ok(study(&mixed, "train"));
    let older = "losscape 0.0.9 (0123456789ab)";
    let this = files::pretend_written_by(&mixed, older);
    let o = ok(study(&mixed, "all"));
    assert_eq!(text(&o.stderr).matches("holds results of").count(), 1, "{}", text(&o.stderr));
    let report = text(&std::fs::read(mixed.join("report/index.html")).unwrap());
    assert!(report.contains(&format!("Written by {older}; {this}. Several builds")), "{report}");
    assert!(!text(&std::fs::read(unmoved.join("report/index.html")).unwrap()).contains("Several builds"));
}

/// Errors that name the file (or variable), the cause and the fix.
#[test]
fn mistaken_files_and_variables_are_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("w.npy");
    ok(losscape(&["init", "--model", "fcp", "--count", "2", "--out", s(&npy)]));
    // a .npy under a .safetensors name, and the other way round
    let misnamed = dir.path().join("w.safetensors");
    std::fs::copy(&npy, &misnamed).unwrap();
    let o = losscape(&["eval", "--model", "fcp", "--weights", s(&misnamed), "--limit", "10", "--backend", "cpu"]);
    let err = text(&o.stderr);
    assert!(o.status.code() == Some(1) && err.contains(s(&misnamed)) && err.contains("rename it to .npy"), "{err}");
    let st = dir.path().join("v.safetensors");
    ok(losscape(&["init", "--model", "fcp", "--count", "2", "--out", s(&st)]));
    let misnamed = dir.path().join("v.npy");
    std::fs::copy(&st, &misnamed).unwrap();
    let o = losscape(&["eval", "--model", "fcp", "--weights", s(&misnamed), "--limit", "10", "--backend", "cpu"]);
    assert!(text(&o.stderr).contains("rename it to .safetensors"), "{}", text(&o.stderr));
    // --out naming a directory where a file is written
    let o = losscape(&["init", "--model", "fcp", "--count", "1", "--out", s(dir.path())]);
    let err = text(&o.stderr);
    assert!(o.status.code() == Some(1) && err.contains("is a directory; give the name of a file"), "{err}");
    // a file where a directory is expected: named as such, with the fix
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (args, says) in [
        (vec!["reproduce", "--preset", "smoke", "--models", "fcp", "--out", s(&st)], "is a file, not a directory"),
        (vec!["analyze", "--in", s(&st), "--out", s(&dir.path().join("rep"))], "is a file, not a directory"),
        (
            vec!["merge", s(&empty), "--out", s(&dir.path().join("m.jsonl"))],
            "not a directory that `losscape paths` wrote",
        ),
    ] {
        let o = losscape(&args);
        let err = text(&o.stderr);
        assert!(o.status.code() == Some(1) && err.contains(says) && !err.contains("os error"), "{args:?}: {err}");
    }
    let args = train_args(&st.join("run"));
    let o = Command::new(env!("CARGO_BIN_EXE_losscape")).args(&args).output().unwrap();
    let err = text(&o.stderr);
    assert!(o.status.code() == Some(1) && err.contains("is a file, so it cannot hold the directory"), "{err}");
    // --log files that must not be appended to: refused naming the file and the fix, before anything
    // is trained or written, and the file left as it was
    let out = dir.path().join("run");
    let garbage = dir.path().join("notes.txt");
    std::fs::write(&garbage, "my notes\n").unwrap();
    let log_of_epochs = dir.path().join("sgd.log");
    std::fs::write(&log_of_epochs, "{\"epoch\":1}\n").unwrap();
    let under_a_file = st.join("log.jsonl");
    for (log, says) in [
        (st.clone(), "is not the --log file of a run that counts iterations"),
        (garbage.clone(), "is not the --log file of a run that counts iterations"),
        (log_of_epochs.clone(), "is not the --log file of a run that counts iterations"),
        (dir.path().to_path_buf(), "is a directory; --log takes a file"),
        (under_a_file, "the directory of the --log file"),
    ] {
        let before = std::fs::read(&log).ok();
        let mut args = train_args(&out);
        args.extend(["--log".to_string(), s(&log).to_string()]);
        let o = Command::new(env!("CARGO_BIN_EXE_losscape")).args(&args).output().unwrap();
        let err = text(&o.stderr);
        assert!(o.status.code() == Some(1) && err.contains(says), "{}: {err}", log.display());
        assert!(!out.exists(), "refused before the run directory is made");
        assert_eq!(std::fs::read(&log).ok(), before, "{} left as it was", log.display());
    }
    // a log inside the new --out directory: made with it
    let mut args = train_args(&out);
    args.extend(["--log".to_string(), s(&out.join("train.log")).to_string()]);
    ok(Command::new(env!("CARGO_BIN_EXE_losscape")).args(&args).output().unwrap());
    let logged = std::fs::read_to_string(out.join("train.log")).unwrap();
    assert!(logged.lines().count() >= 1 && logged.starts_with("{\"iteration\":1,"), "{logged}");
    std::fs::remove_dir_all(&out).unwrap();
    // a --log file that cannot be written to (a full disk): one warning naming it, and the run done
    if Path::new("/dev/full").exists() {
        let mut args = train_args(&out);
        args.extend(["--log".to_string(), "/dev/full".to_string()]);
        let o = Command::new(env!("CARGO_BIN_EXE_losscape")).args(&args).output().unwrap();
        let err = text(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert_eq!(err.matches("/dev/full: cannot write to the --log file").count(), 1, "{err}");
        assert!(out.join("config.json").exists() && out.join("curves").is_dir());
    }
    // plan --bench with a record that lacks a network of the preset: the file, the network, the command
    let bench = dir.path().join("bench.json");
    std::fs::write(&bench, r#"{"cases": [{"model": "fcp", "batch": 51, "gflops": 10.0}]}"#).unwrap();
    let o = losscape(&["plan", "--preset", "quick", "--profile", "h100", "--bench", s(&bench)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(s(&bench)) && err.contains("has no autoencoder") && err.contains("losscape bench"), "{err}");
    // a user's network among the cases is passed over; a record of another device than --profile's is
    // refused; --bench without a study to time is a usage error
    let cases = r#""cases": [{"model": "mlp-784-64-10-tanh", "batch": 51, "gflops": 9.0},
        {"model": "fcp", "batch": 51, "gflops": 10.0}, {"model": "autoencoder", "batch": 51, "gflops": 10.0}]"#;
    std::fs::write(&bench, format!("{{{cases}}}")).unwrap();
    let o = ok(losscape(&["plan", "--preset", "quick", "--profile", "h100", "--bench", s(&bench)]));
    assert!(text(&o.stdout).contains(&format!("(measured: {})", s(&bench))), "{}", text(&o.stdout));
    std::fs::write(&bench, format!("{{\"adapter\": {{\"name\": \"CPU (2 threads, avx2)\"}}, {cases}}}")).unwrap();
    let o = losscape(&["plan", "--preset", "quick", "--profile", "h100", "--bench", s(&bench)]);
    let err = text(&o.stderr);
    assert!(
        o.status.code() == Some(1) && err.contains("measured on CPU (2 threads, avx2), not on the NVIDIA"),
        "{err}"
    );
    // without a rate (the CPU backend, no --bench) the plan comes without times; a preset's batch
    // holds no more pairs than its sweeps; --model with --preset is a usage error
    let o = ok(losscape(&["plan", "--preset", "quick", "--backend", "cpu"]));
    assert!(text(&o.stdout).contains("whole study: ") && text(&o.stdout).contains("no time estimate: "));
    let o = ok(losscape(&["plan", "--preset", "smoke", "--profile", "h100"]));
    assert!(text(&o.stdout).contains("P = 4 pairs per batch, B = 20 (4 x 5 points)"), "{}", text(&o.stdout));
    assert_eq!(losscape(&["plan", "--preset", "quick", "--model", "lstm"]).status.code(), Some(2));
    let o = losscape(&["plan", "--profile", "h100", "--bench", s(&bench)]);
    assert!(o.status.code() == Some(2) && text(&o.stderr).contains("--preset"), "{}", text(&o.stderr));
    // WGPU_BACKEND=gl: the variable and the fix
    let o = Command::new(env!("CARGO_BIN_EXE_losscape"))
        .args(["eval", "--model", "fcp", "--weights", s(&st), "--limit", "10"])
        .env_remove("LOSSCAPE_BACKEND")
        .env("WGPU_BACKEND", "gl")
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert!(o.status.code() == Some(1) && err.contains("WGPU_BACKEND") && err.contains("OpenGL"), "{err}");
}

/// The standalone runs (`paths`, `surface`, `hessian`) record their set by its path from the work
/// directory: given the set by a relative path, an absolute path or a symlink, and the work directory by
/// a relative path or a symlink, they write the same bytes; a directory moved deeper between a killed run
/// and its resume writes what an unmoved one writes.
#[test]
fn standalone_runs_write_the_same_bytes_however_set_and_directory_are_named_or_moved() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("sets")).unwrap();
    let set = fcp_set(root, "sets/set.safetensors", "3");
    let link = root.join("link.safetensors");
    std::os::unix::fs::symlink(&set, &link).unwrap();
    let tail = ["--train-size", "60", "--quiet", "--backend", "cpu"];
    let commands: [(&str, Vec<&str>, &str); 3] = [
        ("paths", vec!["--pairs", "3", "--points", "5", "--fourier", "2", "--iterations", "3"], "paths.jsonl"),
        ("surface", vec!["--through", "0,1,2", "--range", "-1:2:4"], "rows.jsonl"),
        ("hessian", vec!["--steps", "3", "--probes", "2"], "vectors.jsonl"),
    ];
    for (command, options, records) in commands {
        let run = |set: &str, out: &str| {
            let args = [&["--model", "fcp", "--set", set, "--out", out][..], &options[..], &tail[..]].concat();
            let o = Command::new(env!("CARGO_BIN_EXE_losscape")).arg(command).args(&args).current_dir(root).output();
            ok(o.unwrap())
        };
        let name = |n: &str| format!("{command}-{n}");
        run("sets/set.safetensors", &name("relative"));
        run(s(&set), s(&root.join(name("absolute"))));
        // the work directory through a symlink (beside the others: the set's path from it is the same)
        std::fs::create_dir(root.join(name("real"))).unwrap();
        std::os::unix::fs::symlink(root.join(name("real")), root.join(name("alias"))).unwrap();
        run(s(&link), &name("alias"));
        let config = std::fs::read_to_string(root.join(name("relative")).join("config.json")).unwrap();
        assert!(config.contains("\"../sets/set.safetensors\""), "{command}: the set from the directory: {config}");
        same_outputs(&root.join(name("relative")), &root.join(name("absolute")));
        same_outputs(&root.join(name("relative")), &root.join(name("real")));
        // killed before its last record, moved one level deeper, resumed: as the run that stayed
        let moved = root.join(name("moved"));
        run(s(&set), s(&moved));
        let file = moved.join(records);
        let kept = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = kept.lines().collect();
        std::fs::write(&file, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
        let deeper = root.join("deeper/than/before");
        std::fs::create_dir_all(&deeper).unwrap();
        std::fs::rename(&moved, deeper.join(name("moved"))).unwrap();
        run(s(&link), s(&deeper.join(name("moved"))));
        assert_eq!(std::fs::read_to_string(deeper.join(name("moved")).join(records)).unwrap(), kept, "{command}");
        same_outputs(&root.join(name("relative")), &deeper.join(name("moved")));
    }
}

/// The fields of a standalone run's summaries that record the invocation (its wall-clock time, the work
/// it did itself) rather than its results: the only bytes in which two runs of one command, or a run and
/// its resume, differ. README.md and docs/io.md name each as exempt from the same-bytes promise.
const PER_INVOCATION: [(&str, &str); 4] = [
    ("surface.json", "run"),
    ("hessian.json", "seconds_this_run"),
    ("hessian.json", "batched_hvp_calls_this_run"),
    ("hessian.json", "vectors_per_call"),
];

#[test]
fn the_docs_name_every_field_exempt_from_the_same_bytes_promise() {
    for doc in ["README.md", "docs/io.md"] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap();
        for (file, key) in PER_INVOCATION {
            let named = text.contains(&format!("`{file}`")) && text.contains(&format!("`{key}`"));
            assert!(named, "{doc} does not name {file}'s {key} as exempt from the same bytes");
        }
        assert!(text.contains("`seconds`"), "{doc}: the wall-clock time in surface.json's run");
    }
}

/// `a` and `b` hold the same files with the same bytes, except for what a summary says of the run that
/// wrote it ([`PER_INVOCATION`]), which differs between runs.
fn same_outputs(a: &Path, b: &Path) {
    let (fa, fb) = (files::files(a), files::files(b));
    assert_eq!(fa, fb, "{} and {} hold different files", a.display(), b.display());
    for f in &fa {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap());
        let name = f.to_str().unwrap();
        if PER_INVOCATION.iter().any(|(file, _)| *file == name) {
            let this_run = |bytes: &[u8]| {
                let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                for (_, key) in PER_INVOCATION.iter().filter(|(file, _)| *file == name) {
                    v.as_object_mut().unwrap().remove(*key);
                }
                v
            };
            assert_eq!(this_run(&x), this_run(&y), "{name} of {} and {}", a.display(), b.display());
        } else {
            assert!(x == y, "{name} differs between {} and {}", a.display(), b.display());
        }
    }
}

/// The estimate in a refusal's message, in bytes.
fn estimate(err: &str) -> f64 {
    let rest = &err[err.find("an estimated ").expect(err) + "an estimated ".len()..];
    let mut words = rest.split_whitespace();
    let (number, unit) = (words.next().unwrap().parse::<f64>().unwrap(), words.next().unwrap());
    number * if unit == "GiB" { (1u64 << 30) as f64 } else { (1u64 << 20) as f64 }
}

/// A run whose estimated peak memory exceeds the budget is refused before it writes anything, naming the
/// option that sizes it, the estimate, the budget and the fix; the estimate grows with the path points.
#[test]
fn a_run_larger_than_its_memory_budget_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let set = fcp_set(dir.path(), "set.safetensors", "3");
    let (out, log) = (dir.path().join("out"), dir.path().join("log.jsonl"));
    let common = ["--model", "fcp", "--train-size", "100", "--backend", "cpu", "--quiet", "--out", s(&out)];
    let refused = |args: &[&str], env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_losscape"));
        c.args(args).args(common).env_remove("LOSSCAPE_MEMORY_LIMIT");
        if let Some(v) = env {
            c.env("LOSSCAPE_MEMORY_LIMIT", v);
        }
        let o = c.output().unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(!out.exists() && !log.exists(), "{args:?}: nothing written");
        err
    };
    let cases: [(Vec<&str>, &str); 4] = [
        (vec!["paths", "--set", s(&set), "--pairs", "1", "--points", "1000"], "--points 1000"),
        (vec!["surface", "--set", s(&set), "--through", "0,1", "--batch", "500"], "--batch 500"),
        (vec!["hessian", "--set", s(&set), "--steps", "40"], "--steps 40"),
        (vec!["train", "--optimizer", "sgd", "--runs", "40", "--test-size", "100", "--log", s(&log)], "--runs 40"),
    ];
    for (args, option) in cases {
        let err = refused(&[&args[..], &["--memory-limit", "1M"]].concat(), None);
        for part in [args[0], option, "needs an estimated", "more than the 1 MiB available (--memory-limit)"] {
            assert!(err.contains(part), "{}: {part}: {err}", args[0]);
        }
        assert!(err.contains("give --memory-limit BYTES (none skips this check)"), "{}: the fix: {err}", args[0]);
    }
    // the estimate grows with the points (about in proportion); the variable sets the budget too
    let points = |m: &str, env| refused(&["paths", "--set", s(&set), "--pairs", "1", "--points", m], Some(env));
    let (small, large) = (estimate(&points("1000", "1M")), estimate(&points("3000", "1M")));
    assert!(large > 2.0 * small && small > (100u64 << 20) as f64, "1000 points: {small} B, 3000 points: {large} B");
    let err = points("1000", "lots");
    assert!(err.contains("LOSSCAPE_MEMORY_LIMIT=lots") && err.contains("auto, or none"), "{err}");
    // a run within its budget says its estimate and runs
    let args =
        ["paths", "--set", s(&set), "--points", "5", "--pairs", "1", "--iterations", "1", "--memory-limit", "4G"];
    let not_quiet = &common[..common.len() - 3];
    let o = ok(Command::new(env!("CARGO_BIN_EXE_losscape"))
        .args(args)
        .args(not_quiet)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    assert!(text(&o.stderr).contains("paths: estimated peak memory"), "{}", text(&o.stderr));
}

/// Every writer of a work directory (`train`, `paths`, `surface`, `hessian`, `reproduce`) refuses one
/// another process holds, naming its PID, and writes nothing there.
#[test]
fn every_writer_refuses_a_directory_another_process_holds() {
    let dir = tempfile::tempdir().unwrap();
    let set = fcp_set(dir.path(), "set.safetensors", "3");
    let held = dir.path().join("held");
    let _lock = DirLock::acquire(&held, LOCK).unwrap();
    let fcp = ["--model", "fcp", "--backend", "cpu", "--quiet", "--out", s(&held)];
    let small = ["--set", s(&set), "--train-size", "20"];
    let writers: [Vec<&str>; 5] = [
        [
            &["train", "--optimizer", "sgd", "--runs", "1", "--epochs", "1", "--train-size", "20", "--batch", "10"][..],
            &["--test-size", "10"],
            &fcp,
        ]
        .concat(),
        [&["paths", "--pairs", "1", "--points", "3", "--iterations", "1"][..], &small, &fcp].concat(),
        [&["surface", "--through", "0,1", "--range", "0:1:3"][..], &small, &fcp].concat(),
        [&["hessian", "--steps", "2", "--probes", "1"][..], &small, &fcp].concat(),
        vec!["reproduce", "--preset", "smoke", "--models", "fcp", "--stage", "train", "--out", s(&held)],
    ];
    for args in writers {
        let o = losscape(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}: {err}", args[0]);
        assert!(err.contains(&format!("PID {}", std::process::id())) && err.contains("--wait"), "{}: {err}", args[0]);
        assert_eq!(files::files(&held), vec![std::path::PathBuf::from(LOCK)], "{}: nothing written", args[0]);
    }
}

/// Shards of one sweep whose set was given as two copies of one file (the same SHA-256 at two paths)
/// merge: sets are identified by content.
#[test]
fn merge_joins_shards_of_one_set_given_at_two_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (set, copy) = (fcp_set(dir.path(), "set.safetensors", "3"), dir.path().join("elsewhere/copy.safetensors"));
    std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
    std::fs::copy(&set, &copy).unwrap();
    let shard = |set: &Path, i: usize| {
        let out = dir.path().join(format!("s{i}"));
        let mut args = paths_args(set, &out);
        args.extend(["--shard".to_string(), format!("{i}/2")]);
        ok(Command::new(env!("CARGO_BIN_EXE_losscape")).args(&args).output().unwrap());
        out
    };
    let (s0, s1) = (shard(&set, 0), shard(&copy, 1));
    let merged = dir.path().join("merged.jsonl");
    let o = ok(losscape(&["merge", s(&s0), s(&s1), "--out", s(&merged)]));
    assert!(text(&o.stdout).contains("merged 3 of 3 pairs"), "{}", text(&o.stdout));
}

/// The median height the report's path table gives `label` (its fourth cell).
fn reported_median(html: &str, label: &str) -> f64 {
    let row = html.split(&format!("<tr><td>{label}</td>")).nth(1).unwrap_or_else(|| panic!("no row {label}"));
    let cells: Vec<&str> = row.split("</td>").take(3).map(|c| c.trim_start_matches("<td>")).collect();
    cells[2].parse().unwrap()
}

#[test]
fn analyze_ties_paths_to_sets_by_file_not_by_the_order_of_set_options() {
    use losscape::io::workdir::{paths_dir, set_file};
    use losscape::io::Optimizer;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let arch = losscape::model::Arch::Fcp;
    let (lbfgs, sgd) =
        (set_file(&work, arch, Optimizer::Lbfgs, "train"), set_file(&work, arch, Optimizer::Sgd, "train"));
    let other = work.join("fcp").join("adam").join("fcp-adam-train.safetensors");
    for (f, seed) in [(&lbfgs, "0"), (&sgd, "7"), (&other, "20")] {
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        ok(losscape(&["init", "--model", "fcp", "--count", "2", "--seed", seed, "--out", s(f)]));
    }
    // SGD first, then L-BFGS, then a set the report does not compare: not reproduce's order
    let sweep = paths_dir(&work, arch, "train");
    let mut args = vec!["paths", "--model", "fcp", "--pairs", "1", "--train-size", "40", "--points", "5"];
    args.extend(["--fourier", "2", "--iterations", "2", "--out", s(&sweep), "--quiet", "--backend", "cpu"]);
    for f in [&sgd, &lbfgs, &other] {
        args.extend(["--set", s(f)]);
    }
    ok(losscape(&args));
    let report = dir.path().join("report");
    let o = ok(losscape(&["analyze", "--in", s(&work), "--out", s(&report)]));
    let err = text(&o.stderr);
    assert!(err.contains("fcp-adam-train.safetensors") && err.contains("left out"), "{err}");
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    let records = std::fs::read_to_string(sweep.join("paths.jsonl")).unwrap();
    let height = |name: &str| -> f64 {
        let line = records.lines().find(|l| l.contains(name)).unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["height"].as_f64().unwrap()
    };
    for (label, name) in [("BFGS-train", "fcp-lbfgs-train"), ("SGD-train", "fcp-sgd-train")] {
        let (got, want) = (reported_median(&html, label), height(name));
        assert!((got - want).abs() <= 1e-3 * want, "{label}: reported {got}, its paths' height {want}");
    }
    assert_ne!(format!("{:.3e}", height("fcp-lbfgs-train")), format!("{:.3e}", height("fcp-sgd-train")));
}

#[test]
fn an_edited_or_repeated_record_is_refused_by_the_resume_the_merge_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let (sweep, results) = small_study(&work);
    let whole = std::fs::read_to_string(&results).unwrap();
    let lines: Vec<&str> = whole.lines().collect();
    let set =
        losscape::io::workdir::set_file(&work, losscape::model::Arch::Fcp, losscape::io::Optimizer::Lbfgs, "train");
    let resume = small_sweep(&set, &sweep);
    let merged = dir.path().join("merged.jsonl");
    let report = dir.path().join("report");
    let damages = [
        // resealed: the checks after the checksum's (an edit that leaves the checksum is refused for it)
        (lines::resealed(&lines[1].replacen("\"index\":1", "\"index\":7", 1)), "beyond the sweep's 3 pairs"),
        (lines::resealed(&lines[1].replacen("\"index\":1", "\"index\":2", 1)), "but the sweep draws"),
        (lines[0].to_string(), "pair 0 is written twice"),
        (lines[1].replacen("\"index\":1", "\"index\":2", 1), "its checksum does not match"),
        // an edited number that every other check passes: a straight-line loss
        (lines[1].replacen("\"straight_losses\":[", "\"straight_losses\":[1", 1), "its checksum does not match"),
    ];
    for (line2, problem) in damages {
        let damaged = format!("{}\n{line2}\n{}\n", lines[0], lines[2]);
        std::fs::write(&results, &damaged).unwrap();
        for args in [
            resume.clone(),
            vec!["merge", s(&sweep), "--out", s(&merged)],
            vec!["analyze", "--in", s(&work), "--out", s(&report)],
        ] {
            let o = losscape(&args);
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{}: {err}", args[0]);
            assert!(err.contains(s(&results)) && err.contains("line 2") && err.contains(problem), "{}: {err}", args[0]);
            assert_eq!(std::fs::read_to_string(&results).unwrap(), damaged, "{}: the file stays as it was", args[0]);
        }
    }
    // deleting the line, as the message says, lets the sweep find the pair again, to the same bytes
    std::fs::write(&results, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    ok(losscape(&resume));
    assert_eq!(std::fs::read_to_string(&results).unwrap(), whole);
}

#[test]
fn merged_records_name_their_set_from_the_merged_file_wherever_the_shards_lay() {
    let dir = tempfile::tempdir().unwrap();
    let set = fcp_set(dir.path(), "set.safetensors", "3");
    let run = |out: &Path, shard: Option<&str>| {
        let mut args = paths_args(&set, out);
        if let Some(i) = shard {
            args.extend(["--shard".to_string(), format!("{i}/2")]);
        }
        ok(Command::new(env!("CARGO_BIN_EXE_losscape")).args(&args).output().unwrap());
    };
    let (near, deep, whole) = (dir.path().join("m/a"), dir.path().join("m/x/y/b"), dir.path().join("whole"));
    run(&near, Some("0"));
    run(&deep, Some("1"));
    run(&whole, None);
    let merged = dir.path().join("m/merged.jsonl");
    ok(losscape(&["merge", s(&near), s(&deep), "--out", s(&merged)]));
    let text = std::fs::read_to_string(&merged).unwrap();
    assert_eq!(text.matches("\"set_file\":\"../set.safetensors\"").count(), 3, "{text}");
    // the unsharded run and a shard agree once both name the set from the merged file
    let again = dir.path().join("m/again.jsonl");
    ok(losscape(&["merge", s(&whole), s(&deep), "--out", s(&again)]));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);
}

#[test]
fn a_cut_swapped_or_missing_saved_path_of_a_finished_pair_is_named_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let set = fcp_set(dir.path(), "set.safetensors", "3");
    let out = dir.path().join("p");
    let mut args = paths_args(&set, &out);
    args.push("--save-paths".into());
    let sweep = || Command::new(env!("CARGO_BIN_EXE_losscape")).args(&args).output().unwrap();
    ok(sweep());
    let results = out.join("paths.jsonl");
    let whole = std::fs::read_to_string(&results).unwrap();
    let coef = losscape::path::sweep::coefficients_path(&out, 1);
    let bytes = std::fs::read(&coef).unwrap();
    // cut, another pair's whole file copied over it, missing
    let other = std::fs::read(losscape::path::sweep::coefficients_path(&out, 2)).unwrap();
    for damage in [Some(&bytes[..300]), Some(&other[..]), None] {
        match damage {
            Some(b) => std::fs::write(&coef, b).unwrap(),
            None => std::fs::remove_file(&coef).unwrap(),
        }
        let o = sweep();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(s(&coef)) && err.contains("finished pair 1") && err.contains("delete"), "{err}");
        if damage.is_some_and(|b| b.len() == other.len()) {
            assert!(err.contains("another pair's file"), "{err}");
        }
        assert_eq!(std::fs::read_to_string(&results).unwrap(), whole, "the records stay");
    }
    // deleting the pair's line, as the message says, finds it again: the same file and coefficients
    let others: String = whole.lines().filter(|l| !l.starts_with("{\"index\":1,")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&results, others).unwrap();
    ok(sweep());
    assert_eq!(std::fs::read_to_string(&results).unwrap(), whole);
    assert_eq!(std::fs::read(&coef).unwrap(), bytes);
}

#[test]
fn an_output_that_is_an_input_of_the_command_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let set = fcp_set(dir.path(), "set.safetensors", "3");
    let shard = dir.path().join("s0");
    ok(Command::new(env!("CARGO_BIN_EXE_losscape")).args(paths_args(&set, &shard)).output().unwrap());
    let before = (std::fs::read(&set).unwrap(), std::fs::read(shard.join("paths.jsonl")).unwrap());
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(shard.join("paths.jsonl"), &link).unwrap();
    let (results, config) = (shard.join("paths.jsonl"), shard.join("config.json"));
    for args in [
        vec!["merge", s(&shard), "--out", s(&results)],
        vec!["merge", s(&shard), "--out", s(&config)],
        vec!["merge", s(&shard), "--out", s(&link)],
        vec!["merge", s(&shard), "--out", s(&set)],
        vec!["stack", s(&set), "--model", "fcp", "--out", s(&set)],
        vec!["align", "--model", "fcp", "--a", s(&set), "--a-index", "0", "--b", s(&set), "--out", s(&set)],
    ] {
        let o = losscape(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("--out"), "{args:?}: {err}");
    }
    assert_eq!((std::fs::read(&set).unwrap(), std::fs::read(&results).unwrap()), before, "nothing was overwritten");
}

#[test]
fn a_record_naming_another_set_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let (sweep, results) = small_study(&work);
    let whole = std::fs::read_to_string(&results).unwrap();
    let first = whole.lines().next().unwrap();
    let changed =
        first.replacen("\"set_file\":\"../lbfgs/", "\"set_file\":\"../sgd/", 1).replacen("lbfgs-train", "sgd-train", 1);
    let edited = whole.replacen(first, &lines::resealed(&changed), 1);
    assert_ne!(edited, whole);
    std::fs::write(&results, &edited).unwrap();
    let o = losscape(&["merge", s(&sweep), "--out", s(&dir.path().join("m.jsonl"))]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(s(&results)) && err.contains("line 1") && err.contains("names the set"), "{err}");
}

#[test]
fn a_closed_standard_error_neither_panics_nor_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let mut child = Command::new(env!("CARGO_BIN_EXE_losscape"))
        .args(["train", "--model", "fcp", "--optimizer", "sgd", "--runs", "2", "--epochs", "2", "--train-size", "100"])
        .args(["--batch", "50", "--test-size", "50", "--backend", "cpu", "--out", s(&out)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader goes away before the first message
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(out.join("fcp-sgd-train.safetensors").is_file() && out.join("fcp-sgd-summary.json").is_file());
}

#[test]
fn a_set_changed_since_its_sweep_is_named_by_analyze() {
    use losscape::io::workdir::{paths_dir, set_file};
    use losscape::io::Optimizer;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let arch = losscape::model::Arch::Fcp;
    let sgd = set_file(&work, arch, Optimizer::Sgd, "train");
    std::fs::create_dir_all(sgd.parent().unwrap()).unwrap();
    ok(losscape(&["init", "--model", "fcp", "--count", "3", "--out", s(&sgd)]));
    let sweep = paths_dir(&work, arch, "train");
    ok(losscape(&small_sweep(&sgd, &sweep)));
    let report = dir.path().join("report");
    ok(losscape(&["analyze", "--in", s(&work), "--out", s(&report)]));
    // the set trained again (other vectors under the same name): its old paths would be reported as its
    ok(losscape(&["init", "--model", "fcp", "--count", "3", "--seed", "9", "--out", s(&sgd)]));
    let o = losscape(&["analyze", "--in", s(&work), "--out", s(&report)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(s(&sweep.join("config.json"))) && err.contains("run the sweep again"), "{err}");
}

/// A killed training run, re-run, repeats the steps since its last checkpoint; its `--log` file gets
/// each step once, with the losses of an uninterrupted run.
#[test]
fn a_resumed_run_does_not_log_its_repeated_steps_again() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &str, log: &str| -> Vec<String> {
        let opts = ["--epochs", "300", "--train-size", "1000", "--test-size", "100", "--checkpoint-every", "4"];
        let base = ["train", "--model", "fcp", "--optimizer", "sgd", "--runs", "2", "--quiet", "--backend", "cpu"];
        let paths = ["--out", s(&dir.path().join(out)), "--log", s(&dir.path().join(log))].map(String::from);
        base.iter().chain(&opts).map(|a| a.to_string()).chain(paths).collect()
    };
    let steps = |log: &str| -> Vec<(u64, String)> {
        let text = std::fs::read_to_string(dir.path().join(log)).unwrap_or_default();
        let line = |l: &str| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some((v["epoch"].as_u64()?, format!("{} {} {}", v["train"], v["test"], v["stopped"])))
        };
        text.lines().filter_map(line).collect()
    };
    ok(Command::new(env!("CARGO_BIN_EXE_losscape")).args(args("ref", "ref.jsonl")).output().unwrap());
    let reference = steps("ref.jsonl");
    assert_eq!(reference.iter().map(|s| s.0).collect::<Vec<_>>(), (1..=300).collect::<Vec<_>>());
    // killed between two checkpoints (every 4 epochs; a checkpoint is written before its epoch's log
    // line), so that the resumed run repeats 1 to 3 logged epochs; killed again from the start when
    // the kill lands on a checkpoint
    let mut before = 0;
    for _ in 0..20 {
        let _ = std::fs::remove_dir_all(dir.path().join("run"));
        let _ = std::fs::remove_file(dir.path().join("run.jsonl"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_losscape")).args(args("run", "run.jsonl")).spawn().unwrap();
        let start = Instant::now();
        while steps("run.jsonl").len() < 6 {
            assert!(start.elapsed() < Duration::from_secs(120), "no epoch logged in time");
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        before = steps("run.jsonl").len();
        if before % 4 != 0 {
            break;
        }
    }
    assert!(before % 4 != 0 && before < 290, "no kill landed between two checkpoints ({before} epochs logged)");
    ok(Command::new(env!("CARGO_BIN_EXE_losscape")).args(args("run", "run.jsonl")).output().unwrap());
    assert_eq!(steps("run.jsonl"), reference, "each epoch once, with an uninterrupted run's losses");
}

/// Weights whose loss overflows (a vector scaled by 1e18) are named with what helps: `eval` names every
/// such vector and gives it no accuracy; `paths` says an endpoint overflows (no --lr helps); `train`
/// refuses starts that all overflow before its directory records the run; `hessian` warns.
#[test]
fn overflowing_weights_are_named_with_what_helps() {
    use losscape::io::{read_weights, write_weights, WeightStack};
    use losscape::model::Arch;
    let dir = tempfile::tempdir().unwrap();
    let set = fcp_set(dir.path(), "w.safetensors", "3");
    let stack = read_weights(&set, Arch::Fcp).unwrap();
    let n = Arch::Fcp.n_params();
    let scaled = |vectors: &[usize], name: &str| {
        let mut flat: Vec<f32> = (0..3).flat_map(|i| stack.vector(i).to_vec()).collect();
        for &v in vectors {
            flat[v * n..(v + 1) * n].iter_mut().for_each(|w| *w *= 1e18);
        }
        let path = dir.path().join(name);
        write_weights(&path, &WeightStack::new(Arch::Fcp, flat)).unwrap();
        path
    };
    let (mixed, huge) = (scaled(&[1], "mixed.safetensors"), scaled(&[0, 1, 2], "huge.safetensors"));
    let run = |args: &[&str]| {
        let quiet: &[&str] = if args[0] == "eval" { &[] } else { &["--quiet"] };
        losscape(&[args, &["--backend", "cpu"], quiet].concat())
    };

    let o = ok(run(&["eval", "--model", "fcp", "--weights", s(&mixed), "--limit", "50"]));
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("accuracy") && lines[2].contains("accuracy"), "{out}");
    assert!(lines[1].starts_with("vector 1: loss NaN") && !lines[1].contains("accuracy"), "{out}");
    assert!(err.contains(s(&mixed)) && err.contains("vector 1 has a non-finite loss"), "{err}");
    let err = text(&run(&["eval", "--model", "fcp", "--weights", s(&huge), "--limit", "50"]).stderr);
    assert!(err.contains("vectors 0, 1, 2 have a non-finite loss"), "{err}");

    let between = dir.path().join("between");
    let o =
        run(&["paths", "--model", "fcp", "--set", s(&huge), "--pairs", "1", "--iterations", "2", "--out", s(&between)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("endpoint is NaN") && !err.contains("--lr"), "{err}");

    let out = dir.path().join("trained");
    let o = run(&["train", "--model", "fcp", "--optimizer", "lbfgs", "--init", s(&huge), "--runs", "3"]
        .into_iter()
        .chain(["--iterations", "2", "--train-size", "100", "--test-size", "50", "--out", s(&out)])
        .collect::<Vec<_>>());
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--init file's vectors 0, 1, 2 is not finite") && !err.contains("--lr"), "{err}");
    assert!(!out.join("config.json").exists(), "the refused run is not recorded");

    let hessian = dir.path().join("hessian");
    let o = ok(run(&["hessian", "--model", "fcp", "--set", s(&mixed), "--train-size", "50"]
        .into_iter()
        .chain(["--steps", "3", "--probes", "2", "--out", s(&hessian)])
        .collect::<Vec<_>>()));
    let err = text(&o.stderr);
    assert_eq!(err.matches("warning: vector").count(), 1, "{err}");
    assert!(err.contains("warning: vector 1: the loss's gradients around it are not finite"), "{err}");
}
