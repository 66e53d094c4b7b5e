//! A client for the line-based telemetry protocol.
//!
//! This is the typestate pattern: the state of a connection (disconnected,
//! connected, authenticated) is part of its type instead of a field that is
//! checked at run time. Each state is a zero-sized struct, and
//! `Connection<S>` carries it only as a `PhantomData<S>`, so the states cost
//! no memory. A method that only makes sense in one state is defined only on
//! that state, and a transition consumes `self` and returns the connection in
//! its next state. Sending a metric before logging in is therefore not a
//! run-time error but a program that does not compile:
//!
//! ```compile_fail
//! use telemetry::connection::Connection;
//! let mut c = Connection::new("localhost:9000");
//! c.send("cpu", 0.5); // no method `send` on Connection<Disconnected>
//! ```
//!
//! Links: protocol notes in docs/protocol.txt, server repo on the wiki.

use std::io::{self, BufRead, BufReader, Write};
use std::marker::PhantomData;
use std::net::TcpStream;

mod private {
    pub trait Sealed {}
}

/// The states a `Connection` can be in.
///
/// `State` is a sealed trait. Its supertrait `private::Sealed` lives in a
/// module that is not exported, so code outside this crate cannot name it and
/// therefore cannot implement `State` for its own types. That keeps the set
/// of states closed (nobody can invent a `Connection<Hacked>`), and it lets us
/// add items to `State` later without a breaking change.
pub trait State: private::Sealed {
    const NAME: &'static str;
}

/// Not connected yet, or closed again.
pub struct Disconnected;
/// TCP is up, but the server does not know who we are.
pub struct Connected;
/// Logged in; metrics may be sent.
pub struct Authenticated;

impl private::Sealed for Disconnected {}
impl private::Sealed for Connected {}
impl private::Sealed for Authenticated {}

impl State for Disconnected {
    const NAME: &'static str = "disconnected";
}
impl State for Connected {
    const NAME: &'static str = "connected";
}
impl State for Authenticated {
    const NAME: &'static str = "authenticated";
}

pub struct Connection<S: State> {
    addr: String,
    stream: Option<TcpStream>,
    _state: PhantomData<S>,
}

impl<S: State> Connection<S> {
    /// Available in every state.
    pub fn state_name(&self) -> &'static str {
        S::NAME
    }

    fn into_state<T: State>(self) -> Connection<T> {
        Connection { addr: self.addr, stream: self.stream, _state: PhantomData }
    }
}

impl Connection<Disconnected> {
    pub fn new(addr: impl Into<String>) -> Self {
        Connection { addr: addr.into(), stream: None, _state: PhantomData }
    }

    pub fn connect(mut self) -> io::Result<Connection<Connected>> {
        self.stream = Some(TcpStream::connect(&self.addr)?);
        Ok(self.into_state())
    }
}

impl Connection<Connected> {
    /// Sends the token and waits for the server's answer.
    pub fn login(mut self, token: &str) -> io::Result<Connection<Authenticated>> {
        let stream = self.stream.as_mut().expect("a connected connection has a stream");
        writeln!(stream, "AUTH {}", token)?;
        let mut reply = String::new();
        BufReader::new(&*stream).read_line(&mut reply)?;
        if reply.starts_with("OK") {
            Ok(self.into_state())
        } else {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, reply.trim().to_string()))
        }
    }
}

impl Connection<Authenticated> {
    pub fn send(&mut self, metric: &str, value: f64) -> io::Result<()> {
        let stream = self.stream.as_mut().expect("an authenticated connection has a stream");
        writeln!(stream, "PUT {} {}", metric, value)
    }

    /// Ends the session. The returned value can be connected again.
    pub fn close(mut self) -> Connection<Disconnected> {
        if let Some(mut stream) = self.stream.take() {
            let _ = writeln!(stream, "QUIT");
        }
        self.into_state()
    }
}

// TODO: reconnect with backoff once the server supports session resume.
