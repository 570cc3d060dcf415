//! [`BrokerUrl`]: `mqtt://HOST:PORT`, `mqtts://HOST:PORT` (TLS), or a bare `HOST:PORT`
//! (plain MQTT), as every config file and command line takes a broker.
//!
//! | form | meaning |
//! | --- | --- |
//! | `mqtt://HOST:PORT` | MQTT over TCP |
//! | `mqtts://HOST:PORT` | MQTT over TLS (the node then needs the CA certificate) |
//! | `HOST:PORT` | the same as `mqtt://HOST:PORT` |
//!
//! One trailing `/` is allowed. An IPv6 address is written in brackets (`mqtt://[::1]:1883`).
//! Anything else (another scheme, a path, a user in the URL, no port, port 0) is refused with
//! a [`UrlError`] that quotes the URL.

use std::fmt;
use std::str::FromStr;

/// Where a broker is and whether the link is TLS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerUrl {
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// TCP port (never 0).
    pub port: u16,
    /// TLS (`mqtts://`).
    pub tls: bool,
}

/// A broker URL that cannot be used, and why; every message quotes the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// A scheme other than `mqtt://` or `mqtts://`.
    #[error("{url:?}: use mqtt://HOST:PORT, mqtts://HOST:PORT or HOST:PORT")]
    Scheme {
        /// The URL as given.
        url: String,
    },
    /// No `:PORT` at the end.
    #[error("{url:?} has no port: use mqtt://HOST:PORT, mqtts://HOST:PORT or HOST:PORT")]
    NoPort {
        /// The URL as given.
        url: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error("{url:?}: bad port (1 to 65535)")]
    BadPort {
        /// The URL as given.
        url: String,
    },
    /// Nothing before the port.
    #[error("{url:?} has no host")]
    NoHost {
        /// The URL as given.
        url: String,
    },
    /// The host holds a character no host name has (a path, a user, a space, an IPv6
    /// address without brackets).
    #[error("{url:?}: bad host (a name or address; an IPv6 address in brackets)")]
    BadHost {
        /// The URL as given.
        url: String,
    },
}

impl BrokerUrl {
    /// Parses one of the forms in the module doc.
    pub fn parse(url: &str) -> Result<BrokerUrl, UrlError> {
        let owned = || url.to_owned();
        let (tls, rest) = match url.split_once("://") {
            Some(("mqtt", rest)) => (false, rest),
            Some(("mqtts", rest)) => (true, rest),
            Some(_) => return Err(UrlError::Scheme { url: owned() }),
            None => (false, url),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| UrlError::NoPort { url: owned() })?;
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(UrlError::BadPort { url: owned() }),
        };
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6)
                if !v6.is_empty()
                    && v6
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') =>
            {
                v6
            }
            Some(_) => return Err(UrlError::BadHost { url: owned() }),
            None if host.is_empty() => return Err(UrlError::NoHost { url: owned() }),
            None if !host.bytes().all(host_byte) => {
                return Err(UrlError::BadHost { url: owned() });
            }
            None => host,
        };
        Ok(BrokerUrl {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

/// Letters, digits and what host names and IPv4 addresses use (`-`, `.`, `_`); non-ASCII
/// names are given in their ASCII (punycode) form.
fn host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

impl FromStr for BrokerUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<BrokerUrl, UrlError> {
        BrokerUrl::parse(s)
    }
}

/// The canonical form, `mqtt://HOST:PORT` or `mqtts://HOST:PORT`, which parses back.
impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use super::*;
    use proptest::prelude::*;

    fn url(host: &str, port: u16, tls: bool) -> BrokerUrl {
        BrokerUrl {
            host: host.into(),
            port,
            tls,
        }
    }

    #[test]
    fn the_three_forms() {
        let cases = [
            ("mqtt://hq.example:1883", url("hq.example", 1883, false)),
            ("mqtts://198.51.100.1:8883", url("198.51.100.1", 8883, true)),
            ("127.0.0.1:1883", url("127.0.0.1", 1883, false)),
            ("mqtt://h:1883/", url("h", 1883, false)),
            ("mqtts://[::1]:8883", url("::1", 8883, true)),
            ("[fe80::1]:1", url("fe80::1", 1, false)),
        ];
        for (text, want) in cases {
            assert_eq!(BrokerUrl::parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn what_is_refused_and_why() {
        use UrlError as E;
        type Make = fn(String) -> UrlError;
        let cases: [(&str, Make); 13] = [
            ("http://h:1", |url| E::Scheme { url }),
            ("tcp://h:1", |url| E::Scheme { url }),
            ("MQTT://h:1", |url| E::Scheme { url }),
            ("mqtt://h", |url| E::NoPort { url }),
            ("h", |url| E::NoPort { url }),
            ("mqtt://h:", |url| E::BadPort { url }),
            ("mqtt://h:0", |url| E::BadPort { url }),
            ("mqtt://h:65536", |url| E::BadPort { url }),
            ("mqtt://h:+1", |url| E::BadPort { url }),
            ("mqtt://:1883", |url| E::NoHost { url }),
            ("mqtt://u@h:1", |url| E::BadHost { url }),
            ("mqtt://h/x:1", |url| E::BadHost { url }),
            ("::1:1883", |url| E::BadHost { url }),
        ];
        for (text, want) in cases {
            assert_eq!(BrokerUrl::parse(text), Err(want(text.into())), "{text}");
        }
        let e = BrokerUrl::parse("mqtt://h").unwrap_err().to_string();
        assert!(
            e.contains("\"mqtt://h\"") && e.contains("mqtts://HOST:PORT"),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = BrokerUrl::parse(&s);
        }

        #[test]
        fn near_misses_never_panic(s in "(mqtts?://|tcp://)?\\[?[a-z0-9:.\\-/@]{0,12}\\]?(:[0-9+]{0,6})?/?") {
            if let Ok(u) = BrokerUrl::parse(&s) {
                prop_assert_eq!(BrokerUrl::parse(&u.to_string()), Ok(u));
            }
        }

        #[test]
        fn display_parses_back(
            host in "[a-z0-9][a-z0-9.\\-]{0,20}|[0-9a-f:]{1,20}",
            port in 1u16..,
            tls: bool,
        ) {
            let u = BrokerUrl { host, port, tls };
            prop_assert_eq!(BrokerUrl::parse(&u.to_string()), Ok(u));
        }
    }
}
