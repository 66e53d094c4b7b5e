use super::context::*;
use super::*;
use crate::llm::grammar::tests::gbnf_accepts;

fn chunk() -> ChunkCtx {
    ChunkCtx {
        file: "notes/errors.md".into(),
        kind: "markdown".into(),
        line_start: 3,
        line_end: 9,
        heading: "Errors > Propagation".into(),
        text: "Use `?` to propagate errors.".into(),
        terms: vec!["Propagation".into()],
    }
}

#[test]
fn built_in_roles_load_with_grammars() {
    let agents = Agents::load(None, None).unwrap();
    let names: Vec<&str> = agents.roles().map(|r| r.spec.name.as_str()).collect();
    // The validator and the writer are built in but off: with the default model neither
    // changes a page.
    assert_eq!(names, ["extractor", "synthesizer"]);
    for r in agents.roles() {
        assert!(r.grammar.contains("root ::="), "{}", r.spec.name);
    }
    assert_eq!(
        agents.by_output(OutputKind::Findings).unwrap().spec.input,
        InputKind::Chunk
    );
}

#[test]
fn prompts_put_the_chunk_before_the_instructions() {
    let agents = Agents::load(None, None).unwrap();
    let role = agents.role("extractor").unwrap();
    let msgs = agents
        .messages(role, &ChunkPrompt { chunk: chunk() })
        .unwrap();
    assert_eq!(msgs[0].role, "system");
    let user = &msgs[1].content;
    let text_at = user.find("Use `?` to propagate").unwrap();
    let task_at = user.find("Task:").unwrap();
    assert!(
        text_at < task_at,
        "chunk first, so roles share its KV prefix:\n{user}"
    );
    assert!(user.contains("notes/errors.md (lines 3-9)"));
    assert!(user.contains("Section: Errors > Propagation"));
}

#[test]
fn a_role_added_as_a_file_needs_no_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let agents_dir = dir.path().join("agents");
    let prompts_dir = dir.path().join("prompts");
    std::fs::create_dir_all(&agents_dir).unwrap();
    std::fs::create_dir_all(&prompts_dir).unwrap();
    std::fs::write(
        agents_dir.join("security.toml"),
        r#"
name = "security"
description = "Flags unsafe code"
input = "chunk"
output = "notes"
prompt = "security.tera"
schema = '{"type":"object","properties":{"risky":{"type":"boolean"}},"required":["risky"]}'
"#,
    )
    .unwrap();
    std::fs::write(
        prompts_dir.join("security.tera"),
        "{{ chunk.text }}\nIs it risky?",
    )
    .unwrap();
    let agents = Agents::load(Some(&agents_dir), Some(&prompts_dir)).unwrap();
    let role = agents.role("security").unwrap();
    assert_eq!(role.spec.stage, "security");
    assert_eq!(agents.chunk_roles().count(), 2);
    let msgs = agents
        .messages(role, &ChunkPrompt { chunk: chunk() })
        .unwrap();
    assert!(msgs[1].content.ends_with("Is it risky?"));
}

#[test]
fn a_broken_template_is_reported_before_any_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("extractor.tera"), "{% for x in %}\nbroken").unwrap();
    let err = Agents::load(None, Some(dir.path())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("extractor.tera"), "{msg}");
    assert!(
        msg.contains("line 1") || msg.contains("1:"),
        "names the line: {msg}"
    );
}

#[test]
fn a_role_with_a_bad_schema_or_missing_prompt_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("odd.toml"),
        "name = \"odd\"\ninput = \"chunk\"\nprompt = \"nope.tera\"\nschema = '{}'\n",
    )
    .unwrap();
    let err = Agents::load(Some(dir.path()), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("odd.toml") && err.contains("nope.tera"),
        "{err}"
    );
}

