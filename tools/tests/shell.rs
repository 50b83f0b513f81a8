//! `coap shell` in a real terminal: tmux runs it, the test types with `send-keys` and reads
//! the screen with `capture-pane` — a request, history recall, Ctrl-C cancelling an
//! observation (not the shell), a bad line. Every wait is bounded.

mod support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// A tmux server of its own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let socket = format!("coap-shell-test-{}", std::process::id());
        let tmux = Tmux { socket };
        let ok = tmux
            .cmd(&["new-session", "-d", "-x", "160", "-y", "60", command])
            .status()
            .expect("tmux (tests/peers/install.sh installs it)")
            .success();
        assert!(ok, "tmux new-session failed");
        tmux
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        c
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        assert!(
            self.cmd(&args).status().unwrap().success(),
            "send-keys {keys:?}"
        );
    }

    fn screen(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", "0", "-S", "-"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (bounded) until `done(screen)` holds; returns the screen.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < end,
                "waited {WAIT:?} for {what}; screen:\n{screen}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

fn prompts(screen: &str) -> usize {
    screen.lines().filter(|l| l.starts_with("coap> ")).count()
        + screen.lines().filter(|l| *l == "coap>").count()
}

#[test]
fn shell_requests_history_and_ctrl_c() {
    let s = Server::start();
    let tmux = Tmux::start(&format!("{BIN} shell {}", s.uri("/")));
    tmux.wait_for("the prompt", |sc| prompts(sc) == 1);
    // A request relative to the base URI.
    tmux.keys(&["get /hello", "Enter"]);
    tmux.wait_for("the response", |sc| {
        sc.matches("Hello, world!").count() == 1
    });
    // History: Up recalls the line.
    tmux.keys(&["Up", "Enter"]);
    let screen = tmux.wait_for("the recalled request's response", |sc| {
        sc.matches("Hello, world!").count() == 2
    });
    assert_eq!(screen.matches("coap> get /hello").count(), 2, "{screen}");
    // Ctrl-C cancels an observation; the shell goes on.
    tmux.keys(&["observe /time", "Enter"]);
    tmux.wait_for("two notifications", |sc| {
        sc.lines()
            .filter(|l| l.len() == 20 && l.ends_with('Z'))
            .count()
            >= 2
    });
    tmux.keys(&["C-c"]);
    tmux.wait_for("cancelled and a prompt", |sc| {
        sc.contains("cancelled") && prompts(sc) == 4
    });
    // Same endpoint, next request: a payload as a quoted word.
    tmux.keys(&["post /echo 'one two' -c text", "Enter"]);
    tmux.wait_for("the echo", |sc| sc.lines().any(|l| l == "one two"));
    // Ctrl-C at the prompt clears the line; a bad line is one error, not the end.
    tmux.keys(&["get /nev", "C-c"]);
    tmux.keys(&["frobnicate", "Enter"]);
    tmux.wait_for("the error", |sc| {
        sc.contains("unrecognized subcommand 'frobnicate'")
    });
    tmux.keys(&["get /hello", "Enter"]);
    tmux.wait_for("a third response", |sc| {
        sc.matches("Hello, world!").count() == 3
    });
    // Ctrl-D ends the session: the pane's command exits, so tmux's session goes.
    tmux.keys(&["C-d"]);
    let end = Instant::now() + WAIT;
    while tmux
        .cmd(&["has-session"])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < end, "the shell did not end on Ctrl-D");
        thread::sleep(Duration::from_millis(50));
    }
}
