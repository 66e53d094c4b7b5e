//! The typed contexts prompts are rendered with. A template may use exactly these fields.

use serde::Serialize;

#[derive(Clone, Debug, Default, Serialize)]
pub struct ChunkCtx {
    pub file: String,
    pub kind: String,
    pub line_start: i64,
    pub line_end: i64,
    /// Heading path joined with " > ", empty when none.
    pub heading: String,
    pub text: String,
    /// Terms of the text that could name what it teaches (`text::terms`), strongest first;
    /// filled for per-chunk roles, empty for the validator.
    pub terms: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FindingCtx {
    pub pattern: String,
    pub category: String,
    pub summary: String,
    pub evidence: String,
    pub code: String,
    pub file: String,
    pub line_start: i64,
    pub line_end: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PatternCtx {
    pub name: String,
    pub category: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PatternSummaryCtx {
    pub name: String,
    pub category: String,
    pub summary: String,
    /// Other patterns found in the chunks of other files that retrieval put near this one
    /// (`pattern_related`), nearest first: what the synthesizer says about how they relate.
    pub related: Vec<String>,
}

/// Input of a per-chunk role (extractor, custom reviewers).
#[derive(Clone, Debug, Serialize)]
pub struct ChunkPrompt {
    pub chunk: ChunkCtx,
}

/// Input of the validator: the chunk and one finding.
#[derive(Clone, Debug, Serialize)]
pub struct FindingPrompt {
    pub chunk: ChunkCtx,
    pub finding: FindingCtx,
}

/// A sentence of another file that names the pattern (found by retrieval).
#[derive(Clone, Debug, Serialize)]
pub struct RelatedCtx {
    pub file: String,
    pub line_start: i64,
    pub line_end: i64,
    pub text: String,
}

/// Input of the writer.
#[derive(Clone, Debug, Serialize)]
pub struct PatternPrompt {
    pub pattern: PatternCtx,
    pub findings: Vec<FindingCtx>,
    /// What other files say about the pattern by name (the role's `related`; empty when 0,
    /// on PostgreSQL, or without the embedding model).
    pub related: Vec<RelatedCtx>,
}

/// Input of the synthesizer.
#[derive(Clone, Debug, Serialize)]
pub struct KbPrompt {
    pub patterns: Vec<PatternSummaryCtx>,
}
