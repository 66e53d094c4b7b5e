//! The page templates: built-in `templates/*.tera` embedded in the binary, overridden by the
//! user's files of the same name in `templates_dir` (as prompts are, and as zola's themes
//! are). One template per page kind and `macros.tera` shared by them. Templates get views
//! (`view.rs`) whose strings are already escaped, so autoescaping is off. Every template is
//! parsed when loaded: a broken one is reported, naming its file, before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The knowledge base's first page.
pub const INDEX: &str = "index.md.tera";
/// The book's table of contents.
pub const SUMMARY: &str = "SUMMARY.md.tera";
/// One page per pattern.
pub const PATTERN: &str = "pattern.md.tera";
/// One page per source.
pub const SOURCE: &str = "source.md.tera";
/// mdBook's settings.
pub const BOOK: &str = "book.toml.tera";

/// Embedded defaults: (file name, contents).
pub const DEFAULT_TEMPLATES: &[(&str, &str)] = &[
    ("macros.tera", include_str!("../../templates/macros.tera")),
    (INDEX, include_str!("../../templates/index.md.tera")),
    (SUMMARY, include_str!("../../templates/SUMMARY.md.tera")),
    (PATTERN, include_str!("../../templates/pattern.md.tera")),
    (SOURCE, include_str!("../../templates/source.md.tera")),
    (BOOK, include_str!("../../templates/book.toml.tera")),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("page template {file} is broken: {message}")]
    Broken { file: String, message: String },
    #[error("page template {file} cannot render {page}: {message}")]
    Render {
        file: String,
        page: String,
        message: String,
    },
}

/// The page templates, parsed.
pub struct Templates {
    tera: tera::Tera,
    /// Per template name, the file it came from (for errors).
    files: BTreeMap<String, String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("files", &self.files)
            .finish()
    }
}

impl Templates {
    /// The built-in templates alone.
    pub fn builtin() -> Templates {
        Templates::load(None).expect("the built-in page templates parse (kb::tests)")
    }

    /// The built-in templates, overridden and extended by `dir/*.tera` when that folder
    /// exists.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut texts: BTreeMap<String, (String, String)> = DEFAULT_TEMPLATES
            .iter()
            .map(|(n, t)| {
                (
                    n.to_string(),
                    (format!("(built-in) templates/{n}"), t.to_string()),
                )
            })
            .collect();
        for (name, path, text) in user_files(dir)? {
            texts.insert(name, (path, text));
        }
        let files: BTreeMap<String, String> = texts
            .iter()
            .map(|(n, (file, _))| (n.clone(), file.clone()))
            .collect();
        // Each alone first, so that a syntax error names its file.
        for (name, (file, text)) in &texts {
            tera::Template::new(name, None, text).map_err(|e| TemplateError::Broken {
                file: file.clone(),
                message: error_chain(&e),
            })?;
        }
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![]);
        // Then together: imports and `extends` name other templates.
        tera.add_raw_templates(texts.iter().map(|(n, (_, t))| (n.as_str(), t.as_str())))
            .map_err(|e| {
                let message = error_chain(&e);
                // The template the message names first (tera quotes names `so` or 'so').
                let file = files
                    .iter()
                    .filter_map(|(n, f)| {
                        let at = [format!("`{n}`"), format!("'{n}'")]
                            .iter()
                            .filter_map(|q| message.find(q.as_str()))
                            .min()?;
                        Some((at, f))
                    })
                    .min()
                    .map(|(_, f)| f.clone())
                    .unwrap_or_else(|| {
                        dir.map_or_else(|| "templates/".into(), |d| d.display().to_string())
                    });
                TemplateError::Broken { file, message }
            })?;
        Ok(Templates { tera, files })
    }

    /// Renders the page template `name` with `view` as its context; `page` names the page in
    /// errors.
    pub fn render(
        &self,
        name: &str,
        page: &str,
        view: &impl Serialize,
    ) -> Result<String, TemplateError> {
        let error = |e: &dyn std::error::Error| TemplateError::Render {
            file: self
                .files
                .get(name)
                .cloned()
                .unwrap_or_else(|| name.to_string()),
            page: page.to_string(),
            message: error_chain(e),
        };
        let ctx = tera::Context::from_serialize(view).map_err(|e| error(&e))?;
        self.tera.render(name, &ctx).map_err(|e| error(&e))
    }
}

/// Writes the built-in templates into `dir/templates`, leaving files that exist alone.
/// Returns the files written.
pub fn write_defaults(dir: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TemplateError::Io { path, source }
    };
    let d = dir.join("templates");
    std::fs::create_dir_all(&d).map_err(io(&d))?;
    let mut written = Vec::new();
    for (name, text) in DEFAULT_TEMPLATES {
        let p = d.join(name);
        if !p.exists() {
            std::fs::write(&p, text).map_err(io(&p))?;
            written.push(p);
        }
    }
    Ok(written)
}

/// The user's `*.tera` files of `dir`: (name, path, text), by name.
fn user_files(dir: Option<&Path>) -> Result<Vec<(String, String, String)>, TemplateError> {
    let Some(dir) = dir.filter(|d| d.is_dir()) else {
        return Ok(Vec::new());
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TemplateError::Io { path, source }
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("tera") {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        out.push((name.to_string(), path.display().to_string(), text));
    }
    out.sort();
    Ok(out)
}

/// Tera puts the useful part (line and column, the missing variable) in the error's sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
