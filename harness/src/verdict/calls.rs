//! A program's socket calls against the reference program's, under the
//! call fields' policies ([`crate::policy::Field::is_call`]).
//!
//! The two sequences are lined up first, by call and socket (and, for
//! `setsockopt`, by option), as a diff lines up text: the longest common
//! subsequence. A call only one side makes is then named as such
//! (`server.setsockopt` for an option the reference does not set,
//! `server.calls` for a shutdown or a close it does not make), and each
//! lined-up pair is compared field by field (`server.listen.backlog`).
//! Lining up first keeps one extra call from turning every later call into
//! a difference.

use crate::calls::{Call, CallKind, Role, Side};
use crate::policy::{Field, IgnoredField};
use crate::verdict::signature::Difference;

/// What two calls must share to be lined up: the call, the socket's role,
/// and for setsockopt the option.
fn key(call: &Call) -> (&'static str, Role, Option<(&str, &str)>) {
    let option = match &call.kind {
        CallKind::Setsockopt { level, name, .. } => Some((level.as_str(), name.as_str())),
        _ => None,
    };
    (call.kind.name(), call.role, option)
}

/// Pairs of indices into `a` and `b` that line up, in order.
fn line_up(a: &[Call], b: &[Call]) -> Vec<(usize, usize)> {
    // Longest common subsequence by key; the sequences are a few dozen
    // calls long, so the quadratic table is nothing.
    let (n, m) = (a.len(), b.len());
    let mut table = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if key(&a[i]) == key(&b[j]) {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut pairs = Vec::new();
    while i < n && j < m {
        if key(&a[i]) == key(&b[j]) {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if table[i + 1][j] > table[i][j + 1] {
            i += 1;
        } else {
            // On a tie, pass over the program's call first: a call it
            // made early (socat closes its listener before reading) is
            // then the one named, and the calls after it still pair with
            // the reference's, field by field.
            j += 1;
        }
    }
    pairs
}

/// The compared fields of a lined-up pair: field, reference value, actual
/// value.
fn field_values(reference: &CallKind, actual: &CallKind) -> Vec<(Field, String, String)> {
    use CallKind as K;
    match (reference, actual) {
        (
            K::Socket {
                family: f1,
                kind: k1,
                protocol: p1,
            },
            K::Socket {
                family: f2,
                kind: k2,
                protocol: p2,
            },
        ) => vec![
            (Field::SocketFamily, f1.clone(), f2.clone()),
            (Field::SocketType, k1.clone(), k2.clone()),
            (Field::SocketProtocol, p1.clone(), p2.clone()),
        ],
        (K::Setsockopt { value: v1, .. }, K::Setsockopt { value: v2, .. }) => {
            vec![(Field::Setsockopt, v1.clone(), v2.clone())]
        }
        (K::Bind { address: a1 }, K::Bind { address: a2 }) => {
            vec![(Field::BindAddress, a1.clone(), a2.clone())]
        }
        (K::Listen { backlog: b1 }, K::Listen { backlog: b2 }) => {
            vec![(Field::ListenBacklog, b1.clone(), b2.clone())]
        }
        (K::Connect { address: a1 }, K::Connect { address: a2 }) => {
            vec![(Field::ConnectAddress, a1.clone(), a2.clone())]
        }
        (K::Recv { sizes: s1 }, K::Recv { sizes: s2 }) => {
            vec![(Field::RecvSize, format!("{s1:?}"), format!("{s2:?}"))]
        }
        (K::Send { bytes: b1 }, K::Send { bytes: b2 }) => {
            vec![(Field::SendBytes, b1.to_string(), b2.to_string())]
        }
        (K::Shutdown { how: h1 }, K::Shutdown { how: h2 }) => {
            vec![(Field::ShutdownHow, h1.clone(), h2.clone())]
        }
        _ => Vec::new(),
    }
}

/// `call 3 (socket 1): listen(128)`: where in the program's sequence, on
/// which of its TCP sockets, and what.
fn shown(index: usize, call: &Call) -> String {
    format!("call {} (socket {}): {call}", index + 1, call.socket)
}

/// Every difference between `side`'s calls and the reference program's,
/// less the fields the scenario ignores.
pub fn compare(
    side: Side,
    reference: &[Call],
    actual: &[Call],
    ignored: &[IgnoredField],
) -> Vec<Difference> {
    let pairs = line_up(reference, actual);
    let mut out = Vec::new();
    let difference = |field: Field, reference: String, actual: String| Difference {
        segment: side.name().to_string(),
        field,
        reference,
        actual,
        frame: None,
        declared: None,
    };
    // Walk both sequences in step, so differences come in call order.
    let (mut i, mut j) = (0, 0);
    let unmatched_field = |call: &Call| match call.kind {
        CallKind::Setsockopt { .. } => Field::Setsockopt,
        _ => Field::Calls,
    };
    for &(pi, pj) in pairs
        .iter()
        .chain(std::iter::once(&(reference.len(), actual.len())))
    {
        while i < pi {
            let call = &reference[i];
            out.push(difference(
                unmatched_field(call),
                shown(i, call),
                "-".into(),
            ));
            i += 1;
        }
        while j < pj {
            let call = &actual[j];
            out.push(difference(
                unmatched_field(call),
                "-".into(),
                shown(j, call),
            ));
            j += 1;
        }
        if pi < reference.len() && pj < actual.len() {
            for (field, a, b) in field_values(&reference[pi].kind, &actual[pj].kind) {
                if a != b {
                    out.push(difference(
                        field,
                        shown(pi, &reference[pi]),
                        shown(pj, &actual[pj]),
                    ));
                }
            }
            i = pi + 1;
            j = pj + 1;
        }
    }
    out.retain(|d| !ignored.iter().any(|x| x.covers(&d.segment, d.field)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::strace;

    /// The reference server's calls, as strace shows python/server.py's.
    fn server(backlog: &str, recv: u64, reuse: bool) -> Vec<Call> {
        let mut text = String::from(
            "1 1.0 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3<TCP:[1]> <0.0>\n",
        );
        if reuse {
            text.push_str(
                "1 1.0 setsockopt(3<TCP:[1]>, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0 <0.0>\n",
            );
        }
        text.push_str(&format!(
            "1 1.0 bind(3<TCP:[1]>, {{sa_family=AF_INET, sin_port=htons(1712), sin_addr=inet_addr(\"127.0.0.1\")}}, 16) = 0 <0.0>
1 1.0 listen(3<TCP:[127.0.0.1:1712]>, {backlog}) = 0 <0.0>
1 1.0 accept4(3<TCP:[127.0.0.1:1712]>, NULL, NULL, SOCK_CLOEXEC) = 4<TCP:[127.0.0.1:1712->127.0.0.1:5]> <0.0>
1 1.0 recvfrom(4<TCP:[127.0.0.1:1712->127.0.0.1:5]>, \"\"..., {recv}, 0, NULL, NULL) = 13 <0.0>
1 1.0 recvfrom(4<TCP:[127.0.0.1:1712->127.0.0.1:5]>, \"\", {recv}, 0, NULL, NULL) = 0 <0.0>
1 1.0 close(4<TCP:[127.0.0.1:1712->127.0.0.1:5]>) = 0 <0.0>
1 1.0 close(3<TCP:[127.0.0.1:1712]>) = 0 <0.0>
"
        ));
        strace::parse(&text, 1712)
    }

    fn named(differences: &[Difference]) -> Vec<String> {
        differences
            .iter()
            .map(|d| format!("{}.{}: {} | {}", d.segment, d.field, d.reference, d.actual))
            .collect()
    }

    #[test]
    fn the_same_calls_do_not_differ() {
        let reference = server("1", 1024, false);
        assert!(compare(Side::Server, &reference, &reference, &[]).is_empty());
    }

    #[test]
    fn each_deviation_is_named_by_call_and_field() {
        let reference = server("1", 1024, false);
        assert_eq!(
            named(&compare(
                Side::Server,
                &reference,
                &server("128", 1024, false),
                &[]
            )),
            ["server.listen.backlog: call 3 (socket 1): listen(1) | call 3 (socket 1): listen(128)"]
        );
        assert_eq!(
            named(&compare(
                Side::Server,
                &reference,
                &server("1", 4096, false),
                &[]
            )),
            ["server.recv.size: call 5 (socket 2): recv(1024) ×2 | call 5 (socket 2): recv(4096) ×2"]
        );
        // One extra call is one difference: the rest still line up.
        assert_eq!(
            named(&compare(
                Side::Server,
                &reference,
                &server("1", 1024, true),
                &[]
            )),
            ["server.setsockopt: - | call 2 (socket 1): setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)"]
        );
        // And the other way round: a call the reference makes is missing.
        let missing = compare(Side::Server, &server("1", 1024, true), &reference, &[]);
        assert_eq!(
            named(&missing),
            ["server.setsockopt: call 2 (socket 1): setsockopt(SOL_SOCKET, SO_REUSEADDR, 1) | -"]
        );
    }

    #[test]
    fn a_close_left_to_exit_is_a_missing_call() {
        let reference = server("1", 1024, false);
        let mut socat_like = reference.clone();
        socat_like.pop();
        // And a call made early is named, while the rest still pair.
        let mut early = reference.clone();
        let listener_closed = early.pop().unwrap();
        early.insert(4, listener_closed);
        assert_eq!(
            named(&compare(Side::Server, &reference, &early, &[])),
            [
                "server.calls: - | call 5 (socket 1): close(listener)",
                "server.calls: call 7 (socket 1): close(listener) | -"
            ]
        );
        assert_eq!(
            named(&compare(Side::Server, &reference, &socat_like, &[])),
            ["server.calls: call 7 (socket 1): close(listener) | -"]
        );
    }

    #[test]
    fn an_ignored_field_is_not_a_difference() {
        let ignored = [IgnoredField {
            segment: Some("server".into()),
            field: Field::ListenBacklog,
        }];
        let reference = server("1", 1024, false);
        assert!(compare(
            Side::Server,
            &reference,
            &server("128", 1024, false),
            &ignored
        )
        .is_empty());
        // Only for the side it names.
        assert_eq!(
            compare(
                Side::Client,
                &reference,
                &server("128", 1024, false),
                &ignored
            )
            .len(),
            1
        );
    }
}
