//! The matrix as one static HTML page: no server, no network, no external
//! script or font. The document ([`super::document`]) is embedded as JSON;
//! `page.js` draws the table (implementations × rules, each cell linking to
//! that rule's failures), one timeline per failure (a lane per scope,
//! subscription and task, entries and observations as marks, the first
//! disagreement highlighted), and each recorded deviation with its
//! ground-truth script and output.
//!
//! Invariants: the page is one file; the embedded JSON cannot end its
//! `<script>` element early (every `<` is escaped as `\u003c`); the page
//! needs JavaScript only to draw, and says so when it has none.

use serde_json::Value;

const TEMPLATE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// The page for `document`.
pub fn render(document: &Value) -> String {
    let data = serde_json::to_string(document)
        .unwrap_or_else(|_| "null".to_owned())
        .replace('<', "\\u003c");
    TEMPLATE
        .replace("/*STYLE*/", STYLE)
        .replace("/*SCRIPT*/", SCRIPT)
        .replace("/*DATA*/", &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_cannot_close_its_script_element() {
        let page = render(&serde_json::json!({"about": "</script><script>alert(1)</script>"}));
        assert!(!page.contains("</script><script>alert"), "{page}");
        assert!(page.contains("\\u003c/script>"));
    }
}
