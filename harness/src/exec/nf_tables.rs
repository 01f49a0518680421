//! The names of the nf_tables tables in the calling thread's network
//! namespace, asked of the kernel over netlink.
//!
//! The leak guard asks before every cell that reuses a namespace; `nft
//! list ruleset` would cost a process each time (about 2.5 ms of CPU,
//! a hundred times a run), and one netlink dump costs microseconds. It
//! sees every table, the harness's own and the `mangle` tables that
//! iptables-nft makes for the queue rules alike.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// nfnetlink's subsystem for nf_tables, and its messages used here
/// (`linux/netfilter/nfnetlink.h`, `linux/netfilter/nf_tables.h`).
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFTA_TABLE_NAME: u16 = 1;

/// Each table's name, in the kernel's order, with its family:
/// `("inet", "harness_conditions")`.
pub fn tables() -> io::Result<Vec<(&'static str, String)>> {
    // SAFETY: a netlink socket, owned by the OwnedFd that closes it.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just opened, owned by nobody else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: SO_RCVTIMEO takes a timeval: no read waits unbounded.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    // A dump request: nlmsghdr, then nfgenmsg for every family.
    let mut request = Vec::with_capacity(20);
    request.extend_from_slice(&20u32.to_ne_bytes());
    request.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE).to_ne_bytes());
    request.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes());
    request.extend_from_slice(&0u32.to_ne_bytes());
    request.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    // SAFETY: send from a live buffer (the kernel is the default peer).
    if unsafe {
        libc::send(
            socket.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    let mut names = Vec::new();
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        // SAFETY: recv into a live buffer of that length.
        let n = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if parse(&buffer[..n as usize], &mut names)? {
            return Ok(names);
        }
    }
}

/// Reads the messages of one datagram into `names`; whether the dump is
/// done.
fn parse(mut data: &[u8], names: &mut Vec<(&'static str, String)>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "a short netlink message");
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < 16 || len > data.len() {
            return Err(bad());
        }
        let kind = u16_at(data, 4);
        let message = &data[16..len];
        match kind {
            k if k == libc::NLMSG_DONE as u16 => return Ok(true),
            k if k == libc::NLMSG_ERROR as u16 => {
                let code = message
                    .get(..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(bad)?;
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
            }
            k if k == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE && message.len() >= 4 => {
                let family = match i32::from(message[0]) {
                    libc::NFPROTO_INET => "inet",
                    libc::NFPROTO_IPV4 => "ip",
                    libc::NFPROTO_IPV6 => "ip6",
                    libc::NFPROTO_NETDEV => "netdev",
                    libc::NFPROTO_ARP => "arp",
                    libc::NFPROTO_BRIDGE => "bridge",
                    _ => "?",
                };
                // Attributes after the nfgenmsg, each padded to 4 bytes.
                let mut attrs = &message[4..];
                while attrs.len() >= 4 {
                    let alen = usize::from(u16_at(attrs, 0));
                    if alen < 4 || alen > attrs.len() {
                        break;
                    }
                    if u16_at(attrs, 2) & 0x3fff == NFTA_TABLE_NAME {
                        let value = &attrs[4..alen];
                        let name = value.split(|&b| b == 0).next().unwrap_or_default();
                        names.push((family, String::from_utf8_lossy(name).into_owned()));
                    }
                    attrs = &attrs[(alen + 3) & !3..];
                }
            }
            _ => {}
        }
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NEWTABLE message as the kernel sends it, then DONE.
    fn dump(family: u8, name: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        let value = [name.as_bytes(), &[0]].concat();
        attr.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        attr.extend_from_slice(&NFTA_TABLE_NAME.to_ne_bytes());
        attr.extend_from_slice(&value);
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut out = Vec::new();
        let len = 16 + 4 + attr.len();
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE).to_ne_bytes());
        out.extend_from_slice(&[0; 10]);
        out.extend_from_slice(&[family, 0, 0, 0]);
        out.extend_from_slice(&attr);
        out.extend_from_slice(&16u32.to_ne_bytes());
        out.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
        out.extend_from_slice(&[0; 10]);
        out
    }

    #[test]
    fn a_table_message_gives_its_family_and_name() {
        let mut names = Vec::new();
        let done = parse(
            &dump(libc::NFPROTO_NETDEV as u8, "harness_conditions"),
            &mut names,
        );
        assert!(done.unwrap());
        assert_eq!(names, vec![("netdev", "harness_conditions".to_string())]);
        assert!(
            parse(&[1, 0, 0, 0], &mut names).is_ok(),
            "too short: nothing"
        );
        let mut bad = dump(2, "x");
        bad[0] = 200;
        assert!(parse(&bad, &mut names).is_err());
    }
}
