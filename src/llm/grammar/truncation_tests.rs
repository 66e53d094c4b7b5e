//! Tests of [`close_truncated`]: a reply cut at the token limit, closed by its schema.

use super::{close_truncated, validate};
use serde_json::{json, Value};

fn page_schema() -> Value {
    json!({"type":"object","properties":{
        "summary":{"type":"string","minLength":10,"maxLength":400},
        "when_to_use":{"type":"string","maxLength":300},
        "pitfalls":{"type":"string","maxLength":300}},
        "required":["summary","pitfalls"]})
}

/// The extractor's schema (agents/extractor.toml); with `limited`, its name, evidence
/// and code limited to lists of values as `Role::constrained` does.
fn findings_schema(limited: bool) -> Value {
    let mut s = json!({"type":"object","properties":{
        "findings":{"type":"array","maxItems":3,"items":{"type":"object","properties":{
            "name":{"type":"string","minLength":3,"maxLength":60},
            "category":{"type":"string","enum":["idiom","design pattern","anti-pattern","functional","structural","other"]},
            "summary":{"type":"string","minLength":10,"maxLength":160},
            "evidence":{"type":"string","minLength":8,"maxLength":160},
            "code":{"type":"string","maxLength":160}},
            "required":["name","category","summary","evidence"]}}},
        "required":["findings"]});
    if limited {
        let item = &mut s["properties"]["findings"]["items"]["properties"];
        item["name"] = json!({"type":"string","enum":["Builder pattern","Builder","Newtype"]});
        item["evidence"] = json!({"type":"string","enum":[
            "A builder collects options.","A builder collects options before it builds."]});
        item["code"] = json!({"type":"string","enum":["let b = Builder::new();",""]});
    }
    s
}

