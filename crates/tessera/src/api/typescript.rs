//! Placeholder.
pub fn generate(_doc: &serde_json::Value) -> String {
    String::new()
}
