//! What each kind of job does, and the planner between stages.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::checks;
use super::{JobError, RunContext, Usage};
use crate::agent::context::{
    ChunkCtx, ChunkPrompt, FindingCtx, FindingPrompt, KbPrompt, PatternCtx, PatternPrompt,
    PatternSummaryCtx, RelatedCtx,
};
use crate::agent::{Agents, InputKind, OutputKind, Role};
use crate::ingest::FileKind;
use crate::llm::{grammar, GenProgress, Message, Request, StopReason};
use crate::queue::store::{self, ChunkRow, FindingRow, NewFinding};
use crate::queue::{insert_jobs, Done, FindingStatus, JobId, Lease, NewJob, Queue, QueueError};
use crate::search::related::Related;
use crate::text::checks as names;
use crate::text::terms::FileFacts;

type JobResult = Result<Usage, (JobError, Usage)>;

/// Runs one job to completion (writing its results) or returns why it failed.
pub(super) async fn handle(
    ctx: &RunContext,
    lease: &Lease,
    progress: Arc<GenProgress>,
) -> JobResult {
    let mut usage = Usage::default();
    let res = handle_inner(ctx, lease, progress, &mut usage).await;
    match res {
        Ok(()) => Ok(usage),
        Err(e) => Err((e, usage)),
    }
}

async fn handle_inner(
    ctx: &RunContext,
    lease: &Lease,
    progress: Arc<GenProgress>,
    usage: &mut Usage,
) -> Result<(), JobError> {
    let role = ctx
        .agents
        .role(&lease.role)
        .map_err(|e| JobError::new("config", e.to_string(), false))?
        .clone();
    match (role.spec.input, role.spec.output) {
        (InputKind::Chunk, OutputKind::Findings) => {
            extract(ctx, lease, &role, progress, usage).await
        }
        (InputKind::Chunk, _) => notes(ctx, lease, &role, progress, usage).await,
        (InputKind::Findings, _) => validate(ctx, lease, &role, progress, usage).await,
        (InputKind::Pattern, _) => write(ctx, lease, &role, progress, usage).await,
        (InputKind::Kb, _) => synthesize(ctx, lease, &role, progress, usage).await,
    }
}

fn chunk_ctx(c: &ChunkRow) -> ChunkCtx {
    ChunkCtx {
        file: c.rel_path.clone(),
        kind: c.kind.clone(),
        line_start: c.line_start,
        line_end: c.line_end,
        heading: c.heading_path.join(" > "),
        text: c.text.clone(),
        terms: Vec::new(),
    }
}

/// Asks the role's model, parses and checks the reply against the role's schema, and gives
/// the model one chance to repair a reply that does not parse. `schema` is the one `grammar`
/// was built from (the role's, or its fields limited to the input's terms and quotes): a
/// reply cut at `max_tokens` is closed by it.
async fn ask(
    ctx: &RunContext,
    role: &Role,
    schema: &serde_json::Value,
    grammar: String,
    messages: Vec<Message>,
    progress: &Arc<GenProgress>,
    usage: &mut Usage,
) -> Result<(serde_json::Value, String), JobError> {
    let backend = ctx.backend(&role.spec.model).await?;
    let mut messages = messages;
    let mut last_error = String::new();
    let forcing = Arc::new(schema.clone());
    for attempt in 0..2 {
        let req = Request {
            messages: messages.clone(),
            sampling: role.sampling(),
            grammar: Some(grammar.clone()),
            schema: Some(forcing.clone()),
            stop: Vec::new(),
            timeout: ctx.timeout,
            progress: Some(progress.clone()),
            stream: None,
        };
        let done = backend.generate(req).await?;
        usage.prompt_tokens += done.timings.prompt_tokens;
        usage.gen_tokens += done.timings.gen_tokens;
        usage.cached_tokens += done.timings.cached_tokens;
        usage.forced_tokens += done.timings.forced_tokens;
        match read_reply(&role.schema, schema, &done.text, done.stop) {
            Ok((v, reply)) => {
                if reply != done.text {
                    tracing::debug!("a reply cut at max_tokens was closed");
                }
                return Ok((v, reply));
            }
            Err(Unread::Cut(e)) => {
                return Err(JobError {
                    kind: "truncated",
                    message: format!(
                        "the reply was cut at max_tokens ({}) and no completion of it is valid \
                         output ({e}); the same request gives the same cut: raise max_tokens \
                         of role {}",
                        role.spec.max_tokens, role.spec.name
                    ),
                    reply: Some(done.text),
                    retryable: false,
                })
            }
            Err(Unread::Invalid(e)) if attempt == 0 => {
                tracing::debug!(error = %e, "reply does not parse; asking for a repair");
                messages.push(Message::assistant(done.text));
                messages.push(Message::user(format!(
                    "Your reply is invalid ({e}). Reply again with only the corrected JSON."
                )));
                last_error = e;
            }
            Err(Unread::Invalid(e)) => {
                return Err(JobError {
                    kind: "invalid_output",
                    message: format!("the reply is not valid output after one repair: {e} (first error: {last_error})"),
                    reply: Some(done.text),
                    retryable: true,
                })
            }
        }
    }
    unreachable!("the loop returns")
}

/// `ask` under the role's own schema and grammar (an input that limits no field).
async fn ask_role(
    ctx: &RunContext,
    role: &Role,
    messages: Vec<Message>,
    progress: &Arc<GenProgress>,
    usage: &mut Usage,
) -> Result<(serde_json::Value, String), JobError> {
    ask(
        ctx,
        role,
        &role.schema,
        role.grammar.clone(),
        messages,
        progress,
        usage,
    )
    .await
}

/// Why a reply is not the role's output.
#[derive(Debug, PartialEq)]
enum Unread {
    /// Not valid output: the model may repair it.
    Invalid(String),
    /// Cut at `max_tokens`, and no completion of it is valid: at temperature 0 (or with a
    /// fixed seed) the same request gives the same cut, so it is not worth asking again.
    Cut(String),
}

/// Reads a reply as output of the role's schema (`role_schema`). A reply cut at `max_tokens`,
/// and only such a reply, is closed by the shortest completion that `schema` (the one its
/// grammar was built from) allows; the text returned is then the closed reply.
fn read_reply(
    role_schema: &serde_json::Value,
    schema: &serde_json::Value,
    text: &str,
    stop: StopReason,
) -> Result<(serde_json::Value, String), Unread> {
    let parse = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text.trim())
            .map_err(|e| format!("not valid JSON: {e}"))
            .and_then(|v| {
                grammar::validate(role_schema, &v)
                    .map(|()| v)
                    .map_err(|errs| errs.join("; "))
            })
    };
    match parse(text) {
        Ok(v) => Ok((v, text.to_string())),
        Err(e) if stop != StopReason::MaxTokens => Err(Unread::Invalid(e)),
        Err(_) => grammar::close_truncated(schema, text)
            .and_then(|closed| parse(&closed).map(|v| (v, closed)))
            .map_err(Unread::Cut),
    }
}

