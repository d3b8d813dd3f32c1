//! The crate's top-level modules form layers, and imports only point down: a module may use its
//! own top-level module or a lower layer, never a higher one. This test reads every
//! `src/**/*.rs` file, strips comments and string literals, finds every `crate::<top>` path
//! (`use` lines, grouped `use crate::{a::x, b}` forms, inline paths) and every `super::` path
//! that leaves a top-level module, and lists each import that points up [`ORDER`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The layers, bottom to top; modules on one line are one layer and may use each other.
/// `lib.rs` (re-exports) is exempt; `bin` is the command line (`src/bin/`).
const ORDER: &[&[&str]] = &[
    &["error", "tensor", "text"],
    &["kernels"],
    &["device"],
    &["graph"],
    &["runtime"],
    &["metrics"],
    &["constraints"],
    &["quantizers"],
    &["layers"],
    &["models"],
    &["io"],
    &["qat"],
    &["train"],
    &["bench"],
    // Re-exports of every layer below, for programs (an inline module of lib.rs).
    &["prelude"],
    &["bin"],
];

/// The layer of a top-level module, if declared.
fn rank(module: &str) -> Option<usize> {
    ORDER.iter().position(|layer| layer.contains(&module))
}

/// `text` with comments (line, doc, nested block) and string, byte-string, raw-string and char
/// literals replaced by spaces; line breaks are kept, so positions keep their line numbers.
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied().unwrap_or('\0');
        if at(i) == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
                out.push(' ');
            }
        } else if at(i) == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if (at(i) == 'r' || (at(i) == 'b' && at(i + 1) == 'r')) && (i == 0 || !ident(c[i - 1])) && {
            let mut k = i + if at(i) == 'b' { 2 } else { 1 };
            while at(k) == '#' {
                k += 1;
            }
            at(k) == '"'
        } {
            // A raw string: r"..", r#".."#, br"..".
            let mut k = i + if at(i) == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(k) == '#' {
                hashes += 1;
                k += 1;
            }
            k += 1; // the opening quote
            while k < c.len() && !(c[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#')) {
                k += 1;
            }
            let end = (k + 1 + hashes).min(c.len());
            for &ch in &c[i..end] {
                blank(&mut out, ch);
            }
            i = end;
        } else if at(i) == '"' || (at(i) == '\'' && (at(i + 1) == '\\' || (at(i + 2) == '\'' && at(i + 1) != '\''))) {
            // A string, or a char literal ('x', '\n', '\u{..}'; a lifetime ('a) stays): blanked up
            // to the closing quote, escapes included.
            let quote = c[i];
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != quote {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Path, // `::`
    Punct(char),
}

/// Identifiers, `::` and single punctuation characters, each with its line (1-based).
fn tokens(stripped: &str) -> Vec<(Token, usize)> {
    let c: Vec<char> = stripped.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Token::Ident(c[start..i].iter().collect()), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Token::Path, line));
            i += 2;
        } else {
            out.push((Token::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// The first segments named right after a path prefix ending at `k`: `x` in `x::..`, or the
/// first segment of each item of a group `{a::x, b, ..}` (`self` and `*` left out).
fn first_segments(t: &[(Token, usize)], k: usize) -> Vec<String> {
    match t.get(k) {
        Some((Token::Ident(name), _)) => vec![name.clone()],
        Some((Token::Punct('{'), _)) => {
            let (mut depth, mut expect, mut names) = (0, true, Vec::new());
            for (tok, _) in &t[k..] {
                match tok {
                    Token::Punct('{') => {
                        depth += 1;
                        expect = depth == 1;
                    }
                    Token::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Token::Punct(',') if depth == 1 => expect = true,
                    Token::Ident(name) if depth == 1 && expect => {
                        if name != "self" {
                            names.push(name.clone());
                        }
                        expect = false;
                    }
                    _ if depth == 1 => expect = false,
                    _ => {}
                }
            }
            names
        }
        _ => Vec::new(),
    }
}

/// The top-level module of a file under `src/` (`None` for `lib.rs`), and its module path.
fn module_of(path: &str) -> Option<(String, Vec<String>)> {
    let rel = path.strip_prefix("src/").unwrap_or(path);
    if rel == "lib.rs" {
        return None;
    }
    let mut parts: Vec<String> = rel.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if parts[0] == "bin" {
        return Some(("bin".to_string(), parts));
    }
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    Some((parts[0].clone(), parts))
}

/// Names `lib.rs` re-exports (`pub use device::{Device, ..}`), each with the module it comes from.
fn reexports(lib: &str) -> HashMap<String, String> {
    let t = tokens(&strip(lib));
    let mut map = HashMap::new();
    let mut i = 0;
    while i + 2 < t.len() {
        if t[i].0 == Token::Ident("pub".into()) && t[i + 1].0 == Token::Ident("use".into()) {
            let Token::Ident(source) = &t[i + 2].0 else {
                i += 1;
                continue;
            };
            let mut k = i + 2;
            while k < t.len() && t[k].0 != Token::Punct(';') {
                let leaf = matches!(t.get(k + 1).map(|x| &x.0), Some(Token::Punct(',' | '}' | ';')));
                if let (Token::Ident(name), true) = (&t[k].0, leaf) {
                    map.insert(name.clone(), source.clone());
                }
                k += 1;
            }
            i = k;
        }
        i += 1;
    }
    map
}

/// An import that points up the declared order (or names an undeclared module).
#[derive(Debug, PartialEq)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    to: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match rank(&self.to) {
            None => write!(f, "{}:{}: `{}` imports `{}`, which is not a declared layer", self.file, self.line, self.from, self.to),
            Some(_) => write!(f, "{}:{}: `{}` imports `{}`, a higher layer", self.file, self.line, self.from, self.to),
        }
    }
}

