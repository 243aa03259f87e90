//! Sealed memfds: bytes in a memory file that cannot change once passed to another process
//! (the state handed to the file descriptor store, `fdstore.rs`; a journal entry too large
//! for a datagram, `sink/journald/socket.rs`), and reading one back.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

/// `data` in a sealed memfd named `name` (it cannot change once passed on): the state for
/// the store, and a journal entry too large for a datagram.
pub fn sealed_memfd(data: &[u8], name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    let fd = memfd_create(
        name,
        MemFdCreateFlag::MFD_ALLOW_SEALING | MemFdCreateFlag::MFD_CLOEXEC,
    )?;
    let mut file = File::from(fd);
    file.write_all(data)?;
    fcntl(
        file.as_raw_fd(),
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_SHRINK
                | SealFlag::F_SEAL_GROW
                | SealFlag::F_SEAL_WRITE
                | SealFlag::F_SEAL_SEAL,
        ),
    )?;
    Ok(file.into())
}

/// The whole content of a memfd (from its start).
pub fn read_memfd(fd: OwnedFd) -> io::Result<Vec<u8>> {
    let mut file = File::from(fd);
    file.rewind()?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_memfd_reads_back_and_cannot_be_written() {
        let fd = sealed_memfd(b"some bytes", c"test").unwrap();
        let mut file = File::from(fd.try_clone().unwrap());
        assert!(file.write_all(b"x").is_err());
        assert_eq!(read_memfd(fd).unwrap(), b"some bytes");
    }
}