#[test]
fn init_writes_the_defaults_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_defaults(dir.path()).unwrap();
    assert_eq!(first.len(), DEFAULT_AGENTS.len() + DEFAULT_PROMPTS.len());
    assert!(write_defaults(dir.path()).unwrap().is_empty());
    Agents::load(
        Some(&dir.path().join("agents")),
        Some(&dir.path().join("prompts")),
    )
    .unwrap();
}

#[test]
fn a_two_line_file_switches_a_built_in_role_off() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("off.toml"),
        "name = \"synthesizer\"\nenabled = false\n",
    )
    .unwrap();
    let agents = Agents::load(Some(dir.path()), None).unwrap();
    assert!(agents.role("synthesizer").is_err());
    assert!(agents.by_output(OutputKind::Overview).is_none());
    assert!(agents.role("extractor").is_ok());
}

#[test]
fn a_two_line_file_switches_a_built_in_role_on_as_built_in() {
    assert!(Agents::load(None, None).unwrap().role("validator").is_err());
    // Named anything, or after the built-in file (which it then switches, not replaces).
    for file in ["on.toml", "validator.toml"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(file),
            "name = \"validator\"\nenabled = true\n",
        )
        .unwrap();
        let agents = Agents::load(Some(dir.path()), None).unwrap();
        assert!(agents.role("validator").is_ok(), "{file}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("on.toml"),
        "name = \"validator\"\nenabled = true\n",
    )
    .unwrap();
    let agents = Agents::load(Some(dir.path()), None).unwrap();
    let v = agents.role("validator").unwrap();
    assert_eq!(v.spec.stage, "validate");
    assert!(!v.spec.veto, "the built-in spec, advisory");
    assert!(v.grammar.contains("root ::="));
    assert_eq!(
        agents.by_output(OutputKind::Verdicts).unwrap().spec.name,
        "validator"
    );
}

#[test]
fn the_extractor_names_one_of_the_chunks_terms_when_it_has_any() {
    let agents = Agents::load(None, None).unwrap();
    let role = agents.role("extractor").unwrap();
    let msgs = agents
        .messages(role, &ChunkPrompt { chunk: chunk() })
        .unwrap();
    assert!(msgs[1]
        .content
        .contains("Terms used in the text: Propagation"));

    let text = "Use `?` to propagate errors.";
    let terms = vec![
        "Propagation".to_string(),
        "question mark operator".to_string(),
    ];
    let limited = role.grammar_for(text, &terms).unwrap();
    assert!(
        limited.contains("\\\"question mark operator\\\""),
        "{limited}"
    );
    // A reply naming a term parses; the grammar offers no other name.
    let free = role.grammar_for(text, &[]).unwrap();
    assert!(!free.contains("question mark operator"));
    assert_ne!(limited, free);
}

const TEXT: &str = "A builder collects options. It ends with build.";

/// The extractor's reply naming `name`, compact (the grammar admits it when it admits the name).
fn reply_naming(name: &str) -> String {
    serde_json::json!({"findings": [{"name": name, "category": "idiom",
        "summary": "Collects the options.", "evidence": "A builder collects options."}]})
    .to_string()
}

/// Issue 16, item 10: terms shorter than the name's `minLength` were offered, picked by the
/// model and refused by validation, every time.
#[test]
fn a_term_the_name_field_refuses_is_not_offered() {
    let agents = Agents::with_writer();
    let role = agents.role("extractor").unwrap();
    let terms: Vec<String> = ["T", "'a", "Builder"].map(String::from).to_vec();
    let g = role.grammar_for(TEXT, &terms).unwrap();
    for (name, admitted) in [("T", false), ("'a", false), ("Builder", true)] {
        let reply = reply_naming(name);
        assert_eq!(gbnf_accepts(&g, &reply), admitted, "{reply}\n{g}");
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(grammar::validate(&role.schema, &v).is_ok(), admitted);
    }
    // No term the field accepts: the name is free, as for a chunk without terms.
    let short: Vec<String> = ["T", "'a"].map(String::from).to_vec();
    assert_eq!(
        role.grammar_for(TEXT, &short).unwrap(),
        role.grammar_for(TEXT, &[]).unwrap()
    );
    // The prompt lists, and a `terms_required` role is asked about, only usable terms.
    assert_eq!(role.usable_terms(terms.clone()), ["Builder"]);
    assert!(role.usable_terms(short).is_empty());
    let writer = agents.role("writer").unwrap();
    assert_eq!(writer.usable_terms(terms.clone()), terms);
}

