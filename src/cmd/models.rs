//! `quarry models`: the configured models and what their GGUF headers say.

use anyhow::Result;

use crate::config::Config;
use crate::llm::gguf;

pub fn models(cfg: &Config) -> Result<u8> {
    for (name, m) in &cfg.models {
        match gguf::read(&m.path) {
            Ok(info) => {
                let params = info
                    .str("general.size_label")
                    .map(str::to_string)
                    .or_else(|| {
                        info.metadata
                            .get("general.parameter_count")
                            .map(|v| format!("{v:?}"))
                    })
                    .unwrap_or_else(|| "?".into());
                println!(
                    "{name}: {} · {} · {} params · {} · context {} · chat template {} · {:.0} MB",
                    m.path.display(),
                    info.architecture(),
                    params,
                    info.quantisation(),
                    info.context_length()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "?".into()),
                    if info.has_chat_template() {
                        "yes"
                    } else {
                        "no (set chat_template)"
                    },
                    info.file_bytes as f64 / 1e6
                );
            }
            Err(e) => println!("{name}: {e}"),
        }
    }
    Ok(0)
}
