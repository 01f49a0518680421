//! Ladder diagrams: a client column, a server column, and an arrow per
//! segment labelled the way Wireshark's flow graph labels it
//! (`[SYN] Seq=0 Win=65495 Len=0 MSS=65495 …`), with what the segment
//! means beside it. This is the picture the tutorials draw by hand.

use std::fmt::Write as _;

use crate::capture::annotate;
use wire::conversation::{Connection, Direction, Phase, Placed};
use wire::tcp_options::TcpOption;

/// One piece of an arrow's label, named so two labels can be compared
/// piece by piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub field: &'static str,
    pub text: String,
}

/// Wireshark's Info column for a segment, as tokens: flags, Seq, Ack, Win,
/// Len, then the options in wire order (NOPs left out, as Wireshark does).
pub fn tokens(p: &Placed) -> Vec<Token> {
    let s = &p.segment;
    let t = |field, text: String| Token { field, text };
    let mut out = vec![
        t("flags", format!("[{}]", s.flags)),
        t("seq", format!("Seq={}", p.rel_seq)),
    ];
    if s.flags.ack {
        out.push(t("ack", format!("Ack={}", p.rel_ack)));
    }
    out.push(t("window", format!("Win={}", s.window)));
    out.push(t("len", format!("Len={}", s.payload_len)));
    for option in &s.options {
        match option {
            TcpOption::Nop => {}
            TcpOption::Mss { .. } => out.push(t("mss", option.to_string())),
            TcpOption::WindowScale { .. } => out.push(t("wscale", option.to_string())),
            TcpOption::SackPermitted => out.push(t("sack_perm", option.to_string())),
            TcpOption::Timestamps { value, echo } => {
                out.push(t("ts values", format!("TSval={value}")));
                out.push(t("ts values", format!("TSecr={echo}")));
            }
            other => out.push(t("options", other.to_string())),
        }
    }
    out
}

/// How differing tokens are marked: bold red on a colour terminal, a
/// trailing `*` otherwise (the same mark the report tables use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paint {
    pub colour: bool,
}

/// `--color`: when to colour what is printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    /// On a terminal; never with NO_COLOR set (non-empty); always with
    /// CLICOLOR_FORCE set (not "0"), as <https://bixense.com/clicolors/>
    /// and <https://no-color.org> ask.
    Auto,
    Always,
    Never,
}

impl Paint {
    /// Colour as `choice` says, on stdout.
    pub fn for_stdout(choice: ColorChoice) -> Paint {
        use std::io::IsTerminal;
        let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let colour = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") => true,
            ColorChoice::Auto if set("NO_COLOR").is_some() => false,
            ColorChoice::Auto => std::io::stdout().is_terminal(),
        };
        Paint { colour }
    }

    fn mark(self, text: &str) -> String {
        if self.colour {
            format!("\x1b[1;31m{text}\x1b[0m")
        } else {
            format!("{text}*")
        }
    }
}

fn label(tokens: &[Token], differing: &[bool], paint: Paint) -> (String, usize) {
    let mut text = String::new();
    let mut width = 0;
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            text.push(' ');
            width += 1;
        }
        if differing.get(i).copied().unwrap_or(false) {
            text.push_str(&paint.mark(&token.text));
            width += token.text.chars().count() + usize::from(!paint.colour);
        } else {
            text.push_str(&token.text);
            width += token.text.chars().count();
        }
    }
    (text, width)
}

/// One arrow between the two columns, `inner` characters wide.
fn arrow(direction: Direction, text: &str, width: usize, inner: usize) -> String {
    let fill = "-".repeat(inner.saturating_sub(width + 5));
    match direction {
        Direction::ClientToServer => format!("|-- {text} {fill}>|"),
        Direction::ServerToClient => format!("|<- {text} {fill}-|"),
    }
}

/// How much a ladder shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Time, every token, and what each segment means.
    Full,
    /// Frame and arrow only, timestamps as just `TS`: two fit side by side.
    Compact,
    /// No time column, options by short name: what fits a terminal.
    Narrow,
}

/// How wide the terminal report may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// Every line whole, however long (`--wide`).
    Unlimited,
    /// At most this many columns: ladders abbreviate rather than wrap.
    Columns(usize),
}