async fn complete_with<F>(
    ctx: &RunContext,
    lease: &Lease,
    done: Done,
    follow_up: F,
) -> Result<(), JobError>
where
    F: for<'t> FnOnce(
        &'t mut crate::queue::Tx,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), QueueError>> + Send + 't>,
    >,
{
    let mut tx = ctx.queue.begin().await?;
    if !ctx.queue.complete_in(&mut tx, lease, &done).await? {
        tx.rollback().await.map_err(QueueError::from)?;
        return Err(JobError::new(
            "lease_lost",
            "the lease expired before the result was saved; another worker owns the job",
            false,
        ));
    }
    follow_up(&mut tx).await?;
    tx.commit().await.map_err(QueueError::from)?;
    Ok(())
}

fn done_of(result: serde_json::Value, reply: String, usage: &Usage) -> Done {
    Done {
        result,
        reply: Some(reply),
        prompt_tokens: usage.prompt_tokens as i64,
        gen_tokens: usage.gen_tokens as i64,
        cached_tokens: usage.cached_tokens as i64,
        forced_tokens: usage.forced_tokens as i64,
    }
}

/// The kind of file a chunk was cut from (plain text if the database names no kind quarry
/// knows).
fn kind_of(chunk: &ChunkRow) -> FileKind {
    chunk.kind.parse().unwrap_or(FileKind::Text)
}

/// What ingest learned about the chunk's whole file. A source recorded before ingest stored
/// its facts, or by a quarry whose rules differ, gets them worked out from its stored chunks,
/// once: they are stored for the rest.
async fn source_facts(queue: &Queue, chunk: &ChunkRow) -> Result<FileFacts, QueueError> {
    if let Some(facts) = chunk
        .facts
        .as_deref()
        .and_then(|f| serde_json::from_str::<FileFacts>(f).ok())
        .filter(FileFacts::are_current)
    {
        return Ok(facts);
    }
    let chunks = queue.source_chunks(chunk.source_id).await?;
    let facts = FileFacts::of_chunks(
        chunks
            .iter()
            .map(|c| (c.heading_path.as_slice(), c.text.as_str())),
        kind_of(chunk),
    );
    if let Ok(json) = serde_json::to_string(&facts) {
        queue.set_source_facts(chunk.source_id, &json).await?;
    }
    Ok(facts)
}

/// The chunk a per-chunk job reads, its terms and the role's prompt rendered around it.
async fn chunk_input(ctx: &RunContext, lease: &Lease, role: &Role) -> Result<ChunkInput, JobError> {
    let chunk_id = lease
        .input_id
        .ok_or_else(|| JobError::new("corrupt", "per-chunk job without a chunk", false))?;
    let chunk = ctx.queue.chunk(chunk_id).await?;
    // Terms are worked out here, for per-chunk roles only (the validator does not use them);
    // the whole file tells which names are its own items (read once per file and run).
    let facts = source_facts(&ctx.queue, &chunk).await?;
    let silence =
        crate::text::teaching::silence(&chunk.text, &chunk.heading_path, kind_of(&chunk), &facts);
    // Only the terms the role's term fields accept (the grammar offers no other) and the
    // checks keep as a name: a name the checks would reject costs a reply and loses the
    // chunk's true name to it.
    let terms = role
        .usable_terms(crate::text::terms::terms(
            &chunk.text,
            &chunk.heading_path,
            kind_of(&chunk),
            &facts,
        ))
        .into_iter()
        .filter(|t| keeps_name(t, &chunk, &role.task))
        .collect();
    let prompt = ChunkPrompt {
        chunk: ChunkCtx {
            terms,
            ..chunk_ctx(&chunk)
        },
    };
    let messages = ctx
        .agents
        .messages(role, &prompt)
        .map_err(|e| JobError::new("template", e.to_string(), false))?;
    Ok(ChunkInput {
        chunk,
        terms: prompt.chunk.terms,
        messages,
        silence,
    })
}

/// What a per-chunk job reads: the chunk, its terms, the role's prompt, and whether the
/// chunk can teach a pattern at all.
struct ChunkInput {
    chunk: ChunkRow,
    terms: Vec<String>,
    messages: Vec<Message>,
    silence: Option<crate::text::teaching::Silence>,
}

