//! What HQ has to send to its broker, held on HQ's side of the MQTT client so that HQ's loop
//! never waits on the network.
//!
//! rumqttc's request queue is bounded and drained only while connected: an `.await` on a
//! full queue during an outage would stop HQ's loop (CAP intake, the checker's results, the
//! ticks) until the broker is back. Here messages wait in HQ's own queue instead, and go into
//! the client's only with `try_*` calls, while connected, as far as it has room
//! ([`Outbox::flush`], called after every turn of the loop).
//!
//! Nothing HQ must deliver is lost, and the queue stays bounded by what HQ owns:
//! - a retained message replaces everything still waiting on its topic (the broker would keep
//!   only the newest; a status snapshot carries everything its deltas said), so acks, the
//!   registry, status, the air and the key announcement wait at most once each;
//! - other messages (order batches, command replies, status deltas) wait in order;
//! - on every connection HQ publishes again what it owns (acks, registry, status snapshot,
//!   orders in force, the air: `Hq::on_connect`), which supersedes what was waiting;
//! - acknowledgements to the broker of messages received on a lost connection are dropped:
//!   the broker delivers those messages again (persistent session) and HQ, idempotent, acks
//!   them then; subscriptions go first on each connection.

use std::collections::VecDeque;

use rumqttc::{AsyncClient, ClientError, Publish, QoS, Request};

use crate::core::Publication;

/// One thing for the client to send.
#[derive(Debug)]
enum Item {
    Publish(Publication),
    Ack(Publish),
    Subscribe(String),
}

/// HQ's queue in front of the MQTT client.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Item>,
    limit: usize,
    oversize: u64,
}

