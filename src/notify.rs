//! The systemd readiness protocol: one datagram socket, in the abstract
//! namespace under a name the kernel picks, given to `notify = true`
//! services as `NOTIFY_SOCKET`. The kernel stamps each datagram with the
//! sender's pid, which says which service sent `READY=1`.

use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr, bind, getsockname,
    recvmsg, setsockopt, socket, sockopt::PassCred,
};
use std::os::fd::{AsRawFd, OwnedFd};

pub struct NotifySocket {
    pub fd: OwnedFd,
    /// `NOTIFY_SOCKET` for the services: `@` and the abstract name.
    pub address: String,
}

impl NotifySocket {
    pub fn bind() -> Result<NotifySocket, String> {
        fn failed(what: &'static str) -> impl Fn(nix::errno::Errno) -> String {
            move |errno| format!("notify socket: {what}: {}", errno.desc())
        }
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        let fd = socket(AddressFamily::Unix, SockType::Datagram, flags, None)
            .map_err(failed("socket"))?;
        setsockopt(&fd, PassCred, &true).map_err(failed("SO_PASSCRED"))?;
        // An address of just the family: the kernel picks a unique
        // abstract name (autobind).
        bind(fd.as_raw_fd(), &UnixAddr::new_unnamed()).map_err(failed("bind"))?;
        let bound: UnixAddr = getsockname(fd.as_raw_fd()).map_err(failed("getsockname"))?;
        let name = bound.as_abstract().unwrap_or_default();
        Ok(NotifySocket {
            fd,
            // Written `@` by convention for the leading NUL byte.
            address: format!("@{}", String::from_utf8_lossy(name)),
        })
    }

    /// The pids that have sent `READY=1` since the last call.
    pub fn ready_senders(&self) -> Vec<i32> {
        let mut ready = Vec::new();
        let mut payload = [0u8; 4096];
        let mut control = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
        loop {
            let mut iov = [std::io::IoSliceMut::new(&mut payload)];
            let received = recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut control),
                MsgFlags::MSG_DONTWAIT,
            );
            let message = match received {
                Ok(message) => message,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return ready,
            };
            let sender = message.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|cmsg| match cmsg {
                    ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
                    _ => None,
                })
            });
            let n = message.bytes;
            let text = payload.get(..n).unwrap_or_default();
            let says_ready = text.split(|&b| b == b'\n').any(|line| line == b"READY=1");
            ready.extend(sender.filter(|_| says_ready));
        }
    }
}
