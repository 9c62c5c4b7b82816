//! The layering of `src/` (docs/architecture.md): every `crate::<module>` path, `use crate::{a, b}`
//! group and `super::` that climbs out of a module is an edge between top-level modules. Every edge goes
//! down the table below, so the module graph has no circle; the device backends are reached through
//! `backend`; inside `model` no two files import each other, even through others. Comments do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom: a module uses only modules of the rows below its own.
const LAYERS: &[&[&str]] = &[
    &["main"],
    &["cli"],
    // study
    &["planner"],
    &["pipeline"],
    &["report", "bench"],
    &["plot"],
    // algorithms
    &["train", "path", "probe"],
    &["optim"],
    // persistence, networks, data
    &["io"],
    &["model"],
    &["data"],
    // compute
    &["backend"],
    &["cpu", "gpu"],
    &["ops", "analysis"],
];

/// The device backends, and the modules that may name them: `backend`, and the CLI (`info` lists the
/// adapters and the CPU's instruction sets); everything else goes through `backend`.
const DEVICE_BACKENDS: [&str; 2] = ["cpu", "gpu"];
const DEVICE_USERS: [&str; 2] = ["backend", "cli"];

/// `(file, module path of the file)` for every `src/**/*.rs`.
fn sources(dir: &Path, out: &mut Vec<(String, Vec<String>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().to_string_lossy().replace('\\', "/");
            let mut module: Vec<String> =
                rel.trim_start_matches("src/").trim_end_matches(".rs").split('/').map(String::from).collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            out.push((rel, module));
        }
    }
}

/// The text without comments, and string and char literals emptied (`""`, `' '`).
fn strip_comments(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let (mut out, mut i) = (String::new(), 0);
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            i += 2;
            while i + 1 < c.len() && !(c[i] == '*' && c[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' && (next == Some('\\') || c.get(i + 2) == Some(&'\'')) {
            // a char literal ('"', '\''); otherwise a lifetime
            i += 2;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Identifiers, `::` and single punctuation characters.
fn tokens(src: &str) -> Vec<String> {
    let c: Vec<char> = src.chars().collect();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < c.len() {
        let start = i;
        while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
            i += 1;
        }
        if i > start {
            out.push(c[start..i].iter().collect());
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else {
            if !c[i].is_whitespace() {
                out.push(c[i].to_string());
            }
            i += 1;
        }
    }
    out
}

/// Every absolute module path a file names: `crate::a::b`, `crate::{a, b::c}`, `super::x`, and in
/// `main.rs` `losscape::a`; each as far as its first segment below the root it starts from.
fn paths(file_module: &[String], src: &str) -> Vec<Vec<String>> {
    let t = tokens(&strip_comments(src));
    let (mut out, mut inline, mut depth) = (Vec::new(), Vec::<(String, usize)>::new(), 0usize);
    let mut i = 0;
    while i < t.len() {
        match t[i].as_str() {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|m| m.1 == depth) {
                    inline.pop();
                }
            }
            "mod" if t.get(i + 2).is_some_and(|b| b == "{") => inline.push((t[i + 1].clone(), depth)),
            _ => {}
        }
        let after_colons = i > 0 && t[i - 1] == "::";
        let root = match t[i].as_str() {
            "crate" | "losscape" if !after_colons && t.get(i + 1).is_some_and(|s| s == "::") => Some(Vec::new()),
            "super" if !after_colons && t.get(i + 1).is_some_and(|s| s == "::") => {
                let mut here: Vec<String> = file_module.to_vec();
                here.extend(inline.iter().map(|m| m.0.clone()));
                while t.get(i) == Some(&"super".to_string()) && t.get(i + 1).is_some_and(|s| s == "::") {
                    here.pop();
                    i += 2;
                }
                i -= 2;
                Some(here)
            }
            _ => None,
        };
        if let Some(root) = root {
            i += 2;
            // `a::b::{c, d}` or `{a, b::c}`: the segments up to the group, then each item's first one
            let ident = |s: &String| s.chars().all(|c| c.is_alphanumeric() || c == '_');
            let mut prefix = root;
            while t.get(i).is_some_and(ident) {
                prefix.push(t[i].clone());
                if t.get(i + 1).is_some_and(|s| s == "::") && t.get(i + 2).is_some_and(ident) {
                    i += 2;
                } else {
                    break;
                }
            }
            let group = if t.get(i).is_some_and(|s| s == "{") {
                Some(i + 1)
            } else if t.get(i + 1).is_some_and(|s| s == "::") && t.get(i + 2).is_some_and(|s| s == "{") {
                Some(i + 3)
            } else {
                None
            };
            if let Some(start) = group {
                i = start;
                let (mut level, mut first) = (1, true);
                while i < t.len() && level > 0 {
                    match t[i].as_str() {
                        "{" => level += 1,
                        "}" => level -= 1,
                        "," if level == 1 => first = true,
                        s if first && level == 1 && s != "self" && ident(&t[i]) => {
                            let mut p = prefix.clone();
                            p.push(s.to_string());
                            out.push(p);
                            first = false;
                        }
                        _ => first = false,
                    }
                    i += 1;
                }
                i -= 1;
            }
            if !prefix.is_empty() {
                out.push(prefix);
            }
        }
        i += 1;
    }
    out
}

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is not in LAYERS (tests/layers.rs)"))
}

