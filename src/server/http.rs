//! HTTP/1.1 over the (TLS) stream: the request parsed with httparse, the response written as
//! the scenario's fault says. One request per connection, as ESP-IDF's OTA client makes it.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::scenario::Fault;

/// TLS's largest record plaintext: what the server puts in a record unless a scenario's
/// `record_size` says less.
pub(crate) const MAX_RECORD: usize = 16 * 1024;
/// The most request bytes read before giving up on a request.
pub(crate) const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
}

/// A request the server cannot answer; its text is the event's reason.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("{0}")]
    Read(#[source] std::io::Error),
    #[error("connection closed before a complete request")]
    Closed,
    #[error("request head too large")]
    TooLarge,
    #[error("not HTTP: {0}")]
    NotHttp(#[source] httparse::Error),
    #[error("request timed out")]
    TimedOut,
}

/// Reads one request head.
pub(crate) async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Request, RequestError> {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.map_err(RequestError::Read)?;
            if n == 0 {
                return Err(RequestError::Closed);
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&buf) {
                Ok(httparse::Status::Complete(_)) => {
                    return Ok(Request {
                        method: request.method.unwrap_or_default().to_owned(),
                        path: request.path.unwrap_or_default().to_owned(),
                    });
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_BYTES => {}
                Ok(httparse::Status::Partial) => return Err(RequestError::TooLarge),
                Err(e) => return Err(RequestError::NotHttp(e)),
            }
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read).await.map_err(|_| RequestError::TimedOut)?
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Everything sent; close cleanly.
    Complete,
    /// Stop here; close with or without TLS close_notify.
    Cut { close_notify: bool },
    /// Stop here; reset the TCP connection.
    Reset,
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub status: u16,
    pub body_bytes: u64,
    pub ending: Ending,
}

const HTML_PAGE: &[u8] = b"<!DOCTYPE html>\n<html><head><title>Not Found</title></head>\n\
<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>\n";

/// Writes the response to `request` for `image` at `path`, as `fault` says, in records of at
/// most `records` bytes of plaintext (each write to a rustls stream is sealed into records of
/// its own, as nginx seals each `ssl_buffer_size` buffer).
pub(crate) async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    request: &Request,
    path: &str,
    image: &[u8],
    fault: Option<&Fault>,
    records: usize,
) -> std::io::Result<Written> {
    let head_only = request.method == "HEAD";
    if request.path != path {
        return send_simple(stream, records, 404, "Not Found", HTML_PAGE, head_only, &[]).await;
    }
    match fault {
        Some(Fault::Status { status }) => {
            let reason = reason_phrase(*status);
            send_simple(stream, records, *status, reason, HTML_PAGE, head_only, &[]).await
        }
        Some(Fault::Redirect { status, location }) => {
            let headers = [("Location", location.as_str())];
            send_simple(stream, records, *status, reason_phrase(*status), b"", head_only, &headers).await
        }
        Some(Fault::HtmlBody) => send_simple(stream, records, 200, "OK", HTML_PAGE, head_only, &[]).await,
        Some(Fault::WrongContentLength { length }) => {
            write_head(stream, records, 200, "OK", *length, "application/octet-stream", &[]).await?;
            send_body(stream, records, image, head_only, None, None).await
        }
        Some(Fault::Truncate { after, close_notify }) => {
            write_head(stream, records, 200, "OK", image.len() as u64, "application/octet-stream", &[]).await?;
            let cut = (*after as usize).min(image.len());
            let mut written = send_body(stream, records, &image[..cut], head_only, None, None).await?;
            written.ending = Ending::Cut { close_notify: *close_notify };
            Ok(written)
        }
        Some(Fault::Reset { after } | Fault::Kill { after }) => {
            write_head(stream, records, 200, "OK", image.len() as u64, "application/octet-stream", &[]).await?;
            let cut = (*after as usize).min(image.len());
            let mut written = send_body(stream, records, &image[..cut], head_only, None, None).await?;
            written.ending = Ending::Reset;
            Ok(written)
        }
        Some(Fault::Stall { after, seconds }) => {
            write_head(stream, records, 200, "OK", image.len() as u64, "application/octet-stream", &[]).await?;
            let stall = Some(((*after as usize).min(image.len()), Duration::from_secs(*seconds)));
            send_body(stream, records, image, head_only, stall, None).await
        }
        Some(Fault::Throttle { bytes_per_second }) => {
            write_head(stream, records, 200, "OK", image.len() as u64, "application/octet-stream", &[]).await?;
            send_body(stream, records, image, head_only, None, Some(*bytes_per_second)).await
        }
        // Faults before TLS never get here.
        Some(Fault::Plaintext | Fault::Alert { .. }) | None => {
            write_head(stream, records, 200, "OK", image.len() as u64, "application/octet-stream", &[]).await?;
            send_body(stream, records, image, head_only, None, None).await
        }
    }
}

