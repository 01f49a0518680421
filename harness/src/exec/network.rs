//! Where a cell's network lives: a network namespace of its own, or the
//! host's loopback.
//!
//! In a fresh network namespace a cell has a loopback nobody else uses: the
//! capture holds its packets and nothing else, every cell can use the
//! tutorial's port 1712 at the same time, and no TIME_WAIT left by an
//! earlier cell can change a SYN. (On a shared loopback Linux reuses a
//! TIME_WAIT 4-tuple for a new connection to the same fixed port, and that
//! SYN carries the old timestamps and a smaller window: a real difference
//! on the wire, but one that depends on which ephemeral port the kernel
//! picked, so a fixed-port scenario would be flaky.)
//!
//! Namespaces are per thread: a worker thread unshares its network
//! namespace before each cell, and the capture thread and the programs it
//! starts inherit it.

use std::io;

/// How cells are kept apart.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// A network namespace per cell (needs root or CAP_SYS_ADMIN).
    Netns,
    /// An unprivileged user namespace for the harness, then a network
    /// namespace per cell inside it.
    Userns,
    /// The host's loopback, a free port per cell.
    Ports,
}

impl Isolation {
    pub fn describe(self) -> &'static str {
        match self {
            Isolation::Netns => "a network namespace per cell (privileged)",
            Isolation::Userns => {
                "a network namespace per cell, inside an unprivileged user namespace"
            }
            Isolation::Ports => "none: the host's loopback, a free port per cell",
        }
    }

    /// Whether each cell gets a loopback of its own.
    pub fn per_cell_namespace(self) -> bool {
        self != Isolation::Ports
    }
}

/// What the user asked for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// The best this process may use: netns, else userns, else ports.
    Auto,
    Netns,
    Userns,
    Ports,
}

/// Whether the effective capabilities include CAP_SYS_ADMIN, which
/// unsharing a network namespace needs.
fn has_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// Moves the whole process into a new user namespace where it is root, so
/// it may create network namespaces and capture on them. Must run while the
/// process has one thread: the kernel refuses otherwise.
fn enter_user_namespace() -> io::Result<()> {
    // SAFETY: plain system calls; the process is single-threaded here.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(io::Error::last_os_error());
    }
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

/// Settles the isolation mode. Call first thing in `main`, before any
/// thread exists.
pub fn choose(requested: Requested) -> Result<Isolation, String> {
    match requested {
        Requested::Ports => Ok(Isolation::Ports),
        Requested::Netns if has_sys_admin() => Ok(Isolation::Netns),
        Requested::Netns => Err(
            "--isolation netns needs root or CAP_SYS_ADMIN; run as root, or use --isolation userns or ports"
                .into(),
        ),
        Requested::Userns => enter_user_namespace().map(|()| Isolation::Userns).map_err(|e| {
            format!("cannot create a user namespace: {e}; check /proc/sys/user/max_user_namespaces, or use --isolation ports")
        }),
        Requested::Auto if has_sys_admin() => Ok(Isolation::Netns),
        Requested::Auto => Ok(enter_user_namespace().map_or(Isolation::Ports, |()| Isolation::Userns)),
    }
}

/// Puts the calling thread in a fresh network namespace with its loopback
/// up. Threads and processes it starts afterwards inherit it.
pub fn enter_fresh_network_namespace() -> io::Result<()> {
    // SAFETY: unshare affects only the calling thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    loopback_up()
}

/// Buckets of the TCP hash table a worker's namespace gets to itself (a
/// power of two). A cell holds a few connections; a larger one only
/// makes each walk of the table longer.
const OWN_TCP_TABLE_ENTRIES: u32 = 1024;