fn closed(schema: &Value, cut: &str) -> Value {
    let text = close_truncated(schema, cut).unwrap_or_else(|e| panic!("{cut}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(validate(schema, &v), Ok(()), "{cut} closed as {text}");
    v
}

const FIRST: &str = r#"{"findings": [
  {"name": "Builder", "category": "idiom", "summary": "Collects the settings first.", "evidence": "A builder collects options."},
  "#;

fn first() -> Value {
    json!({"name": "Builder", "category": "idiom", "summary": "Collects the settings first.",
        "evidence": "A builder collects options."})
}

#[test]
fn a_reply_cut_inside_a_text_value_is_closed_at_its_last_word() {
    let cut = r#"{"summary": "Collects settings.", "pitfalls": "Easy to forget the bu"#;
    assert_eq!(
        close_truncated(&page_schema(), cut).unwrap(),
        r#"{"summary":"Collects settings.","pitfalls":"Easy to forget the…"}"#
    );
    let nested = format!(
        r#"{FIRST}{{"name": "Newtype", "category": "idiom", "summary": "Wraps it.", "evidence": "A builder collects options.", "code": "let b", "note": 1}}]}}"#
    );
    assert!(
        close_truncated(&findings_schema(false), &nested).is_err(),
        "not a cut: invalid"
    );
    let v = closed(
        &findings_schema(false),
        &format!(
            r#"{FIRST}{{"name": "Newtype", "category": "idiom", "summary": "It \"wraps\" a ty"#
        ),
    );
    assert_eq!(
        v["findings"].as_array().unwrap().len(),
        1,
        "no evidence: dropped"
    );
    let v = closed(
        &findings_schema(false),
        &format!(
            r#"{FIRST}{{"name": "Newtype", "category": "idiom", "summary": "It wraps a type.", "evidence": "It \"wraps\" a ty"#
        ),
    );
    assert_eq!(v["findings"][1]["evidence"], "It \"wraps\" a…");
    // Within maxLength, "…" included.
    let s = json!({"type":"object","properties":{"t":{"type":"string","maxLength":5}}});
    assert_eq!(closed(&s, r#"{"t": "abcde"#), json!({"t":"abcd…"}));
}

/// Issue 16, item 9: an extractor reply cut inside its list, outside a text field, died.
#[test]
fn a_reply_cut_inside_a_list_drops_the_unfinished_element() {
    let schema = findings_schema(false);
    let want = json!({ "findings": [first()] });
    for tail in [
        "",
        "{",
        r#"{"na"#,
        r#"{"name""#,
        r#"{"name": "#,
        r#"{"name": "Newtype", "#,
        r#"{"name": "Newtype", "category": "idi"#,
        r#"{"name": "Newtype", "category": "idiom", "summary": "Wraps a type in a str"#,
        r#"{"name": "Newtype", "category": "idiom", "summary": "Wraps a type.", "evidence": "sh"#,
    ] {
        let cut = format!("{FIRST}{tail}");
        assert_eq!(closed(&schema, &cut), want, "{cut}");
    }
    // Cut right after the first finding, before its comma, and inside a key.
    let whole = &FIRST[..FIRST.rfind(',').unwrap()];
    assert_eq!(closed(&schema, whole), want);
    // An object cut before its closing brace with every required member is kept.
    assert_eq!(closed(&schema, &whole[..whole.len() - 1]), want);
    assert_eq!(
        closed(&schema, r#"{"findings": ["#),
        json!({"findings": []})
    );
}

#[test]
fn a_cut_term_quote_or_literal_becomes_the_value_it_begins() {
    let schema = findings_schema(true);
    let head = r#"{"findings": [{"name": "Builder", "category": "idiom", "summary": "Collects the settings first.", "evidence": "A builder coll"#;
    let v = closed(&schema, head);
    assert_eq!(
        v["findings"][0]["evidence"], "A builder collects options.",
        "the shortest"
    );
    let v = closed(
        &schema,
        &format!(r#"{head}ects options.", "code": "let b = Bu"#),
    );
    assert_eq!(v["findings"][0]["code"], "let b = Builder::new();");
    let v = closed(&schema, &format!(r#"{head}ects options.", "code": "#));
    assert_eq!(
        v["findings"][0].get("code"),
        None,
        "an optional member not begun"
    );
    // A cut that begins no allowed value is dropped.
    let odd = r#"{"findings": [{"name": "Builder", "category": "idiom", "summary": "Collects the settings first.", "evidence": "Nothing"#;
    assert_eq!(closed(&schema, odd), json!({"findings": []}));

    let s = json!({"type":"object","properties":{
        "ok":{"type":"boolean"},"n":{"type":"integer"},"z":{"type":["null","string"]},
        "e":{"enum":[12, 1234, "x"]}}});
    assert_eq!(closed(&s, r#"{"ok": tr"#), json!({"ok": true}));
    assert_eq!(
        closed(&s, r#"{"ok": false, "z": n"#),
        json!({"ok": false, "z": null})
    );
    assert_eq!(
        closed(&s, r#"{"ok": false, "n": 12"#),
        json!({"ok": false}),
        "digits unknown"
    );
    assert_eq!(closed(&s, r#"{"e": 12"#), json!({"e": 12}));
    assert_eq!(closed(&s, r#"{"e": 123"#), json!({"e": 1234}));
}

#[test]
fn a_cut_with_no_valid_completion_is_an_error() {
    let schema = findings_schema(false);
    for cut in ["", "{", r#"{"find"#, r#"{"findings""#, r#"{"findings": "#] {
        let e = close_truncated(&schema, cut).unwrap_err();
        assert!(
            e.contains("findings") || e.contains("cut before"),
            "{cut}: {e}"
        );
    }
    let e =
        close_truncated(&page_schema(), r#"{"summary": "Collects settings.", "pitf"#).unwrap_err();
    assert!(e.contains(r#"missing required property "pitfalls""#), "{e}");
    // Too short once cut: the required summary cannot be closed.
    let e = close_truncated(&page_schema(), r#"{"summary": "Coll"#).unwrap_err();
    assert!(e.contains("shorter than 10"), "{e}");
    assert!(
        close_truncated(&page_schema(), r#"{"summary" 1"#).is_err(),
        "not JSON"
    );
    assert!(close_truncated(&json!({"type":"string","pattern":"x"}), r#""ab"#).is_err());
}

/// Every cut of a reply the grammar admits either closes into a reply the schema
/// accepts, keeping every finding written whole, or (cut before the list began) fails.
#[test]
fn every_cut_of_a_reply_closes_into_a_valid_reply_or_fails() {
    let reply = json!({"findings": [
        {"name": "Builder", "category": "design pattern", "summary": "Collects the \"settings\" first, ünïcode 😀.",
         "evidence": "A builder collects options.", "code": "let b = Builder::new();"},
        {"name": "Newtype", "category": "idiom", "summary": "Wraps one type in another.",
         "evidence": "A builder collects options before it builds."}]});
    let compact = serde_json::to_string(&reply).unwrap();
    let pretty = serde_json::to_string_pretty(&reply).unwrap();
    // With escapes that a cut can split: \u00fc, a surrogate pair, \n.
    let escaped = compact
        .replace('ü', "\\u00fc")
        .replace('😀', "\\ud83d\\ude00")
        .replace("first,", "first,\\n");
    let want_escaped: Value = serde_json::from_str(&escaped).unwrap();
    for (text, whole) in [
        (&compact, &reply),
        (&pretty, &reply),
        (&escaped, &want_escaped),
    ] {
        for schema in [findings_schema(false), findings_schema(true)] {
            assert_eq!(validate(&schema, whole), Ok(()));
            let list_at = text.find('[').unwrap();
            for (at, _) in text.char_indices().skip(1) {
                let cut = &text[..at];
                match close_truncated(&schema, cut) {
                    Ok(c) => {
                        let v: Value = serde_json::from_str(&c).unwrap();
                        assert_eq!(validate(&schema, &v), Ok(()), "{cut}");
                        let got = v["findings"].as_array().unwrap();
                        let all = whole["findings"].as_array().unwrap();
                        assert!(got.len() <= all.len());
                        // Whole findings are kept as they were, except a cut text field.
                        for (g, w) in got.iter().zip(all) {
                            assert_eq!(g["name"], w["name"], "{cut}");
                            assert_eq!(g["category"], w["category"], "{cut}");
                        }
                    }
                    Err(e) => assert!(at <= list_at, "{cut}: {e}"),
                }
            }
            assert!(close_truncated(&schema, text).is_ok(), "a whole reply");
        }
    }
}
