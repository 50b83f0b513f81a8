//! What the endpoint loop waits for after moving datagrams: shared by the socket pump
//! (`batch.rs`) and the driver's DTLS flush (`driver.rs`).

/// What the loop should wait for after [`crate::pump`] (or [`crate::dtls_send`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The next datagram, timer, command or shutdown. (The socket may still hold datagrams
    /// when the loop stopped taking them to give the other inputs their turn; readability
    /// is then reported at once.)
    Input,
    /// The socket's send buffer is full: wait until it is writable (or for a timer,
    /// command or shutdown), then pump again.
    Writable,
}
