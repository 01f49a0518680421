//! Measuring a report's layout in a real browser, from outside the page.
//!
//! The report ships no test code. The test writes a page of its own that
//! frames the report (unchanged, as a user opens it) at the widths it
//! asks for, and measures each frame from there once it has loaded: the
//! frame's document is reachable because chromium runs with
//! `--allow-file-access-from-files`. What is measured is therefore what a
//! reader sees, not what the report says about itself.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

/// One report to frame: which file, at which fragment, how large a window.
pub struct Frame<'a> {
    pub report: &'a Path,
    pub fragment: &'a str,
    pub width: u32,
    pub height: u32,
}

/// What the browser measured in one frame.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layout {
    /// The frame's viewport width, as the page saw it.
    pub inner_width: f64,
    /// How far the page itself scrolls sideways (0: wide content scrolls
    /// inside its own box, or fits).
    pub page_overflow_x: f64,
    /// Elements reaching past the right edge with no scrolling box around
    /// them (`TAG.class: right edge`), the first ten.
    pub outside: Vec<String>,
    /// How far any SVG text reaches past its viewBox, in user units.
    pub svg_overflow: f64,
    /// The first cell that needs a look (not PASS, not declared, not
    /// skipped): whether it is open and where its top is.
    pub first_look: Option<FirstLook>,
    /// Ladders drawn with a size, in open cells.
    pub ladders_drawn: u32,
    /// The ids of the cells that are open.
    pub open_cells: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirstLook {
    pub id: String,
    pub open: bool,
    pub top: f64,
    pub inner_height: f64,
}

impl FirstLook {
    /// Open, and its top within the first screen.
    pub fn on_first_screen(&self) -> bool {
        self.open && self.top >= 0.0 && self.top < self.inner_height
    }
}

/// The measuring script: runs in the test's own page, once each frame has
/// loaded (after the report's own load handlers, which open a linked cell).
const MEASURE: &str = r#"
function measure(frame) {
  var w = frame.contentWindow, d = frame.contentDocument, m = {};
  m.innerWidth = w.innerWidth;
  m.pageOverflowX = d.documentElement.scrollWidth - w.innerWidth;
  var outside = [];
  d.querySelectorAll('body *').forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= w.innerWidth + 1) { return; }
    for (var p = el.parentElement; p && p !== d.body; p = p.parentElement) {
      var o = w.getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') { return; }
    }
    outside.push(el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined ? '.' + el.className : '') + ': ' + Math.round(r.right));
  });
  m.outside = outside.slice(0, 10);
  var over = 0;
  d.querySelectorAll('svg').forEach(function (svg) {
    var box = svg.viewBox && svg.viewBox.baseVal;
    if (!box || box.width === 0) { return; }
    svg.querySelectorAll('text').forEach(function (t) {
      var b = t.getBBox();
      over = Math.max(over, box.x - b.x, b.x + b.width - (box.x + box.width),
                      box.y - b.y, b.y + b.height - (box.y + box.height));
    });
  });
  m.svgOverflow = Math.ceil(over);
  m.firstLook = null;
  var cells = d.querySelectorAll('details.cell');
  for (var i = 0; i < cells.length; i++) {
    var c = cells[i], v = c.getAttribute('data-verdict');
    if (v === 'PASS' || v === 'UNSUPPORTED' || v === 'UNAVAILABLE' || c.closest('#declared')) { continue; }
    var r = c.getBoundingClientRect();
    m.firstLook = {id: c.id, open: c.open, top: r.top, innerHeight: w.innerHeight};
    break;
  }
  m.laddersDrawn = 0;
  d.querySelectorAll('svg.ladder').forEach(function (svg) {
    var b = svg.getBoundingClientRect(), cell = svg.closest('details');
    if ((!cell || cell.open) && b.width > 0 && b.height > 0) { m.laddersDrawn++; }
  });
  m.openCells = [];
  cells.forEach(function (c) { if (c.open) { m.openCells.push(c.id); } });
  return m;
}
var frames = document.querySelectorAll('iframe'), left = frames.length, results = [];
frames.forEach(function (frame, i) {
  frame.addEventListener('load', function () {
    // After the frame's own load handlers.
    setTimeout(function () {
      results[i] = measure(frame);
      if (--left === 0) {
        var pre = document.createElement('pre');
        pre.id = 'measured';
        pre.textContent = JSON.stringify(results);
        document.body.appendChild(pre);
      }
    }, 0);
  });
});
"#;