/// [`enter_fresh_network_namespace`], with TCP tables of the namespace's
/// own. A namespace shares the host's table of connections (262,144
/// buckets here) unless the namespace that creates it says otherwise
/// (`net.ipv4.tcp_child_ehash_entries`, Linux 6.1+), and listing a
/// namespace's sockets walks that whole table: 1.2 ms for the two walks
/// (IPv4, IPv6) a worker makes between cells, against 0.17 ms with a
/// small table of its own. So a short-lived namespace is made first only
/// to set that for its child. Where the setting is missing (older kernels)
/// the namespace shares the host's table, which is only slower.
///
/// A namespace's TIME_WAIT limit defaults to half its table, and past the
/// limit Linux closes a socket instead of keeping it in TIME_WAIT (or
/// FIN_WAIT2), which changes what the wire shows; so the limit is set to
/// the one where the worker came from (the host's, 131,072 here).
pub fn enter_namespace_with_own_tcp_tables() -> io::Result<()> {
    // Per namespace: /proc/sys/net resolves to the calling thread's.
    const CHILD_TABLE: &str = "/proc/sys/net/ipv4/tcp_child_ehash_entries";
    const TIME_WAIT_LIMIT: &str = "/proc/sys/net/ipv4/tcp_max_tw_buckets";
    let limit = std::fs::read_to_string(TIME_WAIT_LIMIT);
    // SAFETY: unshare affects only the calling thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let own = std::fs::write(CHILD_TABLE, OWN_TCP_TABLE_ENTRIES.to_string()).is_ok();
    // The first namespace goes as soon as this thread leaves it.
    enter_fresh_network_namespace()?;
    if own {
        if let Ok(limit) = limit {
            std::fs::write(TIME_WAIT_LIMIT, limit.trim())?;
        }
    }
    Ok(())
}

/// `ip link set lo up`, by ioctl: a new namespace's loopback starts down.
fn loopback_up() -> io::Result<()> {
    loopback_ioctl(|fd, request| {
        // SAFETY: interface ioctls on a valid socket and a zeroed,
        // NUL-terminated ifreq.
        unsafe {
            if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut *request) < 0 {
                return Err(io::Error::last_os_error());
            }
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &*request) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    })
}

/// `ip link set lo mtu MTU` in the calling thread's namespace, by ioctl.
pub fn set_loopback_mtu(mtu: u32) -> io::Result<()> {
    loopback_ioctl(|fd, request| {
        request.ifr_ifru.ifru_mtu = mtu as libc::c_int;
        // SAFETY: as in loopback_up.
        if unsafe { libc::ioctl(fd, libc::SIOCSIFMTU, &*request) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })
}

/// The loopback's MTU in the calling thread's namespace.
pub fn loopback_mtu() -> io::Result<u32> {
    loopback_ioctl(|fd, request| {
        // SAFETY: as in loopback_up.
        if unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut *request) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: SIOCGIFMTU filled in the MTU member.
        Ok(unsafe { request.ifr_ifru.ifru_mtu } as u32)
    })
}

/// Runs `call` with a datagram socket and an ifreq naming `lo`; the
/// socket is closed after.
fn loopback_ioctl<T>(
    call: impl FnOnce(libc::c_int, &mut libc::ifreq) -> io::Result<T>,
) -> io::Result<T> {
    // SAFETY: a datagram socket used only for interface ioctls, owned
    // by the OwnedFd that closes it.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just opened and owned by nobody else.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is valid; the name stays NUL-terminated.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    let result = call(fd, &mut request);
    drop(owned);
    result
}

/// How a cell's client reaches its server.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// Both on one loopback (the tutorials' setting): MSS 65495, no wire.
    Loopback,
    /// Client and server in two network namespaces joined by a veth pair
    /// with MTU 1500, as two hosts on an Ethernet: MSS 1460 (IPv4).
    Veth,
}

/// The addresses of the two ends of a veth cell; they exist only inside
/// the cell's own namespaces.
pub const VETH_SERVER: (&str, &str) = ("10.171.2.1", "fd00:171::1");
pub const VETH_CLIENT: (&str, &str) = ("10.171.2.2", "fd00:171::2");
/// The server's end, where the capture runs.
pub const VETH_SERVER_DEVICE: &str = "veth-s";
/// The client's end of the veth pair, in the client's namespace.
pub const VETH_CLIENT_DEVICE: &str = "veth-c";
pub const VETH_MTU: &str = "1500";

/// A cell of the veth topology: the calling thread is in the server's
/// namespace; the client's is held by this descriptor.
pub struct VethCell {
    pub client_netns: std::os::fd::OwnedFd,
}

impl VethCell {
    /// The server's address for a scenario on `loopback_host`.
    pub fn server_host(loopback_host: &str) -> &'static str {
        if loopback_host.contains(':') {
            VETH_SERVER.1
        } else {
            VETH_SERVER.0
        }
    }
}

