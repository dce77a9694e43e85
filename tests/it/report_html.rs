//! The HTML report in a real browser: Debian's Chromium, headless, driven over the Chrome
//! DevTools Protocol. The page loads from the file with no fetch and no policy violation, shows
//! one grid cell per result, and a real mouse click on a cell opens its detail with the
//! transcript as text: markup a device printed (`<script>`, `</pre>`) shows literally and never
//! runs. Chromium comes from `ci/setup-host`; without it this test fails.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use otarig::report::{self, DetailsByCell};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::common;

use common::TempDir;

/// Every wait (browser start, page load, an answer) ends within this.
const DEADLINE: Duration = Duration::from_secs(60);

const EVIL_LOG: &str = "I (10) app: starting\r\n\
    \x1b[0;31mE (20) app: <script>window.__pwned = 1</script>\x1b[0m\r\n\
    E (21) app: </pre><img src=x onerror=\"window.__pwned = 2\">\r\n\
    I (22) app: done\r\n";
const UNTRUSTED_LOG: &str = "E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700\r\n";

/// A run of three cells: one whose transcript holds markup, one pass, one error.
fn write_run(dir: &Path) {
    std::fs::create_dir_all(dir.join("transcripts")).unwrap();
    std::fs::write(dir.join("transcripts/evil__tricky.log"), EVIL_LOG).unwrap();
    std::fs::write(dir.join("transcripts/fw__a.log"), UNTRUSTED_LOG).unwrap();
    std::fs::write(dir.join("transcripts/fw__b.log"), "").unwrap();
    let lines = [
        json!({"firmware": "evil", "scenario": "tricky", "board": "twin-1", "expected": null,
               "observed": {"outcome": "crashed", "reason": null, "evidence": [
                   {"line": 2, "text": "E (20) app: <script>window.__pwned = 1</script>"},
                   {"line": 3, "text": "E (21) app: </pre><img src=x onerror=\"window.__pwned = 2\">"}]},
               "verdict": "observed", "transcript": "transcripts/evil__tricky.log", "duration_ms": 10}),
        json!({"firmware": "fw", "scenario": "a", "board": "twin-1",
               "expected": {"outcome": "tls-verify", "reason": "untrusted"},
               "observed": {"outcome": "tls-verify", "reason": "untrusted",
                            "evidence": [{"line": 1, "text": "E (7513) esp-tls: mbedtls_ssl_handshake returned -0x2700"}]},
               "verdict": "pass", "transcript": "transcripts/fw__a.log", "duration_ms": 20}),
        json!({"firmware": "fw", "scenario": "b", "board": "twin-1",
               "expected": {"outcome": "updated", "reason": null}, "observed": null, "verdict": "error",
               "transcript": "transcripts/fw__b.log", "error": "flashing: <no answer>", "duration_ms": 30}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("results.jsonl"), text).unwrap();
}

/// Debian's Chromium: `/usr/bin/chromium`, or `chromium` / `chromium-browser` on the PATH.
fn chromium() -> PathBuf {
    let fixed = Path::new("/usr/bin/chromium");
    if fixed.is_file() {
        return fixed.to_owned();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!("chromium not found (/usr/bin/chromium, or chromium / chromium-browser on PATH): run ci/setup-host");
}

/// A headless Chromium in its own process group, killed with the group when dropped.
struct Browser {
    child: Child,
    websocket_url: String,
    _profile: TempDir,
}

impl Browser {
    fn start() -> Self {
        let profile = TempDir::new("report-html-profile");
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start chromium ({err}): run ci/setup-host"));
        // Chromium names its DevTools endpoint on stderr; the rest of stderr is drained so the
        // browser never blocks on a full pipe.
        let (lines, received) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        let websocket_url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => match line.split_once("DevTools listening on ") {
                    Some((_, url)) => break url.trim().to_owned(),
                    None => seen.push(line),
                },
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    panic!("chromium gave no DevTools endpoint (exit: {status:?}); stderr:\n{}", seen.join("\n"))
                }
            }
        };
        Self { child, websocket_url, _profile: profile }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group holds only the browser this test started and the processes it spawned.
        // SAFETY: kill(2) with a negated process group id we created; no memory is touched.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A DevTools client on the browser's endpoint: commands answered in order, events kept.
struct DevTools {
    socket: WebSocket<TcpStream>,
    next_id: u64,
    events: Vec<Value>,
}

impl DevTools {
    fn connect(url: &str) -> Self {
        let authority = url.strip_prefix("ws://").and_then(|rest| rest.split('/').next()).unwrap();
        let stream = TcpStream::connect(authority).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let (socket, _) = tungstenite::client(url, stream).unwrap();
        Self { socket, next_id: 1, events: Vec::new() }
    }

    fn read(&mut self, waiting_for: &str, deadline: Instant) -> Value {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        self.socket.get_mut().set_read_timeout(Some(left)).unwrap();
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => return serde_json::from_str(&text).unwrap(),
                Ok(_) => continue,
                Err(err) => panic!("no answer to {waiting_for} within {DEADLINE:?}: {err}"),
            }
        }
    }

    /// Sends a command (to a page's session, or the browser) and returns its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        self.socket.send(Message::text(message.to_string())).unwrap();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let answer = self.read(method, deadline);
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
            self.events.push(answer);
        }
    }

    /// Waits for an event of a page's session (or takes it from those already seen).
    fn event(&mut self, session: &str, method: &str) -> Value {
        let matches = |e: &Value| e["method"] == method && e["sessionId"] == session;
        if let Some(at) = self.events.iter().position(matches) {
            return self.events.remove(at);
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let event = self.read(method, deadline);
            if matches(&event) {
                return event;
            }
            self.events.push(event);
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    fn eval(&mut self, session: &str, expression: &str) -> Value {
        let result = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    /// A mouse click at the centre of the element `selector` names, through the browser's input.
    fn click(&mut self, session: &str, selector: &str) {
        let centre = self.eval(
            session,
            &format!(
                "(() => {{ const e = document.querySelector({}); e.scrollIntoView({{block: 'center'}}); \
                 const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
                Value::from(selector)
            ),
        );
        let (x, y) = (centre[0].as_f64().unwrap(), centre[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            let params = json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1});
            self.call(Some(session), "Input.dispatchMouseEvent", params);
        }
    }
}

/// The visible detail's text, once there is one.
const VISIBLE_DETAIL: &str = "new Promise(resolve => { const check = () => { \
    const d = document.querySelector('#detail .cell-detail:not([hidden])'); \
    if (d) resolve({id: d.id, text: d.textContent, visible: document.querySelectorAll('#detail .cell-detail:not([hidden])').length, \
                    deciding: d.querySelectorAll('.l.ev').length}); \
    else requestAnimationFrame(check); }; check(); })";

#[test]
fn a_click_opens_the_transcript_as_text_and_nothing_it_holds_runs() {
    let tmp = TempDir::new("report-html-run");
    write_run(&tmp.0);
    let cells = otarig::results::read_results(&tmp.0).unwrap();
    let page = report::write_html(&cells, &tmp.0, &DetailsByCell::new()).unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    assert!(url.bytes().all(|b| b.is_ascii_graphic()), "a plain file URL: {url}");

    let browser = Browser::start();
    let mut devtools = DevTools::connect(&browser.websocket_url);
    let target = devtools.call(None, "Target.createTarget", json!({"url": "about:blank"}));
    let attached =
        devtools.call(None, "Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}));
    let session = attached["sessionId"].as_str().unwrap().to_owned();
    let session = session.as_str();
    devtools.call(Some(session), "Page.enable", json!({}));
    devtools.call(Some(session), "Runtime.enable", json!({}));
    // Records what the page's Content-Security-Policy blocks (its own style or script would be
    // blocked if their hashes were wrong).
    devtools.call(
        Some(session),
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": "window.__violations = []; document.addEventListener('securitypolicyviolation', \
                          e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"}),
    );
    let navigated = devtools.call(Some(session), "Page.navigate", json!({"url": url}));
    assert!(navigated.get("errorText").is_none(), "{navigated}");
    devtools.event(session, "Page.loadEventFired");

    assert_eq!(devtools.eval(session, "document.querySelectorAll('.grid .cell').length"), 3);
    assert_eq!(devtools.eval(session, "document.querySelectorAll('.cell-detail:not([hidden])').length"), 0);
    assert_eq!(devtools.eval(session, "getComputedStyle(document.querySelector('#hint')).display"), "block");

    devtools.click(session, ".cell[title^=\"evil × tricky\"]");
    let detail = devtools.eval(session, VISIBLE_DETAIL);
    let text = detail["text"].as_str().unwrap();
    assert!(text.contains("E (20) app: <script>window.__pwned = 1</script>\n"), "{text}");
    assert!(text.contains("E (21) app: </pre><img src=x onerror=\"window.__pwned = 2\">\n"), "{text}");
    assert!(text.contains("I (22) app: done"), "the transcript goes on after </pre>: {text}");
    assert!(!text.contains('\u{1b}'), "no escape codes: {text:?}");
    assert_eq!((detail["visible"].as_u64(), detail["deciding"].as_u64()), (Some(1), Some(2)));
    let id = detail["id"].as_str().unwrap();
    assert_eq!(devtools.eval(session, "location.hash"), format!("#{id}"));
    assert_eq!(devtools.eval(session, "document.querySelector('.cell[aria-pressed=\"true\"]').dataset.cell"), id);
    assert_eq!(devtools.eval(session, "typeof window.__pwned"), "undefined");
    assert_eq!(devtools.eval(session, "document.querySelectorAll('img').length"), 0);

    // Another cell replaces it; the error cell shows its error text as text.
    devtools.click(session, ".cell.v-error");
    let detail = devtools.eval(session, VISIBLE_DETAIL);
    assert_ne!(detail["id"], id);
    assert_eq!(detail["visible"], 1);
    assert!(detail["text"].as_str().unwrap().contains("flashing: <no answer>"), "{detail}");

    assert_eq!(devtools.eval(session, "window.__violations"), json!([]), "the page's own style and script are allowed");
    let exceptions: Vec<&Value> = devtools.events.iter().filter(|e| e["method"] == "Runtime.exceptionThrown").collect();
    assert!(exceptions.is_empty(), "{exceptions:?}");
    assert_eq!(devtools.eval(session, "typeof window.__pwned"), "undefined");
    drop(browser);
}
