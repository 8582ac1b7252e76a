//! A file on the host, written through ARM semihosting (QEMU's `-semihosting-config
//! enable=on,target=native`, or a debug probe): how the QEMU demo hands its framebuffer
//! to the test that compares it with the host's rendering.

use cortex_m_semihosting::{nr, syscall};

/// The host refused to open or write the file (semihosting gives no reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostRefused;

/// A host file open for writing (truncated); closed on drop.
pub struct HostFile {
    fd: usize,
}

impl HostFile {
    /// `name` must end with a NUL byte (semihosting takes C strings), e.g. `"screen.ppm\0"`.
    pub fn create(name: &str) -> Result<HostFile, HostRefused> {
        let bytes = name.as_bytes();
        if bytes.last() != Some(&0) {
            return Err(HostRefused);
        }
        // SAFETY: OPEN reads `len` bytes of the NUL-terminated name; it touches nothing else.
        let fd = unsafe { syscall!(OPEN, bytes.as_ptr(), nr::open::W_TRUNC_BINARY, bytes.len() - 1) };
        if fd as isize == -1 { Err(HostRefused) } else { Ok(HostFile { fd }) }
    }

    /// Writes all of `data` (WRITE returns how many bytes were *not* written).
    pub fn write_all(&mut self, mut data: &[u8]) -> Result<(), HostRefused> {
        while !data.is_empty() {
            // SAFETY: WRITE reads `data.len()` bytes from `data`.
            let left = unsafe { syscall!(WRITE, self.fd, data.as_ptr(), data.len()) };
            if left > data.len() {
                return Err(HostRefused);
            }
            if left == data.len() {
                return Err(HostRefused); // nothing written: the host refused
            }
            data = &data[data.len() - left..];
        }
        Ok(())
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this value owns.
        unsafe { syscall!(CLOSE, self.fd) };
    }
}

impl core::fmt::Write for HostFile {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_all(s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}