/// Every import in `files` (path under `src/`, text) that points up [`ORDER`]; `reexported`
/// maps names `lib.rs` re-exports to their module. A file in an undeclared top-level module is
/// reported too (as importing itself).
fn check(files: &[(String, String)], reexported: &HashMap<String, String>) -> Vec<Violation> {
    let mut found = Vec::new();
    for (path, text) in files {
        let Some((top, module_path)) = module_of(path) else { continue };
        let Some(own) = rank(&top) else {
            found.push(Violation { file: path.clone(), line: 1, from: top.clone(), to: top.clone() });
            continue;
        };
        if top == "bin" {
            // The command line is the top layer; its `crate::` is its own crate.
            continue;
        }
        let t = tokens(&strip(text));
        // Inline modules (`mod tests { .. }`) open at a brace depth.
        let (mut depth, mut inline): (usize, Vec<(String, usize)>) = (0, Vec::new());
        let mut pending: Option<String> = None;
        for i in 0..t.len() {
            let (tok, line) = &t[i];
            let after_path = i > 0 && t[i - 1].0 == Token::Path;
            let targets: Vec<String> = match tok {
                Token::Punct('{') => {
                    depth += 1;
                    if let Some(name) = pending.take() {
                        inline.push((name, depth));
                    }
                    continue;
                }
                Token::Punct('}') => {
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                    depth = depth.saturating_sub(1);
                    continue;
                }
                Token::Ident(k) if k == "mod" => {
                    if let (Some((Token::Ident(name), _)), Some((Token::Punct('{'), _))) = (t.get(i + 1), t.get(i + 2)) {
                        pending = Some(name.clone());
                    }
                    continue;
                }
                Token::Ident(k) if k == "crate" && !after_path && t.get(i + 1).is_some_and(|x| x.0 == Token::Path) => {
                    first_segments(&t, i + 2)
                }
                Token::Ident(k) if k == "super" && !after_path && t.get(i + 1).is_some_and(|x| x.0 == Token::Path) => {
                    let mut here: Vec<String> = module_path.clone();
                    here.extend(inline.iter().map(|(n, _)| n.clone()));
                    let mut k = i;
                    while t.get(k).is_some_and(|x| x.0 == Token::Ident("super".into())) && t.get(k + 1).is_some_and(|x| x.0 == Token::Path)
                    {
                        here.pop();
                        k += 2;
                    }
                    if here.is_empty() {
                        first_segments(&t, k)
                    } else {
                        Vec::new()
                    }
                }
                _ => continue,
            };
            for name in targets {
                let to = if rank(&name).is_some() {
                    name
                } else if let Some(m) = reexported.get(&name) {
                    if rank(m).is_none() {
                        continue; // an external crate lib.rs re-exports (wgpu)
                    }
                    m.clone()
                } else {
                    name
                };
                if rank(&to).is_none_or(|r| r > own) {
                    found.push(Violation { file: path.clone(), line: *line, from: top.clone(), to });
                }
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn source_tree() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    rust_files(&root.join("src"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Every upward import in `src/`, as report lines.
fn upward_imports() -> Vec<(Violation, String)> {
    let files = source_tree();
    let lib = &files.iter().find(|(p, _)| p == "src/lib.rs").expect("src/lib.rs").1;
    let found = check(&files, &reexports(lib));
    let report: Vec<String> = found.iter().map(ToString::to_string).collect();
    eprintln!("{} upward import(s):\n{}", report.len(), report.join("\n"));
    found.into_iter().zip(report).collect()
}

/// No import points up the layers anywhere in the crate.
#[test]
fn imports_point_down_the_layers() {
    let all: Vec<String> = upward_imports().into_iter().map(|(_, r)| r).collect();
    assert!(all.is_empty(), "imports pointing up the layers:\n{}", all.join("\n"));
}

#[test]
fn every_top_level_module_is_a_declared_layer() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let t = tokens(&strip(&lib));
    let modules: Vec<&str> = t
        .windows(2)
        .filter(|w| w[0].0 == Token::Ident("mod".into()))
        .filter_map(|w| match &w[1].0 {
            Token::Ident(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    assert!(modules.contains(&"layers"), "{modules:?}");
    for m in modules {
        assert!(rank(m).is_some(), "module `{m}` is not in the declared layer order");
    }
}

/// The checker catches the imports that formed the cycles before the layers were untangled,
/// and nothing in comments or strings.
#[test]
fn the_checker_flags_the_old_cycles() {
    let lib = "pub mod error;\npub use error::{Error, Result};\npub use device::{Device, GpuContext, GpuOptions, Tensor};\npub use wgpu;\n";
    let file = |path: &str, text: &str| (path.to_string(), text.to_string());
    let files = vec![
        // graph <-> kernels: the planner in graph recorded through kernels, which read graph's ops.
        file("src/kernels/bitpack.rs", "use crate::graph::op::words_for;\nuse crate::graph::PackMode;\n"),
        file(
            "src/layers/mod.rs",
            "pub struct BuildContext {\n    pub quantize: Option<(String, std::sync::Arc<dyn crate::qat::QuantizeConfig>)>,\n}\n",
        ),
        file(
            "src/models/mod.rs",
            "fn f() {\n        self.keep_call(layer.name(), || crate::io::keras::export::layer_config(layer), &[x], y);\n}\n",
        ),
        file("src/models/other.rs", "pub qat: Option<std::sync::Arc<crate::qat::QuantizePlan>>,\n"),
        file("src/quantizers/mod.rs", "use crate::train::metrics::{scoped_metrics, FlipRatio, QUANTIZER_METRICS};\n"),
        file("src/io/packed.rs", "fn g() { let w = &crate::train::checkpoint::model_weights(weights.clone(), &built.weights()); }\n"),
        file("src/layers/dense.rs", "use crate::{graph::Graph, qat::Quantizer};\nuse super::super::models::Network;\n"),
        file("src/layers/core.rs", "use crate::Device;\n"), // re-exported from a lower layer
        file("src/metrics/mod.rs", "mod inner { use super::super::layers::Layer; }\n"),
        // Not imports: comments, strings, chars and lifetimes; lower layers; own module.
        file(
            "src/layers/quiet.rs",
            "// use crate::train::x;\n/// [`crate::models::Model`]\n/* use crate::qat::Q; /* nested crate::io */ */\n\
             const S: &str = \"crate::train::fit\";\nconst R: &str = r#\"crate::qat \"quoted\"\"#;\nconst C: char = '\"';\n\
             fn f<'a>(x: &'a str) -> &'a str { x }\nuse crate::{error::Result, graph::{Graph, ValueId}, layers::Weight};\n\
             use crate::Result as R2;\nuse crate::wgpu;\nmod tests { use super::*; }\n",
        ),
        file("src/train/fit.rs", "use crate::models::Model;\nuse crate::io::write_atomically;\n"),
        file("src/bin/bitgrad.rs", "use bitgrad::train::Trainer;\n"),
        file("src/lib.rs", "use crate::bench::x;\n"),
    ];
    let found = check(&files, &reexports(lib));
    let seen: Vec<(&str, usize, &str, &str)> = found.iter().map(|v| (v.file.as_str(), v.line, v.from.as_str(), v.to.as_str())).collect();
    assert_eq!(
        seen,
        vec![
            ("src/kernels/bitpack.rs", 1, "kernels", "graph"),
            ("src/kernels/bitpack.rs", 2, "kernels", "graph"),
            ("src/layers/mod.rs", 2, "layers", "qat"),
            ("src/models/mod.rs", 2, "models", "io"),
            ("src/models/other.rs", 1, "models", "qat"),
            ("src/quantizers/mod.rs", 1, "quantizers", "train"),
            ("src/io/packed.rs", 1, "io", "train"),
            ("src/layers/dense.rs", 1, "layers", "qat"),
            ("src/layers/dense.rs", 2, "layers", "models"),
            ("src/metrics/mod.rs", 1, "metrics", "layers"),
        ],
        "{}",
        found.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    );
    let report = found[0].to_string();
    assert_eq!(report, "src/kernels/bitpack.rs:1: `kernels` imports `graph`, a higher layer");
    // An undeclared module is reported, whether imported or holding files.
    // The old planner's `use crate::backend::{cpu, gpu};` is such an import today.
    let stray = check(&[file("src/graph/plan.rs", "use crate::backend::{cpu, gpu};\n"), file("src/extra.rs", "")], &HashMap::new());
    assert_eq!(stray.len(), 2, "{stray:?}");
    assert!(stray[0].to_string().contains("not a declared layer"), "{}", stray[0]);
}
