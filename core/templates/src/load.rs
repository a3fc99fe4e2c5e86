//! Loading templates from files and directories.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Problem, TemplateError};
use crate::model::TaskTemplate;

/// Reads and parses one template file.
pub(crate) fn load_file(path: &Path) -> Result<TaskTemplate, TemplateError> {
    let source = fs::read_to_string(path).map_err(|source| TemplateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    TaskTemplate::parse(&source, Some(path))
}

/// Loads every `*.yaml` / `*.yml` file under `dir` (recursively, sorted by
/// path). Returns all templates, or an error listing the problems of every
/// bad file. Two files defining the same `namespace/name@version` is a
/// problem of the second one. Only an unreadable `dir` itself is an
/// [`TemplateError::Io`]; everything else is [`TemplateError::Invalid`].
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, TaskTemplate)>, TemplateError> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let entries = fs::read_dir(dir).map_err(|source| TemplateError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    collect_files(dir, entries, &mut files, &mut problems);
    files.sort();

    let mut templates: Vec<(PathBuf, TaskTemplate)> = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        match load_file(&file) {
            Ok(template) => {
                let identity = template.identity();
                if let Some(first) = seen.get(&identity) {
                    problems.push(Problem {
                        file: Some(file.clone()),
                        step: None,
                        field: "name".to_owned(),
                        message: format!("template {identity} is already defined in {}", first.display()),
                    });
                } else {
                    seen.insert(identity, file.clone());
                    templates.push((file, template));
                }
            }
            Err(e) => problems.extend(e.into_problems()),
        }
    }
    if problems.is_empty() {
        Ok(templates)
    } else {
        // Files were visited in path order; keep each file's own order.
        problems.sort_by(|a, b| a.file.cmp(&b.file));
        Err(TemplateError::Invalid { problems })
    }
}

fn is_template_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Walks `dir` without following symbolic links to directories (no loops).
fn collect_files(dir: &Path, entries: fs::ReadDir, files: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let unreadable = |path: &Path, e: std::io::Error| Problem {
        file: Some(path.to_path_buf()),
        step: None,
        field: String::new(),
        message: format!("cannot read: {e}"),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(unreadable(dir, e));
                continue;
            }
        };
        let path = entry.path();
        let is_real_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_real_dir {
            match fs::read_dir(&path) {
                Ok(sub) => collect_files(&path, sub, files, problems),
                Err(e) => problems.push(unreadable(&path, e)),
            }
        } else if is_template_file(&path) && fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
}