async fn extract(
    ctx: &RunContext,
    lease: &Lease,
    role: &Role,
    progress: Arc<GenProgress>,
    usage: &mut Usage,
) -> Result<(), JobError> {
    let ChunkInput {
        chunk,
        terms,
        messages,
        silence,
    } = chunk_input(ctx, lease, role).await?;
    let (schema, grammar) = role
        .constrained(&chunk.text, &terms)
        .map_err(|e| JobError::new("grammar", e.to_string(), false))?;
    // When the checks reject every name, further rounds (`feedback_rounds`) send the reasons
    // back like a reviewer's note. The conversation so far is a prefix of the new prompt, so
    // its KV is reused.
    let mut messages = messages;
    let mut findings: Vec<NewFinding> = Vec::new();
    let mut last: Option<(serde_json::Value, String)> = None;
    // A role that names findings only by the chunk's terms is not asked about a chunk that
    // has none: nothing in it names a technique, and a small model's free names are noise.
    // Nor about a chunk that cannot teach one (no Rust in its file, a list of references).
    let not_asked = match silence {
        Some(s) => Some(s.reason()),
        None if role.spec.terms_required && terms.is_empty() => {
            Some("no term of the chunk names a technique")
        }
        None => None,
    };
    let rounds = if let Some(why) = not_asked {
        last = Some((
            serde_json::json!({ "findings": [], "not_asked": why }),
            String::new(),
        ));
        0
    } else {
        role.spec.feedback_rounds + 1
    };
    for round in 0..rounds {
        if let Some((_, reply)) = &last {
            if findings.is_empty()
                || findings
                    .iter()
                    .any(|f| f.status != crate::queue::FindingStatus::Rejected)
            {
                break;
            }
            messages.push(Message::assistant(reply.clone()));
            messages.push(Message::user(rejection_feedback(&findings)));
        }
        let (value, reply) = ask(
            ctx,
            role,
            &schema,
            grammar.clone(),
            messages.clone(),
            &progress,
            usage,
        )
        .await?;
        let tried: std::collections::BTreeSet<String> =
            findings.iter().map(|f| f.pattern_key.clone()).collect();
        findings.extend(
            findings_from(&value, &chunk, &role.task)
                .into_iter()
                .filter(|f| round == 0 || !tried.contains(&f.pattern_key)),
        );
        last = Some((value, reply));
    }
    let Some((value, reply)) = last else {
        unreachable!("round 0 always asks, or the job was answered without asking")
    };
    let validator = ctx.agents.by_output(OutputKind::Verdicts).cloned();
    let pending = findings
        .iter()
        .any(|f| f.status == crate::queue::FindingStatus::Pending);
    let job_id = lease.id;
    let done = done_of(value, reply, usage);
    complete_with(ctx, lease, done, move |tx| {
        Box::pin(async move {
            let mut findings = findings;
            if validator.is_none() {
                // No validator role: the deterministic checks are the last word.
                for f in findings
                    .iter_mut()
                    .filter(|f| f.status == crate::queue::FindingStatus::Pending)
                {
                    f.status = crate::queue::FindingStatus::Accepted;
                    f.reason = Some("passed the checks (no validator role)".into());
                }
            }
            store::insert_findings(tx, job_id, &chunk, &findings).await?;
            if let (Some(v), true) = (validator, pending) {
                let job = NewJob {
                    role: v.spec.name.clone(),
                    stage: v.spec.stage.clone(),
                    input_kind: InputKind::Findings.as_str().into(),
                    input_id: Some(chunk.id),
                    dedup: format!("findings-of-job:{}", job_id.0),
                    priority: v.spec.priority,
                    max_attempts: v.spec.max_attempts,
                    payload: serde_json::json!({ "extract_job": job_id.0 }),
                    est_tokens: chunk.tokens + 150,
                    depends_on: Vec::new(),
                };
                insert_jobs(tx, &[job], now_ms()).await?;
            }
            Ok(())
        })
    })
    .await
}

/// What the model hears when every name it gave was rejected.
fn rejection_feedback(findings: &[NewFinding]) -> String {
    let mut out = String::from("None of these names can be used:\n");
    for f in findings {
        let reason = f.reason.as_deref().unwrap_or("rejected");
        out.push_str(&format!("- {:?}: {reason}\n", f.pattern));
    }
    out.push_str(
        "Name only patterns or idioms that the text above explains, in its own words (the \
         section title often names it). If it explains none, answer {\"findings\": []}.",
    );
    out
}

/// Whether the checks keep `term` as the name of a finding on `chunk`, judged on the name
/// alone: what the terms offer is what the checks accept.
pub(crate) fn keeps_name(term: &str, chunk: &ChunkRow, instructions: &str) -> bool {
    name_finding(term, chunk, instructions)
        .is_some_and(|f| f.status != crate::queue::FindingStatus::Rejected)
}

/// The finding the checks make of `term` as a name on `chunk`, its evidence the whole chunk
/// (so that only the name is judged): its kept name, and its status and reason.
pub(crate) fn name_finding(term: &str, chunk: &ChunkRow, instructions: &str) -> Option<NewFinding> {
    let reply = serde_json::json!({ "findings": [{ "name": term, "evidence": chunk.text }] });
    findings_from(&reply, chunk, instructions)
        .into_iter()
        .next()
}

/// Turns the extractor's reply into findings, applying the deterministic checks.
pub(crate) fn findings_from(
    value: &serde_json::Value,
    chunk: &ChunkRow,
    instructions: &str,
) -> Vec<NewFinding> {
    let rendered = kind_of(chunk).is_record();
    let items = value
        .get("findings")
        .and_then(|f| f.as_array())
        .cloned()
        .unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    items
        .iter()
        .filter_map(|item| {
            let s = |k: &str| {
                item.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .trim()
                    .to_string()
            };
            let prose_only = kind_of(chunk).is_prose();
            // The chunk's headings are headings of its text: a section's rule heading names
            // every chunk of the section, as the terms offered it.
            let mut grounding: String = chunk
                .heading_path
                .iter()
                .map(|h| format!("# {h}\n"))
                .collect();
            grounding.push_str(&chunk.text);
            let evidence = s("evidence");
            let name = names::clean_name(&s("name"));
            // Only a name that stands on its own is completed: a generic or invented one
            // must not borrow a heading's credit. A completed name is checked again.
            let own = names::check_finding(&name, &evidence, &grounding, rendered);
            let (pattern, checked) = match own {
                Ok(()) => {
                    let full =
                        names::complete_name(&name, &chunk.heading_path, &chunk.text, prose_only);
                    let checked = if full == name {
                        Ok(())
                    } else {
                        names::check_finding(&full, &evidence, &grounding, rendered)
                    };
                    (full, checked)
                }
                Err(e) => (name, Err(e)),
            };
            let key = names::pattern_key(&pattern);
            if !seen.insert(key.clone()) {
                return None; // the same pattern twice in one chunk
            }
            let evidence =
                names::evidence_naming(&pattern, &evidence, &chunk.text).unwrap_or(evidence);
            let (line_start, line_end) = if rendered {
                (chunk.line_start, chunk.line_end)
            } else {
                checks::evidence_lines(&evidence, &chunk.text, chunk.line_start, chunk.line_end)
            };
            let verdict = checked
                .and_then(|()| {
                    names::discussed(&pattern, &chunk.heading_path, &chunk.text, prose_only)
                })
                .and_then(|()| {
                    if names::echoes(&pattern, instructions) {
                        Err(format!("the name {pattern:?} repeats the instructions"))
                    } else {
                        Ok(())
                    }
                });
            Some(NewFinding {
                pattern_key: key,
                pattern,
                category: s("category"),
                summary: s("summary"),
                code: checks::checked_code(item.get("code").and_then(|c| c.as_str()), &chunk.text),
                evidence,
                line_start,
                line_end,
                status: if verdict.is_ok() {
                    FindingStatus::Pending
                } else {
                    FindingStatus::Rejected
                },
                reason: verdict.err(),
            })
        })
        .collect()
}

