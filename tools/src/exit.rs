//! Exit codes of the `coap` tool and the one-line failure that goes with them.

use std::fmt;
use std::process::ExitCode;

use coap_core::code::CodeClass;
use coap_core::Code;

/// Text for `coap --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success: a 2.xx response (serve: shut down by Ctrl-C)
  1  communication failure: host not found or unreachable, reset by the peer (RST),
     socket error, a response that is neither 2.xx, 4.xx nor 5.xx, or the -o FILE
     cannot be written
  2  usage error or bad input: bad arguments, invalid URI, unknown content format,
     unreadable payload file, malformed --option
  3  timeout: no response in time
  4  4.xx client error response (e.g. 4.04 Not Found)
  5  5.xx server error response (e.g. 5.00 Internal Server Error)";

/// What happened, as the process reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Exit {
    /// 0: a 2.xx response, or a clean shutdown.
    Success = 0,
    /// 1: network, I/O, or an unexpected response class.
    Failure = 1,
    /// 2: bad arguments or input.
    Usage = 2,
    /// 3: no response in time.
    Timeout = 3,
    /// 4: a 4.xx response.
    ClientError = 4,
    /// 5: a 5.xx response.
    ServerError = 5,
}

impl Exit {
    /// The exit code for a response code.
    pub fn for_code(code: Code) -> Exit {
        match code.kind() {
            CodeClass::Success => Exit::Success,
            CodeClass::ClientError => Exit::ClientError,
            CodeClass::ServerError => Exit::ServerError,
            _ => Exit::Failure,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// A failure: an exit code and the one line that explains it on stderr.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Fail {
    /// The exit code.
    pub exit: Exit,
    /// The message, without a trailing newline.
    pub message: String,
}

impl Fail {
    /// A failure with `exit` and `message` (newlines in it are folded into spaces).
    pub fn new(exit: Exit, message: impl fmt::Display) -> Fail {
        Fail {
            exit,
            message: one_line(&message.to_string()),
        }
    }

    /// Usage or bad input (exit 2).
    pub fn usage(message: impl fmt::Display) -> Fail {
        Fail::new(Exit::Usage, message)
    }

    /// Communication failure (exit 1).
    pub fn failure(message: impl fmt::Display) -> Fail {
        Fail::new(Exit::Failure, message)
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Folds a message onto one line.
pub fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Exit::for_code(Code::CONTENT), Exit::Success);
        assert_eq!(Exit::for_code(Code::NOT_FOUND), Exit::ClientError);
        assert_eq!(
            Exit::for_code(Code::INTERNAL_SERVER_ERROR),
            Exit::ServerError
        );
        assert_eq!(Exit::for_code(Code::new(3, 1)), Exit::Failure);
        assert_eq!(Fail::usage("a\nb\n").message, "a b");
    }
}
