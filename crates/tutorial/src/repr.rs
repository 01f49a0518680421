//! Python's `repr()` of `bytes` and of socket address tuples.
//!
//! The reference server prints `repr(data)` and `repr(addr)`. Byte-for-byte
//! parity with Python therefore means reproducing CPython's rules exactly
//! (see `Objects/bytesobject.c`, `PyBytes_Repr`):
//! - single quotes, unless the data holds `'` and no `"`, then double quotes;
//! - `\\`, `\t`, `\n`, `\r` escaped; the chosen quote escaped;
//! - bytes below 0x20 or from 0x7f upwards as lowercase `\xNN`.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// `repr(bytes(data))` exactly as CPython prints it.
pub fn py_bytes_repr(data: &[u8]) -> String {
    let quote = if data.contains(&b'\'') && !data.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(data.len() + 3);
    out.push('b');
    out.push(quote as char);
    for &byte in data {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if byte == quote => {
                out.push('\\');
                out.push(quote as char);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out.push(quote as char);
    out
}

/// `repr(addr)` of the tuple `socket.accept()` returns for a peer.
///
/// AF_INET gives `(host, port)`; AF_INET6 gives `(host, port, flowinfo,
/// scope_id)`. Python prints the host with `repr(str)`, which for a numeric
/// address is always plain single quotes.
pub fn py_addr_repr(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => format!("('{}', {})", v4.ip(), v4.port()),
        // CPython formats the host with inet_ntop, as Rust's Display does.
        SocketAddr::V6(v6) => format!(
            "('{}', {}, {}, {})",
            v6.ip(),
            v6.port(),
            v6.flowinfo(),
            v6.scope_id()
        ),
    }
}

/// Inverse of [`py_bytes_repr`]: the bytes a `b'…'` literal stands for.
///
/// The harness reads server transcripts back with this, so it accepts
/// exactly the forms [`py_bytes_repr`] produces and rejects anything else.
pub fn parse_py_bytes_repr(literal: &str) -> Option<Vec<u8>> {
    let body = literal.strip_prefix('b')?;
    let quote = body.chars().next().filter(|q| *q == '\'' || *q == '"')?;
    let body = body.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = Vec::with_capacity(body.len());
    let mut bytes = body.as_bytes();
    loop {
        // Printable bytes stand for themselves: copied a run at a time, as
        // a transcript of megabytes is mostly such runs.
        let plain = bytes
            .iter()
            .position(|&b| b == b'\\' || b == quote as u8 || !(0x20..=0x7e).contains(&b))
            .unwrap_or(bytes.len());
        out.extend_from_slice(&bytes[..plain]);
        bytes = &bytes[plain..];
        let Some((&byte, rest)) = bytes.split_first() else {
            break;
        };
        if byte != b'\\' {
            return None;
        }
        let mut rest = rest.iter();
        match *rest.next()? {
            b'\\' => out.push(b'\\'),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'x' => {
                // CPython writes two lowercase hex digits, nothing else.
                let digit = |d: u8| match d {
                    b'0'..=b'9' => Some(d - b'0'),
                    b'a'..=b'f' => Some(d - b'a' + 10),
                    _ => None,
                };
                let (high, low) = (digit(*rest.next()?)?, digit(*rest.next()?)?);
                out.push(high << 4 | low);
            }
            _ => return None,
        }
        bytes = rest.as_slice();
    }
    Some(out)
}

/// A path or argument as Python prints it: argv is decoded with
/// surrogateescape, so a byte that is not UTF-8 becomes a lone surrogate,
/// which stderr's backslashreplace writes as `\udcXX`.
pub fn py_str_of_os(text: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in text.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\udc{byte:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_message() {
        assert_eq!(py_bytes_repr(b"Hello server!"), "b'Hello server!'");
    }

    #[test]
    fn quote_choice_follows_cpython() {
        assert_eq!(py_bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(py_bytes_repr(b"say \"hi\""), "b'say \"hi\"'");
        assert_eq!(py_bytes_repr(b"'\""), "b'\\'\"'");
        assert_eq!(py_bytes_repr(b""), "b''");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            py_bytes_repr(b"a\\b\tc\nd\re\x00\x7f\x80\xff"),
            "b'a\\\\b\\tc\\nd\\re\\x00\\x7f\\x80\\xff'"
        );
    }

    #[test]
    fn address_tuples() {
        assert_eq!(
            py_addr_repr(&"127.0.0.1:50514".parse().unwrap()),
            "('127.0.0.1', 50514)"
        );
        assert_eq!(
            py_addr_repr(&"[::1]:1712".parse().unwrap()),
            "('::1', 1712, 0, 0)"
        );
    }

    #[test]
    fn parse_rejects_what_repr_never_prints() {
        assert_eq!(parse_py_bytes_repr("'abc'"), None);
        assert_eq!(parse_py_bytes_repr("b'a'b'"), None);
        assert_eq!(parse_py_bytes_repr("b'\\q'"), None);
        assert_eq!(parse_py_bytes_repr("b'\\x4'"), None);
        // Uppercase or signed hex: CPython writes two lowercase digits.
        assert_eq!(parse_py_bytes_repr("b'\\xFF'"), None);
        assert_eq!(parse_py_bytes_repr("b'\\x+f'"), None);
        // A byte repr() would have escaped, left raw.
        assert_eq!(parse_py_bytes_repr("b'a\tb'"), None);
        assert_eq!(parse_py_bytes_repr("b'\u{e9}'"), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_inverts_repr(data: Vec<u8>) {
            proptest::prop_assert_eq!(parse_py_bytes_repr(&py_bytes_repr(&data)), Some(data));
        }
    }
}
