//! Tests of the grammar compiler, [`validate`] and [`admissible`], read by the GBNF matcher.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::matcher::{check_structure, Gbnf};
use super::*;

/// For tests elsewhere (`agent`): whether a grammar admits a reply.
pub(crate) use super::matcher::gbnf_accepts;

fn grammar(schema: &Value) -> Gbnf {
    check_structure(&schema_to_gbnf(schema).expect("schema should compile"))
}

fn findings_schema() -> Value {
    json!({"type":"object","properties":{"findings":{"type":"array","maxItems":4,"items":{"type":"object","properties":{"pattern":{"type":"string","maxLength":60},"category":{"type":"string","enum":["idiom","design pattern","anti-pattern","functional","other"]},"summary":{"type":"string","maxLength":300},"evidence":{"type":"string","maxLength":300},"code":{"type":"string","maxLength":400}},"required":["pattern","category","summary","evidence"]}}},"required":["findings"]})
}

fn verdict_schema() -> Value {
    json!({"type":"object","properties":{"verdict":{"enum":["accept","reject"]},"reason":{"type":"string","maxLength":200}},"required":["verdict","reason"]})
}

fn finding(pattern: &str) -> Value {
    json!({"pattern": pattern, "category": "idiom", "summary": "s", "evidence": "e"})
}

// ------------------------------------------------------------------ exact grammar output

