//! Agent roles as files: a role spec from `agents/*.toml`, its tera prompt from
//! `prompts/*.tera`, its output schema and the grammar built from it. Built-in roles are
//! embedded in the binary and overridden by the user's files of the same name, so a user adds
//! or changes a role without recompiling. This module renders prompts; it does not run them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod context;

use crate::llm::grammar;
use crate::llm::{Message, Sampling};

/// Embedded defaults: (file name, contents).
pub const DEFAULT_AGENTS: &[(&str, &str)] = &[
    (
        "extractor.toml",
        include_str!("../../agents/extractor.toml"),
    ),
    (
        "validator.toml",
        include_str!("../../agents/validator.toml"),
    ),
    ("writer.toml", include_str!("../../agents/writer.toml")),
    (
        "synthesizer.toml",
        include_str!("../../agents/synthesizer.toml"),
    ),
];

pub const DEFAULT_PROMPTS: &[(&str, &str)] = &[
    ("system.tera", include_str!("../../prompts/system.tera")),
    ("chunk.tera", include_str!("../../prompts/chunk.tera")),
    (
        "extractor.tera",
        include_str!("../../prompts/extractor.tera"),
    ),
    (
        "validator.tera",
        include_str!("../../prompts/validator.tera"),
    ),
    ("writer.tera", include_str!("../../prompts/writer.tera")),
    (
        "synthesizer.tera",
        include_str!("../../prompts/synthesizer.tera"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("role file {path} is invalid: {message}")]
    Spec { path: String, message: String },
    #[error("prompt template {name} is broken: {message}")]
    Template { name: String, message: String },
    #[error("role {role}: cannot render prompt {template}: {message}")]
    Render {
        role: String,
        template: String,
        message: String,
    },
    #[error("no role named {0:?} (see agents/*.toml)")]
    UnknownRole(String),
}

/// What a role reads: one job per chunk, per chunk's findings, per pattern, or once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    Chunk,
    Findings,
    Pattern,
    Kb,
}

impl InputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Chunk => "chunk",
            InputKind::Findings => "findings",
            InputKind::Pattern => "pattern",
            InputKind::Kb => "kb",
        }
    }

    /// The kind a job's `input_kind` column names ([`InputKind::as_str`]).
    pub fn from_name(name: &str) -> Option<InputKind> {
        [
            InputKind::Chunk,
            InputKind::Findings,
            InputKind::Pattern,
            InputKind::Kb,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// What quarry does with a role's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// A list of findings to validate.
    Findings,
    /// A verdict on each finding.
    Verdicts,
    /// The prose of a pattern page.
    Page,
    /// The overview of the knowledge base.
    Overview,
    /// Free-form notes shown on the source page (custom roles).
    Notes,
}

/// A role as written in `agents/NAME.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The queue stage its jobs belong to (defaults to the name).
    #[serde(default)]
    pub stage: String,
    pub input: InputKind,
    #[serde(default = "default_output")]
    pub output: OutputKind,
    pub prompt: String,
    #[serde(default = "default_system")]
    pub system: String,
    #[serde(default = "default_model")]
    pub model: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default = "default_attempts")]
    pub max_attempts: i64,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    #[serde(default)]
    pub temperature: f32,
    #[serde(default = "default_top_p")]
    pub top_p: f32,
    #[serde(default)]
    pub seed: u32,
    /// JSON Schema (as JSON text) of the reply.
    pub schema: String,
    /// Reply fields (paths like `findings.evidence`) that must quote the input word for word:
    /// the grammar only offers the input's own sentences there, so a small model cannot
    /// invent evidence.
    #[serde(default)]
    pub quote_fields: Vec<String>,
    /// Reply fields that must be a code line copied from the input (or empty).
    #[serde(default)]
    pub code_fields: Vec<String>,
    /// Reply fields that must be one of the input's terms (`text::terms::terms`: its headings,
    /// emphasised and introduced terms, API names, the traits its code implements), when it
    /// has any. Prompts can list them as `chunk.terms`.
    #[serde(default)]
    pub term_fields: Vec<String>,
    /// For an extractor with `term_fields`: a chunk without terms is not sent to the model
    /// at all (it yields no findings) instead of leaving the names free.
    #[serde(default)]
    pub terms_required: bool,
    /// For a validator (`output = "verdicts"`): whether a "reject" removes the finding (true)
    /// or is only recorded beside it (false).
    #[serde(default = "yes")]
    pub veto: bool,
    /// For an extractor (`output = "findings"`): when the checks reject every name of a
    /// reply, the model hears the reasons and answers again, this many times.
    #[serde(default)]
    pub feedback_rounds: u32,
    /// For a writer (`input = "pattern"`): how many of the chunks of other files that the
    /// planner found near the pattern and that name it (`[search] related`) its prompt shows.
    /// 0: none.
    #[serde(default)]
    pub related: usize,
    /// Set on false to switch a built-in role off.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_output() -> OutputKind {
    OutputKind::Notes
}
fn default_system() -> String {
    "system.tera".into()
}
fn default_model() -> String {
    "default".into()
}
fn default_attempts() -> i64 {
    3
}
fn default_max_tokens() -> u32 {
    256
}
fn default_top_p() -> f32 {
    0.95
}
fn yes() -> bool {
    true
}