async fn validate(
    ctx: &RunContext,
    lease: &Lease,
    role: &Role,
    progress: Arc<GenProgress>,
    usage: &mut Usage,
) -> Result<(), JobError> {
    let chunk_id = lease
        .input_id
        .ok_or_else(|| JobError::new("corrupt", "validate job without a chunk", false))?;
    let extract_job = lease
        .payload
        .get("extract_job")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| JobError::new("corrupt", "validate job without its extract job", false))?;
    let chunk = ctx.queue.chunk(chunk_id).await?;
    let findings = ctx.queue.findings_of_job(JobId(extract_job)).await?;
    let mut verdicts = Vec::new();
    let mut replies = Vec::new();
    for f in findings
        .iter()
        .filter(|f| f.status == crate::queue::FindingStatus::Pending)
    {
        let prompt = FindingPrompt {
            chunk: chunk_ctx(&chunk),
            finding: finding_ctx(f),
        };
        let messages = ctx
            .agents
            .messages(role, &prompt)
            .map_err(|e| JobError::new("template", e.to_string(), false))?;
        let (value, reply) = ask_role(ctx, role, messages, &progress, usage).await?;
        let accept = value.get("verdict").and_then(|v| v.as_str()) == Some("accept");
        let reason = value
            .get("reason")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        verdicts.push((f.id, accept, reason));
        replies.push(reply);
    }
    let result = serde_json::json!({
        "verdicts": verdicts.iter().map(|(id, a, r)| serde_json::json!({"finding": id, "accept": a, "reason": r})).collect::<Vec<_>>()
    });
    let done = done_of(result, replies.join("\n"), usage);
    let veto = role.spec.veto;
    complete_with(ctx, lease, done, move |tx| {
        Box::pin(async move {
            for (id, accept, reason) in verdicts {
                let status = if accept || !veto {
                    FindingStatus::Accepted
                } else {
                    FindingStatus::Rejected
                };
                let verdict = if accept { "accept" } else { "reject" };
                let reason = if veto {
                    format!("validator: {reason}")
                } else {
                    format!("validator (advisory) says {verdict}: {reason}")
                };
                store::set_finding_status(tx, id, status, &reason).await?;
            }
            Ok(())
        })
    })
    .await
}

fn finding_ctx(f: &FindingRow) -> FindingCtx {
    FindingCtx {
        pattern: f.pattern.clone(),
        category: f.category.clone(),
        summary: f.summary.clone(),
        evidence: f.evidence.clone(),
        code: f.code.clone().unwrap_or_default(),
        file: f.rel_path.clone(),
        line_start: f.line_start,
        line_end: f.line_end,
    }
}

async fn write(
    ctx: &RunContext,
    lease: &Lease,
    role: &Role,
    progress: Arc<GenProgress>,
    usage: &mut Usage,
) -> Result<(), JobError> {
    let pattern_id = lease
        .input_id
        .ok_or_else(|| JobError::new("corrupt", "write job without a pattern", false))?;
    let pattern = ctx.queue.pattern(pattern_id).await?;
    let findings = ctx.queue.pattern_findings(pattern_id).await?;
    // What other files say about the pattern by name (the planner's search found them).
    let related = ctx
        .queue
        .related(Some(pattern_id))
        .await?
        .into_iter()
        .filter(|r| r.cited && !findings.iter().any(|f| f.source_id == r.source_id))
        .take(role.spec.related)
        .map(|r| RelatedCtx {
            file: r.rel_path,
            line_start: r.line_start,
            line_end: r.line_end,
            text: r.excerpt,
        })
        .collect();
    let prompt = PatternPrompt {
        pattern: PatternCtx {
            name: pattern.name.clone(),
            category: pattern.category.clone(),
        },
        findings: findings.iter().take(6).map(finding_ctx).collect(),
        related,
    };
    let messages = ctx
        .agents
        .messages(role, &prompt)
        .map_err(|e| JobError::new("template", e.to_string(), false))?;
    let prompt_text = messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let (mut value, reply) = ask_role(ctx, role, messages, &progress, usage).await?;
    // Prose that only repeats the prompt, or itself, says nothing: drop it, the page falls
    // back to the findings' own summaries.
    if let Some(obj) = value.as_object_mut() {
        for (_, v) in obj.iter_mut() {
            if v.as_str()
                .is_some_and(|t| names::echo_ratio(t, &prompt_text) > 0.5 || names::repetitive(t))
            {
                *v = serde_json::Value::String(String::new());
            }
        }
    }
    let done = done_of(value, reply, usage);
    complete_with(ctx, lease, done, |_tx| Box::pin(async { Ok(()) })).await
}

async fn synthesize(
    ctx: &RunContext,
    lease: &Lease,
    role: &Role,
    progress: Arc<GenProgress>,
    usage: &mut Usage,
) -> Result<(), JobError> {
    // The writer's stage, whatever agents/*.toml names it.
    let writer = ctx.agents.stage_of(OutputKind::Page);
    let mut rows = Vec::new();
    for p in ctx.queue.patterns().await? {
        let findings = ctx.queue.pattern_findings(p.id).await?;
        rows.push((p, findings));
    }
    // Which pattern each chunk's findings name, to turn the chunks retrieval put near a
    // pattern (the writer's related chunks) into the patterns near it.
    let mut named_in: HashMap<i64, Vec<&str>> = HashMap::new();
    for (p, findings) in &rows {
        for f in findings {
            let names = named_in.entry(f.chunk_id).or_default();
            if !names.contains(&p.name.as_str()) {
                names.push(&p.name);
            }
        }
    }
    let related = ctx.queue.related(None).await?;
    let mut patterns = Vec::new();
    for (p, findings) in &rows {
        let Some(first) = findings.first() else {
            continue;
        };
        let mut near: Vec<String> = Vec::new();
        for r in related.iter().filter(|r| r.pattern_id == p.id) {
            for name in named_in.get(&r.chunk_id).into_iter().flatten() {
                if *name != p.name && !near.iter().any(|n| n == name) {
                    near.push(name.to_string());
                }
            }
        }
        near.truncate(3);
        let page = match writer {
            Some(stage) => ctx.queue.latest_result(stage, Some(p.id)).await?,
            None => None,
        };
        let summary = page
            .as_ref()
            .and_then(|v| v.get("summary"))
            .and_then(|v| v.as_str())
            .unwrap_or(&first.summary);
        patterns.push(PatternSummaryCtx {
            name: p.name.clone(),
            category: p.category.clone(),
            summary: crate::text::quotes::lead_sentence(summary.trim()).to_string(),
            related: near,
        });
    }
    patterns.truncate(40);
    let messages = ctx
        .agents
        .messages(role, &KbPrompt { patterns })
        .map_err(|e| JobError::new("template", e.to_string(), false))?;
    let (value, reply) = ask_role(ctx, role, messages, &progress, usage).await?;
    let done = done_of(value, reply, usage);
    complete_with(ctx, lease, done, |_tx| Box::pin(async { Ok(()) })).await
}