const FINDINGS_GBNF: &str = r#"root ::= "{" ws "\"findings\"" ws ":" ws findings ws "}"
findings ::= "[" ws ( findings-item ( ws "," ws findings-item ){0,3} )? ws "]"
findings-item ::= "{" ws "\"pattern\"" ws ":" ws findings-item-pattern ws "," ws "\"category\"" ws ":" ws findings-item-category ws "," ws "\"summary\"" ws ":" ws findings-item-summary ws "," ws "\"evidence\"" ws ":" ws findings-item-evidence ( ws "," ws "\"code\"" ws ":" ws findings-item-code )? ws "}"
findings-item-pattern ::= "\"" char{0,60} "\""
findings-item-category ::= "\"idiom\"" | "\"design pattern\"" | "\"anti-pattern\"" | "\"functional\"" | "\"other\""
findings-item-summary ::= "\"" char{0,300} "\""
findings-item-evidence ::= "\"" char{0,300} "\""
findings-item-code ::= "\"" char{0,400} "\""
ws ::= ( " " | "\n" [ \t]{0,8} )?
char ::= [^"\\\x00-\x1f\x7f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
"#;

const VERDICT_GBNF: &str = r#"root ::= "{" ws "\"verdict\"" ws ":" ws verdict ws "," ws "\"reason\"" ws ":" ws reason ws "}"
verdict ::= "\"accept\"" | "\"reject\""
reason ::= "\"" char{0,200} "\""
ws ::= ( " " | "\n" [ \t]{0,8} )?
char ::= [^"\\\x00-\x1f\x7f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
"#;

#[test]
fn findings_grammar_exact() {
    let g = schema_to_gbnf(&findings_schema()).unwrap();
    assert_eq!(g, FINDINGS_GBNF);
    check_structure(&g);
}

#[test]
fn verdict_grammar_exact() {
    let g = schema_to_gbnf(&verdict_schema()).unwrap();
    assert_eq!(g, VERDICT_GBNF);
    check_structure(&g);
}

#[test]
fn output_is_deterministic() {
    let a = schema_to_gbnf(&findings_schema()).unwrap();
    let b = schema_to_gbnf(&findings_schema()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn primitive_rules_exact() {
    let s = json!({"type":"object","properties":{
        "s":{"type":"string"},"i":{"type":"integer"},"n":{"type":"number"},
        "b":{"type":"boolean"},"z":{"type":"null"}},
        "required":["s","i","n","b","z"]});
    let g = schema_to_gbnf(&s).unwrap();
    let prims: Vec<&str> = g.lines().skip(1).collect();
    assert_eq!(
        prims,
        [
            r#"ws ::= ( " " | "\n" [ \t]{0,8} )?"#,
            r#"char ::= [^"\\\x00-\x1f\x7f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )"#,
            r#"string ::= "\"" char{0,512} "\"""#,
            r#"integer ::= "-"? ( "0" | [1-9] [0-9]{0,15} )"#,
            r#"number ::= "-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?"#,
            r#"boolean ::= "true" | "false""#,
            r#"null ::= "null""#,
        ]
    );
    check_structure(&g);
}

// ------------------------------------------------------------------ recognizer behaviour

#[test]
fn findings_grammar_accepts_valid_replies() {
    let g = grammar(&findings_schema());
    let one = json!({"findings":[finding("Builder")]});
    let full = json!({"findings":[
        {"pattern":"RAII","category":"design pattern","summary":"Drop closes it.",
         "evidence":"impl Drop for Guard","code":"fn drop(&mut self) {\n    close();\n}"},
        finding("newtype"), finding("é ünïcode \"quoted\" \\ back"), finding("")]});
    for v in [json!({"findings":[]}), one, full] {
        let compact = serde_json::to_string(&v).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        assert!(g.accepts(&compact), "{compact}");
        assert!(g.accepts(&pretty), "{pretty}");
        assert_eq!(validate(&findings_schema(), &v), Ok(()));
    }
    assert!(g.accepts(r#"{ "findings" : [ ] }"#));
    assert!(g.accepts(r#"{"findings":[{"pattern":"\u00e9\t","category":"other","summary":"a\/b","evidence":"\"x\""}]}"#));
}

#[test]
fn findings_grammar_rejects_invalid_replies() {
    let g = grammar(&findings_schema());
    let long = "x".repeat(61);
    let five: Vec<Value> = (0..5).map(|i| finding(&i.to_string())).collect();
    let bad = [
        json!({}),
        json!({"findings":[finding(&long)]}),
        json!({"findings": five}),
        json!({"findings":[{"pattern":"p","category":"idiom","summary":"s"}]}),
        json!({"findings":[{"pattern":"p","category":"nope","summary":"s","evidence":"e"}]}),
        json!({"findings":[], "extra": 1}),
        json!({"findings":[{"category":"idiom","pattern":"p","summary":"s","evidence":"e"}]}),
    ];
    for v in bad {
        let text = serde_json::to_string(&v).unwrap();
        assert!(!g.accepts(&text), "should reject {text}");
    }
    // Raw control characters in strings, unknown escapes, trailing commas.
    assert!(!g.accepts("{\"findings\":[{\"pattern\":\"a\nb\",\"category\":\"idiom\",\"summary\":\"s\",\"evidence\":\"e\"}]}"));
    assert!(!g.accepts(
        r#"{"findings":[{"pattern":"\q","category":"idiom","summary":"s","evidence":"e"}]}"#
    ));
    assert!(!g.accepts(r#"{"findings":[],}"#));
    // Whitespace is bounded: one newline plus up to 8 spaces, never a run of blank lines.
    assert!(g.accepts("{\n        \"findings\": []\n}"));
    assert!(!g.accepts("{\n\n\n\"findings\": []}"));
    assert!(!g.accepts("{\n          \"findings\": []}"));
}

#[test]
fn verdict_grammar_behaviour() {
    let g = grammar(&verdict_schema());
    assert!(g.accepts(r#"{"verdict":"accept","reason":"fine"}"#));
    assert!(g.accepts(r#"{ "verdict": "reject", "reason": "" }"#));
    assert!(!g.accepts(r#"{"verdict":"maybe","reason":"fine"}"#));
    assert!(!g.accepts(r#"{"verdict":"accept"}"#));
    let long = format!(r#"{{"verdict":"accept","reason":"{}"}}"#, "y".repeat(201));
    assert!(!g.accepts(&long));
}

#[test]
fn optional_properties_keep_order_and_commas() {
    let s = json!({"type":"object","properties":{
        "a":{"type":"boolean"},"b":{"type":"boolean"},"c":{"type":"boolean"}},"required":["b"]});
    let g = grammar(&s);
    for ok in [
        r#"{"b":true}"#,
        r#"{"a":true,"b":false}"#,
        r#"{"b":true,"c":true}"#,
        r#"{"a":true,"b":true,"c":false}"#,
    ] {
        assert!(g.accepts(ok), "{ok}");
    }
    for bad in [
        r#"{}"#,
        r#"{"a":true}"#,
        r#"{"b":true,"a":true}"#,
        r#"{"a":true,,"b":true}"#,
        r#"{,"b":true}"#,
    ] {
        assert!(!g.accepts(bad), "{bad}");
    }

    let all_opt = json!({"type":"object","properties":{
        "a":{"type":"null"},"b":{"type":"null"},"c":{"type":"null"}}});
    let g = grammar(&all_opt);
    for ok in [
        r#"{}"#,
        r#"{"a":null}"#,
        r#"{"c":null}"#,
        r#"{"a":null,"c":null}"#,
        r#"{"a":null,"b":null,"c":null}"#,
        r#"{"b":null,"c":null}"#,
    ] {
        assert!(g.accepts(ok), "{ok}");
    }
    for bad in [
        r#"{"c":null,"a":null}"#,
        r#"{"a":null,}"#,
        r#"{,"a":null}"#,
        r#"{"d":null}"#,
    ] {
        assert!(!g.accepts(bad), "{bad}");
    }

    let empty = json!({"type":"object"});
    let g = grammar(&empty);
    assert!(g.accepts("{}"));
    assert!(g.accepts("{ }"));
    assert!(!g.accepts(r#"{"a":1}"#));
}

#[test]
fn string_length_bounds() {
    let s = json!({"type":"string","minLength":2,"maxLength":4});
    let text = schema_to_gbnf(&s).unwrap();
    assert!(
        text.starts_with(r#"root ::= "\"" char{2,4} "\"""#),
        "{text}"
    );
    let g = check_structure(&text);
    assert!(!g.accepts(r#""a""#));
    assert!(g.accepts(r#""ab""#));
    assert!(g.accepts(r#""a\"b\n""#), "escapes count as one character");
    assert!(!g.accepts(r#""abcde""#));

    let exact = schema_to_gbnf(&json!({"type":"string","minLength":3,"maxLength":3})).unwrap();
    assert!(exact.contains("char{3} "), "{exact}");
    let empty = schema_to_gbnf(&json!({"type":"string","maxLength":0})).unwrap();
    assert!(empty.starts_with(r#"root ::= "\"\"""#), "{empty}");
    assert!(check_structure(&empty).accepts(r#""""#));

    // No maxLength: default cap.
    let g = grammar(&json!({"type":"string"}));
    assert!(g.accepts(&format!("\"{}\"", "z".repeat(512))));
    assert!(!g.accepts(&format!("\"{}\"", "z".repeat(513))));
    // minLength above the default cap raises the cap to minLength.
    let text = schema_to_gbnf(&json!({"type":"string","minLength":600})).unwrap();
    assert!(text.contains("char{600}"), "{text}");
    // Clamp to llama.cpp's repetition limit.
    let text = schema_to_gbnf(&json!({"type":"string","maxLength":100000})).unwrap();
    assert!(text.contains("char{0,2000}"), "{text}");
}

#[test]
fn array_bounds() {
    let item = json!({"type":"integer"});
    let g = grammar(&json!({"type":"array","items":item,"minItems":1,"maxItems":3}));
    assert!(!g.accepts("[]"));
    assert!(g.accepts("[1]"));
    assert!(g.accepts("[1, 2,3]"));
    assert!(!g.accepts("[1,2,3,4]"));
    assert!(!g.accepts("[1,]"));

    let text =
        schema_to_gbnf(&json!({"type":"array","items":item,"minItems":2,"maxItems":2})).unwrap();
    assert!(
        text.contains(r#"( ws "," ws integer )"#) && !text.contains("{1,1}"),
        "{text}"
    );
    let g = check_structure(&text);
    assert!(g.accepts("[1,2]") && !g.accepts("[1]") && !g.accepts("[1,2,3]"));

    let g = grammar(&json!({"type":"array","items":item,"maxItems":1}));
    assert!(g.accepts("[]") && g.accepts("[7]") && !g.accepts("[7,8]"));
    let g = grammar(&json!({"type":"array","items":item,"maxItems":0}));
    assert!(g.accepts("[]") && !g.accepts("[7]"));
    let g = grammar(&json!({"type":"array","maxItems":0}));
    assert!(g.accepts("[ ]"));

    // Default cap.
    let g = grammar(&json!({"type":"array","items":item}));
    let list = |n: usize| format!("[{}]", vec!["1"; n].join(","));
    assert!(g.accepts(&list(16)));
    assert!(!g.accepts(&list(17)));
}

#[test]
fn numbers_and_literals() {
    let g = grammar(&json!({"type":"integer"}));
    for ok in ["0", "-5", "1234567890123456"] {
        assert!(g.accepts(ok), "{ok}");
    }
    for bad in ["01", "1.5", "+1", "12345678901234567", "-"] {
        assert!(!g.accepts(bad), "{bad}");
    }
    let g = grammar(&json!({"type":"integer","minimum":0}));
    assert!(g.accepts("0") && !g.accepts("-1"));
    let g = grammar(&json!({"type":"integer","minimum":1}));
    assert!(g.accepts("1") && !g.accepts("0"));
    let g = grammar(&json!({"type":"integer","exclusiveMinimum":0}));
    assert!(g.accepts("3") && !g.accepts("0"));
    let g = grammar(&json!({"type":"number"}));
    for ok in ["0", "-0.25", "1.5e-3", "2E10", "10"] {
        assert!(g.accepts(ok), "{ok}");
    }
    for bad in ["1.", ".5", "1e", "NaN"] {
        assert!(!g.accepts(bad), "{bad}");
    }
    let g = grammar(&json!({"type":"boolean"}));
    assert!(g.accepts("true") && g.accepts("false") && !g.accepts("True"));
    let g = grammar(&json!({"type":"null"}));
    assert!(g.accepts("null") && !g.accepts("nil"));

    let g = grammar(&json!({"const":"fixed \"q\""}));
    assert!(g.accepts(r#""fixed \"q\"""#) && !g.accepts(r#""fixed""#));
    let g = grammar(&json!({"enum":[1, true, null, "x\ny"]}));
    for ok in ["1", "true", "null", r#""x\ny""#] {
        assert!(g.accepts(ok), "{ok}");
    }
    assert!(!g.accepts("false"));
}

#[test]
fn refs_anyof_and_type_arrays() {
    let s = json!({
        "$defs":{"node":{"type":"object","properties":{
            "name":{"type":["string","null"],"maxLength":5},
            "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["name"]},
            "alias":{"$ref":"#/$defs/node"},
            "word":{"type":"string","maxLength":3}},
        "type":"object",
        "properties":{
            "tree":{"$ref":"#/$defs/alias"},
            "w":{"$ref":"#/$defs/word"},
            "w2":{"$ref":"#/$defs/word"},
            "x":{"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]},
            "y":{"oneOf":[{"const":"a"},{"type":"boolean"}]}},
        "required":["tree","w","w2","x","y"]});
    let text = schema_to_gbnf(&s).unwrap();
    let g = check_structure(&text);
    let ok = r#"{"tree":{"name":"root","kids":[{"name":null},{"name":"k","kids":[]}]},"w":"abc","w2":"","x":5,"y":"a"}"#;
    assert!(g.accepts(ok), "{text}");
    assert!(g.accepts(r#"{"tree":{"name":null},"w":"a","w2":"b","x":"hi","y":false}"#));
    assert!(!g.accepts(r#"{"tree":{"name":"toolong"},"w":"a","w2":"b","x":1,"y":true}"#));
    assert!(!g.accepts(r#"{"tree":{"name":null},"w":"abcd","w2":"b","x":1,"y":true}"#));
    assert!(!g.accepts(r#"{"tree":{"name":null},"w":"a","w2":"b","x":"hey","y":true}"#));
    assert!(!g.accepts(r#"{"tree":{"name":null},"w":"a","w2":"b","x":1,"y":"b"}"#));
    // The shared def is emitted once.
    assert_eq!(text.matches("\nword ::= ").count(), 1, "{text}");
    assert_eq!(text.matches("\nnode ::= ").count(), 1, "{text}");
    assert_eq!(validate(&s, &serde_json::from_str(ok).unwrap()), Ok(()));
}

#[test]
fn rule_names_are_sanitized_and_unique() {
    let s = json!({"type":"object","properties":{
        "Foo Bar":{"type":"string","maxLength":1},
        "foo_bar":{"type":"string","maxLength":2},
        "ws":{"type":"string","maxLength":3},
        "root":{"type":"string","maxLength":4},
        "日本":{"type":"string","maxLength":5},
        "--":{"enum":["a"]},
        "quo\"te/slash":{"type":"boolean"}},
        "required":["Foo Bar","foo_bar","ws","root","日本","--","quo\"te/slash"]});
    let text = schema_to_gbnf(&s).unwrap();
    let g = check_structure(&text);
    let names: BTreeSet<&str> = g.rules.keys().map(String::as_str).collect();
    for n in ["foo-bar", "foo-bar-2", "ws-2", "root-2", "prop", "prop-2"] {
        assert!(names.contains(n), "missing {n} in {names:?}\n{text}");
    }
    assert!(g.accepts(r#"{"Foo Bar":"a","foo_bar":"bb","ws":"ccc","root":"dddd","日本":"eeeee","--":"a","quo\"te/slash":true}"#), "{text}");
}

// ------------------------------------------------------------------ schema errors

fn unsupported_at(schema: Value) -> String {
    match schema_to_gbnf(&schema) {
        Err(SchemaError::Unsupported { path, .. }) => path,
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

fn invalid_at(schema: Value) -> String {
    match schema_to_gbnf(&schema) {
        Err(SchemaError::Invalid { path, .. }) => path,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn unsupported_constructs_name_their_pointer() {
    let nested =
        |inner: Value| json!({"type":"object","properties":{"a":{"type":"array","items":inner}}});
    assert_eq!(
        unsupported_at(nested(
            json!({"type":"object","patternProperties":{"^x":{}}})
        )),
        "#/properties/a/items/patternProperties"
    );
    assert_eq!(
        unsupported_at(nested(json!({"type":"string","pattern":"^a"}))),
        "#/properties/a/items/pattern"
    );
    assert_eq!(
        unsupported_at(json!({"type":"object","additionalProperties":true})),
        "#/additionalProperties"
    );
    assert_eq!(
        unsupported_at(json!({"type":"object","properties":{"a/b~":{"allOf":[]}}})),
        "#/properties/a~1b~0/allOf"
    );
    assert_eq!(unsupported_at(nested(json!(true))), "#/properties/a/items");
    assert_eq!(
        unsupported_at(json!({"type":"array","items":[{"type":"null"}]})),
        "#/items"
    );
    assert_eq!(unsupported_at(json!({"type":"array"})), "#");
    assert_eq!(unsupported_at(json!({"description":"anything"})), "#");
    assert_eq!(unsupported_at(json!({"$ref":"other.json#/x"})), "#/$ref");
    assert_eq!(
        unsupported_at(json!({"$ref":"#/$defs/a","type":"string","$defs":{"a":{"type":"null"}}})),
        "#"
    );
    assert_eq!(unsupported_at(json!({"enum":[[1]]})), "#/enum/0");
    assert_eq!(
        unsupported_at(json!({"type":"string","minLength":5000})),
        "#/minLength"
    );
    let e = schema_to_gbnf(&nested(json!({"type":"string","pattern":"^a"}))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported schema construct at #/properties/a/items/pattern: keyword \"pattern\" is not supported"
    );
}

#[test]
fn annotations_are_ignored() {
    let s = json!({"$schema":"https://json-schema.org/draft/2020-12/schema","title":"t",
        "description":"d","type":"string","format":"date","x-extra":1,"default":"a",
        "examples":["b"],"$comment":"c"});
    assert!(schema_to_gbnf(&s).is_ok());
}

#[test]
fn invalid_schemas_name_their_pointer() {
    assert_eq!(
        invalid_at(json!({"type":"string","minLength":5,"maxLength":2})),
        "#"
    );
    assert_eq!(
        invalid_at(json!({"type":"string","maxLength":-1})),
        "#/maxLength"
    );
    assert_eq!(
        invalid_at(json!({"type":"string","maxLength":"3"})),
        "#/maxLength"
    );
    assert_eq!(
        invalid_at(json!({"type":"array","items":{},"minItems":3,"maxItems":1})),
        "#"
    );
    assert_eq!(
        invalid_at(json!({"type":"object","properties":{"a":{"type":"null"}},"required":["b"]})),
        "#/required/0"
    );
    assert_eq!(invalid_at(json!({"type":"strnig"})), "#/type");
    assert_eq!(invalid_at(json!({"type":["string", 3]})), "#/type/1");
    assert_eq!(invalid_at(json!({"enum":[]})), "#/enum");
    assert_eq!(
        invalid_at(json!({"type":"string","enum":["a", 1]})),
        "#/enum/1"
    );
    assert_eq!(invalid_at(json!({"$ref":"#/$defs/missing"})), "#/$ref");
    assert_eq!(
        invalid_at(
            json!({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})
        ),
        "#/$ref"
    );
    assert_eq!(invalid_at(json!(["not", "a", "schema"])), "#");
    assert_eq!(
        invalid_at(json!({"type":"integer","minimum":"0"})),
        "#/minimum"
    );
}

// ------------------------------------------------------------------ validate()

fn errors(schema: &Value, v: Value) -> Vec<String> {
    validate(schema, &v).expect_err("expected validation errors")
}

#[test]
fn validate_accepts_good_values() {
    assert_eq!(
        validate(&findings_schema(), &json!({"findings":[]})),
        Ok(())
    );
    assert_eq!(
        validate(
            &findings_schema(),
            &json!({"findings":[finding("p"), {"pattern":"q","category":"other","summary":"","evidence":"","code":"x"}]})
        ),
        Ok(())
    );
    assert_eq!(
        validate(
            &verdict_schema(),
            &json!({"verdict":"reject","reason":"bad"})
        ),
        Ok(())
    );
    // Property order is not checked by validate (the grammar enforces it).
    assert_eq!(
        validate(&verdict_schema(), &json!({"reason":"r","verdict":"accept"})),
        Ok(())
    );
    // Default grammar caps are not applied by validate.
    assert_eq!(
        validate(&json!({"type":"string"}), &json!("z".repeat(1000))),
        Ok(())
    );
    assert_eq!(validate(&json!({"type":"integer"}), &json!(2.0)), Ok(()));
    assert_eq!(validate(&json!({"type":"number"}), &json!(2)), Ok(()));
}

#[test]
fn validate_reports_each_violation_with_path() {
    let f = findings_schema();
    assert_eq!(
        errors(
            &f,
            json!({"findings":[finding("ok"), finding(&"x".repeat(61))]})
        ),
        ["$.findings[1].pattern: string longer than 60 characters"]
    );
    assert_eq!(
        errors(
            &f,
            json!({"findings":[finding("a"),finding("b"),finding("c"),finding("d"),finding("e")]})
        ),
        ["$.findings: array has 5 items, more than maxItems 4"]
    );
    assert_eq!(
        errors(&f, json!({})),
        [r#"$: missing required property "findings""#]
    );
    assert_eq!(
        errors(
            &f,
            json!({"findings":[{"pattern":"p","category":"idiom","summary":"s"}]})
        ),
        [r#"$.findings[0]: missing required property "evidence""#]
    );
    assert_eq!(
        errors(
            &f,
            json!({"findings":[{"pattern":"p","category":"vibe","summary":"s","evidence":"e"}]})
        ),
        [
            r#"$.findings[0].category: value "vibe" is not one of ["idiom", "design pattern", "anti-pattern", "functional", "other"]"#
        ]
    );
    assert_eq!(
        errors(&f, json!({"findings":[], "note": 1, "odd key": 2})),
        [
            "$.note: property not allowed by the schema",
            r#"$["odd key"]: property not allowed by the schema"#
        ]
    );
    assert_eq!(
        errors(&f, json!({"findings":"none"})),
        ["$.findings: expected array, got string"]
    );
    assert_eq!(errors(&f, json!([])), ["$: expected object, got array"]);
    assert_eq!(
        errors(
            &f,
            json!({"findings":[{"pattern":1,"category":"idiom","summary":"s","evidence":"e","code":null}]})
        ),
        [
            "$.findings[0].pattern: expected string, got integer",
            "$.findings[0].code: expected string, got null"
        ]
    );
    // All errors are collected.
    assert_eq!(
        errors(
            &verdict_schema(),
            json!({"verdict":"maybe","reason":"r".repeat(201),"x":true})
        )
        .len(),
        3
    );
}

#[test]
fn validate_lengths_counts_and_numbers() {
    let s = json!({"type":"object","properties":{
        "s":{"type":"string","minLength":2,"maxLength":3},
        "a":{"type":"array","items":{"type":"integer","minimum":0,"maximum":9},"minItems":2},
        "n":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1},
        "b":{"type":"boolean"},
        "z":{"type":["string","null"]},
        "c":{"const":3}}});
    assert_eq!(
        validate(
            &s,
            &json!({"s":"éé","a":[0,9],"n":0.5,"b":true,"z":null,"c":3})
        ),
        Ok(())
    );
    assert_eq!(validate(&s, &json!({"z":"text"})), Ok(()));
    assert_eq!(
        errors(&s, json!({"s":"a"})),
        ["$.s: string shorter than 2 characters"]
    );
    assert_eq!(
        errors(&s, json!({"s":"abcd"})),
        ["$.s: string longer than 3 characters"]
    );
    assert_eq!(
        errors(&s, json!({"a":[1]})),
        ["$.a: array has 1 items, fewer than minItems 2"]
    );
    assert_eq!(
        errors(&s, json!({"a":[-1, 10, 1.5]})),
        [
            "$.a[0]: -1 is less than minimum 0",
            "$.a[1]: 10 is greater than maximum 9",
            "$.a[2]: expected integer, got number"
        ]
    );
    assert_eq!(errors(&s, json!({"n":0})), ["$.n: 0 is not greater than 0"]);
    assert_eq!(errors(&s, json!({"n":1})), ["$.n: 1 is not less than 1"]);
    assert_eq!(
        errors(&s, json!({"b":"yes"})),
        ["$.b: expected boolean, got string"]
    );
    assert_eq!(
        errors(&s, json!({"z":1})),
        ["$.z: expected string or null, got integer"]
    );
    assert_eq!(errors(&s, json!({"c":4})), ["$.c: expected 3, got 4"]);
}

#[test]
fn validate_refs_and_alternatives() {
    let s = json!({"$defs":{"n":{"type":"object","properties":{
        "v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/n"},{"type":"null"}]}},"required":["v"]}},
        "type":"object","properties":{
            "list":{"$ref":"#/$defs/n"},
            "one":{"oneOf":[{"type":"integer"},{"type":"number"}]}}});
    assert_eq!(
        validate(&s, &json!({"list":{"v":1,"next":{"v":2,"next":null}}})),
        Ok(())
    );
    assert_eq!(validate(&s, &json!({"one":1.5})), Ok(()));
    let e = errors(&s, json!({"list":{"v":1,"next":{"v":"x"}}}));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("$.list.next: value matches none of the anyOf alternatives ([0] $.list.next.v: expected integer, got string | [1] $.list.next: expected null, got object)"),
        "{e:?}"
    );
    assert_eq!(
        errors(&s, json!({"one":1})),
        ["$.one: value matches 2 oneOf alternatives, expected exactly one"]
    );
}

#[test]
fn validate_rejects_unsupported_schema() {
    let e = errors(&json!({"type":"string","pattern":"x"}), json!("x"));
    assert_eq!(
        e,
        ["$: schema not usable: unsupported schema construct at #/pattern: keyword \"pattern\" is not supported"]
    );
}

// ------------------------------------------------------------------ admissible()

#[test]
fn admissible_keeps_only_values_the_field_accepts() {
    let terms: Vec<String> = ["T", "'a", "Builder", "Iter", "Iter", "abc", "toolong"]
        .map(String::from)
        .to_vec();
    let root = json!({});
    let field = json!({"type":"string","minLength":3,"maxLength":5});
    assert_eq!(admissible(&root, &field, &terms), ["Iter", "abc"]);
    let field = json!({"type":"string","enum":["abc","T","other"]});
    assert_eq!(admissible(&root, &field, &terms), ["T", "abc"]);
    assert!(admissible(&root, &json!({"type":"integer"}), &terms).is_empty());
    let root = json!({"$defs":{"w":{"type":"string","minLength":7}}});
    let field = json!({"$ref":"#/$defs/w"});
    assert_eq!(admissible(&root, &field, &terms), ["Builder", "toolong"]);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

    /// A field limited to the terms `admissible` keeps (or left free when it keeps none,
    /// as `Role::constrained` does) admits a term exactly when the schema accepts it.
    #[test]
    fn a_field_limited_to_admissible_terms_admits_only_valid_values(
        min in 0u64..5,
        span in proptest::option::of(0u64..6),
        listed in proptest::option::of(proptest::collection::vec("[a-c]{0,6}", 1..4)),
        terms in proptest::collection::vec(r#"[a-c'\\" é]{0,7}"#, 0..6),
    ) {
        let mut field = json!({"type":"string","minLength":min});
        if let Some(span) = span {
            field["maxLength"] = json!(min + span);
        }
        if let Some(listed) = &listed {
            field["enum"] = json!(listed);
        }
        let schema = json!({"type":"object","properties":{"findings":{"type":"array",
            "maxItems":2,"items":{"type":"object","properties":{"name":field},
            "required":["name"]}}},"required":["findings"]});
        let allowed = admissible(&schema, &field, &terms);
        let mut limited = schema.clone();
        if !allowed.is_empty() {
            limited["properties"]["findings"]["items"]["properties"]["name"] =
                json!({"type":"string","enum":allowed});
        }
        let g = grammar(&limited);
        for t in &terms {
            let reply = json!({"findings":[{"name":t}]});
            let valid = validate(&schema, &reply).is_ok();
            proptest::prop_assert_eq!(allowed.contains(t), valid, "{}", t);
            proptest::prop_assert_eq!(g.accepts(&reply.to_string()), valid, "{} in {:?}", t, allowed);
        }
    }
}
