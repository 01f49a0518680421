//! Text made safe for HTML and SVG markup, for every report that writes
//! markup (the HTML report, its ladders, the command-line report).

/// `text` with the characters markup gives a meaning escaped, for element
/// content and double-quoted attributes alike.
pub(crate) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
