//! The Queue bus's broker node (`broker-1`), which can crash and restart,
//! and publisher confirms.
//!
//! When the broker crashes, every client connection closes: consumers lose
//! what was on its way to them with auto-ack, their unacknowledged messages
//! go back to their queues, and what waited in their buffers is dropped (the
//! client drops a closed channel's deliveries). A transient queue (`durable:
//! false`) is gone with everything in it, and in a durable queue the
//! transient messages (`persistent: false`) are gone. While the broker is
//! down, and until the clients reconnect (`reconnect` after the restart), a
//! producer without publisher confirms loses what it publishes; one with
//! confirms keeps it and resends it. A producer with confirms also resends
//! every message whose confirm had not reached it when the broker crashed:
//! if the broker had stored it durably, it is now in the queue twice.
//!
//! Simplification: a message is on disk the moment the broker stores it.
//! RabbitMQ writes persistent messages in batches and confirms after the
//! write, so a crash can also lose a stored, unconfirmed message, which a
//! producer with confirms resends: with confirms, neither case loses it.

use std::collections::{BTreeMap, BTreeSet};

use super::{Ev, World};
use crate::service::Message;
use crate::trace::{LossReason, Record, RecordKind};

/// A published message whose confirm has not reached its producer.
#[derive(Clone, Copy, Debug)]
pub(super) struct Unconfirmed {
    pub node: u32,
    /// The producer's incarnation: a resend dies with it.
    pub epoch: u32,
    pub msg: Message,
    /// The broker still has it (stored durably before its crash): a
    /// producer that dies before resending it loses nothing.
    pub in_queue: bool,
}

/// The queue broker as its clients see it.
pub(super) struct ClientLink {
    /// The broker is up and its clients connected.
    pub reachable: bool,
    /// Stored messages whose confirm is on its way, by sequence.
    pub unconfirmed: BTreeMap<u64, Unconfirmed>,
    pub confirm_seq: u64,
    /// What producers resend when the broker is back.
    pub resend: Vec<Unconfirmed>,
}

impl ClientLink {
    pub fn new() -> ClientLink {
        ClientLink { reachable: true, unconfirmed: BTreeMap::new(), confirm_seq: 0, resend: Vec::new() }
    }
}

impl World<'_, '_> {
    /// The queue broker (broker `b`) crashes.
    pub(super) fn queue_broker_crash(&mut self, b: u32) {
        self.brokers[b as usize].up = false;
        self.brokers[b as usize].epoch += 1;
        self.qlink.reachable = false;
        let node = self.broker_node(b);
        self.emit(Record { time: self.now, kind: RecordKind::Crash, node, msg: 0, entity: 0, aux: 0 });
        // What producers will resend: not lost, whatever the broker keeps.
        let kept = self.queue_cfg.durable && self.queue_cfg.persistent;
        let mut resend: Vec<Unconfirmed> = std::mem::take(&mut self.qlink.unconfirmed).into_values().collect();
        resend.retain(|u| self.nodes[u.node as usize].epoch == u.epoch);
        resend.iter_mut().for_each(|u| u.in_queue = kept);
        let resent: BTreeSet<u64> = resend.iter().map(|u| u.msg.id.0).collect();
        // Every consumer's connection closes (nothing is dispatched until
        // the clients are back: the broker is unreachable).
        for n in 0..self.nodes.len() as u32 {
            if self.broker.queue_of[n as usize].is_some() {
                self.lose_auto_acked_on_wire(n);
                self.drop_buffered(n);
                self.close_channel(n);
            }
        }
        // What the restart does not keep is gone now.
        if !kept {
            for q in 0..self.broker.queues.len() {
                let gone = std::mem::take(&mut self.broker.queues[q].ready);
                let consumer = self.broker.queues[q].consumers.first().map_or(node, |c| c.node);
                for p in gone.iter().filter(|p| !resent.contains(&p.msg.id.0)) {
                    self.lose(consumer, &p.msg, LossReason::BrokerRestart);
                }
            }
        }
        self.qlink.resend.extend(resend);
    }

    /// The queue broker (broker `b`) restarts; its clients connect again
    /// `reconnect` later.
    pub(super) fn queue_broker_restart(&mut self, b: u32) {
        self.brokers[b as usize].up = true;
        let node = self.broker_node(b);
        self.emit(Record { time: self.now, kind: RecordKind::Restart, node, msg: 0, entity: 0, aux: 0 });
        let epoch = self.brokers[b as usize].epoch;
        self.queue.push(self.now + self.queue_cfg.reconnect, Ev::QueueBrokerBack { epoch });
    }

    /// The clients are connected again: producers resend what they kept,
    /// consumers consume.
    pub(super) fn queue_broker_back(&mut self, epoch: u32) {
        let Some(b) = self.queue_broker else { return };
        if !self.brokers[b as usize].up || self.brokers[b as usize].epoch != epoch {
            return; // crashed again meanwhile
        }
        self.qlink.reachable = true;
        for u in std::mem::take(&mut self.qlink.resend) {
            if self.nodes[u.node as usize].epoch != u.epoch {
                // The producer crashed holding it: its client's buffer died
                // with it, and unless the broker kept it, so did the message.
                if !u.in_queue {
                    self.lose(u.node, &u.msg, LossReason::CrashedWhileHeld);
                }
                continue;
            }
            self.trace(RecordKind::Resent, u.node, &u.msg, u64::from(u.msg.kind.0));
            self.publish_at_broker(u.node, u.msg);
        }
        // Every consumer has a new connection (one that is down gets
        // nothing until it is up).
        for n in 0..self.nodes.len() {
            if self.broker.queue_of[n].is_some() {
                self.broker.detached[n] = false;
                if self.nodes[n].up {
                    self.trace_node(RecordKind::Reconnected, n as u32, 0);
                }
            }
        }
        for q in 0..self.broker.queues.len() as u32 {
            self.dispatch(q);
        }
    }

    /// A publish reaches a broker that is down, or whose producers have not
    /// reconnected yet: kept for a resend with confirms, lost without.
    pub(super) fn queue_broker_unreachable(&mut self, from: u32, msg: Message) {
        if self.queue_cfg.confirms {
            let epoch = self.nodes[from as usize].epoch;
            self.qlink.resend.push(Unconfirmed { node: from, epoch, msg, in_queue: false });
        } else {
            self.lose(from, &msg, LossReason::BrokerDown);
        }
    }

    /// The broker stored `msg` from `from`: with confirms, the producer keeps
    /// it until the confirm reaches it.
    pub(super) fn await_confirm(&mut self, from: u32, msg: Message) {
        self.qlink.confirm_seq += 1;
        let epoch = self.nodes[from as usize].epoch;
        self.qlink.unconfirmed.insert(self.qlink.confirm_seq, Unconfirmed { node: from, epoch, msg, in_queue: false });
        let at = self.now + self.queue_latency.sample(&mut self.network);
        self.queue.push(at, Ev::QueueConfirm { seq: self.qlink.confirm_seq });
    }

    /// A confirm reaches its producer (unless the broker crashed first and
    /// the producer is resending it).
    pub(super) fn confirmed(&mut self, seq: u64) {
        self.qlink.unconfirmed.remove(&seq);
    }
}
