//! Hosts on a virtual network: one Linux network namespace per host, each with an `eth0`
//! joined to a bridge in a "switch" namespace, addresses from 198.51.100.0/24 (a documentation
//! range). Every name starts with `evac-i10-` and the test's process id; [`Net`] deletes them
//! all when dropped, so also when a test fails.

use std::path::Path;
use std::process::Command;

/// The namespaces of one test.
pub struct Net {
    prefix: String,
    hosts: Vec<String>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    /// Makes the switch and one namespace per `(host, address)`.
    pub fn new(tag: &str, hosts: &[(&str, &str)]) -> Net {
        let prefix = format!("evac-i10-{}-{tag}", std::process::id());
        let mut net = Net {
            prefix,
            hosts: Vec::new(),
        };
        let sw = net.ns("sw");
        let _ = Command::new("ip").args(["netns", "del", &sw]).output();
        ip(&["netns", "add", &sw]);
        net.hosts.push("sw".into());
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        for (host, addr) in hosts {
            let ns = net.ns(host);
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            ip(&["netns", "add", &ns]);
            net.hosts.push((*host).to_owned());
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let port = format!("p-{host}");
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        net
    }

    /// The namespace name of `host`.
    pub fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// A command run on `host`.
    pub fn on(&self, host: &str, program: impl AsRef<Path>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(host)])
            .arg(program.as_ref());
        c
    }

    /// Cuts (`up = false`) or restores `host`'s link: `ip link set eth0 down/up` on the host.
    pub fn link(&self, host: &str, up: bool) {
        ip(&[
            "-n",
            &self.ns(host),
            "link",
            "set",
            "eth0",
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(h)])
                .output();
        }
    }
}