/// A loaded role: spec, parsed schema and its grammar.
#[derive(Clone, Debug)]
pub struct Role {
    pub spec: RoleSpec,
    pub schema: serde_json::Value,
    pub grammar: String,
    pub source: String,
    /// For per-chunk roles: the task alone (the prompt rendered around an empty chunk), to
    /// recognise replies that echo the instructions.
    pub task: String,
}

impl Role {
    /// The grammar for one input: quote, code and term fields limited to the input's own
    /// sentences, code lines and `terms` (see [`Role::constrained`]).
    pub fn grammar_for(&self, input: &str, terms: &[String]) -> Result<String, AgentError> {
        self.constrained(input, terms).map(|(_, grammar)| grammar)
    }

    /// The schema and grammar for one input: quote, code and term fields limited to the
    /// input's own sentences, code lines and `terms`. A field is offered only the values its
    /// own schema accepts (a term shorter than its `minLength`, a code line longer than its
    /// `maxLength` is not), so the grammar never admits a reply the schema rejects; a field
    /// that accepts none of them keeps its schema, as when the input has none.
    pub fn constrained(
        &self,
        input: &str,
        terms: &[String],
    ) -> Result<(serde_json::Value, String), AgentError> {
        if self.spec.quote_fields.is_empty()
            && self.spec.code_fields.is_empty()
            && (self.spec.term_fields.is_empty() || terms.is_empty())
        {
            return Ok((self.schema.clone(), self.grammar.clone()));
        }
        let code = crate::text::quotes::code_lines(input);
        let mut sentences = crate::text::quotes::sentences(input);
        if sentences.is_empty() {
            // A chunk of only code: its lines are what can be quoted.
            sentences = code.clone();
        }
        let mut code_or_none = code;
        code_or_none.push(String::new());
        let lists: [(&[String], &[String]); 3] = [
            (&self.spec.quote_fields, &sentences),
            (&self.spec.term_fields, terms),
            (&self.spec.code_fields, &code_or_none),
        ];
        let mut schema = self.schema.clone();
        for (fields, options) in lists {
            for field in fields {
                let Some(own) = property(&self.schema, field) else {
                    continue;
                };
                let allowed = grammar::admissible(&self.schema, own, options);
                if allowed.is_empty() {
                    continue; // nothing to choose from: the field keeps its schema, the checks judge it
                }
                if let Some(prop) = property_mut(&mut schema, field) {
                    *prop = serde_json::json!({ "type": "string", "enum": allowed });
                }
            }
        }
        let grammar = grammar::schema_to_gbnf(&schema).map_err(|e| AgentError::Spec {
            path: self.source.clone(),
            message: format!("schema with quotes: {e}"),
        })?;
        Ok((schema, grammar))
    }

    /// The terms of an input that can name something in this role's reply: those at least
    /// one of its term fields accepts (all of them for a role without term fields). What the
    /// prompt lists and whether a `terms_required` role is asked at all follow the grammar.
    pub fn usable_terms(&self, terms: Vec<String>) -> Vec<String> {
        let fields: Vec<&serde_json::Value> = self
            .spec
            .term_fields
            .iter()
            .filter_map(|f| property(&self.schema, f))
            .collect();
        if fields.is_empty() {
            return terms;
        }
        terms
            .into_iter()
            .filter(|t| {
                fields.iter().any(|field| {
                    !grammar::admissible(&self.schema, field, std::slice::from_ref(t)).is_empty()
                })
            })
            .collect()
    }

    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.spec.temperature,
            top_p: self.spec.top_p,
            seed: self.spec.seed,
            max_tokens: self.spec.max_tokens,
        }
    }
}

/// All roles and their prompts.
pub struct Agents {
    roles: BTreeMap<String, Role>,
    tera: tera::Tera,
}

impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agents")
            .field("roles", &self.roles.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The role a file switches on or off, when that is all the file says (`name` and `enabled`).
fn switch_of(text: &str) -> Option<(String, bool)> {
    let table = text.parse::<toml::Table>().ok()?;
    let only_a_switch = table.keys().all(|k| k == "name" || k == "enabled");
    let on = table.get("enabled")?.as_bool()?;
    let name = table.get("name")?.as_str()?;
    only_a_switch.then(|| (name.to_string(), on))
}

#[cfg(test)]
impl Agents {
    /// Every built-in role, those switched off by default (the validator, the writer)
    /// switched on: for tests of what each role's schema and grammar admit.
    pub fn all_built_in() -> Agents {
        Agents::built_in_with(None)
    }

    /// The built-in roles with the writer (off by default) switched on: for tests of what
    /// reaches a page through it.
    pub fn with_writer() -> Agents {
        Agents::built_in_with(Some("writer"))
    }

    /// The built-in roles, those off by default switched on: `only` that one, or all.
    fn built_in_with(only: Option<&str>) -> Agents {
        let dir = tempfile::tempdir().expect("temp dir");
        for (file, text) in DEFAULT_AGENTS {
            let table: toml::Table = text.parse().expect("built-in spec");
            let name = table["name"].as_str().expect("name");
            let off = table.get("enabled").and_then(|v| v.as_bool()) == Some(false);
            if off && only.is_none_or(|o| o == name) {
                let on = format!("name = {name:?}\nenabled = true\n");
                std::fs::write(dir.path().join(format!("on-{file}")), on).expect("write");
            }
        }
        Agents::load(Some(dir.path()), None).expect("built-in roles load")
    }
}

impl Agents {
    /// The built-in roles, overridden and extended by `agents_dir/*.toml` and
    /// `prompts_dir/*.tera` when those folders exist. Every template is parsed now, so a
    /// broken one is reported before any job runs.
    pub fn load(
        agents_dir: Option<&Path>,
        prompts_dir: Option<&Path>,
    ) -> Result<Agents, AgentError> {
        let mut files: BTreeMap<String, (String, String)> = DEFAULT_AGENTS
            .iter()
            .map(|(n, c)| {
                (
                    n.to_string(),
                    (format!("(built-in) agents/{n}"), c.to_string()),
                )
            })
            .collect();
        for (name, path, text) in read_dir_files(agents_dir, "toml")? {
            // A switch (`agents/writer.toml` holding `name` and `enabled` only) switches the
            // role its file is named after; it does not replace the built-in spec.
            let key = match switch_of(&text) {
                Some(_) => format!("{name} (switch)"),
                None => name,
            };
            files.insert(key, (path, text));
        }
        let mut templates: BTreeMap<String, String> = DEFAULT_PROMPTS
            .iter()
            .map(|(n, c)| (n.to_string(), c.to_string()))
            .collect();
        for (name, _path, text) in read_dir_files(prompts_dir, "tera")? {
            templates.insert(name, text);
        }
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![]);
        tera.add_raw_templates(templates.iter().map(|(n, t)| (n.as_str(), t.as_str())))
            .map_err(|e| AgentError::Template {
                name: template_name(&e),
                message: error_chain(&e),
            })?;
        let mut roles = BTreeMap::new();
        // A role is switched off by `enabled = false` in its file (a built-in one: the
        // validator) or in a two-line file of the user's (`name`, `enabled = false`); a
        // two-line file with `enabled = true` switches a built-in role on, as it is built in.
        let mut switches = BTreeMap::new();
        let mut to_load = Vec::new();
        for (_file, (path, text)) in files {
            match switch_of(&text) {
                Some((name, on)) => {
                    switches.insert(name, on);
                }
                None => to_load.push((path, text)),
            }
        }
        for (path, text) in to_load {
            let mut spec: RoleSpec = toml::from_str(&text).map_err(|e| AgentError::Spec {
                path: path.clone(),
                message: e.to_string(),
            })?;
            if let Some(on) = switches.get(&spec.name) {
                spec.enabled = *on;
            }
            if !spec.enabled {
                continue;
            }
            if spec.stage.is_empty() {
                spec.stage = spec.name.clone();
            }
            for t in [&spec.prompt, &spec.system] {
                if !templates.contains_key(t) {
                    return Err(AgentError::Spec {
                        path: path.clone(),
                        message: format!("prompt template {t:?} not found in prompts/"),
                    });
                }
            }
            let schema: serde_json::Value =
                serde_json::from_str(&spec.schema).map_err(|e| AgentError::Spec {
                    path: path.clone(),
                    message: format!("schema is not valid JSON: {e}"),
                })?;
            let grammar = grammar::schema_to_gbnf(&schema).map_err(|e| AgentError::Spec {
                path: path.clone(),
                message: format!("schema: {e}"),
            })?;
            roles.insert(
                spec.name.clone(),
                Role {
                    spec,
                    schema,
                    grammar,
                    source: path,
                    task: String::new(),
                },
            );
        }
        let mut agents = Agents { roles, tera };
        let empty = context::ChunkPrompt {
            chunk: context::ChunkCtx::default(),
        };
        let tasks: Vec<(String, String)> = agents
            .chunk_roles()
            .map(|r| {
                let task = agents
                    .messages(r, &empty)
                    .ok()
                    .and_then(|m| m.last().map(|m| m.content.clone()))
                    .unwrap_or_default();
                (r.spec.name.clone(), task)
            })
            .collect();
        for (name, task) in tasks {
            if let Some(r) = agents.roles.get_mut(&name) {
                r.task = task;
            }
        }
        Ok(agents)
    }

    pub fn role(&self, name: &str) -> Result<&Role, AgentError> {
        self.roles
            .get(name)
            .ok_or_else(|| AgentError::UnknownRole(name.to_string()))
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    /// The role that produces the given output, if one is enabled.
    pub fn by_output(&self, output: OutputKind) -> Option<&Role> {
        self.roles.values().find(|r| r.spec.output == output)
    }

    /// The queue stage of the role that produces the given output, if one is enabled (stages
    /// are named in `agents/*.toml`: find them by what they output, never by name).
    pub fn stage_of(&self, output: OutputKind) -> Option<&str> {
        self.by_output(output).map(|r| r.spec.stage.as_str())
    }

    /// Roles that take one job per chunk.
    pub fn chunk_roles(&self) -> impl Iterator<Item = &Role> {
        self.roles
            .values()
            .filter(|r| r.spec.input == InputKind::Chunk)
    }

    /// Renders a role's messages: the system template, then the prompt with `context`.
    pub fn messages(
        &self,
        role: &Role,
        context: &impl Serialize,
    ) -> Result<Vec<Message>, AgentError> {
        let ctx = tera::Context::from_serialize(context).map_err(|e| AgentError::Render {
            role: role.spec.name.clone(),
            template: role.spec.prompt.clone(),
            message: error_chain(&e),
        })?;
        let render = |t: &str| {
            self.tera.render(t, &ctx).map_err(|e| AgentError::Render {
                role: role.spec.name.clone(),
                template: t.to_string(),
                message: error_chain(&e),
            })
        };
        Ok(vec![
            Message::system(render(&role.spec.system)?.trim()),
            Message::user(render(&role.spec.prompt)?.trim()),
        ])
    }
}

/// Writes the built-in roles and prompts into `dir/agents` and `dir/prompts`, leaving files
/// that exist alone. Returns the files written.
pub fn write_defaults(dir: &Path) -> Result<Vec<PathBuf>, AgentError> {
    let mut written = Vec::new();
    for (sub, files) in [("agents", DEFAULT_AGENTS), ("prompts", DEFAULT_PROMPTS)] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(|source| AgentError::Io {
            path: d.clone(),
            source,
        })?;
        for (name, text) in files {
            let p = d.join(name);
            if !p.exists() {
                std::fs::write(&p, text).map_err(|source| AgentError::Io {
                    path: p.clone(),
                    source,
                })?;
                written.push(p);
            }
        }
    }
    Ok(written)
}

