//! `meshgate analyze PATH...`: loads YAML files or folders, runs the analyzer and
//! prints one line per message in istioctl's shape, then a summary; exits 79 (as
//! istioctl does) when it found errors, or warnings with `--fail-on warning`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};

use crate::config::{analyze, load_paths, Diagnostic, Severity};

/// The exit status when issues were found (istioctl's `AnalyzerFoundIssues`).
pub const EXIT_ISSUES: u8 = 79;

#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// YAML files, or folders whose *.yaml / *.yml files are read (not recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The lowest severity that makes the command fail.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Also print informational messages, such as kinds that were skipped.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// What one analysis found: loader and analyzer messages, in file order.
#[derive(Debug, Clone)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
    /// How many files were read.
    pub files: usize,
}

impl Report {
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }
}

/// Loads `paths` and analyzes whatever loaded (a document that failed to load is
/// reported by the loader and left out of the analysis).
pub fn analyze_paths(paths: &[PathBuf]) -> Report {
    let loaded = load_paths(paths);
    let mut diagnostics = loaded.diagnostics;
    diagnostics.extend(analyze(&loaded.config));
    // Files in the order they were read, then line and column; messages without a
    // place (unreadable paths) first.
    let position = |d: &Diagnostic| {
        d.origin.as_ref().map(|o| {
            let file = loaded.files.iter().position(|f| f == o.file.as_ref());
            (file.unwrap_or(usize::MAX), o.line, o.column)
        })
    };
    diagnostics.sort_by(|a, b| position(a).cmp(&position(b)).then(a.code.cmp(b.code)));
    Report {
        diagnostics,
        files: loaded.files.len(),
    }
}

pub fn run_analyze(args: &AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let report = analyze_paths(&args.paths);
    let mut stdout = std::io::stdout().lock();
    let code = write_report(&report, args, &mut stdout)?;
    if args.output == Format::Json {
        eprintln!("{}", summary(&report, failed(&report, args.fail_on)));
    }
    Ok(ExitCode::from(code))
}

/// Prints the report as asked and returns the exit status.
pub fn write_report(
    report: &Report,
    args: &AnalyzeArgs,
    out: &mut dyn Write,
) -> std::io::Result<u8> {
    let shown: Vec<&Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| args.verbose || d.severity != Severity::Info)
        .collect();
    let failed = failed(report, args.fail_on);
    match args.output {
        Format::Text => {
            for d in &shown {
                writeln!(out, "{}", text_line(d))?;
            }
            writeln!(out, "{}", summary(report, failed))?;
        }
        Format::Json => {
            let list: Vec<Value> = shown.iter().map(|d| json_message(d)).collect();
            let text = serde_json::to_string_pretty(&list).map_err(std::io::Error::other)?;
            writeln!(out, "{text}")?;
        }
    }
    Ok(if failed { EXIT_ISSUES } else { 0 })
}

fn failed(report: &Report, fail_on: FailOn) -> bool {
    report.count(Severity::Error) > 0
        || (fail_on == FailOn::Warning && report.count(Severity::Warning) > 0)
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "Error",
        Severity::Warning => "Warning",
        Severity::Info => "Info",
    }
}

/// `Warning [MG0107] (VirtualService default/temperature-api seed.yaml:32) spec.hosts[0]: ...`
pub fn text_line(d: &Diagnostic) -> String {
    let mut line = format!("{} [{}]", level(d.severity), d.code);
    let place = d
        .origin
        .as_ref()
        .map(|o| format!("{}:{}", o.file.display(), o.line));
    let within: Vec<String> = [d.resource.clone(), place].into_iter().flatten().collect();
    if !within.is_empty() {
        line += &format!(" ({})", within.join(" "));
    }
    if let Some(f) = d.field.as_deref().filter(|f| !f.is_empty()) {
        line += &format!(" {f}:");
    }
    line += " ";
    line += &d.message;
    line
}

fn json_message(d: &Diagnostic) -> Value {
    let mut m = Map::new();
    m.insert("code".into(), json!(d.code));
    m.insert("level".into(), json!(level(d.severity)));
    if let Some(r) = &d.resource {
        m.insert("resource".into(), json!(r));
    }
    if let Some(o) = &d.origin {
        m.insert("file".into(), json!(o.file.display().to_string()));
        m.insert("line".into(), json!(o.line));
        m.insert("column".into(), json!(o.column));
    }
    if let Some(f) = &d.field {
        m.insert("field".into(), json!(f));
    }
    m.insert("message".into(), json!(d.message));
    Value::Object(m)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `✔ No validation issues found when analyzing 3 files.` / `Error: 2 errors, 1 warning in 3 files.`
fn summary(report: &Report, failed: bool) -> String {
    let (errors, warnings) = (
        report.count(Severity::Error),
        report.count(Severity::Warning),
    );
    let files = plural(report.files, "file");
    if errors + warnings == 0 {
        format!("✔ No validation issues found when analyzing {files}.")
    } else if failed {
        format!(
            "Error: {}, {} in {files}.",
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    } else {
        format!("✔ No errors, {} in {files}.", plural(warnings, "warning"))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::config::Origin;

    #[test]
    fn lines_take_istioctl_shape_and_omit_absent_parts() {
        let at = Origin {
            file: Arc::new(Path::new("vs.yaml").to_path_buf()),
            line: 14,
            column: 9,
        };
        let full = Diagnostic::new("MG0104", Severity::Error, "subset missing")
            .at(at.clone())
            .resource("VirtualService default/reviews")
            .field("spec.http[0].route[0].destination.subset");
        assert_eq!(
            text_line(&full),
            "Error [MG0104] (VirtualService default/reviews vs.yaml:14) spec.http[0].route[0].destination.subset: subset missing"
        );
        let bare = Diagnostic::new("MG0006", Severity::Error, "x.yaml: no such file or folder");
        assert_eq!(
            text_line(&bare),
            "Error [MG0006] x.yaml: no such file or folder"
        );
        let placed = Diagnostic::new("MG0004", Severity::Info, "skipped").at(at);
        assert_eq!(text_line(&placed), "Info [MG0004] (vs.yaml:14) skipped");
    }

    #[test]
    fn summary_counts_and_pluralizes() {
        let mut r = Report {
            diagnostics: vec![],
            files: 1,
        };
        assert_eq!(
            summary(&r, false),
            "✔ No validation issues found when analyzing 1 file."
        );
        r.diagnostics
            .push(Diagnostic::new("MG0107", Severity::Warning, "w"));
        r.files = 2;
        assert_eq!(summary(&r, false), "✔ No errors, 1 warning in 2 files.");
        assert_eq!(summary(&r, true), "Error: 0 errors, 1 warning in 2 files.");
        assert!(!failed(&r, FailOn::Error));
        assert!(failed(&r, FailOn::Warning));
    }
}