impl Width {
    /// Columns when not a terminal, so logs and pipes are readable too.
    pub const NOT_A_TERMINAL: usize = 100;

    /// For stdout: unlimited with `wide`; else the terminal's width, or
    /// [`Width::NOT_A_TERMINAL`] when stdout is no terminal.
    pub fn for_stdout(wide: bool) -> Width {
        use std::io::IsTerminal;
        if wide {
            return Width::Unlimited;
        }
        if !std::io::stdout().is_terminal() {
            return Width::Columns(Self::NOT_A_TERMINAL);
        }
        // SAFETY: TIOCGWINSZ fills a winsize; on failure it is left zeroed.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
        let env = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok());
        match (ok && size.ws_col > 0)
            .then_some(usize::from(size.ws_col))
            .or(env)
        {
            Some(columns) => Width::Columns(columns.max(40)),
            None => Width::Columns(Self::NOT_A_TERMINAL),
        }
    }

    fn fits(self, columns: usize) -> bool {
        match self {
            Width::Unlimited => true,
            Width::Columns(c) => columns <= c,
        }
    }
}

/// The whole conversation as a ladder, every line whole.
pub fn render(conn: &Connection) -> String {
    render_marked(conn, &[], Paint { colour: false }, Layout::Full)
}

/// The whole conversation as a ladder within `width`: whole lines when
/// they fit; else without the time column, timestamps as `TS` and options
/// by their short names (`MSS,SACK,WS`); then the meaning column cut with
/// `…`. An arrow is never wrapped.
pub fn render_fit(conn: &Connection, width: Width) -> String {
    let paint = Paint { colour: false };
    let full = render_marked(conn, &[], paint, Layout::Full);
    if width.fits(longest(&full)) {
        return full;
    }
    let narrow = render_marked(conn, &[], paint, Layout::Narrow);
    match width {
        Width::Columns(columns) if !width.fits(longest(&narrow)) => narrow
            .lines()
            .map(|line| {
                let mut cut: String = line.chars().take(columns.saturating_sub(1)).collect();
                if line.chars().count() > columns {
                    cut.push('…');
                } else {
                    cut = line.to_string();
                }
                cut + "\n"
            })
            .collect(),
        _ => narrow,
    }
}

fn longest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// Options by their short names, TS for the timestamps: what a narrow
/// ladder keeps of a label.
fn abbreviate(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut options: Vec<&'static str> = Vec::new();
    for t in tokens {
        let short = match t.field {
            "mss" => Some("MSS"),
            "wscale" => Some("WS"),
            "sack_perm" => Some("SACK"),
            "ts values" => Some("TS"),
            "options" => Some("OPT"),
            _ => None,
        };
        match short {
            Some(name) => {
                if !options.contains(&name) {
                    options.push(name);
                }
            }
            None => out.push(t),
        }
    }
    if !options.is_empty() {
        out.push(Token {
            field: "options",
            text: options.join(","),
        });
    }
    out
}

fn compact(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    for t in tokens {
        if t.field == "ts values" {
            if !out.iter().any(|x| x.field == "ts values") {
                out.push(Token {
                    field: "ts values",
                    text: "TS".into(),
                });
            }
        } else {
            out.push(t);
        }
    }
    out
}