fn read_dir_files(
    dir: Option<&Path>,
    ext: &str,
) -> Result<Vec<(String, String, String)>, AgentError> {
    let Some(dir) = dir.filter(|d| d.is_dir()) else {
        return Ok(Vec::new());
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AgentError::Io { path, source }
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(ext) {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, path.display().to_string(), text));
    }
    out.sort();
    Ok(out)
}

fn template_name(e: &tera::Error) -> String {
    match &e.kind {
        tera::ErrorKind::Msg(m) => m
            .split('\'')
            .nth(1)
            .map(str::to_string)
            .unwrap_or_else(|| m.clone()),
        _ => "(unknown)".into(),
    }
}

/// Tera puts the useful part (line and column) in the error's sources.
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

#[cfg(test)]
mod tests;

/// The schema of a property given as a dotted path through objects and arrays.
pub fn property<'a>(schema: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut cur = schema;
    for key in path.split('.') {
        while cur.get("type").and_then(|t| t.as_str()) == Some("array") {
            cur = cur.get("items")?;
        }
        cur = cur.get("properties")?.get(key)?;
    }
    Some(cur)
}

/// The schema of a property given as a dotted path through objects and arrays, to change.
pub fn property_mut<'a>(
    schema: &'a mut serde_json::Value,
    path: &str,
) -> Option<&'a mut serde_json::Value> {
    let mut cur = schema;
    for key in path.split('.') {
        while cur.get("type").and_then(|t| t.as_str()) == Some("array") {
            cur = cur.get_mut("items")?;
        }
        cur = cur.get_mut("properties")?.get_mut(key)?;
    }
    Some(cur)
}