/// A custom per-chunk role: its reply is kept and shown on the source's page.
async fn notes(
    ctx: &RunContext,
    lease: &Lease,
    role: &Role,
    progress: Arc<GenProgress>,
    usage: &mut Usage,
) -> Result<(), JobError> {
    let ChunkInput { messages, .. } = chunk_input(ctx, lease, role).await?;
    let (value, reply) = ask_role(ctx, role, messages, &progress, usage).await?;
    let done = done_of(value, reply, usage);
    complete_with(ctx, lease, done, |_tx| Box::pin(async { Ok(()) })).await
}

fn now_ms() -> i64 {
    crate::queue::system_clock()()
}

fn hash_ids(ids: impl IntoIterator<Item = i64>) -> String {
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.to_le_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// The findings of `findings` that join another pattern's page, each with the first finding
/// of that pattern (its home). In a markdown file whose level-1 title names a pattern (the
/// title's own name, or the names the title is made of: "`mem::{take, replace}` to …"), the
/// other names of the file meet on the title's page as its sections when they are variants
/// of it:
/// - all of them, when the title is found more often than any other name ("Flat Enums" in a
///   chapter on error handling, the `Fn` trait in a page on commands);
/// - otherwise a name made of the title's words or holding them ("Default Constructors" under
///   "Constructors"), and a name found only in sections of the title's own discussion: below a
///   structure heading ("Disadvantages", "Discussion") or below a variant's heading.
///
/// A numbered item's findings keep a page of their own (`terms::item_heading`), and the
/// file's other names in the item's section join it; the majority above leaves the items
/// out. A file whose sections are all topics (a collection, see
/// `FileFacts::sections_are_topics`) keeps a page per topic, and so does a name with a section
/// of its own on another subject.
async fn title_patterns<'a>(
    queue: &Queue,
    findings: &'a [FindingRow],
) -> Result<HashMap<i64, &'a FindingRow>, QueueError> {
    let mut by_source: BTreeMap<i64, Vec<&FindingRow>> = BTreeMap::new();
    for f in findings {
        by_source.entry(f.source_id).or_default().push(f);
    }
    let mut homes = HashMap::new();
    for fs in by_source.into_values() {
        let distinct: std::collections::BTreeSet<&str> =
            fs.iter().map(|f| f.pattern_key.as_str()).collect();
        if distinct.len() < 2 {
            continue;
        }
        let chunk = queue.chunk(fs[0].chunk_id).await?;
        if kind_of(&chunk) != FileKind::Markdown {
            continue;
        }
        let facts = source_facts(queue, &chunk).await?;
        if facts.sections_are_topics {
            continue; // its title names the collection, not a pattern
        }
        let Some(title) = facts.title.clone() else {
            continue;
        };
        let title_key = names::pattern_key(&title);
        let count = |k: &str| fs.iter().filter(|f| f.pattern_key == k).count();
        // The title's pattern: its own name, else the most found of the names it is made of.
        let home_key = if count(&title_key) > 0 {
            Some(title_key.as_str())
        } else {
            distinct
                .iter()
                .copied()
                .filter(|k| names::key_within(k, &title_key))
                .max_by_key(|k| (count(k), std::cmp::Reverse(first_line(&fs, k))))
        };
        let Some(home_key) = home_key else {
            continue;
        };
        let Some(home) = fs.iter().find(|f| f.pattern_key == home_key).copied() else {
            continue;
        };
        let mut chunks: HashMap<i64, ChunkRow> = HashMap::new();
        for f in &fs {
            if let std::collections::hash_map::Entry::Vacant(e) = chunks.entry(f.chunk_id) {
                e.insert(queue.chunk(f.chunk_id).await?);
            }
        }
        // The findings named after the numbered item their chunk belongs to: each item is a
        // subject of its own, with the file's other names in its section as its examples.
        let item_of = |f: &FindingRow| {
            let chunk = &chunks[&f.chunk_id];
            crate::text::terms::item_heading(&chunk.heading_path, &facts)
                .map(|i| chunk.heading_path[i].as_str())
        };
        let mut items: HashMap<&str, &FindingRow> = HashMap::new();
        let mut item_keys: std::collections::BTreeSet<&str> = Default::default();
        for f in fs.iter().copied() {
            if names_its_item(f, &chunks[&f.chunk_id], &facts) {
                items.entry(item_of(f).unwrap_or_default()).or_insert(f);
                item_keys.insert(&f.pattern_key);
            }
        }
        let own = count(home_key);
        // The title is the name found most, the items apart.
        let majority = distinct
            .iter()
            .all(|k| *k == home_key || count(k) < own || item_keys.contains(k));
        for f in fs.iter().copied().filter(|f| f.pattern_key != home_key) {
            let chunk = &chunks[&f.chunk_id];
            if item_keys.contains(f.pattern_key.as_str()) {
                continue;
            }
            if let Some(item) = item_of(f).and_then(|i| items.get(i)) {
                homes.insert(f.id, *item);
                continue;
            }
            let joins = majority
                || names::variant_of(&f.pattern_key, &title_key)
                || in_discussion_of(&chunk.heading_path, &title);
            if joins {
                homes.insert(f.id, home);
            }
        }
    }
    Ok(homes)
}

/// The functions of one module or type that a chunk names together (`mem::take` and
/// `mem::replace`, `Option::take` and `Option::replace`) are one subject, taught side by
/// side: each finding of such a group joins the one found first in the chunk, and so does
/// the same name anywhere else in the file.
fn sibling_homes(findings: &[FindingRow]) -> HashMap<i64, &FindingRow> {
    let mut groups: BTreeMap<(i64, String), Vec<&FindingRow>> = BTreeMap::new();
    for f in findings {
        if let Some(p) = crate::text::paths::parent(&f.pattern) {
            groups.entry((f.chunk_id, p)).or_default().push(f);
        }
    }
    // (source, key) → the finding its name joins; the same name elsewhere in the file follows.
    let mut joins: HashMap<(i64, &str), &FindingRow> = HashMap::new();
    for fs in groups.into_values() {
        let Some(first) = fs.iter().copied().min_by_key(|f| (f.line_start, f.id)) else {
            continue;
        };
        for f in fs.iter().filter(|f| f.pattern_key != first.pattern_key) {
            joins
                .entry((f.source_id, f.pattern_key.as_str()))
                .or_insert(first);
        }
    }
    findings
        .iter()
        .filter_map(|f| {
            let home = joins.get(&(f.source_id, f.pattern_key.as_str()))?;
            Some((
                f.id,
                *joins
                    .get(&(home.source_id, home.pattern_key.as_str()))
                    .unwrap_or(home),
            ))
        })
        .collect()
}

