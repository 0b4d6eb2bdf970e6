//! The systemd readiness protocol: one datagram socket, in the abstract
//! namespace under a name the kernel picks, given to `notify = true`
//! services as `NOTIFY_SOCKET`. The kernel stamps each datagram with the
//! sender's pid, which says which service sent `READY=1`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub struct NotifySocket {
    fd: OwnedFd,
    /// `@` and the abstract name, as `NOTIFY_SOCKET` writes it.
    pub address: String,
}

impl NotifySocket {
    pub fn bind() -> Result<NotifySocket, String> {
        let failed = |what: &str| {
            format!(
                "notify socket: {what}: {}",
                nix::errno::Errno::last().desc()
            )
        };
        // SAFETY: socket, setsockopt, bind and getsockname on our own
        // descriptor with correctly sized structs.
        unsafe {
            let fd = libc::socket(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            );
            if fd < 0 {
                return Err(failed("socket"));
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let on: libc::c_int = 1;
            let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            if libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&on as *const libc::c_int).cast(),
                size,
            ) != 0
            {
                return Err(failed("SO_PASSCRED"));
            }
            // An address of just the family: the kernel picks a unique
            // abstract name (autobind).
            let mut address: libc::sockaddr_un = std::mem::zeroed();
            address.sun_family = libc::AF_UNIX as libc::sa_family_t;
            let family_only = std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t;
            if libc::bind(
                fd.as_raw_fd(),
                (&address as *const libc::sockaddr_un).cast(),
                family_only,
            ) != 0
            {
                return Err(failed("bind"));
            }
            let mut length = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            if libc::getsockname(
                fd.as_raw_fd(),
                (&mut address as *mut libc::sockaddr_un).cast(),
                &mut length,
            ) != 0
            {
                return Err(failed("getsockname"));
            }
            let name_length = (length as usize).saturating_sub(family_only as usize);
            // The name starts with a NUL byte, written `@` by convention.
            let name: String = address
                .sun_path
                .iter()
                .take(name_length)
                .skip(1)
                .map(|&c| c as u8 as char)
                .collect();
            Ok(NotifySocket {
                fd,
                address: format!("@{name}"),
            })
        }
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }

    /// The pids that have sent `READY=1` since the last call.
    pub fn ready_senders(&self) -> Vec<i32> {
        let mut ready = Vec::new();
        loop {
            let mut payload = [0u8; 4096];
            // Room for one SCM_CREDENTIALS message, aligned for cmsghdr.
            let mut control = [0u64; 8];
            let mut iov = libc::iovec {
                iov_base: payload.as_mut_ptr().cast(),
                iov_len: payload.len(),
            };
            // SAFETY: msghdr points at the buffers above, of their sizes.
            let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
            message.msg_iov = &mut iov;
            message.msg_iovlen = 1;
            message.msg_control = control.as_mut_ptr().cast();
            message.msg_controllen = std::mem::size_of_val(&control) as _;
            // SAFETY: recvmsg fills the buffers described by `message`.
            let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut message, libc::MSG_DONTWAIT) };
            if n < 0 {
                if nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                    continue;
                }
                return ready;
            }
            let text = payload.get(..n as usize).unwrap_or_default();
            let says_ready = text.split(|&b| b == b'\n').any(|line| line == b"READY=1");
            if let (true, Some(pid)) = (says_ready, sender(&message)) {
                ready.push(pid);
            }
        }
    }
}

/// The pid in a datagram's SCM_CREDENTIALS.
fn sender(message: &libc::msghdr) -> Option<i32> {
    // SAFETY: the CMSG macros walk the control buffer recvmsg filled.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET
                && (*header).cmsg_type == libc::SCM_CREDENTIALS
            {
                let credentials = libc::CMSG_DATA(header)
                    .cast::<libc::ucred>()
                    .read_unaligned();
                return Some(credentials.pid);
            }
            header = libc::CMSG_NXTHDR(message, header);
        }
    }
    None
}