/// Loads every frame in one headless chromium and returns what was
/// measured in each, in order. `scratch` holds the framing page.
pub fn measure(chromium: &str, frames: &[Frame], scratch: &Path) -> Vec<Layout> {
    let mut page = String::from(
        "<!doctype html><html><head><style>body{margin:0} iframe{border:0;display:block}</style></head><body>\n",
    );
    for f in frames {
        let url = format!("file://{}{}", f.report.display(), f.fragment);
        page.push_str(&format!(
            "<iframe src=\"{}\" width=\"{}\" height=\"{}\"></iframe>\n",
            url.replace('"', "%22"),
            f.width,
            f.height
        ));
    }
    page.push_str(&format!("<script>{MEASURE}</script></body></html>\n"));
    let outer = scratch.join("measure-layout.html");
    std::fs::write(&outer, page).expect("write the framing page");
    let out = chromium_run(
        chromium,
        &outer,
        "",
        &[
            "--allow-file-access-from-files",
            // Chromium's dump waits for the load event; the measurement
            // runs a moment later, so give the page a budget to finish in.
            "--virtual-time-budget=10000",
            "--dump-dom",
        ],
        scratch,
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find("<pre id=\"measured\">")
        .unwrap_or_else(|| panic!("the browser measured nothing; its page:\n{dom}"));
    let json = &dom[start + "<pre id=\"measured\">".len()..];
    let json = &json[..json.find("</pre>").expect("the measurement ends")];
    let json = json
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("measurement {json}: {e}"))
}

/// The first browser on PATH, or the test fails naming the remedy.
pub fn chromium() -> &'static str {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| harness::suite::manifest::on_path(b))
        .expect("this test needs chromium on PATH; make deps installs it")
}

/// Headless chromium on `page` (with `fragment`), with `extra` flags.
pub fn chromium_run(
    chromium: &str,
    page: &Path,
    fragment: &str,
    extra: &[&str],
    home: &Path,
) -> std::process::Output {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-background-networking",
            "--no-first-run",
            "--window-size=1280,1000",
        ])
        .args(extra)
        .arg(format!("file://{}{fragment}", page.display()))
        .env("HOME", home)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The layout every report must have at a desktop and a phone width: the
/// first cell that needs a look open on the first screen, no SVG text
/// past its viewBox, nothing past the right edge outside a scrolling box.
pub fn assert_report_layout(chromium: &str, report: &Path, scratch: &Path) {
    let frames = [1280, 400].map(|width| Frame {
        report,
        fragment: "",
        width,
        height: 900,
    });
    for (layout, frame) in measure(chromium, &frames, scratch).iter().zip(&frames) {
        let at = frame.width;
        assert_eq!(layout.inner_width, at as f64, "the frame's width");
        let first = layout
            .first_look
            .as_ref()
            .unwrap_or_else(|| panic!("at {at} px: no cell needs a look"));
        assert!(
            first.on_first_screen(),
            "at {at} px: {} is not open on the first screen: {first:?}",
            first.id
        );
        assert_eq!(layout.svg_overflow, 0.0, "at {at} px: SVG text clipped");
        assert_eq!(layout.page_overflow_x, 0.0, "at {at} px: {layout:?}");
        assert!(
            layout.outside.is_empty(),
            "at {at} px: {:?}",
            layout.outside
        );
        assert!(layout.ladders_drawn > 0, "at {at} px: no ladder drawn");
    }
}
