//! The URL a firmware updates from, split once the way ESP-IDF's HTTP client splits it: scheme,
//! host (lowercase; an IPv6 literal without its brackets), port (the scheme's when none is
//! given) and path with its query. Every part of the rig that needs the host, port or path of an
//! OTA URL reads it from here.

use std::fmt;
use std::net::Ipv6Addr;

/// The schemes an OTA URL may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`: plain HTTP, port 80 by default.
    Http,
    /// `https://`: HTTP over TLS, port 443 by default.
    Https,
}

impl Scheme {
    /// The port a URL of this scheme means when it names none.
    pub(crate) const fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An `http(s)://host[:port][/path]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtaUrl {
    text: String,
    /// `http` or `https`, whatever the case it was written in.
    pub scheme: Scheme,
    /// Lowercase; an IPv6 address without brackets.
    pub host: String,
    /// As written, else the scheme's; never 0.
    pub port: u16,
    /// From the first `/` on, query included, fragment removed; `/` when the URL has none.
    pub path: String,
}

/// Why a text is not an OTA URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The text does not start with `http://` or `https://`.
    #[error("not an http:// or https:// URL")]
    Scheme,
    /// Nothing between the scheme and the port or path.
    #[error("no host")]
    NoHost,
    /// A `[...]` host that is unclosed, not an IPv6 address, or followed by something other than
    /// `:port`.
    #[error("the IPv6 address in brackets is not closed or not valid")]
    Ipv6,
    /// A host name character other than letters, digits, `-`, `.` and `_` (the character).
    #[error("the host has a character a host name cannot have: {0:?}")]
    HostChar(char),
    /// A port that is not a number from 1 to 65535 (as written).
    #[error("the port `{0}` is not a number from 1 to 65535")]
    Port(String),
    /// A control or whitespace character in the path (the character).
    #[error("the path has a character a request line cannot carry: {0:?}")]
    PathChar(char),
}

impl OtaUrl {
    /// Splits `text`; anything but a whole `http(s)://` URL with a host is refused.
    pub fn parse(text: &str) -> Result<OtaUrl, UrlError> {
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            _ => return Err(UrlError::Scheme),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        // Credentials before `@` are not part of the host.
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let (host, port) = match host_port.strip_prefix('[') {
            Some(bracketed) => {
                let (address, after) = bracketed.split_once(']').ok_or(UrlError::Ipv6)?;
                address.parse::<Ipv6Addr>().map_err(|_| UrlError::Ipv6)?;
                let port = match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':').ok_or(UrlError::Ipv6)?),
                };
                (address, port)
            }
            None => match host_port.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            },
        };
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        if !host_port.starts_with('[')
            && let Some(bad) = host.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        {
            return Err(UrlError::HostChar(bad));
        }
        let port = match port {
            None => scheme.default_port(),
            Some(text) => text.parse().ok().filter(|&p: &u16| p != 0).ok_or_else(|| UrlError::Port(text.to_owned()))?,
        };
        if let Some(bad) = tail.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(UrlError::PathChar(bad));
        }
        let path = tail.split('#').next().unwrap_or_default();
        let path = match path {
            "" => "/".to_owned(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_owned(),
        };
        Ok(OtaUrl { text: text.to_owned(), scheme, host: host.to_ascii_lowercase(), port, path })
    }

    /// The URL as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for OtaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Result<(Scheme, String, u16, String), UrlError> {
        OtaUrl::parse(text).map(|u| (u.scheme, u.host, u.port, u.path))
    }

    #[test]
    fn urls_split_into_host_port_and_path() {
        let ok = |text: &str, scheme, host: &str, port, path: &str| {
            assert_eq!(parts(text), Ok((scheme, host.to_owned(), port, path.to_owned())), "{text}");
        };
        ok("https://ota.example.com/firmware.bin", Scheme::Https, "ota.example.com", 443, "/firmware.bin");
        ok("https://OTA.Example.com:8443/fw.bin?x=1#top", Scheme::Https, "ota.example.com", 8443, "/fw.bin?x=1");
        ok("https://user:pw@host.example/fw", Scheme::Https, "host.example", 443, "/fw");
        ok("https://[::1]:4443/fw", Scheme::Https, "::1", 4443, "/fw");
        ok("https://[::1]", Scheme::Https, "::1", 443, "/");
        ok("http://192.168.1.10", Scheme::Http, "192.168.1.10", 80, "/");
        ok("HTTPS://host?v=2", Scheme::Https, "host", 443, "/?v=2");
    }

    #[test]
    fn what_is_not_an_ota_url_is_refused_with_its_reason() {
        let bad = |text: &str, err: UrlError| assert_eq!(parts(text), Err(err), "{text}");
        bad("ftp://host/fw", UrlError::Scheme);
        bad("ota.example.com/fw", UrlError::Scheme);
        bad("https:///fw", UrlError::NoHost);
        bad("https://[::1", UrlError::Ipv6);
        bad("https://[zz]/fw", UrlError::Ipv6);
        bad("https://[::1]x/fw", UrlError::Ipv6);
        bad("https://host:0/fw", UrlError::Port("0".into()));
        bad("https://host:99999/fw", UrlError::Port("99999".into()));
        bad("https://ho st/fw", UrlError::HostChar(' '));
        bad("https://host\r\nX: y/fw", UrlError::HostChar('\r'));
    }
}
