//! Reaching HQ's broker at start: the login from the settings, then a wait (bounded) until
//! HQ's orders can come. A refused login is a configuration error and stops the broadcaster;
//! a broker out of reach stops it only when no carousel was kept on disk, else it airs the
//! kept one and says loudly that orders may be stale. [`wait_for_orders`] is that decision on
//! a channel of [`Update`]s, testable without a broker.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use evac_net::BrokerUrl;
use evac_protocol::Slug;

use super::Update;
use crate::error::Error;
use crate::mqtt::{air_login, broker_url, subscribe_air};

/// Where the MQTT password comes from.
#[derive(Clone, Debug, Default)]
pub enum Password {
    /// None: log in without one.
    #[default]
    None,
    /// Given (from the service's config file, never from the command line).
    Given(String),
    /// The first line of a file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl Password {
    /// The password, read now.
    pub fn read(&self) -> Result<Option<String>, ConnectError> {
        match self {
            Password::None => Ok(None),
            Password::Given(p) => Ok(Some(p.clone())),
            Password::File(f) => {
                let text =
                    std::fs::read_to_string(f).map_err(|source| ConnectError::PasswordFile {
                        path: f.clone(),
                        source,
                    })?;
                Ok(Some(text.lines().next().unwrap_or_default().to_owned()))
            }
            Password::Env(var) => {
                std::env::var(var)
                    .map(Some)
                    .map_err(|source| ConnectError::PasswordEnv {
                        var: var.clone(),
                        source,
                    })
            }
        }
    }
}

/// HQ's broker as `mux --broker` (or the service's `[broker]`) gives it.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    /// `mqtt://HOST:PORT`, `mqtts://HOST:PORT` or `HOST:PORT`.
    pub url: String,
    /// MQTT user (`broadcaster-NAME`).
    pub user: Option<String>,
    /// Its password.
    pub password: Password,
    /// PEM of the CA the broker's TLS certificate is checked against: TLS when given.
    pub ca: Option<PathBuf>,
    /// Seconds to wait for the broker at start.
    pub connect_timeout: f64,
}

/// Why HQ's orders cannot be taken from the broker.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse.
    #[error(transparent)]
    Url(#[from] Error),
    /// The CA file cannot be read (evac-net's error names the file and the cause).
    #[error("--ca: {0}")]
    Ca(evac_net::NetError),
    /// An `mqtts://` URL without `--ca`.
    #[error("--broker {0} is TLS: give --ca, the CA certificate that signed the broker's")]
    NeedsCa(BrokerUrl),
    /// The password file cannot be read.
    #[error("reading the password file {}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The password's environment variable is not set.
    #[error("environment variable {var} is not set")]
    PasswordEnv {
        /// The variable.
        var: String,
        /// Why.
        source: std::env::VarError,
    },
    /// The broker refused our login.
    #[error("cannot get orders from {broker}: {why}; check --user and the password")]
    Refused {
        /// The broker as given.
        broker: String,
        /// The broker's answer.
        why: String,
    },
    /// No answer in time, and nothing kept on disk to air instead.
    #[error(
        "cannot get orders from {broker} within {timeout} s ({last}) and no carousel was kept \
         on disk: refusing to air an empty carousel"
    )]
    Unreachable {
        /// The broker as given.
        broker: String,
        /// The wait, seconds.
        timeout: f64,
        /// The last error seen.
        last: String,
    },
}

/// Connects to the broker and waits until HQ's orders can come, or says loudly why not;
/// `kept` is how many sections the carousel kept on disk has.
pub fn connect(
    b: &BrokerSettings,
    town: &Slug,
    kept: usize,
) -> Result<mpsc::Receiver<Update>, ConnectError> {
    let url = broker_url(&b.url)?;
    let ca = match &b.ca {
        Some(p) => Some(evac_net::read_ca(p).map_err(ConnectError::Ca)?),
        None => None,
    };
    if url.tls && ca.is_none() {
        return Err(ConnectError::NeedsCa(url));
    }
    let password = b.password.read()?;
    let client_id = format!("evac-broadcaster-{}", std::process::id());
    let login = air_login(client_id, b.user.as_deref(), password.as_deref()).ca(ca);
    let rx = subscribe_air(&url, &login, town.clone());
    let timeout = Duration::from_secs_f64(b.connect_timeout.max(0.0));
    match wait_for_orders(rx, timeout) {
        Wait::Ready(rx) => Ok(rx),
        Wait::Refused(why) => Err(ConnectError::Refused {
            broker: b.url.clone(),
            why,
        }),
        Wait::Unreachable(_, last) if kept == 0 => Err(ConnectError::Unreachable {
            broker: b.url.clone(),
            timeout: b.connect_timeout,
            last,
        }),
        Wait::Unreachable(rx, last) => {
            eprintln!(
                "evac-broadcaster: WARNING: cannot reach {} ({last}): airing the {kept} \
                 sections kept on disk; orders may be stale until HQ is reached",
                b.url
            );
            tracing::error!(broker = b.url, error = %last, kept, "HQ unreachable: airing the carousel kept on disk");
            Ok(rx)
        }
    }
}