/// Whether a finding is named after the numbered item its chunk belongs to
/// (`terms::item_heading`): the item is a subject of its own, however many findings of the
/// file are named after its title.
fn names_its_item(f: &FindingRow, chunk: &ChunkRow, file: &FileFacts) -> bool {
    let key = |n: &str| names::pattern_key(crate::text::words::without_numbering(n));
    crate::text::terms::item_heading(&chunk.heading_path, file)
        .is_some_and(|i| key(&chunk.heading_path[i]) == key(&f.pattern))
}

/// The first line a finding of `key` cites in `fs`.
fn first_line(fs: &[&FindingRow], key: &str) -> i64 {
    fs.iter()
        .filter(|f| f.pattern_key == key)
        .map(|f| f.line_start)
        .min()
        .unwrap_or(i64::MAX)
}

/// True when a chunk under `path` is part of the discussion of the document titled `title`:
/// below the title, every heading down to the chunk's is a variant of the title until one is
/// a structure heading ("Disadvantages", "Discussion"), and none is a subject of its own.
fn in_discussion_of(path: &[String], title: &str) -> bool {
    let title_key = names::pattern_key(title);
    for h in path.iter().filter(|h| names::pattern_key(h) != title_key) {
        if crate::text::words::is_structure_heading(h) {
            return true;
        }
        if !names::variant_of(&names::pattern_key(h), &title_key) {
            return false;
        }
    }
    true
}

/// Plans the next stages once extraction and validation are over: groups accepted findings
/// into patterns, adds a write job per pattern whose findings changed (when a writer runs),
/// and a synthesize job behind every write (or, with no writer, after any pattern changed).
/// With `related`, each changed pattern first gets the chunks of other files near it
/// (`search::related`), stored with it for its page and its writer. Idempotent (dedup keys);
/// returns how many jobs it created.
pub async fn plan(
    queue: &Queue,
    agents: &Agents,
    related: Option<&Related>,
) -> Result<usize, QueueError> {
    let chunk_stages: Vec<String> = agents
        .roles()
        .filter(|r| matches!(r.spec.input, InputKind::Chunk | InputKind::Findings))
        .map(|r| r.spec.stage.clone())
        .collect();
    let stage_refs: Vec<&str> = chunk_stages.iter().map(String::as_str).collect();
    if !stage_refs.is_empty() && queue.pending_in(&stage_refs).await? > 0 {
        return Ok(0);
    }
    let ungrouped = queue.ungrouped_findings().await?;
    let writer = agents.by_output(OutputKind::Page);
    let synth = agents.by_output(OutputKind::Overview);
    let now = queue.now();
    // Group: one pattern per key; its name and category come from its first finding. The
    // other names of a document whose title is its main pattern join that pattern's page.
    let mut homes = title_patterns(queue, &ungrouped).await?;
    for (id, home) in sibling_homes(&ungrouped) {
        let home = homes.get(&home.id).copied().unwrap_or(home);
        homes.entry(id).or_insert(home);
    }
    // Related chunks are searched before the transaction: catching the index up writes.
    let near = match related {
        Some(r) if !ungrouped.is_empty() => related_of(queue, r, &ungrouped, &homes).await,
        _ => BTreeMap::new(),
    };
    let mut tx = queue.begin().await?;
    let mut touched = std::collections::BTreeSet::new();
    let mut keys: HashMap<i64, &str> = HashMap::new();
    for f in &ungrouped {
        let home = homes.get(&f.id).copied().unwrap_or(f);
        let id = store::upsert_pattern(
            &mut tx,
            &home.pattern_key,
            &home.pattern,
            &home.category,
            &checks::slug(&home.pattern),
            now,
        )
        .await?;
        store::link_finding(&mut tx, id, f.id).await?;
        touched.insert(id);
        keys.insert(id, &home.pattern_key);
    }
    // Each touched pattern with its related chunks stored and the findings it has now:
    // what its write job and the overview are made from.
    let mut versions = Vec::new();
    for &pattern in &touched {
        if let Some(rows) = keys.get(&pattern).and_then(|k| near.get(*k)) {
            crate::queue::retrieval::set_related(&mut tx, pattern, rows).await?;
        }
        versions.push((pattern, store::pattern_finding_ids(&mut tx, pattern).await?));
    }
    let mut created = 0;
    if let Some(writer) = writer {
        let jobs: Vec<NewJob> = versions
            .iter()
            .map(|(pattern, finding_ids)| NewJob {
                role: writer.spec.name.clone(),
                stage: writer.spec.stage.clone(),
                input_kind: InputKind::Pattern.as_str().into(),
                input_id: Some(*pattern),
                dedup: format!(
                    "pattern:{pattern}:{}",
                    hash_ids(finding_ids.iter().copied())
                ),
                priority: writer.spec.priority,
                max_attempts: writer.spec.max_attempts,
                payload: serde_json::json!({}),
                est_tokens: 400,
                depends_on: Vec::new(),
            })
            .collect();
        created += insert_jobs(&mut tx, &jobs, now).await?.len();
    }
    if let Some(synth) = synth {
        // Behind every page the writer writes; without a writer, once the patterns changed.
        let (dedup, depends_on) = match writer {
            Some(w) => {
                let writes = store::jobs_of_stage(&mut tx, &w.spec.stage).await?;
                (
                    format!("kb:{}", hash_ids(writes.iter().map(|j| j.0))),
                    writes,
                )
            }
            None => {
                let ids = versions
                    .iter()
                    .flat_map(|(p, f)| std::iter::once(-p).chain(f.iter().copied()));
                (format!("kb:patterns:{}", hash_ids(ids)), Vec::new())
            }
        };
        if !depends_on.is_empty() || (writer.is_none() && !touched.is_empty()) {
            let job = NewJob {
                role: synth.spec.name.clone(),
                stage: synth.spec.stage.clone(),
                input_kind: InputKind::Kb.as_str().into(),
                input_id: None,
                dedup,
                priority: synth.spec.priority,
                max_attempts: synth.spec.max_attempts,
                payload: serde_json::json!({}),
                est_tokens: 600,
                depends_on,
            };
            created += insert_jobs(&mut tx, &[job], now).await?.len();
        }
    }
    tx.commit().await?;
    Ok(created)
}

