//! The component's stdout and stderr kept in memory, write by write: each
//! `write` of the guest's output stream is one entry, as each is one write of
//! Spin's stdio to the pod's log. A log record split over several writes can be
//! interleaved with another instance's there, which the entries show.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much a capture keeps; a write beyond it fails, as a full pipe would.
const CAPACITY: usize = 256 << 20;
/// What one write may carry: the budget Spin's stdio streams grant (wasmtime-wasi's
/// `check-write` for the host's stdout and stderr).
const WRITE_BUDGET: usize = 64 * 1024;

#[derive(Clone, Default)]
pub struct CapturedOutput {
    writes: Arc<Mutex<Vec<Bytes>>>,
}

impl CapturedOutput {
    /// Every write so far, in order.
    pub fn writes(&self) -> Vec<Bytes> {
        self.writes.lock().expect("capture lock").clone()
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.writes().concat()
    }

    fn push(&self, bytes: &[u8]) -> Result<(), StreamError> {
        let mut writes = self.writes.lock().expect("capture lock");
        let used: usize = writes.iter().map(Bytes::len).sum();
        if used + bytes.len() > CAPACITY {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "the captured output is full"
            )));
        }
        writes.push(Bytes::copy_from_slice(bytes));
        Ok(())
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes)
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.push(buf)
                .map(|()| buf.len())
                .map_err(|err| io::Error::other(err.to_string())),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