/// How the wait for the broker ended.
#[derive(Debug)]
pub enum Wait {
    /// Connected, or HQ's first update came: the updates, nothing lost.
    Ready(mpsc::Receiver<Update>),
    /// The broker refused the login (its answer).
    Refused(String),
    /// No connection within the time (the last error; the updates still to come).
    Unreachable(mpsc::Receiver<Update>, String),
}

/// Waits up to `timeout` for the first update that says HQ's orders can come.
pub fn wait_for_orders(rx: mpsc::Receiver<Update>, timeout: Duration) -> Wait {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Update::Refused(e)) => return Wait::Refused(e),
            Ok(Update::Disconnected(e)) => last = e,
            Ok(u) => return Wait::Ready(requeue(rx, u)),
            Err(_) => return Wait::Unreachable(rx, last),
        }
    }
}

/// Puts `first` back in front of the updates still to come.
fn requeue(rx: mpsc::Receiver<Update>, first: Update) -> mpsc::Receiver<Update> {
    let (tx, out) = mpsc::channel();
    let _ = tx.send(first);
    std::thread::spawn(move || {
        for u in rx {
            if tx.send(u).is_err() {
                return;
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(50);

    #[test]
    fn the_first_update_is_not_lost() {
        let (tx, rx) = mpsc::channel();
        tx.send(Update::Disconnected("connection refused".into()))
            .unwrap();
        tx.send(Update::Keys(vec![1])).unwrap();
        tx.send(Update::Connected).unwrap();
        let Wait::Ready(rx) = wait_for_orders(rx, SHORT) else {
            panic!("not ready")
        };
        assert_eq!(rx.recv().unwrap(), Update::Keys(vec![1]));
        assert_eq!(rx.recv().unwrap(), Update::Connected);
    }

    #[test]
    fn a_refused_login_ends_the_wait_at_once() {
        let (tx, rx) = mpsc::channel();
        tx.send(Update::Refused("bad password".into())).unwrap();
        let started = Instant::now();
        let w = wait_for_orders(rx, Duration::from_secs(30));
        assert!(matches!(w, Wait::Refused(e) if e == "bad password"));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn silence_is_unreachable_with_the_last_error() {
        let (tx, rx) = mpsc::channel();
        tx.send(Update::Disconnected("connection refused".into()))
            .unwrap();
        let Wait::Unreachable(rx, last) = wait_for_orders(rx, SHORT) else {
            panic!("not unreachable")
        };
        assert_eq!(last, "connection refused");
        // The updates go on: the loop takes them once the broker answers.
        tx.send(Update::Connected).unwrap();
        assert_eq!(rx.recv().unwrap(), Update::Connected);
    }

    #[test]
    fn unreachable_with_nothing_kept_refuses_to_air_and_says_why() {
        let b = BrokerSettings {
            url: format!("127.0.0.1:{}", evac_testkit::free_port()),
            user: None,
            password: Password::None,
            ca: None,
            connect_timeout: 0.3,
        };
        let e = connect(&b, &Slug::new("town").unwrap(), 0).unwrap_err();
        assert!(
            e.to_string().contains("refusing to air an empty carousel"),
            "{e}"
        );
        let mut tls = b.clone();
        tls.url = "mqtts://127.0.0.1:8883".into();
        assert!(matches!(
            connect(&tls, &Slug::new("town").unwrap(), 0),
            Err(ConnectError::NeedsCa(_))
        ));
    }
}
