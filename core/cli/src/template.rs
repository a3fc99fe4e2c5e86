//! `tasker template validate|register|list`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use tasker_engine::{Engine, EngineConfig};
use tasker_templates::{Problem, TaskTemplate};

use crate::db::DatabaseArgs;

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Validate template files; directories are searched for *.yaml / *.yml recursively.
    ///
    /// Prints `ok  <file>  <namespace>/<name>@<version>` for each good file. At the first bad
    /// file, prints every problem of that file to stderr and exits 1.
    Validate {
        /// Template files or directories.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Register every template of a directory (recursively) in the database.
    Register {
        /// Directory of template files.
        dir: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
        /// Apply this environment's overrides (`environments.<ENV>`) before registering.
        #[arg(long, env = "TASKER_ENV")]
        env: Option<String>,
    },
    /// List the registered templates (GET /v1/templates).
    List {
        #[command(flatten)]
        server: crate::task::ServerUrl,
    },
}

pub async fn run(cmd: TemplateCommand) -> Result<ExitCode> {
    match cmd {
        TemplateCommand::Validate { paths } => validate(&paths),
        TemplateCommand::Register { dir, db, env } => register(&dir, db, env).await,
        TemplateCommand::List { server } => list(server).await,
    }
}

fn validate(paths: &[PathBuf]) -> Result<ExitCode> {
    let mut files = Vec::new();
    for path in paths {
        files.extend(template_files(path)?);
    }
    // The identity of each good file so far: two files defining the same template is an
    // error of the second one, as when a directory is registered.
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let problems = match TaskTemplate::load_file(&file) {
            Ok(template) => {
                let identity = template.identity();
                match seen.get(&identity) {
                    None => {
                        outln!("ok  {}  {identity}", file.display());
                        seen.insert(identity, file);
                        continue;
                    }
                    Some(first) => vec![Problem {
                        file: Some(file.clone()),
                        step: None,
                        field: "name".to_owned(),
                        message: format!("template {identity} is already defined in {}", first.display()),
                    }],
                }
            }
            Err(e) => e.into_problems(),
        };
        print_problems(&file, &problems);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// One problem per line on stderr, each naming its file.
fn print_problems(file: &Path, problems: &[Problem]) {
    for p in problems {
        if p.file.is_some() {
            eprintln!("{p}");
        } else {
            eprintln!("{}: {p}", file.display());
        }
    }
}

/// `path` itself when it is a file (whatever its extension: it was named), else the
/// `*.yaml` / `*.yml` files under it, sorted.
fn template_files(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    walk(path, &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!(
            "{}: no *.yaml or *.yml template files in this directory",
            path.display()
        );
    }
    Ok(files)
}

/// Collects template files below `dir`, not following symbolic links to directories.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, files)?;
        } else if is_template_file(&path) && path.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

fn is_template_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

async fn register(dir: &Path, db: DatabaseArgs, env: Option<String>) -> Result<ExitCode> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    let templates = match tasker_templates::load_dir(dir) {
        Ok(t) => t,
        Err(e) => {
            let problems = e.into_problems();
            for p in &problems {
                eprintln!("{p}");
            }
            bail!("{} problem(s) in {}; nothing registered", problems.len(), dir.display());
        }
    };
    if templates.is_empty() {
        bail!("{}: no *.yaml or *.yml template files in this directory", dir.display());
    }
    let env = env.filter(|e| !e.trim().is_empty());
    let pool = db.connect_migrated().await?;
    let engine = Engine::new(pool, EngineConfig::new(env.as_deref(), None)?);
    for (file, template) in &templates {
        let template = match &env {
            Some(env) => template.for_environment(env),
            None => template.clone(),
        };
        engine
            .register_template(&template)
            .await
            .with_context(|| format!("registering {} ({})", template.identity(), file.display()))?;
        outln!("registered {}", template.identity());
    }
    engine.pool().close().await;
    Ok(ExitCode::SUCCESS)
}

async fn list(server: crate::task::ServerUrl) -> Result<ExitCode> {
    let answer = server.client()?.list_templates().await?;
    let list: tasker_orchestration::TemplateList =
        serde_json::from_value(answer).context("the server's template list is not as documented")?;
    let rows: Vec<Vec<String>> = list
        .templates
        .iter()
        .map(|t| {
            vec![
                t.namespace.clone(),
                t.name.clone(),
                t.version.clone(),
                t.steps.len().to_string(),
            ]
        })
        .collect();
    out!(
        "{}",
        crate::table::render(&["NAMESPACE", "NAME", "VERSION", "STEPS"], &rows)
    );
    if rows.is_empty() {
        eprintln!("no templates registered");
    }
    Ok(ExitCode::SUCCESS)
}