async fn send_simple<S: AsyncWrite + Unpin>(
    stream: &mut S,
    records: usize,
    status: u16,
    reason: &str,
    body: &[u8],
    head_only: bool,
    headers: &[(&str, &str)],
) -> std::io::Result<Written> {
    write_head(stream, records, status, reason, body.len() as u64, "text/html", headers).await?;
    let mut written = send_body(stream, records, body, head_only, None, None).await?;
    written.status = status;
    Ok(written)
}

async fn write_head<S: AsyncWrite + Unpin>(
    stream: &mut S,
    records: usize,
    status: u16,
    reason: &str,
    length: u64,
    content_type: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: otarig\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    for record in head.as_bytes().chunks(records.max(1)) {
        stream.write_all(record).await?;
    }
    Ok(())
}

/// Sends `body`, optionally pausing once (`stall`: after that many bytes, for that long) or
/// pacing to a rate. Returns status 200; callers that sent another status set it.
async fn send_body<S: AsyncWrite + Unpin>(
    stream: &mut S,
    records: usize,
    body: &[u8],
    head_only: bool,
    stall: Option<(usize, Duration)>,
    rate: Option<u64>,
) -> std::io::Result<Written> {
    let mut sent = 0usize;
    if !head_only {
        let chunk = match rate {
            Some(rate) => ((rate / 10).max(1) as usize).min(records.max(1)),
            None => records.max(1),
        };
        let mut stalled = false;
        while sent < body.len() {
            let mut end = (sent + chunk).min(body.len());
            if let Some((at, _)) = stall
                && !stalled
                && sent < at
            {
                end = end.min(at);
            }
            stream.write_all(&body[sent..end]).await?;
            sent = end;
            if let Some((at, pause)) = stall
                && !stalled
                && sent >= at
            {
                stream.flush().await?;
                tokio::time::sleep(pause).await;
                stalled = true;
            }
            if rate.is_some() {
                stream.flush().await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    stream.flush().await?;
    Ok(Written { status: 200, body_bytes: sent as u64, ending: Ending::Complete })
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_read_or_refused_by_kind() {
        let request = read_request(&mut &b"GET /fw.bin HTTP/1.1\r\nHost: a\r\n\r\n"[..]).await.unwrap();
        assert_eq!(request, Request { method: "GET".into(), path: "/fw.bin".into() });
        assert!(matches!(read_request(&mut &b"GET /fw.bin HTTP/1.1\r\n"[..]).await, Err(RequestError::Closed)));
        assert!(matches!(read_request(&mut &b"\x16\x03\x01\x02\x00"[..]).await, Err(RequestError::NotHttp(_))));
        let endless = [b"GET / HTTP/1.1\r\n".as_slice(), &[b'a'; MAX_REQUEST_BYTES]].concat();
        assert!(matches!(read_request(&mut endless.as_slice()).await, Err(RequestError::TooLarge)));
    }
}