impl Outbox {
    /// An empty queue; messages over `limit` bytes (what the broker takes) are never sent.
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            limit,
            oversize: 0,
        }
    }

    /// Messages refused so far for their size (over the broker's limit or evac's 1 MiB).
    pub fn oversize(&self) -> u64 {
        self.oversize
    }

    /// Queues messages to publish.
    pub fn publish(&mut self, msgs: Vec<Publication>) {
        for m in msgs {
            // The broker drops the connection on a packet over its limit, and HQ would send it
            // again on every reconnection: never send it, say so.
            if m.payload.len() > self.limit {
                tracing::error!(
                    topic = %m.topic, bytes = m.payload.len(), limit = self.limit,
                    "message larger than the broker takes: not published (raise [broker] max_payload_size)"
                );
                self.oversize += 1;
                continue;
            }
            // Issue 22: no message over 1 MiB, HQ's own included (HQ reaches rumqttd directly,
            // not through the gate, so the bound is kept here).
            if !m.within_bound() {
                tracing::error!(
                    topic = %m.topic, bytes = m.payload.len(), bound = evac_protocol::MAX_MESSAGE,
                    "message over evac's 1 MiB bound: not published (a bug: it should be in parts)"
                );
                self.oversize += 1;
                continue;
            }
            if m.retain {
                self.queue
                    .retain(|i| !matches!(i, Item::Publish(o) if o.topic == m.topic));
            }
            self.queue.push_back(Item::Publish(m));
        }
    }

    /// Queues the acknowledgement to the broker of a message handled.
    pub fn ack(&mut self, p: Publish) {
        self.queue.push_back(Item::Ack(p));
    }

    /// A new connection: subscriptions go first; acks of the old connection are dropped (the
    /// broker delivers their messages again).
    pub fn connected(&mut self, filters: &[String]) {
        self.queue.retain(|i| matches!(i, Item::Publish(_)));
        for f in filters.iter().rev() {
            self.queue.push_front(Item::Subscribe(f.clone()));
        }
    }

    /// Hands the client as much as it has room for, in order, without waiting; returns how
    /// many went. Call only while connected (the client drains its queue only then).
    pub fn flush(&mut self, client: &AsyncClient) -> usize {
        let mut sent = 0;
        while let Some(item) = self.queue.pop_front() {
            let back = match item {
                Item::Publish(m) => {
                    let Publication {
                        topic,
                        payload,
                        retain,
                    } = m;
                    match client.try_publish(topic.clone(), QoS::AtLeastOnce, retain, payload) {
                        Ok(()) => None,
                        // The payload comes back with the refusal: no copy on the way.
                        Err(
                            ClientError::TryRequest(Request::Publish(p))
                            | ClientError::Request(Request::Publish(p)),
                        ) => Some(Item::Publish(Publication {
                            topic,
                            payload: Vec::from(p.payload),
                            retain,
                        })),
                        Err(e) => {
                            tracing::error!(topic, error = %e, "cannot publish");
                            None
                        }
                    }
                }
                Item::Ack(p) => client.try_ack(&p).err().map(|_| Item::Ack(p)),
                Item::Subscribe(f) => client
                    .try_subscribe(f.clone(), QoS::AtLeastOnce)
                    .err()
                    .map(|_| Item::Subscribe(f)),
            };
            match back {
                None => sent += 1,
                Some(item) => {
                    // Full (or the network task is gone): it waits for the next turn.
                    self.queue.push_front(item);
                    break;
                }
            }
        }
        sent
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes of payload waiting.
    pub fn bytes(&self) -> usize {
        self.queue
            .iter()
            .map(|i| match i {
                Item::Publish(m) => m.payload.len(),
                _ => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test
    use std::time::Duration;

    use rumqttc::MqttOptions;

    use super::*;

    fn msg(topic: &str, byte: u8, retain: bool) -> Publication {
        Publication {
            topic: topic.into(),
            payload: vec![byte; 10],
            retain,
        }
    }

    /// Issue 18 item 4 (HQ): with the broker away the client's queue is never drained and
    /// fills; HQ hands it what fits and keeps the rest, without waiting, in order.
    #[tokio::test]
    async fn publishing_never_waits_on_a_full_client_queue() {
        // A client whose network task never runs: its queue of 2 fills and stays full.
        let (client, _eventloop) = AsyncClient::new(MqttOptions::new("t", "127.0.0.1", 1), 2);
        let mut out = Outbox::new(1 << 20);
        out.publish((0..5).map(|i| msg(&format!("o/{i}"), i, false)).collect());
        let sent = tokio::time::timeout(Duration::from_secs(2), async { out.flush(&client) })
            .await
            .expect("HQ's loop waited on the network");
        assert_eq!(sent, 2);
        assert_eq!(out.len(), 3, "the rest waits, nothing lost");
        assert_eq!(out.flush(&client), 0);
        assert_eq!(out.len(), 3);
    }

    /// A retained message replaces what waits on its topic (a status snapshot its deltas);
    /// other messages keep their order; a new connection puts subscriptions first and drops
    /// the acks of the old one.
    #[tokio::test]
    async fn retained_supersedes_and_a_connection_subscribes_first() {
        let mut out = Outbox::new(1 << 20);
        out.publish(vec![
            msg("status", 1, false),
            msg("orders", 2, false),
            msg("status", 3, false),
            msg("registry", 4, true),
        ]);
        out.publish(vec![msg("status", 5, true), msg("registry", 6, true)]);
        let (client, _eventloop) = AsyncClient::new(MqttOptions::new("t", "127.0.0.1", 1), 10);
        let p = Publish::new("evac/v1/minato/shelter/1/events", QoS::AtLeastOnce, vec![1]);
        out.ack(p);
        out.connected(&["a/#".to_owned()]);
        assert_eq!(out.len(), 4, "subscribe, orders, status, registry: {out:?}");
        let kinds: Vec<String> = out
            .queue
            .iter()
            .map(|i| match i {
                Item::Publish(m) => format!("{}:{}", m.topic, m.payload[0]),
                Item::Ack(_) => "ack".into(),
                Item::Subscribe(f) => format!("sub {f}"),
            })
            .collect();
        assert_eq!(kinds, ["sub a/#", "orders:2", "status:5", "registry:6"]);
        // Too large for the broker: never queued.
        out.publish(vec![Publication {
            topic: "big".into(),
            payload: vec![0; (1 << 20) + 1],
            retain: true,
        }]);
        assert_eq!(out.len(), 4);
        assert_eq!(out.flush(&client), 4);
        assert!(out.is_empty() && out.bytes() == 0);
    }

    /// Issue 22: under a broker that takes 16 MiB, HQ still never sends a message over 1 MiB
    /// (it counts and logs it), but for the whole registry, exempt until it is retired.
    #[test]
    fn nothing_over_one_mib_leaves_hq_whatever_its_topic() {
        let mut out = Outbox::new(16 << 20);
        let big = |topic: &str| Publication {
            topic: topic.into(),
            payload: vec![0; evac_protocol::MAX_MESSAGE + 1],
            retain: true,
        };
        out.publish(vec![
            big("evac/v1/minato/status"),
            big("evac/v1/minato/status/part/0"),
            big("evac/v1/minato/registry"),
            msg("evac/v1/minato/status", 1, true),
        ]);
        assert_eq!(out.oversize(), 3);
        assert_eq!(out.len(), 1, "the small status only: {out:?}");
    }
}
