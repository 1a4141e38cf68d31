//! The API's contracts as files: the OpenAPI document and TypeScript
//! definitions generated from it. Both are committed under `contracts/` (a
//! test keeps them in step with the code) and served at `/openapi.json` and
//! `/openapi/tessera.d.ts`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// File name of the OpenAPI document.
pub const OPENAPI_FILE: &str = "openapi.json";
/// File name of the TypeScript definitions.
pub const TYPESCRIPT_FILE: &str = "tessera.d.ts";

/// The OpenAPI document as pretty JSON with a trailing newline.
pub fn openapi_json() -> String {
    let mut json = super::openapi_document()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

/// The TypeScript definitions of every schema in the OpenAPI document.
pub fn typescript() -> String {
    let value: serde_json::Value =
        serde_json::from_str(&openapi_json()).expect("the OpenAPI document is JSON");
    super::typescript::generate(&value)
}

/// Writes both files into `dir` (created if missing); returns their paths.
pub fn write(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text) in [
        (OPENAPI_FILE, openapi_json()),
        (TYPESCRIPT_FILE, typescript()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
