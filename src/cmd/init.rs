//! `quarry init`: write quarry.toml, agents/ and prompts/ for editing.

use std::path::Path;

use anyhow::{Context, Result};

use crate::config::Config;

pub fn init(dir: &Path) -> Result<u8> {
    let mut written = crate::agent::write_defaults(dir)?;
    written.extend(crate::kb::write_default_templates(dir)?);
    let cfg_path = dir.join("quarry.toml");
    if !cfg_path.exists() {
        let text = toml::to_string_pretty(&Config::default())?;
        std::fs::write(
            &cfg_path,
            format!(
                "# quarry settings; every key is optional. `db`: a SQLite file, or\n\
                 # postgres://user:password@host/db for one queue shared by several machines.\n{text}"
            ),
        )
        .with_context(|| format!("cannot write {}", cfg_path.display()))?;
        println!("wrote {}", cfg_path.display());
    }
    for p in written {
        println!("wrote {}", p.display());
    }
    println!("edit agents/*.toml and prompts/*.tera to change or add roles, templates/*.tera to change the pages; no recompiling needed");
    Ok(0)
}