fn render_marked(conn: &Connection, marks: &[Vec<bool>], paint: Paint, layout: Layout) -> String {
    let start = conn
        .segments
        .first()
        .map(|p| p.segment.timestamp)
        .unwrap_or_default();
    let rows: Vec<(&Placed, String, usize)> = conn
        .segments
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let empty = Vec::new();
            let tokens = match layout {
                Layout::Full => tokens(p),
                Layout::Compact => compact(tokens(p)),
                Layout::Narrow => abbreviate(tokens(p)),
            };
            let (text, width) = label(&tokens, marks.get(i).unwrap_or(&empty), paint);
            (p, text, width)
        })
        .collect();
    let inner = rows
        .iter()
        .map(|(_, _, w)| w + 6)
        .max()
        .unwrap_or(20)
        .max(30);
    let mut out = String::new();
    let client = format!("client {}", conn.client);
    let server = format!("server {}", conn.server);
    let width = (inner + 2)
        .saturating_sub(server.chars().count())
        .max(client.chars().count() + 1);
    match layout {
        Layout::Full => {
            let _ = writeln!(
                out,
                "{:>5}  {:>9}  {client:<width$}{server}",
                "frame", "time"
            );
        }
        Layout::Compact | Layout::Narrow => {
            let _ = writeln!(out, "{:>5}  {client:<width$}{server}", "frame");
        }
    }
    let notes = annotate::Notes::of(conn);
    for (i, (p, text, width)) in rows.iter().enumerate() {
        if let Some(elided) = conn.elided.filter(|e| e.at == i) {
            // A long connection read under a bounded retention: its middle
            // is counted, not held.
            let _ = writeln!(
                out,
                "{:>5}  … {} segments not shown (the first and last are) …",
                "", elided.count
            );
        }
        let time = p.segment.timestamp.saturating_sub(start);
        let arrow = arrow(p.direction, text, *width, inner);
        let _ = match layout {
            Layout::Full => writeln!(
                out,
                "{:>5}  {:>9.6}  {arrow}  {}",
                p.segment.frame,
                time.as_secs_f64(),
                annotate::describe(conn, &notes, p)
            ),
            Layout::Compact => writeln!(out, "{:>5}  {arrow}", p.segment.frame),
            Layout::Narrow => writeln!(
                out,
                "{:>5}  {arrow}  {}",
                p.segment.frame,
                annotate::describe(conn, &notes, p)
            ),
        };
    }
    out
}

/// Which tokens of `a`'s and `b`'s handshake segments differ under the
/// field policies (timestamp values never count).
fn handshake_marks(a: &Connection, b: &Connection) -> (Vec<Vec<bool>>, Vec<Vec<bool>>) {
    let mark = |this: &Connection, other: &Connection| -> Vec<Vec<bool>> {
        let other_handshake: Vec<&Placed> = other
            .segments
            .iter()
            .filter(|p| p.phase == Phase::Handshake || p.segment.flags.rst)
            .collect();
        let mut k = 0;
        this.segments
            .iter()
            .map(|p| {
                if !(p.phase == Phase::Handshake || p.segment.flags.rst) {
                    return Vec::new();
                }
                let counterpart = other_handshake.get(k).copied();
                k += 1;
                let mine = compact(tokens(p));
                let theirs = counterpart.map(|c| compact(tokens(c))).unwrap_or_default();
                mine.iter()
                    .enumerate()
                    .map(|(i, t)| {
                        t.field != "ts values"
                            && theirs
                                .iter()
                                .filter(|x| x.field == t.field)
                                .nth(mine[..i].iter().filter(|x| x.field == t.field).count())
                                .is_none_or(|x| x.text != t.text)
                    })
                    .collect()
            })
            .collect()
    };
    (mark(a, b), mark(b, a))
}

/// Two conversations, one above the other's columns: `a` on the left, `b`
/// on the right, handshake fields that differ marked.
pub fn render_side_by_side(a: (&str, &Connection), b: (&str, &Connection), paint: Paint) -> String {
    let (marks_a, marks_b) = handshake_marks(a.1, b.1);
    let left = render_marked(a.1, &marks_a, paint, Layout::Compact);
    let right = render_marked(b.1, &marks_b, paint, Layout::Compact);
    let visible = |s: &str| {
        let mut n = 0;
        let mut in_escape = false;
        for c in s.chars() {
            match (in_escape, c) {
                (false, '\x1b') => in_escape = true,
                (true, 'm') => in_escape = false,
                (false, _) => n += 1,
                _ => {}
            }
        }
        n
    };
    let left_lines: Vec<&str> = left.lines().collect();
    let right_lines: Vec<&str> = right.lines().collect();
    let width = left_lines
        .iter()
        .map(|l| visible(l))
        .max()
        .unwrap_or(0)
        .max(a.0.len());
    let mut out = format!("{:<width$}  ║  {}\n", a.0, b.0);
    for i in 0..left_lines.len().max(right_lines.len()) {
        let l = left_lines.get(i).copied().unwrap_or("");
        let r = right_lines.get(i).copied().unwrap_or("");
        let pad = " ".repeat(width - visible(l));
        let _ = writeln!(out, "{l}{pad}  ║  {r}");
    }
    out
}