/// The chunks of other files near each pattern of `ungrouped` (by pattern key), `related.per_pattern` each.
/// A search that cannot run (no chunks, the model failing) leaves the patterns without:
/// said once in the log, never a failed plan.
async fn related_of(
    queue: &Queue,
    related: &Related,
    ungrouped: &[FindingRow],
    homes: &HashMap<i64, &FindingRow>,
) -> BTreeMap<String, Vec<crate::queue::retrieval::NewRelated>> {
    let mut groups: BTreeMap<&str, (&str, Vec<&FindingRow>)> = BTreeMap::new();
    for f in ungrouped {
        let home = homes.get(&f.id).copied().unwrap_or(f);
        groups
            .entry(&home.pattern_key)
            .or_insert_with(|| (&home.pattern, Vec::new()))
            .1
            .push(f);
    }
    let started = std::time::Instant::now();
    let progress = |done: usize, total: usize| {
        related.progress(done, total);
        if done == total {
            tracing::info!("embedded {total} chunks for related passages");
        }
    };
    let retriever = match crate::search::Retriever::open(
        queue,
        &related.embedder,
        true,
        related.batch,
        progress,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("pages are written without related passages from other files: {e}");
            return BTreeMap::new();
        }
    };
    // A chunk with findings of its own is material of their pattern's page, which "See also"
    // links: it is cited only where extraction found nothing (a small model's miss).
    let mut found: std::collections::HashSet<i64> = ungrouped.iter().map(|f| f.chunk_id).collect();
    if let Ok(old) = queue.current_findings().await {
        found.extend(
            old.iter()
                .filter(|f| f.status == FindingStatus::Accepted)
                .map(|f| f.chunk_id),
        );
    }
    let mut out = BTreeMap::new();
    for (key, (name, fs)) in groups {
        // The pattern's own findings, older ones too: their files are not "other files".
        let mut own: std::collections::BTreeSet<String> =
            fs.iter().map(|f| f.rel_path.clone()).collect();
        if let Ok(Some(id)) = queue.pattern_id(key).await {
            if let Ok(old) = queue.pattern_findings(id).await {
                own.extend(old.into_iter().map(|f| f.rel_path));
            }
        }
        let own_findings: Vec<&FindingRow> = fs
            .iter()
            .copied()
            .filter(|f| f.pattern_key == key)
            .chain(fs.iter().copied().filter(|f| f.pattern_key != key))
            .collect();
        let query = crate::search::related::query_of(name, &own_findings);
        match crate::search::related::related_chunks(
            &retriever,
            name,
            &query,
            &own,
            related.per_pattern,
            related.min_similarity,
        )
        .await
        {
            Ok(mut rows) => {
                for r in rows.iter_mut().filter(|r| found.contains(&r.chunk_id)) {
                    r.cited = false;
                }
                out.insert(key.to_string(), rows);
            }
            Err(e) => {
                tracing::warn!("pages are written without related passages from other files: {e}");
                return out;
            }
        }
    }
    tracing::info!(
        patterns = out.len(),
        cited = out.values().flatten().filter(|r| r.cited).count(),
        seconds = started.elapsed().as_secs_f64(),
        "related passages found"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A section whose heading states its claim spans several chunks: the heading names each
    /// of them (the terms offer it to all), not only the chunk that holds the heading line.
    #[test]
    fn a_sections_rule_heading_names_its_chunks_below_the_heading_line() {
        let heading = "2) if T: 'static then T must be valid for the entire program";
        let chunk = |text: &str| ChunkRow {
            id: 1,
            source_id: 1,
            rel_path: "post.md".into(),
            root: "/r".into(),
            kind: "markdown".into(),
            ordinal: 3,
            line_start: 40,
            line_end: 44,
            byte_start: 0,
            heading_path: vec!["Misconceptions".into(), heading.into()],
            text: text.into(),
            tokens: 40,
            facts: None,
        };
        let name = "if T: 'static then T must be valid for the entire program";
        let text = "A type with a 'static bound can be dropped at any time.\nIt need not \
                    live as long as the program: T must only be valid for as long as it is \
                    kept, and T: 'static says it may be kept for the entire program.\n";
        let reply = serde_json::json!({ "findings": [{ "name": name, "evidence": text }] });
        let found = findings_from(&reply, &chunk(text), "Name the patterns.");
        assert_eq!(found.len(), 1);
        assert_ne!(
            found[0].status,
            crate::queue::FindingStatus::Rejected,
            "{:?}",
            found[0].reason
        );
        // A sentence the text only contains is still no name.
        let sentence = "It need not live as long as the program";
        let reply = serde_json::json!({ "findings": [{ "name": sentence, "evidence": text }] });
        let found = findings_from(&reply, &chunk(text), "Name the patterns.");
        assert_eq!(found[0].status, crate::queue::FindingStatus::Rejected);
        // What the extractor is offered is what these checks keep: the rule heading, not a
        // sentence, nor a type the text mentions once in passing.
        let text = format!("{text}A `Box<str>` is one such type.\n");
        let offered: Vec<&str> = [name, sentence, "Box<str>"]
            .into_iter()
            .filter(|t| keeps_name(t, &chunk(&text), "Name the patterns."))
            .collect();
        assert_eq!(offered, [name]);
    }

    #[test]
    fn functions_of_one_module_named_in_one_chunk_share_a_page() {
        let f = |id: i64, chunk_id: i64, name: &str, line: i64| FindingRow {
            id,
            job_id: 1,
            chunk_id,
            source_id: 1,
            rel_path: "notes.md".into(),
            pattern: name.into(),
            pattern_key: names::pattern_key(name),
            category: String::new(),
            summary: String::new(),
            evidence: String::new(),
            code: None,
            line_start: line,
            line_end: line,
            status: crate::queue::FindingStatus::Accepted,
            reason: None,
        };
        let findings = [
            f(1, 7, "mem::replace", 12),
            f(2, 7, "std::mem::take", 10),
            f(3, 7, "Option::take", 14),
            f(4, 8, "mem::swap", 30),
            f(5, 7, "#[non_exhaustive]", 9),
            f(6, 9, "mem::replace", 40),
        ];
        let homes = sibling_homes(&findings);
        // `mem::replace` joins `std::mem::take`, found first in its chunk, here and in the
        // file's other chunks; a function of another module, or one the file names alone
        // (`mem::swap`), keeps its own page.
        assert_eq!(homes.get(&1).map(|h| h.id), Some(2));
        assert_eq!(homes.get(&6).map(|h| h.id), Some(2));
        assert_eq!(homes.len(), 2, "{:?}", homes.keys().collect::<Vec<_>>());
    }

    /// Issue 19, item 2: ingest works out each file's facts once and stores them; they are
    /// the facts the engine used to work out from the stored text of the file (on every
    /// folder of `bench/eval` and the example); a source stored without them (by an older
    /// quarry) gets them from its chunks, once.
    #[tokio::test]
    async fn the_facts_ingest_stores_are_those_of_the_stored_text() {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut roots = vec![base.join("examples/research")];
        for e in std::fs::read_dir(base.join("bench/eval")).unwrap() {
            roots.push(e.unwrap().path().join("corpus"));
        }
        // The shared development corpora beside the project, when they are there.
        if let Ok(shared) = std::fs::read_dir(base.join("../shared/corpus")) {
            roots.extend(shared.map(|e| e.unwrap().path()));
        }
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path().join("q.db"), true).await.unwrap();
        let opts = crate::ingest::IngestOptions::default();
        let mut checked = 0;
        for root in roots.iter().filter(|r| r.is_dir()) {
            let walk = crate::ingest::walk_report(root, &opts).unwrap();
            let counter = Arc::new(crate::ingest::ApproxTokens);
            crate::ingest::pipeline::store_folder(&q, root, walk, &opts, &[], counter)
                .await
                .unwrap();
        }
        for source in q.current_sources().await.unwrap() {
            let chunks = q.source_chunks(source.id).await.unwrap();
            let Some(first) = chunks.first() else {
                continue;
            };
            let stored: FileFacts =
                serde_json::from_str(first.facts.as_deref().expect("facts stored")).unwrap();
            let read = chunks
                .iter()
                .map(|c| (c.heading_path.as_slice(), c.text.as_str()));
            assert_eq!(
                stored,
                FileFacts::of_chunks(read, kind_of(first)),
                "{}",
                source.rel_path
            );
            checked += 1;
        }
        assert!(checked >= 30, "only {checked} files checked");

        // An older quarry's source: no facts stored.
        let mut tx = q.begin().await.unwrap();
        let old = store::NewSource {
            root: "/old".into(),
            rel_path: "old.md".into(),
            kind: Some("markdown".into()),
            ..Default::default()
        };
        let (sid, _) = store::insert_source(&mut tx, &old, 0).await.unwrap();
        let mut ids = Vec::new();
        for (i, text) in ["# Old\n\n## One\n\n`a()`", "## Two\n\nfn b() {}"]
            .iter()
            .enumerate()
        {
            let c = store::NewChunk {
                ordinal: i as i64,
                text: text.to_string(),
                ..Default::default()
            };
            ids.push(store::insert_chunk(&mut tx, sid, &c).await.unwrap());
        }
        tx.commit().await.unwrap();
        let chunk = q.chunk(ids[1]).await.unwrap();
        assert_eq!(chunk.facts, None);
        let facts = source_facts(&q, &chunk).await.unwrap();
        let text = q.source_text(chunk.source_id).await.unwrap();
        assert_eq!(
            facts,
            FileFacts::of(&text, kind_of(&chunk)),
            "no item: both agree"
        );
        assert_eq!(facts.title.as_deref(), Some("Old"));
        assert!(facts.sections_are_topics);
        let again = q.chunk(ids[0]).await.unwrap();
        assert_eq!(
            again.facts.as_deref(),
            Some(serde_json::to_string(&facts).unwrap().as_str())
        );

        // Facts an older quarry stored (no version, a fact since worked out differently) are
        // worked out again.
        q.set_source_facts(sid, r#"{"title": "Stale", "sections_are_topics": false}"#)
            .await
            .unwrap();
        let chunk = q.chunk(ids[1]).await.unwrap();
        let facts = source_facts(&q, &chunk).await.unwrap();
        assert!(
            facts.are_current() && facts.sections_are_topics,
            "{facts:?}"
        );
        assert_eq!(facts.title.as_deref(), Some("Old"));
    }

    const CUT: &str = r#"{"findings": [
  {"name": "Builder", "category": "idiom", "summary": "Collects the settings first.", "evidence": "A builder collects options."},
  {"name": "Newtype", "category": "id"#;

    /// Issue 16, item 9: an extractor reply cut inside its list died three times the same way.
    #[test]
    fn a_reply_cut_at_max_tokens_keeps_its_whole_findings() {
        let agents = Agents::load(None, None).unwrap();
        let role = agents.role("extractor").unwrap();
        let terms = ["Builder".to_string(), "Newtype".to_string()];
        let (schema, _) = role
            .constrained("A builder collects options. A newtype wraps.", &terms)
            .unwrap();
        let (v, reply) = read_reply(&role.schema, &schema, CUT, StopReason::MaxTokens).unwrap();
        assert_eq!(v["findings"].as_array().unwrap().len(), 1, "{reply}");
        assert_eq!(v["findings"][0]["name"], "Builder");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&reply).unwrap(),
            v
        );
        // Only a reply cut at max_tokens is closed; any other bad reply is for the repair.
        for stop in [StopReason::EndOfText, StopReason::StopString] {
            assert!(
                matches!(
                    read_reply(&role.schema, &schema, CUT, stop),
                    Err(Unread::Invalid(_))
                ),
                "{stop:?}"
            );
        }
    }

    #[test]
    fn a_cut_reply_that_no_completion_makes_valid_is_not_asked_again() {
        let agents = Agents::with_writer();
        let role = agents.role("writer").unwrap();
        let cut = r#"{"summary": "A builder collects settings.", "when_to_use": "Many optional settings, set one by one"#;
        match read_reply(&role.schema, &role.schema, cut, StopReason::MaxTokens) {
            Err(Unread::Cut(e)) => assert!(e.contains("pitfalls"), "{e}"),
            other => panic!("{other:?}"),
        }
        let whole = format!(r#"{cut}.", "pitfalls": "Forgetting the last c"#);
        let (v, _) = read_reply(&role.schema, &role.schema, &whole, StopReason::MaxTokens).unwrap();
        assert_eq!(v["pitfalls"], "Forgetting the last…");
        let valid = r#"{"summary": "A builder collects settings.", "when_to_use": "Many optional settings.", "pitfalls": ""}"#;
        let (_, reply) =
            read_reply(&role.schema, &role.schema, valid, StopReason::MaxTokens).unwrap();
        assert_eq!(reply, valid, "a valid reply is kept as written");
    }
}