/// A circle in `edges`, as the nodes along it, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut c = stack[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if !done.insert(n.to_string()) {
            return None;
        }
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

/// `(file, from, to)` for every edge between two different top-level modules, and the same between
/// the files of `model` (names re-exported by `model/mod.rs` resolved to the file that defines them).
type Edge = (String, String, String);

fn edges() -> (Vec<Edge>, Vec<Edge>) {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    files.sort();
    let read = |f: &str| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap();
    let model_files: BTreeSet<String> =
        files.iter().filter(|f| f.1.len() == 2 && f.1[0] == "model").map(|f| f.1[1].clone()).collect();
    // `pub use file::{A, B}` in model/mod.rs: which file each re-exported name comes from
    let mut exported = BTreeMap::new();
    for p in paths(&["model".into(), "x".into()], &read("src/model/mod.rs").replace("pub use ", "pub use super::")) {
        if p.len() == 3 {
            exported.insert(p[2].clone(), p[1].clone());
        }
    }
    let (mut modules, mut model) = (Vec::new(), Vec::new());
    for (file, module) in &files {
        let from = module.first().cloned().unwrap_or_else(|| "main".into());
        for p in paths(module, &read(file)) {
            let Some(to) = p.first() else { continue };
            if *to != from {
                modules.push((file.clone(), from.clone(), to.clone()));
            } else if from == "model" && module.len() == 2 && p.len() >= 2 {
                let target = if model_files.contains(&p[1]) { Some(&p[1]) } else { exported.get(&p[1]) };
                if let Some(target) = target.filter(|t| **t != module[1]) {
                    model.push((file.clone(), module[1].clone(), target.clone()));
                }
            }
        }
    }
    (modules, model)
}

fn graph(edges: &[Edge]) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, from, to) in edges {
        g.entry(from.clone()).or_default().insert(to.clone());
    }
    g
}

fn explain(circle: &[String], edges: &[Edge]) -> String {
    let hops = circle.windows(2).map(|w| {
        let files: BTreeSet<&str> = edges.iter().filter(|e| e.1 == w[0] && e.2 == w[1]).map(|e| e.0.as_str()).collect();
        format!("  {} -> {} in {}", w[0], w[1], files.into_iter().collect::<Vec<_>>().join(", "))
    });
    hops.collect::<Vec<_>>().join("\n")
}

#[test]
fn every_edge_goes_down_the_layers() {
    let (modules, _) = edges();
    let mut wrong = BTreeSet::new();
    for (file, from, to) in &modules {
        if layer(to) <= layer(from) {
            wrong.insert(format!("  {file}: {from} -> {to} (not in a lower row of LAYERS)"));
        }
        if DEVICE_BACKENDS.contains(&to.as_str()) && !DEVICE_USERS.contains(&from.as_str()) {
            wrong.insert(format!("  {file}: {from} -> {to} (device backends are reached through backend)"));
        }
    }
    assert!(
        wrong.is_empty(),
        "edges that break the layering of src/ (tests/layers.rs, docs/architecture.md):\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn no_circle_between_modules() {
    let (modules, _) = edges();
    if let Some(c) = circle(&graph(&modules)) {
        panic!("an import circle between modules:\n{}", explain(&c, &modules));
    }
}

#[test]
fn no_circle_between_the_files_of_model() {
    let (_, model) = edges();
    if let Some(c) = circle(&graph(&model)) {
        panic!("an import circle between the files of src/model:\n{}", explain(&c, &model));
    }
}
