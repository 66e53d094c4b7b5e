//! The embedding code path on a tiny BERT with random weights made here, and a tokenizer of
//! a dozen words: shapes, unit length, padding and truncation that change nothing, loading
//! from a folder and each way loading fails. The real model is tested in tests/retrieval.rs.

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::Config as BertConfig;
use tokenizers::Tokenizer;

use super::*;

pub(crate) const WORDS: &[&str] = &[
    "the", "borrow", "checker", "owns", "string", "slice", "guard", "drop", "error", "result",
    "builder", "pattern", "iterator", "lifetime",
];

fn tokenizer_json() -> String {
    let mut vocab = serde_json::Map::new();
    for (i, t) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        .iter()
        .chain(WORDS)
        .enumerate()
    {
        vocab.insert(t.to_string(), serde_json::json!(i));
    }
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab}
    })
    .to_string()
}

fn tiny_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": WORDS.len() + 4,
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "max_position_embeddings": 40,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "model_type": "bert"
    }))
    .unwrap()
}

/// A tiny BERT with random weights and a tokenizer of a dozen words.
pub(crate) fn tiny() -> (Embedder, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let tok: Tokenizer = tokenizer_json().parse().unwrap();
    let e = Embedder::new(vb, &tiny_config(), tok, "tiny").unwrap();
    (e, varmap)
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4)
}

#[test]
fn vectors_have_the_model_dimension_and_unit_length_and_differ_by_text() {
    let (e, _) = tiny();
    let v = e
        .embed_batch(&["the borrow checker", "a guard on drop", "iterator"])
        .unwrap();
    assert_eq!(v.len(), 3);
    for x in &v {
        assert_eq!(x.len(), 16);
        let norm: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    assert!(!close(&v[0], &v[1]), "different texts, different vectors");
    assert!(e.embed_batch(&[]).unwrap().is_empty());
}

#[test]
fn padding_in_a_batch_changes_no_vector() {
    // The short text is padded to the long one's length: the mask must keep the padding out
    // of attention and of the mean.
    let (e, _) = tiny();
    let short = "borrow checker";
    let long = "the builder pattern owns the string slice and the guard drops the error result";
    let alone = e.embed_batch(&[short]).unwrap();
    let together = e.embed_batch(&[short, long]).unwrap();
    assert!(
        close(&alone[0], &together[0]),
        "{:?} vs {:?}",
        alone[0],
        together[0]
    );
}

#[test]
fn a_long_text_is_cut_at_the_position_limit() {
    // The tiny model has 40 positions: a text of 200 words is cut to its first 38 words
    // (plus [CLS] and [SEP]) and embeds as those words do.
    let (e, _) = tiny();
    let words: Vec<&str> = (0..200).map(|i| WORDS[i % WORDS.len()]).collect();
    let long = words.join(" ");
    let head = words[..38].join(" ");
    assert_eq!(e.count_tokens(&long), 202);
    let v = e.embed_batch(&[long.as_str(), head.as_str()]).unwrap();
    assert!(close(&v[0], &v[1]));
}

#[test]
fn embed_all_sorts_by_length_but_answers_in_the_given_order() {
    let (e, _) = tiny();
    let texts = [
        "the builder pattern owns the string",
        "guard",
        "lifetime of a slice",
        "error",
        "the borrow checker and the iterator",
    ];
    let mut seen = Vec::new();
    let all = e.embed_all(&texts, 2, |n| seen.push(n)).unwrap();
    assert_eq!(seen, [2, 4, 5]);
    for (t, v) in texts.iter().zip(&all) {
        assert!(close(v, &e.embed_batch(&[t]).unwrap()[0]), "{t}");
    }
}

#[test]
fn loads_from_a_folder_and_says_what_is_wrong_with_one() {
    let (e, varmap) = tiny();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny-bert");
    std::fs::create_dir(&model).unwrap();

    // Nothing there yet: the missing file is named.
    let err = Embedder::load(&model, 16).unwrap_err();
    assert!(
        matches!(&err, EmbedError::Missing { path } if path.ends_with("config.json")),
        "{err}"
    );
    assert!(err.to_string().contains("make setup"), "{err}");
    let err = Embedder::load(&dir.path().join("nowhere"), 16).unwrap_err();
    assert!(matches!(err, EmbedError::Missing { .. }));

    let config = serde_json::json!({
        "vocab_size": WORDS.len() + 4, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 32, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "max_position_embeddings": 40, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "model_type": "bert"
    });
    std::fs::write(model.join("config.json"), config.to_string()).unwrap();
    std::fs::write(model.join("tokenizer.json"), tokenizer_json()).unwrap();
    let err = Embedder::load(&model, 16).unwrap_err();
    assert!(
        matches!(&err, EmbedError::Missing { path } if path.ends_with("model.safetensors")),
        "{err}"
    );

    varmap.save(model.join("model.safetensors")).unwrap();
    let loaded = Embedder::load(&model, 16).unwrap();
    assert_eq!(loaded.name(), "tiny-bert");
    assert_eq!(loaded.dim(), 16);
    // The same weights give the same vectors.
    let text = ["the guard drops the error"];
    assert!(close(
        &loaded.embed_batch(&text).unwrap()[0],
        &e.embed_batch(&text).unwrap()[0]
    ));

    // Another dimension than configured: one clear error naming both.
    let err = Embedder::load(&model, 384).unwrap_err();
    assert!(
        matches!(
            err,
            EmbedError::Dimension {
                expected: 384,
                found: 16,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("dimensions = 16"), "{err}");

    // Weights that are not safetensors.
    std::fs::write(model.join("model.safetensors"), b"not weights").unwrap();
    let err = Embedder::load(&model, 16).unwrap_err();
    assert!(matches!(err, EmbedError::Invalid { .. }), "{err}");
}
