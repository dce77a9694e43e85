//! The little HTTP/1.1 that `esp_http_client` speaks for an OTA download: one GET, the response
//! head parsed with httparse, the body read in the client's buffer size.

use std::io::{Read, Write};

use crate::firmware::OtaUrl;

/// What the response head said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Head {
    pub status: u16,
    pub(crate) content_length: Option<u64>,
    pub location: Option<String>,
    /// Bytes of the body that arrived with the head.
    pub body_start: Vec<u8>,
}

/// Why no response head could be read.
#[derive(Debug)]
pub(super) enum HeadError {
    /// The connection ended (cleanly or not) before a whole head arrived.
    Closed,
    /// Reading or writing failed.
    Read,
    /// Not HTTP.
    Malformed,
}

/// The request `esp_http_client` sends for `esp_https_ota`.
pub(super) fn request(url: &OtaUrl) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nUser-Agent: ESP32 HTTP Client/1.0\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
        url.path, url.host
    )
    .into_bytes()
}

/// Sends the request and reads the response head.
pub(super) fn get(stream: &mut (impl Read + Write), url: &OtaUrl) -> Result<Head, HeadError> {
    stream.write_all(&request(url)).map_err(|_| HeadError::Read)?;
    stream.flush().map_err(|_| HeadError::Read)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let header = |name: &str| {
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
                };
                return Ok(Head {
                    status: response.code.unwrap_or(0),
                    content_length: header("content-length").and_then(|v| v.parse().ok()),
                    location: header("location"),
                    body_start: buf[len..].to_vec(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < 16 * 1024 => {}
            _ => return Err(HeadError::Malformed),
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return Err(HeadError::Read),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_and_the_start_of_the_body() {
        use std::io;
        let mut wire = io::Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n\xe9abcd".to_vec());
        struct Duplex<'a>(&'a mut io::Cursor<Vec<u8>>, Vec<u8>);
        impl Read for Duplex<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl Write for Duplex<'_> {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.1.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut duplex = Duplex(&mut wire, Vec::new());
        let head = get(&mut duplex, &OtaUrl::parse("https://a.example/f.bin").unwrap()).unwrap();
        assert_eq!((head.status, head.content_length), (200, Some(5)));
        assert_eq!(head.body_start, b"\xe9abcd");
        assert!(String::from_utf8(duplex.1).unwrap().starts_with("GET /f.bin HTTP/1.1\r\n"));
    }
}