#[test]
fn a_code_line_longer_than_the_code_field_allows_is_not_offered() {
    let agents = Agents::load(None, None).unwrap();
    let mut role = agents.role("extractor").unwrap().clone();
    role.schema["properties"]["findings"]["items"]["properties"]["code"]["maxLength"] = 24.into();
    role.grammar = grammar::schema_to_gbnf(&role.schema).unwrap();
    let long = "let b = Builder::new().name(\"x\").build();";
    let text =
        format!("A builder collects options.\n\n```rust\n{long}\nlet b = Builder::new();\n```\n");
    let (schema, g) = role.constrained(&text, &["Builder".to_string()]).unwrap();
    let with_code = |code: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&reply_naming("Builder")).unwrap();
        v["findings"][0]["code"] = code.into();
        v.to_string()
    };
    assert!(gbnf_accepts(&g, &with_code("let b = Builder::new();")));
    assert!(!gbnf_accepts(&g, &with_code(long)), "{g}");
    assert_eq!(
        schema["properties"]["findings"]["items"]["properties"]["code"]["enum"],
        serde_json::json!(["let b = Builder::new();", ""])
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Whatever the name field's string constraints and the chunk's terms, a term the
    /// grammar admits as the name is one the role's schema accepts (and the other way round).
    #[test]
    fn every_term_the_grammar_admits_is_valid(
        min in 0u64..6,
        span in proptest::option::of(0u64..8),
        terms in proptest::collection::vec(r#"[a-cT'\\" é]{0,9}"#, 0..6),
    ) {
        let agents = Agents::load(None, None).unwrap();
        let mut role = agents.role("extractor").unwrap().clone();
        let name = &mut role.schema["properties"]["findings"]["items"]["properties"]["name"];
        *name = serde_json::json!({"type": "string", "minLength": min});
        if let Some(span) = span {
            name["maxLength"] = serde_json::json!(min + span);
        }
        role.grammar = grammar::schema_to_gbnf(&role.schema).unwrap();
        let g = role.grammar_for(TEXT, &terms).unwrap();
        for t in &terms {
            let reply = reply_naming(t);
            let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
            let valid = grammar::validate(&role.schema, &v).is_ok();
            let admitted = gbnf_accepts(&g, &reply);
            proptest::prop_assert!(!admitted || valid, "{} admitted but invalid", reply);
            proptest::prop_assert_eq!(admitted, valid, "{}", reply);
        }
    }
}

#[test]
fn dotted_paths_go_through_arrays() {
    let mut schema = serde_json::json!({"type":"object","properties":{"findings":{"type":"array","items":{"type":"object","properties":{"evidence":{"type":"string"}}}}}});
    assert!(property_mut(&mut schema, "findings.evidence").is_some());
    assert!(property_mut(&mut schema, "findings.nope").is_none());
    assert_eq!(
        property(&schema, "findings.evidence"),
        Some(&serde_json::json!({"type":"string"}))
    );
    assert!(property(&schema, "nope").is_none());
}

/// The live view names a job's input by the kind stored with the job, whatever its stage is
/// called: every kind reads back from its name, and no other name reads as one.
#[test]
fn an_input_kind_reads_back_from_its_name() {
    for kind in [
        InputKind::Chunk,
        InputKind::Findings,
        InputKind::Pattern,
        InputKind::Kb,
    ] {
        assert_eq!(InputKind::from_name(kind.as_str()), Some(kind));
    }
    assert_eq!(InputKind::from_name("write"), None);
}
