//! The names of the nf_tables tables in the calling thread's network
//! namespace, asked of the kernel over netlink.
//!
//! The leak guard asks before every cell that reuses a namespace; `nft
//! list ruleset` would cost a process each time (about 2.5 ms of CPU,
//! a hundred times a run), and one netlink dump costs microseconds. It
//! sees every table, the harness's own and the `mangle` tables that
//! iptables-nft makes for the queue rules alike.

use std::io;

use super::netlink::{self, Netlink};

/// nfnetlink's subsystem for nf_tables, and its messages used here
/// (`linux/netfilter/nfnetlink.h`, `linux/netfilter/nf_tables.h`).
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFTA_TABLE_NAME: u16 = 1;

/// Each table's name, in the kernel's order, with its family:
/// `("inet", "harness_conditions")`.
pub fn tables() -> io::Result<Vec<(&'static str, String)>> {
    let socket = Netlink::open(libc::NETLINK_NETFILTER, "nf_tables")?;
    // A dump of every family's tables: the header, then an nfgenmsg.
    socket.send(
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE,
        (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
        &[libc::AF_UNSPEC as u8, 0, 0, 0],
    )?;
    let mut names = Vec::new();
    socket.receive(|kind, payload| match i32::from(kind) {
        libc::NLMSG_DONE => Ok(false),
        libc::NLMSG_ERROR => Err(netlink::error(payload)),
        _ if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE => {
            names.extend(table(payload));
            Ok(true)
        }
        _ => Ok(true),
    })?;
    Ok(names)
}

/// The family and name of a table, from a NEWTABLE message's payload: an
/// nfgenmsg, then attributes, each padded to 4 bytes.
fn table(payload: &[u8]) -> Option<(&'static str, String)> {
    let family = match i32::from(*payload.first()?) {
        libc::NFPROTO_INET => "inet",
        libc::NFPROTO_IPV4 => "ip",
        libc::NFPROTO_IPV6 => "ip6",
        libc::NFPROTO_NETDEV => "netdev",
        libc::NFPROTO_ARP => "arp",
        libc::NFPROTO_BRIDGE => "bridge",
        _ => "?",
    };
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    let mut attrs = payload.get(4..)?;
    while attrs.len() >= 4 {
        let len = usize::from(u16_at(attrs, 0));
        if len < 4 || len > attrs.len() {
            return None;
        }
        if u16_at(attrs, 2) & 0x3fff == NFTA_TABLE_NAME {
            let name = attrs[4..len].split(|&b| b == 0).next().unwrap_or_default();
            return Some((family, String::from_utf8_lossy(name).into_owned()));
        }
        attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NEWTABLE payload as the kernel sends it.
    fn payload(family: u8, name: &str) -> Vec<u8> {
        let value = [name.as_bytes(), &[0]].concat();
        let mut out = vec![family, 0, 0, 0];
        out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&NFTA_TABLE_NAME.to_ne_bytes());
        out.extend_from_slice(&value);
        out
    }

    #[test]
    fn a_table_message_gives_its_family_and_name() {
        assert_eq!(
            table(&payload(libc::NFPROTO_NETDEV as u8, "harness_conditions")),
            Some(("netdev", "harness_conditions".to_string()))
        );
        assert_eq!(table(&[1, 0]), None, "too short");
        let mut bad = payload(2, "x");
        bad[4] = 200;
        assert_eq!(table(&bad), None, "an attribute longer than the message");
    }

    /// The kernel's own answer: a table made in a fresh namespace is
    /// listed, with its family.
    #[test]
    #[cfg_attr(missing_root, ignore = "needs root to make a network namespace")]
    #[cfg_attr(missing_nft, ignore = "needs nft (nftables): run make deps")]
    fn the_kernel_lists_a_table_made_in_a_namespace() {
        let listed = std::thread::spawn(|| {
            // SAFETY: unshare moves this thread only, into a namespace
            // that goes with it.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            assert_eq!(tables().unwrap(), vec![], "a fresh namespace has none");
            let made = std::process::Command::new("nft")
                .args(["add", "table", "netdev", "harness_test"])
                .status()
                .unwrap();
            assert!(made.success());
            tables().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(listed, vec![("netdev", "harness_test".to_string())]);
    }
}