/// Sets both ends of the cell's veth pair to `mtu`: the server's end in
/// the calling thread's namespace, the client's in `client_netns`.
pub fn set_veth_mtu(mtu: u32, client_netns: std::os::fd::BorrowedFd<'_>) -> Result<(), String> {
    let mtu = mtu.to_string();
    ip(
        &["link", "set", "dev", VETH_SERVER_DEVICE, "mtu", &mtu],
        None,
    )?;
    ip(
        &["link", "set", "dev", VETH_CLIENT_DEVICE, "mtu", &mtu],
        Some(client_netns),
    )
}

/// Runs `f` on a thread of its own in the network namespace `netns` and
/// returns what it gives: a thread's namespace is its own, and threads it
/// starts inherit it (so a loop started there stays there).
pub fn in_namespace<T: Send>(
    netns: std::os::fd::BorrowedFd<'_>,
    f: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    use std::os::fd::AsRawFd;
    let fd = netns.as_raw_fd();
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                // SAFETY: setns on a namespace descriptor the caller holds
                // open for the call; it moves this thread only.
                if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                    return Err(format!(
                        "cannot enter the client's namespace: {}",
                        io::Error::last_os_error()
                    ));
                }
                f()
            })
            .join()
            .map_err(|_| "a thread in the client's namespace panicked".to_string())?
    })
}

/// Runs `ip ARGS` in the calling thread's namespace or in `netns`.
fn ip(args: &[&str], netns: Option<std::os::fd::BorrowedFd<'_>>) -> Result<(), String> {
    let argv: Vec<String> = std::iter::once("ip")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    let mut child = crate::exec::process::Child::spawn_in("ip", &argv, None, None, netns)
        .map_err(|e| format!("{e}; install iproute2 (make deps)"))?;
    let out = child
        .wait(std::time::Duration::from_secs(5), &|| false)
        .map_err(|e| e.to_string())?;
    if out.exit_code == Some(0) {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two fresh namespaces joined by a veth pair: the client's, then the
/// server's, which the calling thread stays in. Both ends get an IPv4 and
/// an IPv6 address (without duplicate address detection, which would hold
/// the IPv6 one back for a second) and MTU 1500.
pub fn enter_veth_pair() -> Result<VethCell, String> {
    use std::os::fd::AsFd;
    let fail = |what: &str, e: io::Error| format!("cannot create the {what} namespace: {e}");
    enter_fresh_network_namespace().map_err(|e| fail("client's", e))?;
    let client_netns: std::os::fd::OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| fail("client's", e))?
        .into();
    enter_fresh_network_namespace().map_err(|e| fail("server's", e))?;
    // Created on the client's side, its peer moved into this thread's
    // namespace (a thread id is a valid target for `netns`).
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() }.to_string();
    let c = Some(client_netns.as_fd());
    ip(
        &[
            "link",
            "add",
            VETH_CLIENT_DEVICE,
            "mtu",
            VETH_MTU,
            "type",
            "veth",
            "peer",
            "name",
            VETH_SERVER_DEVICE,
            "mtu",
            VETH_MTU,
            "netns",
            &tid,
        ],
        c,
    )?;
    let (s4, s6) = (
        format!("{}/30", VETH_SERVER.0),
        format!("{}/64", VETH_SERVER.1),
    );
    let (c4, c6) = (
        format!("{}/30", VETH_CLIENT.0),
        format!("{}/64", VETH_CLIENT.1),
    );
    ip(&["addr", "add", &s4, "dev", VETH_SERVER_DEVICE], None)?;
    ip(
        &["-6", "addr", "add", &s6, "dev", VETH_SERVER_DEVICE, "nodad"],
        None,
    )?;
    ip(&["link", "set", VETH_SERVER_DEVICE, "up"], None)?;
    ip(&["addr", "add", &c4, "dev", VETH_CLIENT_DEVICE], c)?;
    ip(
        &["-6", "addr", "add", &c6, "dev", VETH_CLIENT_DEVICE, "nodad"],
        c,
    )?;
    ip(&["link", "set", VETH_CLIENT_DEVICE, "up"], c)?;
    Ok(VethCell { client_netns })
}

/// The network a cell runs on, held for the whole cell.
pub enum CellNetwork {
    /// The host's loopback; on a fixed port, with its machine-wide lock.
    Shared {
        /// Held, never read: dropping it frees the port for the next run.
        _port_lock: Option<super::port_lock::PortLock>,
    },
    /// A fresh namespace, the calling thread's, with its own loopback.
    Namespace,
    /// Two namespaces joined by a veth pair; the thread is in the server's.
    Veth(VethCell),
}
